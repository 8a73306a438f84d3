package registry

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// The registry reads only what it must of NumPy's .npy files (the accel
// package reads and writes them): the header, to name a stored array's
// dtype and shape and to check that the file holds the elements the
// header announces, and, for a JSON export, the elements of a numeric
// dtype.

const npyMagic = "\x93NUMPY"

// npyHeaderLimit bounds the header a stored array may have.
const npyHeaderLimit = 1 << 16

// npyHeader is what a .npy header says.
type npyHeader struct {
	order    byte // '<', '>' or '|'
	kind     byte // 'f', 'i', 'u', 'b' or 'c'
	itemSize int
	fortran  bool
	shape    []int
	dataAt   int64 // bytes before the first element
}

// dtypeName is NumPy's name of the header's dtype ("float64").
func (h npyHeader) dtypeName() string {
	switch h.kind {
	case 'f':
		return "float" + strconv.Itoa(8*h.itemSize)
	case 'i':
		return "int" + strconv.Itoa(8*h.itemSize)
	case 'u':
		return "uint" + strconv.Itoa(8*h.itemSize)
	case 'c':
		return "complex" + strconv.Itoa(8*h.itemSize)
	}
	return "bool"
}

// elements is the number of elements the shape holds.
func (h npyHeader) elements() int64 {
	n := int64(1)
	for _, d := range h.shape {
		n *= int64(d)
	}
	return n
}

func npyError(format string, args ...any) error {
	return fmt.Errorf("%w: not a NumPy .npy file of a numeric dtype: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// readNPYHeader reads the magic string, version and header of a .npy file.
func readNPYHeader(r *bufio.Reader) (npyHeader, error) {
	var h npyHeader
	pre := make([]byte, len(npyMagic)+2)
	if _, err := io.ReadFull(r, pre); err != nil {
		return h, npyError("it is shorter than the magic string and version (%v)", err)
	}
	if string(pre[:len(npyMagic)]) != npyMagic {
		return h, npyError("it does not start with \\x93NUMPY")
	}
	major := pre[len(npyMagic)]
	var hlen int
	switch major {
	case 1:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return h, npyError("the header length is cut off")
		}
		hlen = int(binary.LittleEndian.Uint16(b[:]))
		h.dataAt = 10
	case 2, 3:
		var b [4]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return h, npyError("the header length is cut off")
		}
		n := binary.LittleEndian.Uint32(b[:])
		if n > npyHeaderLimit {
			return h, npyError("its header is %d bytes long; at most %d are accepted", n, npyHeaderLimit)
		}
		hlen = int(n)
		h.dataAt = 12
	default:
		return h, npyError("format version %d.%d; versions 1, 2 and 3 are known", major, pre[len(npyMagic)+1])
	}
	text := make([]byte, hlen)
	if _, err := io.ReadFull(r, text); err != nil {
		return h, npyError("the header is cut off")
	}
	h.dataAt += int64(hlen)
	if err := h.parseDict(strings.TrimRight(string(text), " \n\x00")); err != nil {
		return h, err
	}
	return h, nil
}

// parseDict reads the header's dict literal: {'descr': '<f8',
// 'fortran_order': False, 'shape': (3, 4), }.
func (h *npyHeader) parseDict(s string) error {
	descr, ok := dictValue(s, "descr")
	if !ok {
		return npyError("its header has no 'descr'")
	}
	descr = strings.Trim(descr, `'"`)
	if len(descr) < 3 || strings.IndexByte("<>|=", descr[0]) < 0 || strings.IndexByte("fiubc", descr[1]) < 0 {
		return npyError("dtype %q; want a numeric one such as '<f8'", descr)
	}
	size, err := strconv.Atoi(descr[2:])
	if err != nil || size < 1 || size > 16 || size&(size-1) != 0 {
		return npyError("dtype %q has an item size that is not 1, 2, 4, 8 or 16 bytes", descr)
	}
	h.order, h.kind, h.itemSize = descr[0], descr[1], size
	if h.order == '=' {
		h.order = '<'
	}
	if h.kind == 'b' && size != 1 {
		return npyError("dtype %q: a boolean has one byte", descr)
	}
	fo, ok := dictValue(s, "fortran_order")
	if !ok || fo != "True" && fo != "False" {
		return npyError("its header has no fortran_order True or False")
	}
	h.fortran = fo == "True"
	sh, ok := dictValue(s, "shape")
	if !ok || len(sh) < 2 || sh[0] != '(' || sh[len(sh)-1] != ')' {
		return npyError("its header has no shape tuple")
	}
	h.shape = []int{}
	n := int64(1)
	for _, f := range strings.Split(sh[1:len(sh)-1], ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		d, err := strconv.Atoi(strings.TrimSuffix(f, "L"))
		if err != nil || d < 0 {
			return npyError("shape %s has a dimension that is not a non-negative integer", sh)
		}
		if d > 0 && n > math.MaxInt64/int64(d)/int64(size) {
			return npyError("shape %s is too large", sh)
		}
		n *= int64(d)
		h.shape = append(h.shape, d)
	}
	return nil
}

// dictValue returns the text of key's value in a Python dict literal of
// scalars and one tuple, as .npy headers write them.
func dictValue(s, key string) (string, bool) {
	for _, q := range []string{"'", `"`} {
		i := strings.Index(s, q+key+q)
		if i < 0 {
			continue
		}
		rest := strings.TrimLeft(s[i+len(key)+2:], " ")
		if !strings.HasPrefix(rest, ":") {
			return "", false
		}
		rest = strings.TrimLeft(rest[1:], " ")
		if strings.HasPrefix(rest, "(") {
			end := strings.IndexByte(rest, ')')
			if end < 0 {
				return "", false
			}
			return rest[:end+1], true
		}
		end := strings.IndexAny(rest, ",}")
		if end < 0 {
			return "", false
		}
		return strings.TrimSpace(rest[:end]), true
	}
	return "", false
}

// CopyNPY copies the .npy file read from src to dst, checking it as it
// goes, and returns its reference: the SHA-256 of the bytes, the dtype and
// shape of its header and its size. Bytes that are not a .npy file of a
// numeric dtype, or that hold more or fewer elements than the header
// announces, are ErrInvalid. ResultStore implementations store arrays
// with it.
func CopyNPY(dst io.Writer, src io.Reader) (ArrayRef, error) {
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(dst, h)}
	br := bufio.NewReaderSize(io.TeeReader(src, cw), 64<<10)
	hd, err := readNPYHeader(br)
	if cw.err != nil {
		return ArrayRef{}, cw.err
	}
	if err != nil {
		return ArrayRef{}, err
	}
	if _, err := io.Copy(io.Discard, br); err != nil {
		var werr *writeError
		if errors.As(err, &werr) {
			return ArrayRef{}, werr.err
		}
		return ArrayRef{}, fmt.Errorf("read the .npy data: %w", err)
	}
	if cw.err != nil {
		return ArrayRef{}, cw.err
	}
	want := hd.dataAt + hd.elements()*int64(hd.itemSize)
	if cw.n != want {
		return ArrayRef{}, npyError("its header announces %d element(s) of shape %s (%d bytes in all) but it is %d bytes long", hd.elements(), FormatShape(hd.shape), want, cw.n)
	}
	return ArrayRef{SHA256: hex.EncodeToString(h.Sum(nil)), DType: hd.dtypeName(), Shape: hd.shape, Bytes: cw.n}, nil
}

// countWriter counts what it passes on and keeps the first error.
type countWriter struct {
	w   io.Writer
	n   int64
	err error
}

// writeError marks an error of the destination, not of the source.
type writeError struct{ err error }

func (e *writeError) Error() string { return e.err.Error() }

func (c *countWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, &writeError{c.err}
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	if err != nil {
		c.err = err
		return n, &writeError{err}
	}
	return n, nil
}

// npyValues reads a .npy file's elements as nested lists (float64, int64,
// uint64 or bool; NaN and infinities as nil, which JSON can carry), in C
// order whatever the file's order.
func npyValues(r io.Reader) (any, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	h, err := readNPYHeader(br)
	if err != nil {
		return nil, err
	}
	if h.kind == 'c' || h.kind == 'f' && h.itemSize == 2 || h.kind == 'f' && h.itemSize > 8 {
		return nil, fmt.Errorf("%w: a %s array cannot be written as JSON; write it as .npy", ErrInvalid, h.dtypeName())
	}
	n := h.elements()
	if n > 1<<28 {
		return nil, fmt.Errorf("%w: %d elements are too many for a JSON export; write the array as .npy", ErrInvalid, n)
	}
	var order binary.ByteOrder = binary.LittleEndian
	if h.order == '>' {
		order = binary.BigEndian
	}
	flat := make([]any, n)
	buf := make([]byte, h.itemSize)
	for i := range flat {
		if _, err := io.ReadFull(br, buf); err != nil {
			return nil, fmt.Errorf("%w: the .npy data ends after %d of %d elements", ErrResultCorrupt, i, n)
		}
		flat[i] = npyElement(h, order, buf)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		return nil, fmt.Errorf("%w: the .npy data is longer than its header announces", ErrResultCorrupt)
	}
	if h.fortran && len(h.shape) > 1 {
		flat = fortranToC(flat, h.shape)
	}
	if len(h.shape) == 0 {
		return flat[0], nil
	}
	return nest(flat, h.shape), nil
}

func npyElement(h npyHeader, order binary.ByteOrder, b []byte) any {
	var u uint64
	switch h.itemSize {
	case 1:
		u = uint64(b[0])
	case 2:
		u = uint64(order.Uint16(b))
	case 4:
		u = uint64(order.Uint32(b))
	case 8:
		u = order.Uint64(b)
	}
	var f float64
	switch h.kind {
	case 'b':
		return u != 0
	case 'u':
		return u
	case 'i':
		shift := 64 - 8*uint(h.itemSize)
		return int64(u<<shift) >> shift
	case 'f':
		if h.itemSize == 4 {
			f = float64(math.Float32frombits(uint32(u)))
		} else {
			f = math.Float64frombits(u)
		}
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil
	}
	return f
}

// fortranToC reorders elements stored column-major into row-major order.
func fortranToC(flat []any, shape []int) []any {
	out := make([]any, len(flat))
	idx := make([]int, len(shape))
	for c := range out {
		// idx is the C-order index of element c; its Fortran offset:
		off, stride := 0, 1
		for d := range shape {
			off += idx[d] * stride
			stride *= shape[d]
		}
		out[c] = flat[off]
		for d := len(shape) - 1; d >= 0; d-- {
			idx[d]++
			if idx[d] < shape[d] {
				break
			}
			idx[d] = 0
		}
	}
	return out
}

// nest shapes row-major elements into nested lists.
func nest(flat []any, shape []int) any {
	if len(shape) == 1 {
		return flat
	}
	out := make([]any, shape[0])
	step := len(flat)
	if shape[0] > 0 {
		step = len(flat) / shape[0]
	}
	for i := range out {
		out[i] = nest(flat[i*step:(i+1)*step], shape[1:])
	}
	return out
}
