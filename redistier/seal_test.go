package redistier

import (
	"bytes"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/sesscache/sesscache/engine"
)

// everything returns every key under prefix on every master of adm, with
// its value as Redis returns it (a hash's fields and values, a string, a
// sorted set's members) and its DUMP.
func everything(t *testing.T, adm rueidis.Client, prefix string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, n := range adm.Nodes() {
		role, err := n.Do(ctx, n.B().Role().Build()).ToArray()
		if err != nil || len(role) == 0 {
			continue
		}
		if r, _ := role[0].ToString(); r != "master" {
			continue
		}
		var cursor uint64
		for {
			e, err := n.Do(ctx, n.B().Scan().Cursor(cursor).Match(prefix+"*").Count(1000).Build()).AsScanEntry()
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range e.Elements {
				var v []byte
				typ, _ := n.Do(ctx, n.B().Type().Key(k).Build()).ToString()
				switch typ {
				case "hash":
					m, _ := n.Do(ctx, n.B().Hgetall().Key(k).Build()).AsStrMap()
					for f, x := range m {
						v = append(append(v, f...), x...)
					}
				case "string":
					s, _ := n.Do(ctx, n.B().Get().Key(k).Build()).ToString()
					v = []byte(s)
				case "zset":
					m, _ := n.Do(ctx, n.B().Zrange().Key(k).Min("0").Max("-1").Build()).AsStrSlice()
					v = []byte(strings.Join(m, ","))
				}
				d, _ := n.Do(ctx, n.B().Dump().Key(k).Build()).ToString()
				out[k] = append(v, d...)
			}
			if cursor = e.Cursor; cursor == 0 {
				break
			}
		}
	}
	return out
}

// TestNothingReadableInRedis: with encryption keys, nothing a session
// holds (its token, owner, label, data) appears in any key or value.
func TestNothingReadableInRedis(t *testing.T) {
	eachTopology(t, func(t *testing.T, tp topology) {
		key := make([]byte, 32)
		rand.Read(key)
		opts := Options{OwnerKey: []byte("owner key of this deployment"), Local: engine.Options{
			EncryptionKeys: []engine.EncryptionKey{{ID: 7, Key: key}}, RotateGrace: time.Minute,
			SigningKeys: [][]byte{bytes.Repeat([]byte("s"), 32)}}}
		a, b := pair(t, tp, opts)
		secrets := []string{"mallory@example.com", "Firefox on a secret laptop", "the-secret-cart-contents"}
		var ids []string
		for range 5 {
			s := mustCreate(t, a, engine.CreateOptions{UserID: secrets[0], Label: secrets[1], Data: []byte(secrets[2])})
			ids = append(ids, s.ID())
		}
		anon := mustCreate(t, b, engine.CreateOptions{Data: []byte(secrets[2])})
		r, err := b.Rotate(ctx, ids[0]) // leaves a grace entry
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, anon.ID(), r.ID())
		if _, err := b.Update(ctx, ids[1], 0, func(engine.Session) ([]byte, error) { return []byte(secrets[2] + "2"), nil }); err != nil {
			t.Fatal(err)
		}
		if got := mustFind(t, b, ids[2]); string(got.Data()) != secrets[2] || got.UserID() != secrets[0] {
			t.Fatal("B cannot read what A sealed")
		}
		all := everything(t, admin(t, tp), a.prefix)
		want := 10 // records, a grace entry, an index, access keys
		if tp.layout == LayoutString {
			want = 8 // no access key until a touch
		}
		if len(all) < want {
			t.Fatalf("found only %d keys", len(all))
		}
		for k, v := range all {
			for _, x := range append(secrets, ids...) {
				if strings.Contains(k, x) || bytes.Contains(v, []byte(x)) {
					t.Fatalf("key %q or its value holds a secret of %d bytes", k, len(x))
				}
			}
			for _, id := range ids {
				// Nor any half of a token.
				if bytes.Contains(v, []byte(id[:len(id)/2])) || bytes.Contains(v, []byte(id[len(id)/2:])) {
					t.Fatal("part of a token in Redis")
				}
			}
		}

		// A record edited in Redis, or moved under another key, does not open.
		adm := admin(t, tp)
		h2 := mustFind(t, b, ids[2]).Handle()
		rk2 := a.keyOf(kindRecord, h2)
		h3 := mustFind(t, b, ids[3]).Handle()
		rk3 := a.keyOf(kindRecord, h3)
		switch tp.layout {
		case LayoutHash:
			blob, err := adm.Do(ctx, adm.B().Hget().Key(rk2).Field("b").Build()).ToString()
			if err != nil {
				t.Fatal(err)
			}
			adm.Do(ctx, adm.B().Hset().Key(rk3).FieldValue().FieldValue("b", blob).Build())
		case LayoutString:
			v, err := adm.Do(ctx, adm.B().Get().Key(rk2).Build()).ToString()
			if err != nil {
				t.Fatal(err)
			}
			adm.Do(ctx, adm.B().Set().Key(rk3).Value(v).Keepttl().Build())
		}
		c := open(t, tp, func() Options { o := opts; o.KeyPrefix = a.prefix; return o }())
		if _, err := c.Find(ctx, ids[3], nil); !errors.Is(err, errRecord) || !strings.HasPrefix(err.Error(), "redistier:") {
			t.Fatalf("a blob moved to another key: %v", err)
		}
		if tp.layout == LayoutString {
			// A header edited in place (a later absolute expiry) does not
			// open either: the seal covers it.
			rk1 := a.keyOf(kindRecord, mustFind(t, b, ids[1]).Handle())
			v, err := adm.Do(ctx, adm.B().Get().Key(rk1).Build()).ToString()
			if err != nil || v[18] != '0' {
				t.Fatalf("record of %d bytes, %v", len(v), err)
			}
			v = v[:18] + "1" + v[19:]
			adm.Do(ctx, adm.B().Set().Key(rk1).Value(v).Keepttl().Build())
			if _, err := c.Find(ctx, ids[1], nil); !errors.Is(err, errRecord) {
				t.Fatalf("an edited header: %v", err)
			}
		}
		// Without the key, nothing opens.
		d := open(t, tp, Options{KeyPrefix: a.prefix, OwnerKey: opts.OwnerKey, Local: engine.Options{SigningKeys: opts.Local.SigningKeys}})
		if _, err := d.Find(ctx, ids[4], nil); !errors.Is(err, errRecord) {
			t.Fatalf("a sealed record read without the key: %v", err)
		}
	})
}
