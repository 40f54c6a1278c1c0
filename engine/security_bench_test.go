package engine

import (
	"crypto/sha256"
	"sync/atomic"
	"testing"

	"github.com/sesscache/sesscache/token"
)

// BenchmarkGetSecurity prices the security options on the hot path, over the
// same sessions and keys as BenchmarkGet (zipf):
//
//   - plain: unsigned IDs, the engine as configured by default;
//   - signed: Options.SigningKeys with one key: an HMAC-SHA256 per Get;
//   - signed-2keys: during a key rotation, both keys are tried;
//   - digest-per-get: what keying the in-memory map by a digest of the ID
//     would add to every Get (one SHA-256 of the raw ID); the engine instead
//     computes the digest only when it writes the log and the first time a
//     recovered session is presented.
func BenchmarkGetSecurity(b *testing.B) {
	n := benchN() / 4
	plain, err := Open(Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer plain.Close()
	k1, k2 := make([]byte, 32), make([]byte, 32)
	k2[0] = 1
	signed, err := Open(Options{SigningKeys: [][]byte{k1}})
	if err != nil {
		b.Fatal(err)
	}
	defer signed.Close()
	rotating, err := Open(Options{SigningKeys: [][]byte{k2, k1}})
	if err != nil {
		b.Fatal(err)
	}
	defer rotating.Close()
	data := make([]byte, benchData)
	plainIDs := make([]string, n)
	signedIDs := make([]string, n)
	for i := range n {
		s, err := plain.Create(bg, CreateOptions{Data: data})
		if err != nil {
			b.Fatal(err)
		}
		plainIDs[i] = s.ID()
		t, err := signed.Create(bg, CreateOptions{Data: data})
		if err != nil {
			b.Fatal(err)
		}
		signedIDs[i] = t.ID()
		// The rotating engine holds the same IDs, signed by the old key,
		// so both keys are computed on every Get.
		if err := copySession(signed, rotating, t.ID()); err != nil {
			b.Fatal(err)
		}
	}
	seq := zipfIndexes(n)
	for _, c := range []struct {
		name string
		e    *Engine
		ids  []string
		pre  func(id string)
	}{
		{"plain", plain, plainIDs, nil},
		{"signed", signed, signedIDs, nil},
		{"signed-2keys", rotating, signedIDs, nil},
		{"digest-per-get", plain, plainIDs, func(id string) {
			raw, _ := token.Parse(id)
			d := sha256.Sum256(raw[:])
			digestSink.Add(uint64(d[0]))
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			runKeys(b, seq, func(i uint32) {
				id := c.ids[i]
				if c.pre != nil {
					c.pre(id)
				}
				if _, err := c.e.Get(id); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

// digestSink keeps the digests from being optimised away; the atomic add is
// cheaper than the SHA-256 it keeps.
var digestSink atomic.Uint64

// copySession creates in dst a session under the same raw ID as id in src,
// by inserting it directly: the public API always draws a fresh ID.
func copySession(src, dst *Engine, id string) error {
	s, err := src.Get(id)
	if err != nil {
		return err
	}
	k, h, err := src.parse(id)
	if err != nil {
		return err
	}
	// A record belongs to one shard (it keeps its heap position): copy it.
	r := s.rec.With(&k, s.rec.Meta(), s.rec.LastAccess(), s.rec.Data())
	sh, _ := dst.shardOf(h)
	sh.Lock()
	sh.Insert(h, r)
	sh.Unlock()
	dst.live.Add(1)
	return nil
}
