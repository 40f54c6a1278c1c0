package httpsession

import (
	"bytes"
	"fmt"
	"maps"
	"slices"

	"github.com/vmihailenco/msgpack/v5"
)

// values is session data taken apart: each key's value still msgpack-encoded.
// The slices may point into the engine's immutable session data, so they
// must never be modified; nothing here does.
type values map[string][]byte

// change is one key's pending edit in a request: a new encoded value, or a
// removal.
type change struct {
	raw     []byte
	removed bool
}

// decodeValues splits stored session data into its keys without decoding
// the values, which are decoded only when read. Empty data is an empty
// session.
func decodeValues(b []byte) (values, error) {
	if len(b) == 0 {
		return nil, nil
	}
	r := bytes.NewReader(b)
	d := msgpack.GetDecoder()
	defer msgpack.PutDecoder(d)
	// bytes.Reader is a ByteScanner, so the decoder reads it directly with
	// no read-ahead buffer, and r.Len() tells exactly where each value
	// starts and ends.
	d.Reset(r)
	n, err := d.DecodeMapLen()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errBadData, err)
	}
	// Every entry takes at least two bytes, so a corrupt length cannot
	// make this allocate more than the data warrants.
	v := make(values, min(max(n, 0), len(b)/2))
	for range n {
		k, err := d.DecodeString()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errBadData, err)
		}
		start := len(b) - r.Len()
		if err := d.Skip(); err != nil {
			return nil, fmt.Errorf("%w: %v", errBadData, err)
		}
		end := len(b) - r.Len()
		v[k] = b[start:end:end]
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", errBadData, r.Len())
	}
	return v, nil
}

// encodeValues is the inverse of decodeValues. Keys are sorted so the same
// values always give the same bytes.
func encodeValues(v values) ([]byte, error) {
	size := 5
	for k, raw := range v {
		size += len(k) + 5 + len(raw)
	}
	buf := bytes.NewBuffer(make([]byte, 0, size))
	e := msgpack.GetEncoder()
	defer msgpack.PutEncoder(e)
	// bytes.Buffer has WriteByte, so the encoder writes straight into it
	// and the raw values can be appended between its calls.
	e.Reset(buf)
	if err := e.EncodeMapLen(len(v)); err != nil {
		return nil, err
	}
	for _, k := range slices.Sorted(maps.Keys(v)) {
		if err := e.EncodeString(k); err != nil {
			return nil, err
		}
		buf.Write(v[k])
	}
	return buf.Bytes(), nil
}

// with returns v with the changes applied, as a new map: v itself may be
// the request's view of the stored session and must stay as it was if the
// commit fails.
func (v values) with(delta map[string]change) values {
	out := make(values, len(v)+len(delta))
	maps.Copy(out, v)
	for k, c := range delta {
		if c.removed {
			delete(out, k)
		} else {
			out[k] = c.raw
		}
	}
	return out
}
