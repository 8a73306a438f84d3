package accel

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
)

// NumPy's .npy format (numpy.lib.format): the magic string "\x93NUMPY", a
// version (1.0: a 2-byte header length; 2.0 and 3.0: 4 bytes), a header
// that is a Python dict literal {'descr': '<f8', 'fortran_order': False,
// 'shape': (3, 4), } padded with spaces to a multiple of 64 bytes and ended
// by a newline, then the elements.

const npyMagic = "\x93NUMPY"

// maxNPYHeader bounds the header a reader accepts (NumPy's own limit for
// untrusted files is 10000 bytes).
const maxNPYHeader = 1 << 16

// ErrFormat is wrapped by ReadNPY's errors about the file's content: not
// .npy, a version, dtype or layout that is not supported, or truncated.
var ErrFormat = errors.New("invalid .npy data")

// WriteNPY writes a in NumPy's .npy format: version 1.0 (2.0 when the
// header is too long for 1.0), dtype '<f8' or '<f4', C order. numpy.load
// reads it.
func WriteNPY(w io.Writer, a *Array) error {
	if err := a.live("save"); err != nil {
		return err
	}
	descr := "<f8"
	if a.dtype == Float32 {
		descr = "<f4"
	}
	dims := make([]string, len(a.shape))
	for i, d := range a.shape {
		dims[i] = strconv.Itoa(d)
	}
	shape := "(" + strings.Join(dims, ", ")
	if len(dims) == 1 {
		shape += ","
	}
	shape += ")"
	dict := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape)
	major, lenBytes := byte(1), 2
	if len(dict)+1+len(npyMagic)+2+2 > math.MaxUint16 {
		major, lenBytes = 2, 4
	}
	pre := len(npyMagic) + 2 + lenBytes
	total := (pre + len(dict) + 1 + 63) / 64 * 64
	header := dict + strings.Repeat(" ", total-pre-len(dict)-1) + "\n"
	bw := bufio.NewWriterSize(w, 1<<16)
	bw.WriteString(npyMagic)
	bw.WriteByte(major)
	bw.WriteByte(0)
	if lenBytes == 2 {
		binary.Write(bw, binary.LittleEndian, uint16(len(header)))
	} else {
		binary.Write(bw, binary.LittleEndian, uint32(len(header)))
	}
	bw.WriteString(header)
	if err := writeElements(bw, a); err != nil {
		return err
	}
	return bw.Flush()
}

// writeElements writes a's elements in row-major order, little-endian, a
// chunk at a time.
func writeElements(w io.Writer, a *Array) error {
	var data64 []float64
	var data32 []float32
	if hb := a.host(); hb != nil && a.strides == nil {
		n := a.Size()
		if a.dtype == Float64 {
			data64 = hb.f64[a.off : a.off+n]
		} else {
			data32 = hb.f32[a.off : a.off+n]
		}
	} else if a.dtype == Float64 {
		var err error
		if data64, err = a.Float64s(); err != nil {
			return err
		}
	} else {
		var err error
		if data32, err = a.Float32s(); err != nil {
			return err
		}
	}
	buf := make([]byte, 0, 1<<16)
	flush := func() error {
		_, err := w.Write(buf)
		buf = buf[:0]
		return err
	}
	for _, v := range data64 {
		buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(v))
		if len(buf) == cap(buf) {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	for _, v := range data32 {
		buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
		if len(buf) == cap(buf) {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// npyHeader is the parsed header of a .npy file.
type npyHeader struct {
	dtype   DType
	big     bool // big-endian elements
	fortran bool
	shape   []int
}

// ReadNPY reads an array in NumPy's .npy format (versions 1.0, 2.0 and
// 3.0; dtype float64 or float32, little- or big-endian; C or Fortran
// order) into a new array of this Exec. A Fortran-ordered file gives a
// transposed view. Errors about the content wrap ErrFormat and say what
// was found and what is allowed; the array is charged to the budget before
// any element is read. When r has a Stat method (an *os.File), a file too
// short for its header's shape is refused before anything is allocated.
func (e *Exec) ReadNPY(r io.Reader) (*Array, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	h, headerLen, err := readNPYHeader(br)
	if err != nil {
		return nil, err
	}
	n, err := checkShape("load", h.shape)
	if err != nil {
		return nil, errorf(ErrFormat, "load: %v", err)
	}
	size := int64(n) * int64(h.dtype.Size())
	if st, ok := r.(interface{ Stat() (os.FileInfo, error) }); ok {
		if fi, err := st.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size()-headerLen < size {
			return nil, errorf(ErrFormat, "load: the header announces %s elements of shape %s (%s) but the file holds only %s after it: the file is truncated", strconv.Itoa(n), formatShape(h.shape), formatSize(size), formatSize(max(0, fi.Size()-headerLen)))
		}
	}
	shape := h.shape
	if h.fortran {
		shape = make([]int, len(h.shape))
		for i, d := range h.shape {
			shape[len(shape)-1-i] = d
		}
	}
	a, err := e.alloc("load", h.dtype, shape)
	if err != nil {
		return nil, err
	}
	if err := readElements(br, a, h.big); err != nil {
		a.Free()
		return nil, err
	}
	if h.fortran && len(shape) > 1 {
		return e.Transpose(context.Background(), a)
	}
	return a, nil
}

func readNPYHeader(r *bufio.Reader) (npyHeader, int64, error) {
	var h npyHeader
	pre := make([]byte, len(npyMagic)+2)
	if _, err := io.ReadFull(r, pre); err != nil {
		return h, 0, errorf(ErrFormat, "load: not a .npy file: %s", shortRead(err, "the magic string"))
	}
	if string(pre[:len(npyMagic)]) != npyMagic {
		return h, 0, errorf(ErrFormat, "load: not a .npy file: it does not start with \\x93NUMPY")
	}
	major, minor := pre[len(npyMagic)], pre[len(npyMagic)+1]
	var hlen int
	switch {
	case major == 1 && minor == 0:
		var l uint16
		if err := binary.Read(r, binary.LittleEndian, &l); err != nil {
			return h, 0, errorf(ErrFormat, "load: %s", shortRead(err, "the header length"))
		}
		hlen = int(l)
	case (major == 2 || major == 3) && minor == 0:
		var l uint32
		if err := binary.Read(r, binary.LittleEndian, &l); err != nil {
			return h, 0, errorf(ErrFormat, "load: %s", shortRead(err, "the header length"))
		}
		if l > maxNPYHeader {
			return h, 0, errorf(ErrFormat, "load: header of %d bytes is longer than the %d allowed", l, maxNPYHeader)
		}
		hlen = int(l)
	default:
		return h, 0, errorf(ErrFormat, "load: .npy format version %d.%d is not supported: allowed are 1.0, 2.0 and 3.0", major, minor)
	}
	text := make([]byte, hlen)
	if _, err := io.ReadFull(r, text); err != nil {
		return h, 0, errorf(ErrFormat, "load: %s", shortRead(err, "the header"))
	}
	headerLen := int64(len(pre) + hlen)
	if major == 1 {
		headerLen += 2
	} else {
		headerLen += 4
	}
	d, err := parsePyDict(string(text))
	if err != nil {
		return h, 0, errorf(ErrFormat, "load: bad header %q: %v", strings.TrimSpace(string(text)), err)
	}
	for k := range d {
		if k != "descr" && k != "fortran_order" && k != "shape" {
			return h, 0, errorf(ErrFormat, "load: header has the unexpected key %q: a .npy header has descr, fortran_order and shape", k)
		}
	}
	descr, ok := d["descr"].(string)
	if !ok {
		return h, 0, errorf(ErrFormat, "load: header has no dtype string 'descr'")
	}
	switch descr {
	case "<f8", "<f4", ">f8", ">f4":
		h.big = descr[0] == '>'
	case "=f8", "=f4":
		h.big = binary.NativeEndian.Uint16([]byte{0, 1}) == 1
	default:
		return h, 0, errorf(ErrFormat, "load: dtype %q is not supported: allowed are float64 and float32, little- or big-endian ('<f8', '<f4', '>f8', '>f4')", descr)
	}
	h.dtype = Float64
	if descr[2] == '4' {
		h.dtype = Float32
	}
	fo, ok := d["fortran_order"].(bool)
	if !ok {
		return h, 0, errorf(ErrFormat, "load: header has no boolean 'fortran_order'")
	}
	h.fortran = fo
	shape, ok := d["shape"].([]int)
	if !ok {
		return h, 0, errorf(ErrFormat, "load: header has no tuple of ints 'shape'")
	}
	if len(shape) > 64 {
		return h, 0, errorf(ErrFormat, "load: shape has %d dimensions: at most 64 are allowed", len(shape))
	}
	h.shape = shape
	return h, headerLen, nil
}

func shortRead(err error, what string) string {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "the file ends inside " + what
	}
	return fmt.Sprintf("reading %s: %v", what, err)
}

// readElements fills a (new, contiguous) from r.
func readElements(r io.Reader, a *Array, big bool) error {
	n := a.Size()
	size := a.dtype.Size()
	order := binary.ByteOrder(binary.LittleEndian)
	if big {
		order = binary.BigEndian
	}
	var host64 []float64
	var host32 []float32
	if hb := a.host(); hb != nil {
		host64, host32 = hb.f64, hb.f32
	} else if a.dtype == Float64 {
		host64 = make([]float64, n)
	} else {
		host32 = make([]float32, n)
	}
	buf := make([]byte, 1<<16)
	for done := 0; done < n; {
		k := min(n-done, len(buf)/size)
		if _, err := io.ReadFull(r, buf[:k*size]); err != nil {
			return errorf(ErrFormat, "load: %s (%d of %d elements read)", shortRead(err, "the elements"), done, n)
		}
		if host64 != nil {
			for i := range k {
				host64[done+i] = math.Float64frombits(order.Uint64(buf[i*8:]))
			}
		} else {
			for i := range k {
				host32[done+i] = math.Float32frombits(order.Uint32(buf[i*4:]))
			}
		}
		done += k
	}
	if a.host() != nil {
		return nil
	}
	if host64 != nil {
		return a.st.buffer().Write(host64, 0)
	}
	return a.st.buffer().Write(host32, 0)
}

// parsePyDict parses the Python dict literal of a .npy header: string keys,
// and values that are strings, True/False, or tuples of ints.
func parsePyDict(s string) (map[string]any, error) {
	p := &pyParser{s: s}
	p.space()
	if !p.eat('{') {
		return nil, errors.New("want a dict starting with {")
	}
	out := map[string]any{}
	for {
		p.space()
		if p.eat('}') {
			break
		}
		k, err := p.str()
		if err != nil {
			return nil, err
		}
		p.space()
		if !p.eat(':') {
			return nil, fmt.Errorf("want : after key %q", k)
		}
		p.space()
		v, err := p.value()
		if err != nil {
			return nil, fmt.Errorf("value of %q: %v", k, err)
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("key %q repeats", k)
		}
		out[k] = v
		p.space()
		if p.eat(',') {
			continue
		}
		p.space()
		if !p.eat('}') {
			return nil, errors.New("want , or }")
		}
		break
	}
	p.space()
	if p.i != len(p.s) {
		return nil, fmt.Errorf("unexpected %q after the dict", p.s[p.i:])
	}
	return out, nil
}

type pyParser struct {
	s string
	i int
}

func (p *pyParser) space() {
	for p.i < len(p.s) && strings.IndexByte(" \t\r\n", p.s[p.i]) >= 0 {
		p.i++
	}
}

func (p *pyParser) eat(c byte) bool {
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *pyParser) str() (string, error) {
	if p.i >= len(p.s) || (p.s[p.i] != '\'' && p.s[p.i] != '"') {
		return "", errors.New("want a quoted string")
	}
	q := p.s[p.i]
	end := strings.IndexByte(p.s[p.i+1:], q)
	if end < 0 {
		return "", errors.New("unterminated string")
	}
	v := p.s[p.i+1 : p.i+1+end]
	if strings.ContainsRune(v, '\\') {
		return "", errors.New("escapes in strings are not supported")
	}
	p.i += end + 2
	return v, nil
}

func (p *pyParser) value() (any, error) {
	switch {
	case p.i >= len(p.s):
		return nil, errors.New("missing")
	case p.s[p.i] == '\'' || p.s[p.i] == '"':
		return p.str()
	case strings.HasPrefix(p.s[p.i:], "True"):
		p.i += 4
		return true, nil
	case strings.HasPrefix(p.s[p.i:], "False"):
		p.i += 5
		return false, nil
	case p.s[p.i] == '(':
		p.i++
		var dims []int
		for {
			p.space()
			if p.eat(')') {
				return dims, nil
			}
			j := p.i
			for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
				p.i++
			}
			if j == p.i {
				return nil, errors.New("want a non-negative integer in the tuple")
			}
			d, err := strconv.Atoi(p.s[j:p.i])
			if err != nil || d > maxElements {
				return nil, fmt.Errorf("dimension %s is too large", p.s[j:p.i])
			}
			dims = append(dims, d)
			p.space()
			if p.eat(',') {
				continue
			}
			p.space()
			if !p.eat(')') {
				return nil, errors.New("want , or ) in the tuple")
			}
			return dims, nil
		}
	}
	return nil, fmt.Errorf("unsupported value starting %q", p.s[p.i:min(len(p.s), p.i+10)])
}
