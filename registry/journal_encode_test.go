package registry

import (
	"encoding/json"
	"fmt"
	"hash/crc32"
	"testing"
)

// TestJournalRecordEncoding: the journal's own encoder writes what
// json.Marshal writes, and compacts a value on several lines.
func TestJournalRecordEncoding(t *testing.T) {
	for _, rec := range []journalRecord{
		{},
		{Seq: 7},
		{Seq: 3, Ops: []journalOp{{Key: "1.0", Value: json.RawMessage(`{"id":1.0,"name":"a \"b\""}`)}}},
		{Seq: 4, Ops: []journalOp{{Archive: true, Key: "2.5", Value: json.RawMessage(`{"deleted_at":"x","data":{"id":2.5}}`)}, {Key: "2.5", Delete: true}}},
		{Ops: []journalOp{{Key: "we\"ird\n\u2028key", Value: json.RawMessage("{\n  \"id\": 1.0,\n  \"x\": [1, 2]\n}")}}},
	} {
		got, err := rec.appendJSON(nil)
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("appendJSON:\n%s\njson.Marshal:\n%s", got, want)
		}
		line, err := encodeLine(rec)
		if err != nil {
			t.Fatal(err)
		}
		if wantLine := fmt.Sprintf("%08x %s\n", crc32.Checksum(want, castagnoli), want); string(line) != wantLine {
			t.Errorf("encodeLine:\n%q\nwant:\n%q", line, wantLine)
		}
		if body, ok := decodeLine(line[:len(line)-1]); !ok || string(body) != string(want) {
			t.Errorf("decodeLine(encodeLine) = %q, %v", body, ok)
		}
	}
	if _, err := (journalRecord{Ops: []journalOp{{Key: "1.0", Value: json.RawMessage("{\n bad")}}}).appendJSON(nil); err == nil {
		t.Error("a damaged value on several lines was written")
	}
}
