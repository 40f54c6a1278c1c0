package httpsession

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"sync"
	"unsafe"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// Session data is a msgpack map from str keys to encoded values (see the
// package comment). This file reads and writes the outer map by hand, in
// place: a read finds one value without taking the session apart, and a
// commit merges a request's changes into the stored bytes without decoding
// any value. msgpack's decoder only skips over values and decodes the one a
// handler asks for.

// change is one key's pending edit in a request: a new encoded value, or a
// removal.
type change struct {
	raw     []byte
	removed bool
}

// reader walks encoded session data. bytes.Reader is a ByteScanner, so the
// decoder reads it directly, with no read-ahead: between decoder calls the
// reader's position is exactly where the last value ended, and the walk can
// read raw bytes itself. Pooled, because a decoder and a reader would
// otherwise be two allocations per read.
type reader struct {
	r bytes.Reader
	d *msgpack.Decoder
	b []byte
}

var readers = sync.Pool{New: func() any { return &reader{d: msgpack.NewDecoder(nil)} }}

func newReader(b []byte) *reader {
	rd := readers.Get().(*reader)
	rd.b = b
	rd.r.Reset(b)
	rd.d.Reset(&rd.r)
	return rd
}

func (rd *reader) free() {
	rd.b = nil
	rd.r.Reset(nil)
	readers.Put(rd)
}

// pos is the offset of the next byte to read.
func (rd *reader) pos() int { return len(rd.b) - rd.r.Len() }

// key reads a str, a map key, as a slice of the data.
func (rd *reader) key() ([]byte, error) {
	start, end, err := keyAt(rd.b, rd.pos())
	if err != nil {
		return nil, err
	}
	_, _ = rd.r.Seek(int64(end-rd.pos()), io.SeekCurrent)
	return rd.b[start:end:end], nil
}

// walk calls fn for each entry of the session data, in stored order, until
// fn returns false. Empty data is an empty session. It reads the data in
// place, without a decoder: a request's reads each walk the session. Data
// that is not a plain map is refused, a map inside an ext header included
// (msgpack's decoder would unwrap one; nothing here writes one).
func walk(data []byte, fn func(key, raw []byte) bool) error {
	if len(data) == 0 {
		return nil
	}
	n, i, err := mapHeader(data)
	if err != nil {
		return err
	}
	for range n {
		ks, ke, err := keyAt(data, i)
		if err != nil {
			return err
		}
		end, err := skip(data, ke, 1)
		if err != nil {
			return fmt.Errorf("%w: %v", errBadData, err)
		}
		if !fn(data[ks:ke:ke], data[ke:end:end]) {
			return nil
		}
		i = end
	}
	if i != len(data) {
		return fmt.Errorf("%w: %d trailing bytes", errBadData, len(data)-i)
	}
	return nil
}

// mapHeader reads the header of the map session data must be (a nil reads
// as an empty map): its entry count, and the offset of its first key.
func mapHeader(data []byte) (n, i int, err error) {
	c := data[0]
	switch {
	case c == msgpcode.Nil:
		return 0, 1, nil
	case msgpcode.IsFixedMap(c):
		return int(c & msgpcode.FixedMapMask), 1, nil
	case c == msgpcode.Map16 && len(data) >= 3:
		return int(binary.BigEndian.Uint16(data[1:])), 3, nil
	case c == msgpcode.Map32 && len(data) >= 5:
		return int(binary.BigEndian.Uint32(data[1:])), 5, nil
	case c == msgpcode.Map16 || c == msgpcode.Map32:
		return 0, 0, fmt.Errorf("%w: truncated", errBadData)
	}
	return 0, 0, fmt.Errorf("%w: not a map (code 0x%02x)", errBadData, c)
}

// keyAt returns where the str key at data[i] has its bytes.
func keyAt(data []byte, i int) (start, end int, err error) {
	if i < len(data) && !isStr(data[i]) {
		return 0, 0, fmt.Errorf("%w: key of type 0x%02x", errBadData, data[i])
	}
	start, end, ok := strSpan(data, i)
	if !ok {
		return 0, 0, fmt.Errorf("%w: truncated", errBadData)
	}
	return start, end, nil
}

func isStr(c byte) bool {
	return msgpcode.IsFixedString(c) || (c >= msgpcode.Str8 && c <= msgpcode.Str32)
}

// strSpan returns where the bytes of the str at data[i] lie; ok is false
// if data[i] does not begin a whole str.
func strSpan(data []byte, i int) (start, end int, ok bool) {
	if i >= len(data) || !isStr(data[i]) {
		return 0, 0, false
	}
	c := data[i]
	var n int
	if msgpcode.IsFixedString(c) {
		n, i = int(c&msgpcode.FixedStrMask), i+1
	} else {
		w := 1 << (c - msgpcode.Str8)
		if i+1+w > len(data) {
			return 0, 0, false
		}
		for _, b := range data[i+1 : i+1+w] {
			n = n<<8 | int(b)
		}
		i += 1 + w
	}
	if n < 0 || n > len(data)-i { // n < 0: a str32 length past a 32-bit int
		return 0, 0, false
	}
	return i, i + n, true
}

// lookupValue returns key's encoded value in the session data.
func lookupValue(data []byte, key string) (raw []byte, found bool, err error) {
	err = walk(data, func(k, v []byte) bool {
		if string(k) == key {
			raw, found = v, true
		}
		return !found
	})
	return raw, found, err
}

// entry is one key and encoded value on their way into new session data.
type entry struct{ key, raw []byte }

// merge returns the session data that results from applying delta to data:
// the keys of data that delta does not touch, then delta's, sorted so that
// equal sessions are equal bytes. Neither input is modified.
func merge(data []byte, delta map[string]change) ([]byte, error) {
	// Sessions hold a few keys: their entries fit on the stack.
	var buf [16]entry
	entries := buf[:0]
	err := walk(data, func(k, raw []byte) bool {
		if _, ok := delta[string(k)]; !ok {
			entries = append(entries, entry{k, raw})
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	for k, c := range delta {
		if !c.removed {
			entries = append(entries, entry{bytesOf(k), c.raw})
		}
	}
	slices.SortFunc(entries, func(a, b entry) int { return bytes.Compare(a.key, b.key) })

	size := 5
	for _, e := range entries {
		size += 5 + len(e.key) + len(e.raw)
	}
	out := appendMapHeader(make([]byte, 0, size), len(entries))
	for _, e := range entries {
		out = appendStrHeader(out, len(e.key))
		out = append(out, e.key...)
		out = append(out, e.raw...)
	}
	return out, nil
}

// bytesOf returns s's bytes without copying them. They must not be
// modified: merge only compares them and copies them out.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// appendMapHeader appends the header of a msgpack map of n entries, in the
// shortest form, as the msgpack spec requires.
func appendMapHeader(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, 0x80|byte(n))
	case n < 1<<16:
		return binary.BigEndian.AppendUint16(append(b, 0xde), uint16(n))
	default:
		return binary.BigEndian.AppendUint32(append(b, 0xdf), uint32(n))
	}
}

// appendStrHeader appends the header of a msgpack str of n bytes.
func appendStrHeader(b []byte, n int) []byte {
	switch {
	case n < 32:
		return append(b, 0xa0|byte(n))
	case n < 1<<8:
		return append(b, 0xd9, byte(n))
	case n < 1<<16:
		return binary.BigEndian.AppendUint16(append(b, 0xda), uint16(n))
	default:
		return binary.BigEndian.AppendUint32(append(b, 0xdb), uint32(n))
	}
}

// writer is a pooled msgpack encoder with its own growable buffer: encoding
// a value then costs one allocation, the copy handed out.
type writer struct {
	e *msgpack.Encoder
	b []byte
}

func (w *writer) Write(p []byte) (int, error) { w.b = append(w.b, p...); return len(p), nil }
func (w *writer) WriteByte(c byte) error      { w.b = append(w.b, c); return nil }

var writers = sync.Pool{New: func() any {
	w := &writer{e: msgpack.NewEncoder(nil)}
	w.e.Reset(w)
	return w
}}

// encodeValue msgpack-encodes one value into a slice of its own.
func encodeValue(v any) ([]byte, error) {
	w := writers.Get().(*writer)
	w.b = w.b[:0]
	w.e.Reset(w)
	err := w.e.Encode(v)
	out := bytes.Clone(w.b)
	if cap(w.b) <= 64<<10 { // do not pin a one-off huge buffer in the pool
		writers.Put(w)
	}
	return out, err
}
