package registry

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"strconv"
)

// The journal (thread_registry.json.journal) holds the operations committed
// since the snapshot files were last written. Each line is
// "<crc32c of the JSON, 8 hex digits> <JSON>\n". The first line is the
// header, naming the fingerprints of the snapshot files the operations
// apply to; each following line is one committed transaction (or a
// compaction mark naming the fingerprints of the snapshots being written).
// A last line without its newline (a torn tail, cut short by a crash) was
// never acknowledged: readers ignore it and the next writer cuts it. A
// complete line that fails its checksum is corruption wherever it is.

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

const journalVersion = 1

type journalHeader struct {
	Version  int    `json:"autonode_journal"`
	Registry string `json:"registry"`
	Archive  string `json:"archive"`
}

type journalOp struct {
	Archive bool            `json:"a,omitempty"`
	Key     string          `json:"k"`
	Value   json.RawMessage `json:"v,omitempty"`
	Delete  bool            `json:"d,omitempty"`
}

type journalRecord struct {
	Seq     int64          `json:"seq,omitempty"`
	Ops     []journalOp    `json:"ops,omitempty"`
	Compact *journalHeader `json:"compact,omitempty"`
}

// fingerprint names a snapshot file's content: its length and CRC-32C.
func fingerprint(data []byte, present bool) string {
	if !present {
		return "absent"
	}
	return strconv.Itoa(len(data)) + ":" + fmt.Sprintf("%08x", crc32.Checksum(data, castagnoli))
}

// encodeLine returns v as one journal line: the CRC-32C of its JSON in
// eight hex digits, a space, the JSON and a newline.
func encodeLine(v any) ([]byte, error) {
	if rec, ok := v.(journalRecord); ok && rec.Compact == nil {
		// Written in place after room for the checksum: a commit of
		// thousands of records makes a line of megabytes, copied once.
		line, err := rec.appendJSON(make([]byte, 9, 9+rec.size()+1))
		if err != nil {
			return nil, err
		}
		var sum [4]byte
		binary.BigEndian.PutUint32(sum[:], crc32.Checksum(line[9:], castagnoli))
		hex.Encode(line[:8], sum[:]) // as %08x does
		line[8] = ' '
		return append(line, '\n'), nil
	}
	body, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	line := make([]byte, 0, len(body)+10)
	line = fmt.Appendf(line, "%08x ", crc32.Checksum(body, castagnoli))
	line = append(line, body...)
	return append(line, '\n'), nil
}

// size is about the length of the record's JSON (at least it, when every
// value is on one line and keys need no escapes).
func (r journalRecord) size() int {
	n := 32
	for _, op := range r.Ops {
		n += len(op.Key) + len(op.Value) + 32
	}
	return n
}

// appendJSON writes the record as json.Marshal would, but copies each
// value's JSON as it is when it is on one line (records come compact from
// Thread's encoder, or were checked when the snapshot was read): the
// re-validation and compaction json.Marshal does cost more than the rest
// of a commit. A value on several lines (an indented snapshot entry) is
// compacted, which also checks it.
func (r journalRecord) appendJSON(b []byte) ([]byte, error) {
	b = append(b, '{')
	if r.Seq != 0 {
		b = append(b, `"seq":`...)
		b = strconv.AppendInt(b, r.Seq, 10)
	}
	if len(r.Ops) > 0 {
		if r.Seq != 0 {
			b = append(b, ',')
		}
		b = append(b, `"ops":[`...)
		for i, op := range r.Ops {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '{')
			if op.Archive {
				b = append(b, `"a":true,`...)
			}
			b = append(b, `"k":`...)
			k, err := json.Marshal(op.Key)
			if err != nil {
				return nil, err
			}
			b = append(b, k...)
			if len(op.Value) > 0 {
				b = append(b, `,"v":`...)
				if bytes.IndexByte(op.Value, '\n') < 0 && bytes.IndexByte(op.Value, '\r') < 0 {
					b = append(b, op.Value...)
				} else {
					var c bytes.Buffer
					if err := json.Compact(&c, op.Value); err != nil {
						return nil, fmt.Errorf("journal: the value of %s: %w", op.Key, err)
					}
					b = append(b, c.Bytes()...)
				}
			}
			if op.Delete {
				b = append(b, `,"d":true`...)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, '}'), nil
}

// decodeLine checks one line (without its newline) and returns its JSON.
func decodeLine(line []byte) ([]byte, bool) {
	if len(line) < 10 || line[8] != ' ' {
		return nil, false
	}
	want, err := strconv.ParseUint(string(line[:8]), 16, 32)
	if err != nil {
		return nil, false
	}
	body := line[9:]
	if crc32.Checksum(body, castagnoli) != uint32(want) {
		return nil, false
	}
	return body, true
}

// parsedJournal is what readJournal found.
type parsedJournal struct {
	header  *journalHeader
	records []journalRecord
	// end is the offset just past the last good line; torn reports bytes
	// after it (a crash's torn tail).
	end  int64
	torn bool
}

// parseJournal reads data, which starts at offset base of the file and,
// when header is true, begins with the header line.
func parseJournal(data []byte, base int64, header bool) (*parsedJournal, error) {
	p := &parsedJournal{end: base}
	off := 0
	for off < len(data) {
		nl := bytes.IndexByte(data[off:], '\n')
		if nl < 0 {
			p.torn = true
			break
		}
		body, ok := decodeLine(data[off : off+nl])
		if ok {
			if header && p.header == nil {
				var h journalHeader
				if json.Unmarshal(body, &h) != nil || h.Version != journalVersion {
					ok = false
				} else {
					p.header = &h
				}
			} else {
				var r journalRecord
				if json.Unmarshal(body, &r) != nil {
					ok = false
				} else {
					p.records = append(p.records, r)
				}
			}
		}
		if !ok {
			return nil, fmt.Errorf("%w: journal line at byte %d is damaged (its checksum or content does not match)", ErrCorrupt, base+int64(off))
		}
		off += nl + 1
		p.end = base + int64(off)
	}
	return p, nil
}
