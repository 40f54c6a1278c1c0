package wal

import (
	"bytes"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// Codec benchmarks: our hand-rolled codec against vmihailenco/msgpack driven
// by hand (Encoder/Decoder calls per field) and by reflection (Marshal and
// Unmarshal of an equivalent struct), for a Put carrying 200 bytes of data.
//
//	go test -run '^$' -bench 'Codec' -benchtime 200ms -count 1 ./wal

// putStruct mirrors a Put record for msgpack's reflection codec.
type putStruct struct {
	//lint:ignore U1000 read by msgpack through reflection
	_msgpack    struct{} `msgpack:",as_array"`
	Op          uint8
	Digest      []byte
	Hint        uint16
	Version     uint64
	Created     int64
	LastAccess  int64
	Idle        int64
	Absolute    int64
	UserID      string
	SealKeyID   uint32
	Data        []byte
	Fingerprint uint64
	LSN         uint64
}

func benchPut() (Record, putStruct) {
	r := samplePut()
	s := putStruct{
		Op: uint8(r.Op), Digest: r.Key.Digest[:], Hint: r.Key.Hint, Version: r.Version,
		Created: r.Created, LastAccess: r.LastAccess, Idle: r.Idle, Absolute: r.Absolute,
		UserID: string(r.UserID), SealKeyID: r.SealKeyID, Data: r.Data, Fingerprint: r.Fingerprint,
		LSN: r.LSN,
	}
	return r, s
}

func encodeByHand(enc *msgpack.Encoder, s *putStruct) error {
	enc.EncodeArrayLen(13)
	enc.EncodeUint(uint64(s.Op))
	enc.EncodeBytes(s.Digest)
	enc.EncodeUint(uint64(s.Hint))
	enc.EncodeUint(s.Version)
	enc.EncodeInt(s.Created)
	enc.EncodeInt(s.LastAccess)
	enc.EncodeInt(s.Idle)
	enc.EncodeInt(s.Absolute)
	enc.EncodeString(s.UserID)
	enc.EncodeUint(uint64(s.SealKeyID))
	enc.EncodeBytes(s.Data)
	enc.EncodeUint(s.Fingerprint)
	return enc.EncodeUint(s.LSN)
}

func BenchmarkCodecEncodePut(b *testing.B) {
	r, s := benchPut()
	b.Run("sesscache/Pending.Encode", func(b *testing.B) {
		b.ReportAllocs()
		var p Pending
		for b.Loop() {
			if err := p.Encode(&r); err != nil {
				b.Fatal(err)
			}
		}
		b.SetBytes(int64(p.Len()))
	})
	b.Run("sesscache/AppendRecord", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf = AppendRecord(buf[:0], &r)
		}
		b.SetBytes(int64(len(buf)))
	})
	b.Run("msgpack/Encoder-by-hand", func(b *testing.B) {
		b.ReportAllocs()
		var buf bytes.Buffer
		enc := msgpack.NewEncoder(&buf)
		for b.Loop() {
			buf.Reset()
			if err := encodeByHand(enc, &s); err != nil {
				b.Fatal(err)
			}
		}
		b.SetBytes(int64(buf.Len()))
	})
	b.Run("msgpack/Marshal-reflection", func(b *testing.B) {
		b.ReportAllocs()
		var n int
		for b.Loop() {
			out, err := msgpack.Marshal(&s)
			if err != nil {
				b.Fatal(err)
			}
			n = len(out)
		}
		b.SetBytes(int64(n))
	})
}

func BenchmarkCodecDecodePut(b *testing.B) {
	r, s := benchPut()
	payload := AppendRecord(nil, &r)
	b.Run("sesscache/DecodeRecord", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(payload)))
		var got Record
		for b.Loop() {
			if err := DecodeRecord(payload, &got); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("msgpack/Decoder-by-hand", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(payload)))
		rd := bytes.NewReader(payload)
		dec := msgpack.NewDecoder(rd)
		var got putStruct
		for b.Loop() {
			rd.Reset(payload)
			dec.Reset(rd)
			if err := decodeByHand(dec, &got); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("msgpack/Unmarshal-reflection", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(payload)))
		marshalled, err := msgpack.Marshal(&s)
		if err != nil {
			b.Fatal(err)
		}
		var got putStruct
		for b.Loop() {
			if err := msgpack.Unmarshal(marshalled, &got); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func decodeByHand(dec *msgpack.Decoder, s *putStruct) (err error) {
	if _, err = dec.DecodeArrayLen(); err != nil {
		return err
	}
	s.Op, _ = dec.DecodeUint8()
	s.Digest, _ = dec.DecodeBytes()
	s.Hint, _ = dec.DecodeUint16()
	s.Version, _ = dec.DecodeUint64()
	s.Created, _ = dec.DecodeInt64()
	s.LastAccess, _ = dec.DecodeInt64()
	s.Idle, _ = dec.DecodeInt64()
	s.Absolute, _ = dec.DecodeInt64()
	s.UserID, _ = dec.DecodeString()
	s.SealKeyID, _ = dec.DecodeUint32()
	s.Data, _ = dec.DecodeBytes()
	s.Fingerprint, _ = dec.DecodeUint64()
	s.LSN, err = dec.DecodeUint64()
	return err
}

func BenchmarkCodecFrame(b *testing.B) {
	r, _ := benchPut()
	frame := AppendFrame(nil, AppendRecord(nil, &r))
	b.Run("ReadFrame", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(frame)))
		for b.Loop() {
			if _, _, err := ReadFrame(frame); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Pending.appendTo", func(b *testing.B) {
		b.ReportAllocs()
		var p Pending
		if err := p.Encode(&r); err != nil {
			b.Fatal(err)
		}
		buf := make([]byte, 0, 4096)
		b.SetBytes(int64(len(frame)))
		for b.Loop() {
			buf = p.appendTo(buf[:0], 1<<40)
		}
	})
}
