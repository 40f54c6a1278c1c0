package engine

import (
	"bytes"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sesscache/sesscache/token"
)

func signKey(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func TestSignedTokens(t *testing.T) {
	e, _ := open(t, Options{SigningKeys: [][]byte{signKey(1)}})
	s := mustCreate(t, e, CreateOptions{Data: []byte("d")})
	require.Len(t, s.ID(), token.SignedLen)
	got, err := e.Get(s.ID())
	require.NoError(t, err)
	assert.Equal(t, s.ID(), got.ID())

	raw := s.ID()[:token.Len]
	tampered := []byte(s.ID())
	tampered[len(tampered)-2] ^= 1
	for name, id := range map[string]string{
		"unsigned ID":        raw,
		"tampered tag":       string(tampered),
		"unknown signed":     mustSignerFor(t, signKey(1)).Sign(token.New()),
		"signed by stranger": mustSignerFor(t, signKey(7)).Sign(token.ID(mustParse(t, raw))),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := e.Get(id)
			if name == "unknown signed" {
				assert.ErrorIs(t, err, ErrNotFound, "a valid signature on an unknown ID reaches the lookup")
				return
			}
			assert.ErrorIs(t, err, ErrMalformedToken)
		})
	}

	r, err := e.Rotate(bg, s.ID())
	require.NoError(t, err)
	assert.Len(t, r.ID(), token.SignedLen)
	_, err = e.Get(r.ID())
	assert.NoError(t, err)
}

func mustSignerFor(t *testing.T, keys ...[]byte) *token.Signer {
	s, err := token.NewSigner(keys...)
	require.NoError(t, err)
	return s
}

func mustParse(t *testing.T, s string) token.ID {
	id, err := token.Parse(s)
	require.NoError(t, err)
	return id
}

func TestSigningKeyRotationAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	clock := NewManualClock(epoch)
	old, next := signKey(1), signKey(2)
	cases := []struct {
		name    string
		keys    [][]byte
		oldOK   bool
		issueBy []byte
	}{
		{"old key only", [][]byte{old}, true, old},
		{"new key first, old still verifies", [][]byte{next, old}, true, next},
		{"old key dropped", [][]byte{next}, false, next},
	}
	var oldTok string
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := openDir(t, dir, clock, Options{SigningKeys: c.keys})
			if i == 0 {
				oldTok = mustCreate(t, e, CreateOptions{}).ID()
			}
			_, err := e.Get(oldTok)
			if c.oldOK {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, ErrMalformedToken)
			}
			fresh := mustCreate(t, e, CreateOptions{})
			_, err = mustSignerFor(t, c.issueBy).Verify(fresh.ID())
			assert.NoError(t, err, "new tokens carry the first key's tag")
			require.NoError(t, e.Close())
		})
	}
	_, err := Open(Options{SigningKeys: [][]byte{[]byte("short")}})
	assert.ErrorIs(t, err, ErrInvalid)
}

// TestRotateGracePeriod: within RotateGrace an old ID reads the session,
// read-only and anonymous, and never learns the new ID.
func TestRotateGracePeriod(t *testing.T) {
	e, clock := open(t, Options{RotateGrace: 5 * time.Second})
	s := mustCreate(t, e, CreateOptions{UserID: "u", Data: []byte("d")})
	r, err := e.Rotate(bg, s.ID())
	require.NoError(t, err)

	got, err := e.Get(s.ID())
	require.NoError(t, err, "in flight with the old ID during the grace period")
	assert.True(t, got.Rotated())
	assert.Equal(t, s.ID(), got.ID(), "the old ID never learns the new one")
	assert.NotContains(t, fmt.Sprintf("%+v", got), r.ID())
	assert.Empty(t, got.UserID(), "a grace view is anonymous")
	assert.True(t, got.AuthenticatedAt().IsZero())
	assert.True(t, got.Handle().IsZero())
	assert.Equal(t, []byte("d"), got.Data())
	fresh, err := e.Get(r.ID())
	require.NoError(t, err)
	assert.False(t, fresh.Rotated())
	assert.Equal(t, "u", fresh.UserID())

	_, err = e.Update(bg, s.ID(), 0, setData("x"))
	assert.ErrorIs(t, err, ErrRotated, "the old ID is read-only")
	_, err = e.Rotate(bg, s.ID())
	assert.ErrorIs(t, err, ErrRotated)
	assert.Equal(t, 1, e.Len(), "the grace entry is not a session")

	// Deleting through the old ID ends only the old ID's access.
	require.NoError(t, e.Delete(bg, s.ID()))
	_, err = e.Get(s.ID())
	assert.ErrorIs(t, err, ErrNotFound)
	_, err = e.Get(r.ID())
	require.NoError(t, err, "the session under its new ID is untouched")

	r2, err := e.Rotate(bg, r.ID())
	require.NoError(t, err)
	clock.Advance(5 * time.Second)
	_, err = e.Get(r.ID())
	assert.ErrorIs(t, err, ErrNotFound, "gone after the grace period")
	e.reapNow()
	assert.Equal(t, 1, e.shardTotal(), "the janitor reaped the grace entry")

	// Revoking the session ends the grace path too.
	r3, err := e.Rotate(bg, r2.ID())
	require.NoError(t, err)
	_, err = e.RevokeUser(bg, "u")
	require.NoError(t, err)
	_, err = e.Get(r2.ID())
	assert.ErrorIs(t, err, ErrNotFound)
	_, err = e.Get(r3.ID())
	assert.ErrorIs(t, err, ErrNotFound)
}

// TestPrivilegedRotationEndsOldIDAtOnce is the fixation finding: with a
// grace period, an anonymous ID an attacker planted kept working after the
// victim logged in, and handed out the logged-in session's new ID. A
// rotation that changes privilege ends the old ID at once.
func TestPrivilegedRotationEndsOldIDAtOnce(t *testing.T) {
	e, _ := open(t, Options{RotateGrace: 10 * time.Second})
	for name, o := range map[string]RotateOptions{
		"login":      {UserID: "victim"},
		"privileged": {Privileged: true},
		"relogin":    {UserID: "victim", Label: "again"},
	} {
		t.Run(name, func(t *testing.T) {
			planted := mustCreate(t, e, CreateOptions{Data: []byte("cart")})
			if name == "privileged" || name == "relogin" {
				var err error
				planted, err = e.RotateWith(bg, planted.ID(), RotateOptions{UserID: "victim"})
				require.NoError(t, err)
			}
			logged, err := e.RotateWith(bg, planted.ID(), o)
			require.NoError(t, err)
			_, err = e.Get(planted.ID())
			assert.ErrorIs(t, err, ErrNotFound, "the planted ID is dead at once")
			_, err = e.Update(bg, planted.ID(), 0, setData("x"))
			assert.ErrorIs(t, err, ErrNotFound)
			_, err = e.Get(logged.ID())
			require.NoError(t, err)
		})
	}
}

// shardTotal counts every entry in the shards, forwarding entries included.
func (e *Engine) shardTotal() int {
	n := 0
	for _, c := range e.Stats().ShardSizes {
		n += c
	}
	return n
}

func TestMaxSessionsPerUser(t *testing.T) {
	e, clock := open(t, Options{MaxSessionsPerUser: 3})
	var ids []string
	for range 5 {
		clock.Advance(time.Second)
		ids = append(ids, mustCreate(t, e, CreateOptions{UserID: "u"}).ID())
	}
	for i, id := range ids {
		_, err := e.Get(id)
		if i < 2 {
			assert.ErrorIs(t, err, ErrNotFound, "session %d is among the oldest", i)
		} else {
			assert.NoError(t, err, "session %d", i)
		}
	}
	other := mustCreate(t, e, CreateOptions{UserID: "v"})
	_, err := e.Get(other.ID())
	assert.NoError(t, err, "another user's sessions do not count")
}

func TestMaxSessionsPerUserConcurrent(t *testing.T) {
	e, _ := open(t, Options{MaxSessionsPerUser: 4})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 25 {
				mustCreate(t, e, CreateOptions{UserID: "u"})
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, 4, e.users.count("u"), "exactly the cap, never fewer")
	assert.Equal(t, 4, e.Len())
}

func encKey(id uint32, b byte) EncryptionKey {
	return EncryptionKey{ID: id, Key: bytes.Repeat([]byte{b}, 32)}
}

func TestEncryptionAtRest(t *testing.T) {
	dir := t.TempDir()
	clock := NewManualClock(epoch)
	secret := "credit-card-4111111111111111"
	e := openDir(t, dir, clock, Options{EncryptionKeys: []EncryptionKey{encKey(1, 0xA1)}})
	var ids []string
	for i := range 20 {
		s := mustCreate(t, e, CreateOptions{Data: []byte(fmt.Sprintf("%s-%d", secret, i))})
		ids = append(ids, s.ID())
	}
	_, err := e.Update(bg, ids[0], 0, setData(secret+"-updated"))
	require.NoError(t, err)
	_, err = e.Rotate(bg, ids[1])
	require.NoError(t, err)
	require.NoError(t, e.Close())
	assertNoFileContains(t, dir, secret)

	cases := []struct {
		name string
		keys []EncryptionKey
		ok   bool
	}{
		{"same key", []EncryptionKey{encKey(1, 0xA1)}, true},
		{"new key first, old still opens", []EncryptionKey{encKey(2, 0xB2), encKey(1, 0xA1)}, true},
		{"no keys", nil, false},
		{"old key dropped", []EncryptionKey{encKey(2, 0xB2)}, false},
		{"wrong key under the old ID", []EncryptionKey{encKey(1, 0xEE)}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, err := Open(Options{Dir: dir, Clock: clock, EncryptionKeys: c.keys, Logger: quiet})
			if !c.ok {
				require.ErrorIs(t, err, ErrEncryptionKey)
				assert.NotContains(t, err.Error(), secret)
				return
			}
			require.NoError(t, err)
			defer e.Close()
			got, err := e.Get(ids[0])
			require.NoError(t, err)
			assert.Equal(t, secret+"-updated", string(got.Data()))
			got, err = e.Get(ids[5])
			require.NoError(t, err)
			assert.Equal(t, secret+"-5", string(got.Data()))
		})
	}
	for name, keys := range map[string][]EncryptionKey{
		"zero ID":   {encKey(0, 1)},
		"short key": {{ID: 1, Key: []byte("short")}},
		"duplicate": {encKey(1, 1), encKey(1, 2)},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Open(Options{EncryptionKeys: keys})
			assert.ErrorIs(t, err, ErrInvalid)
		})
	}
}

// assertNoFileContains fails if any file under dir holds s.
func assertNoFileContains(t *testing.T, dir, s string) {
	t.Helper()
	require.NoError(t, filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		require.NoError(t, err)
		if d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		assert.False(t, bytes.Contains(b, []byte(s)), "%s holds %q in the clear", path, s)
		return nil
	}))
	assert.False(t, strings.Contains(dir, s))
}

func TestFingerprintBinding(t *testing.T) {
	e, clock := open(t, Options{IdleTimeout: 10 * time.Minute, RotateGrace: time.Minute})
	ua := []byte("Mozilla/5.0 (X11; Linux x86_64)")
	s := mustCreate(t, e, CreateOptions{Fingerprint: ua})
	unbound := mustCreate(t, e, CreateOptions{})

	_, err := e.GetBound(s.ID(), ua)
	require.NoError(t, err)
	_, err = e.GetBound(unbound.ID(), []byte("anything"))
	require.NoError(t, err, "an unbound session ignores the fingerprint")

	clock.Advance(9 * time.Minute)
	_, err = e.GetBound(s.ID(), []byte("curl/8.0"))
	assert.ErrorIs(t, err, ErrNotFound)
	assert.Equal(t, uint64(1), e.Stats().BindingMismatches)
	clock.Advance(2 * time.Minute)
	_, err = e.GetBound(s.ID(), ua)
	assert.ErrorIs(t, err, ErrExpired, "a refused lookup is not an access")

	b := mustCreate(t, e, CreateOptions{Fingerprint: ua})
	r, err := e.Rotate(bg, b.ID())
	require.NoError(t, err)
	_, err = e.GetBound(r.ID(), ua)
	assert.NoError(t, err, "rotation keeps the binding")
	_, err = e.GetBound(r.ID(), []byte("other"))
	assert.ErrorIs(t, err, ErrNotFound)
	_, err = e.GetBound(b.ID(), []byte("other"))
	assert.ErrorIs(t, err, ErrNotFound, "the grace path checks the binding too")
	got, err := e.GetBound(b.ID(), ua)
	require.NoError(t, err)
	assert.True(t, got.Rotated())
}

func TestRotateWithSetsOwner(t *testing.T) {
	dir := t.TempDir()
	clock := NewManualClock(epoch)
	e := openDir(t, dir, clock, Options{RotateGrace: time.Minute, MaxSessionsPerUser: 2})
	for range 2 {
		clock.Advance(time.Second)
		mustCreate(t, e, CreateOptions{UserID: "alice"})
	}
	anon := mustCreate(t, e, CreateOptions{Data: []byte("cart")})
	s, err := e.RotateWith(bg, anon.ID(), RotateOptions{UserID: "alice"})
	require.NoError(t, err)
	assert.Equal(t, "alice", s.UserID())
	assert.Equal(t, []byte("cart"), s.Data())
	assert.Equal(t, 2, e.users.count("alice"), "the cap applies to the new owner")

	_, err = e.Get(anon.ID())
	assert.ErrorIs(t, err, ErrNotFound, "a login ends the anonymous ID at once, grace or not")
	assert.False(t, s.AuthenticatedAt().IsZero(), "a login authenticates")

	_, err = e.RotateWith(bg, s.ID(), RotateOptions{UserID: strings.Repeat("u", 300)})
	assert.ErrorIs(t, err, ErrTooLarge)
	require.NoError(t, e.Close())

	e = openDir(t, dir, clock, Options{})
	got, err := e.Get(s.ID())
	require.NoError(t, err)
	assert.Equal(t, "alice", got.UserID(), "the owner change was logged")
	n, err := e.RevokeUser(bg, "alice")
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	assert.Equal(t, epoch.Add(2*time.Second), e.Now().UTC())
}

// Found by fuzz.FuzzEngine (seed fingerprint-reopen): the log's Put has
// carried the binding since format version 2, but the engine neither wrote
// it nor restored it, so a restart silently unbound every session.
func TestFingerprintBindingSurvivesRestart(t *testing.T) {
	for _, viaSnapshot := range []bool{false, true} {
		t.Run(map[bool]string{false: "log", true: "snapshot"}[viaSnapshot], func(t *testing.T) {
			dir := t.TempDir()
			clock := NewManualClock(epoch)
			ua := []byte("Mozilla/5.0 (X11; Linux x86_64)")
			e := openDir(t, dir, clock, Options{})
			bound := mustCreate(t, e, CreateOptions{Fingerprint: ua})
			unbound := mustCreate(t, e, CreateOptions{})
			if viaSnapshot {
				_, err := e.Snapshot(bg)
				require.NoError(t, err)
			}
			require.NoError(t, e.Close())

			e = openDir(t, dir, clock, Options{})
			_, err := e.GetBound(bound.ID(), []byte("curl/8.0"))
			assert.ErrorIs(t, err, ErrNotFound, "the binding survives the restart")
			_, err = e.GetBound(bound.ID(), ua)
			assert.NoError(t, err)
			_, err = e.GetBound(unbound.ID(), []byte("curl/8.0"))
			assert.NoError(t, err, "an unbound session stays unbound")

			r, err := e.Rotate(bg, bound.ID())
			require.NoError(t, err)
			require.NoError(t, e.Close())
			e = openDir(t, dir, clock, Options{})
			_, err = e.GetBound(r.ID(), []byte("curl/8.0"))
			assert.ErrorIs(t, err, ErrNotFound, "a recovered session rotated keeps its binding")
		})
	}
}

// Found by fuzz.FuzzEngine (seed revoke-and-cap): the cap counted sessions
// past their deadline that the janitor had not reaped yet, so creating a
// session could delete a live one although the user held no more live
// sessions than the cap allows; whether it did depended on the janitor.
func TestMaxSessionsPerUserIgnoresExpired(t *testing.T) {
	e, clock := open(t, Options{MaxSessionsPerUser: 2})
	live := mustCreate(t, e, CreateOptions{UserID: "u"})
	clock.Advance(time.Millisecond)
	mustCreate(t, e, CreateOptions{UserID: "u", IdleTimeout: time.Second})
	clock.Advance(2 * time.Second) // the second session expires, unreaped
	mustCreate(t, e, CreateOptions{UserID: "u"})
	_, err := e.Get(live.ID())
	assert.NoError(t, err, "two live sessions are within the cap")

	clock.Advance(time.Millisecond)
	mustCreate(t, e, CreateOptions{UserID: "u"})
	_, err = e.Get(live.ID())
	assert.ErrorIs(t, err, ErrNotFound, "a third live session evicts the oldest live one")
}

// A Session printed or logged in any form shows its handle, never its
// token.
func TestSessionPrintsNoToken(t *testing.T) {
	e, _ := open(t, Options{})
	s := mustCreate(t, e, CreateOptions{UserID: "u", Data: []byte("d")})
	var logged strings.Builder
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("got", "session", s)
	slog.New(slog.NewTextHandler(&logged, nil)).Info("got", "session", s, "ptr", &s)
	outs := []string{fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s %q %x %v", s, s, s, s, s, s, &s), logged.String()}
	for _, out := range outs {
		assert.NotContains(t, out, s.ID())
		assert.NotContains(t, out, fmt.Sprintf("%x", s.ID()))
	}
	assert.Contains(t, outs[0], s.Handle().String())
	assert.Contains(t, logged.String(), s.Handle().String())
	assert.Equal(t, "engine.Session{}", fmt.Sprint(Session{}))
}

// countGets is a Recorder that counts the Gets it is shown.
type countGets struct {
	NopRecorder
	found, missed atomic.Int64
}

func (c *countGets) ObserveGet(_ time.Duration, found bool) {
	if found {
		c.found.Add(1)
	} else {
		c.missed.Add(1)
	}
}

// With a Recorder, lookups are sampled about one in GetSampleEvery, through
// Get, GetBound and Find alike, and a sampled lookup is still one lookup:
// counted once in Stats, never shown twice.
func TestRecorderSamplesLookups(t *testing.T) {
	rec := &countGets{}
	e, _ := open(t, Options{Recorder: rec})
	s := mustCreate(t, e, CreateOptions{})
	const n = 100 * GetSampleEvery
	for i := range n {
		var err error
		switch i % 3 {
		case 0:
			_, err = e.Get(s.ID())
		case 1:
			_, err = e.GetBound(s.ID(), nil)
		default:
			_, err = e.Find(bg, s.ID(), nil)
		}
		require.NoError(t, err)
		_, err = e.Get(e.NewID())
		require.ErrorIs(t, err, ErrNotFound)
	}
	st := e.Stats()
	assert.Equal(t, uint64(n), st.Hits)
	assert.Equal(t, uint64(n), st.Misses)
	// 6,400 draws at 1/64 each: 100 expected; 0 or all would be a bug.
	for _, got := range []int64{rec.found.Load(), rec.missed.Load()} {
		assert.Greater(t, got, int64(20))
		assert.Less(t, got, int64(n/4))
	}
}
