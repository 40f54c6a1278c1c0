package httpsession

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
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

// take returns the next n bytes of the data and moves past them.
func (rd *reader) take(n int) ([]byte, error) {
	if n > rd.r.Len() {
		return nil, fmt.Errorf("%w: truncated", errBadData)
	}
	p := rd.pos()
	_, _ = rd.r.Seek(int64(n), io.SeekCurrent)
	return rd.b[p : p+n : p+n], nil
}

// mapLen reads the header of the map session data must be.
func (rd *reader) mapLen() (int, error) {
	n, err := rd.d.DecodeMapLen()
	if err != nil {
		return 0, fmt.Errorf("%w: %v", errBadData, err)
	}
	return max(n, 0), nil // msgpack nil reads as -1: an empty session
}

// entry reads one key and its value, returning both as slices of the data.
func (rd *reader) entry() (key, raw []byte, err error) {
	if key, err = rd.key(); err != nil {
		return nil, nil, err
	}
	start := rd.pos()
	if err := rd.d.Skip(); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", errBadData, err)
	}
	end := rd.pos()
	return key, rd.b[start:end:end], nil
}

// key reads a str, a map key, as a slice of the data.
func (rd *reader) key() ([]byte, error) {
	c, err := rd.r.ReadByte()
	if err != nil {
		return nil, fmt.Errorf("%w: truncated", errBadData)
	}
	var n int
	switch {
	case c >= 0xa0 && c <= 0xbf: // fixstr
		n = int(c & 0x1f)
	case c >= 0xd9 && c <= 0xdb: // str 8, 16, 32
		size, err := rd.take(1 << (c - 0xd9))
		if err != nil {
			return nil, err
		}
		for _, x := range size {
			n = n<<8 | int(x)
		}
	default:
		return nil, fmt.Errorf("%w: key of type 0x%02x", errBadData, c)
	}
	return rd.take(n)
}

// walk calls fn for each entry of the session data, in stored order, until
// fn returns false. Empty data is an empty session.
func walk(data []byte, fn func(key, raw []byte) bool) error {
	if len(data) == 0 {
		return nil
	}
	rd := newReader(data)
	defer rd.free()
	n, err := rd.mapLen()
	if err != nil {
		return err
	}
	for range n {
		k, raw, err := rd.entry()
		if err != nil {
			return err
		}
		if !fn(k, raw) {
			return nil
		}
	}
	if rd.r.Len() != 0 {
		return fmt.Errorf("%w: %d trailing bytes", errBadData, rd.r.Len())
	}
	return nil
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
	entries := make([]entry, 0, len(delta)+8)
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
			entries = append(entries, entry{[]byte(k), c.raw})
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
