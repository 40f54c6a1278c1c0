package fuzz

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sesscache/sesscache/engine"
	"github.com/sesscache/sesscache/token"
)

// The engine target's program format. The first byte configures the engine;
// every later op is one byte, op%numOps, followed by its argument bytes
// (zero once the input runs out). Programs are cut at maxOps ops so that an
// exec stays within a few milliseconds.
//
//	config bit 0      RotateGrace 30 s
//	config bits 1-2   MaxSessionsPerUser 0..3
//	config bit 3      SnapshotOnClose
//	config bit 4      janitor on: ClockResolution 1 ms (else 1 h: it never runs)
//	config bit 5      signed tokens
//	config bit 6      encryption at rest
//	config bit 7      log and snapshots on an in-memory file system (else the disk)
const (
	opCreate     = iota // a: user, idle, absolute timeout, fingerprint; b: data length
	opGet               // a: target
	opGetBound          // a: target; b: fingerprint
	opUpdate            // a: target; b: version mode; c: data length
	opDelete            // a: target
	opRotate            // a: target; b: new owner
	opRevokeUser        // a: user
	opAdvance           // a: how far
	opSnapshot
	opReopen
	opGetAll // Get every token ever issued
	numOps

	maxOps = 40
)

var (
	users        = []string{"", "u1", "u2", "u3", strings.Repeat("x", 300)} // the last is too long
	fingerprints = [][]byte{nil, []byte("ua-1"), []byte("ua-2")}
	idles        = []time.Duration{0, time.Second, time.Minute, time.Hour} // 0: the engine's default
	absolutes    = []time.Duration{0, 2 * time.Second, 90 * time.Second, 3 * time.Hour}
	advances     = []time.Duration{time.Millisecond, 400 * time.Millisecond, time.Second, 2 * time.Second,
		61 * time.Second, 10*time.Minute + time.Second, time.Hour, 25 * time.Hour}
)

const (
	defaultIdle     = 10 * time.Minute
	defaultAbsolute = 2 * time.Hour
	maxData         = 64
)

// engineConfig is what the first byte of a program selects.
type engineConfig struct {
	rotateGrace   time.Duration
	maxPerUser    int
	snapOnClose   bool
	janitor       bool
	signed        bool
	encrypted     bool
	memFS         bool
	signingKey    []byte
	encryptionKey []byte
}

func parseConfig(b byte) engineConfig {
	c := engineConfig{
		maxPerUser:  int(b>>1) & 3,
		snapOnClose: b&8 != 0,
		janitor:     b&16 != 0,
		signed:      b&32 != 0,
		encrypted:   b&64 != 0,
		memFS:       b&128 != 0,
	}
	if b&1 != 0 {
		c.rotateGrace = 30 * time.Second
	}
	c.signingKey = bytes.Repeat([]byte{'k'}, token.MinKeySize)
	c.encryptionKey = bytes.Repeat([]byte{'e'}, 32)
	return c
}

// program reads a program's bytes.
type program struct{ b []byte }

func (p *program) next() byte {
	if len(p.b) == 0 {
		return 0
	}
	c := p.b[0]
	p.b = p.b[1:]
	return c
}

// FuzzEngine runs the input as a program of operations on a persistent
// engine and on the model, and after every step checks that each call
// returned what the model says and that Range shows the model's live
// sessions, field by field.
func FuzzEngine(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		p := &program{b: b}
		r := newRun(t, parseConfig(p.next()))
		defer r.close()
		for step := 0; step < maxOps && len(p.b) > 0; step++ {
			r.step = step
			r.do(p)
			r.checkRange()
		}
		r.getAll()
		r.checkRange()
	})
}

// run is one program's engine, model and options.
type run struct {
	t      *testing.T
	m      *model
	e      *engine.Engine
	clock  *engine.Clock
	opts   engine.Options
	signer *token.Signer // to make well-formed tokens the engine never issued
	step   int
	seq    int // numbers the data of each write
	trace  []string
}

var start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func newRun(t *testing.T, cfg engineConfig) *run {
	r := &run{t: t, clock: engine.NewManualClock(start), m: newModel(cfg, start.UnixNano())}
	r.opts = engine.Options{
		Dir:                t.TempDir(),
		Sync:               engine.SyncNo,
		SegmentSize:        4 << 10,
		TouchLogInterval:   time.Second,
		SnapshotInterval:   -1,
		SnapshotAfterBytes: -1,
		SnapshotOnClose:    cfg.snapOnClose,
		Logger:             slog.New(slog.DiscardHandler),
		RotateGrace:        cfg.rotateGrace,
		MaxSessionsPerUser: cfg.maxPerUser,
		IdleTimeout:        defaultIdle,
		AbsoluteTimeout:    defaultAbsolute,
		MaxDataSize:        maxData,
		Shards:             64,
		Clock:              r.clock,
		ClockResolution:    time.Hour,
	}
	if cfg.janitor {
		r.opts.ClockResolution = time.Millisecond
	}
	if cfg.memFS {
		r.opts.FS = newMemFS()
	}
	if cfg.signed {
		r.opts.SigningKeys = [][]byte{cfg.signingKey}
	}
	if cfg.encrypted {
		r.opts.EncryptionKeys = []engine.EncryptionKey{{ID: 1, Key: cfg.encryptionKey}}
	}
	var err error
	if r.signer, err = token.NewSigner(cfg.signingKey); err != nil {
		t.Fatal(err)
	}
	r.note("config %+v", cfg)
	if r.e, err = engine.Open(r.opts); err != nil {
		t.Fatalf("Open: %v", err)
	}
	return r
}

func (r *run) close() {
	if r.e != nil {
		if err := r.e.Close(); err != nil {
			r.t.Errorf("Close: %v", err)
		}
		r.e = nil
	}
}

// note adds a line to the trace printed with a failure.
func (r *run) note(format string, args ...any) {
	r.trace = append(r.trace, fmt.Sprintf("%2d: ", r.step)+fmt.Sprintf(format, args...))
}

func (r *run) fail(format string, args ...any) {
	r.t.Helper()
	r.t.Fatalf("step %d: %s\ntrace:\n%s", r.step, fmt.Sprintf(format, args...), strings.Join(r.trace, "\n"))
}

// target picks the token an op names: a token the engine issued, a
// well-formed token it never issued, or a malformed one.
func (r *run) target(a byte) string {
	switch {
	case a%16 == 15:
		return "not-a-session-token"
	case a%16 == 14 || len(r.m.issued) == 0:
		id := token.ID{0xee, byte(r.step)}
		if r.m.cfg.signed {
			return r.signer.Sign(id)
		}
		return id.String()
	}
	return r.m.issued[int(a)%len(r.m.issued)]
}

// data returns n bytes that no other write of the run stores.
func (r *run) data(n int) []byte {
	r.seq++
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.seq*7 + i)
	}
	if n >= 2 {
		b[0], b[1] = byte(r.seq>>8), byte(r.seq)
	}
	return b
}

func (r *run) do(p *program) {
	switch op := p.next() % numOps; op {
	case opCreate:
		r.create(p.next(), p.next())
	case opGet:
		r.get(r.target(p.next()), nil, false)
	case opGetBound:
		r.get(r.target(p.next()), fingerprints[int(p.next())%len(fingerprints)], true)
	case opUpdate:
		r.update(r.target(p.next()), p.next(), p.next())
	case opDelete:
		r.delete(r.target(p.next()))
	case opRotate:
		r.rotate(r.target(p.next()), p.next())
	case opRevokeUser:
		r.revokeUser(p.next())
	case opAdvance:
		d := advances[int(p.next())%len(advances)]
		r.note("advance %v", d)
		r.clock.Advance(d)
		r.m.now += int64(d)
	case opSnapshot:
		r.snapshot()
	case opReopen:
		r.reopen()
	case opGetAll:
		r.getAll()
	}
}

func (r *run) create(a, b byte) {
	user := users[int(a)%len(users)]
	idle := idles[int(a/5)%len(idles)]
	abs := absolutes[int(a/20)%len(absolutes)]
	fp := fingerprints[int(a/80)%len(fingerprints)]
	data := r.data(int(b) % (maxData + 8))
	// Distinct creation times make "the owner's oldest" one session.
	r.clock.Advance(time.Millisecond)
	r.m.now += int64(time.Millisecond)
	r.note("create user=%.8q idle=%v abs=%v fp=%q len=%d", user, idle, abs, fp, len(data))
	s, err := r.e.Create(context.Background(), engine.CreateOptions{UserID: user, Data: data, IdleTimeout: idle, AbsoluteTimeout: abs, Fingerprint: fp})
	if len(data) > maxData || len(user) > 256 {
		r.wantErr(err, engine.ErrTooLarge, "Create")
		return
	}
	if err != nil {
		r.fail("Create: %v", err)
	}
	if err := r.m.issue(s.ID()); err != nil {
		r.fail("Create: %v", err)
	}
	idle, abs = orDefault(idle, defaultIdle), orDefault(abs, defaultAbsolute)
	ms := r.m.create(s.ID(), user, data, idle, abs, fp)
	r.checkSession("Create", s, ms, ms.id, false)
	r.m.enforceCap(user, ms.id)
}

// orDefault returns d, or def when d is zero.
func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// lookup is what the model says a token names now.
type lookup struct {
	s       *mSession // the session, if the token is its current one
	alias   *mAlias   // the rotation alias, if the token is an old one within its grace
	expired bool      // s is past its deadline, or alias past its grace
}

func (r *run) lookup(id string) lookup {
	if s := r.m.sessions[id]; s != nil {
		// Any call that names a recovered session's token makes it hot.
		s.cold = false
		return lookup{s: s, expired: !r.m.live(s)}
	}
	if a, ok := r.m.aliases[id]; ok {
		return lookup{alias: &a, expired: a.until <= r.m.now}
	}
	return lookup{}
}

func (r *run) get(id string, fp []byte, bound bool) {
	var s engine.Session
	var err error
	if bound {
		r.note("GetBound %s fp=%q", r.name(id), fp)
		s, err = r.e.GetBound(id, fp)
	} else {
		r.note("Get %s", r.name(id))
		s, err = r.e.Get(id)
	}
	r.checkGet(id, fp, bound, s, err)
}

func (r *run) checkGet(id string, fp []byte, bound bool, s engine.Session, err error) {
	what := "Get " + r.name(id)
	if id == "not-a-session-token" {
		r.wantErr(err, engine.ErrMalformedToken, what)
		return
	}
	l := r.lookup(id)
	switch {
	case l.s != nil && l.expired:
		r.wantExpired(err, what, l.s)
	case l.s != nil && bound && l.s.fp != nil && !bytes.Equal(fp, l.s.fp):
		r.wantNotFound(err, what+" with another fingerprint")
	case l.s != nil:
		if err != nil {
			r.fail("%s: %v, want the session", what, err)
		}
		r.m.access(l.s)
		r.checkSession(what, s, l.s, id, false)
	case l.alias != nil && !l.expired:
		t := r.m.sessions[l.alias.to]
		switch {
		case t == nil:
			r.wantNotFound(err, what+" (alias of a session gone)")
		case !r.m.live(t):
			r.wantExpired(err, what+" (alias of an expired session)", t)
		case bound && t.fp != nil && !bytes.Equal(fp, t.fp):
			r.wantNotFound(err, what+" (alias, another fingerprint)")
		default:
			if err != nil {
				r.fail("%s (alias in its grace): %v, want the session", what, err)
			}
			r.checkSession(what+" (alias)", s, t, t.id, true)
		}
	default:
		r.wantNotFound(err, what)
	}
}

// errFn is what an update function returns to make Update fail.
var errFn = errors.New("update function refused")

func (r *run) update(id string, mode, n byte) {
	l := r.lookup(id)
	data := r.data(int(n) % (maxData + 8))
	var version uint64
	fnErr := false
	switch mode % 5 {
	case 1, 2:
		if l.s != nil {
			version = l.s.version
		}
	case 3:
		if l.s != nil {
			version = l.s.version + 1
		} else {
			version = 1
		}
	case 4:
		fnErr = true
	}
	r.note("Update %s version=%d fnErr=%v len=%d", r.name(id), version, fnErr, len(data))
	calls := 0
	s, err := r.e.Update(context.Background(), id, version, func(cur engine.Session) ([]byte, error) {
		calls++
		if l.s != nil && (!bytes.Equal(cur.Data(), l.s.data) || cur.Version() != l.s.version) {
			r.fail("Update's function got data %x version %d, model has %x version %d",
				cur.Data(), cur.Version(), l.s.data, l.s.version)
		}
		if fnErr {
			return nil, errFn
		}
		return data, nil
	})
	what := "Update " + r.name(id)
	switch {
	case id == "not-a-session-token":
		r.wantErr(err, engine.ErrMalformedToken, what)
	case l.alias != nil && !l.expired:
		r.wantErr(err, engine.ErrRotated, what+" (old ID in its grace)")
	case l.s == nil:
		r.wantNotFound(err, what)
	case l.expired:
		r.wantExpired(err, what, l.s)
	case version != 0 && version != l.s.version:
		r.wantErr(err, engine.ErrVersionConflict, what)
	case fnErr:
		r.wantErr(err, errFn, what)
	case len(data) > maxData:
		r.wantErr(err, engine.ErrTooLarge, what)
	default:
		if err != nil {
			r.fail("%s: %v", what, err)
		}
		if calls != 1 {
			r.fail("%s called its function %d times with no other writer", what, calls)
		}
		ms := l.s
		ms.data = bytes.Clone(data)
		ms.version++
		ms.la = max(r.m.now, ms.la)
		r.m.put(ms)
		r.checkSession(what, s, ms, id, false)
	}
}

func (r *run) delete(id string) {
	l := r.lookup(id)
	r.note("Delete %s", r.name(id))
	err := r.e.Delete(context.Background(), id)
	what := "Delete " + r.name(id)
	switch {
	case id == "not-a-session-token":
		r.wantErr(err, engine.ErrMalformedToken, what)
	case l.alias != nil && !l.expired:
		r.wantErr(err, engine.ErrRotated, what+" (old ID in its grace)")
	case l.s == nil:
		r.wantNotFound(err, what)
	case l.expired:
		r.wantExpired(err, what, l.s)
		delete(r.m.sessions, id)
		// It is logged only if the janitor had not reaped it first; the
		// error tells which.
		if errors.Is(err, engine.ErrExpired) {
			r.m.dirty = true
		}
	default:
		if err != nil {
			r.fail("%s: %v", what, err)
		}
		r.m.remove(l.s)
	}
}

func (r *run) rotate(id string, a byte) {
	owner := ""
	if k := int(a) % (len(users) + 1); k < len(users) {
		owner = users[k]
	}
	var l lookup
	if len(owner) <= 256 { // a too-long owner is refused before the ID is looked at
		l = r.lookup(id)
	}
	r.note("RotateWith %s owner=%.8q", r.name(id), owner)
	s, err := r.e.RotateWith(context.Background(), id, engine.RotateOptions{UserID: owner})
	what := "Rotate " + r.name(id)
	switch {
	case len(owner) > 256:
		r.wantErr(err, engine.ErrTooLarge, what)
	case id == "not-a-session-token":
		r.wantErr(err, engine.ErrMalformedToken, what)
	case l.alias != nil && !l.expired:
		r.wantErr(err, engine.ErrRotated, what+" (old ID in its grace)")
	case l.s == nil:
		r.wantNotFound(err, what)
	case l.expired:
		r.wantExpired(err, what, l.s)
	default:
		if err != nil {
			r.fail("%s: %v", what, err)
		}
		if err := r.m.issue(s.ID()); err != nil {
			r.fail("%s: %v", what, err)
		}
		ms := l.s
		oldOwner := ms.user
		r.m.rotate(ms, s.ID(), owner)
		r.checkSession(what, s, ms, ms.id, false)
		if ms.user != oldOwner {
			r.m.enforceCap(ms.user, ms.id)
		}
	}
}

func (r *run) revokeUser(a byte) {
	user := []string{"", "u1", "u2", "u3", "nobody"}[int(a)%5]
	r.note("RevokeUser %q", user)
	live, expired := r.m.userSessions(user)
	n, err := r.e.RevokeUser(context.Background(), user)
	if user == "" {
		r.wantErr(err, engine.ErrInvalid, "RevokeUser")
		return
	}
	if err != nil {
		r.fail("RevokeUser: %v", err)
	}
	// Sessions past their deadline that the janitor has not reaped yet are
	// deleted and counted too.
	if n < live || n > live+expired {
		r.fail("RevokeUser %q deleted %d, the model has %d live and %d expired", user, n, live, expired)
	}
	for id, s := range r.m.sessions {
		if s.user == user {
			delete(r.m.sessions, id)
		}
	}
	if n > 0 {
		r.m.dirty = true
	}
}

func (r *run) snapshot() {
	r.note("Snapshot")
	st, err := r.e.Snapshot(context.Background())
	if err != nil {
		r.fail("Snapshot: %v", err)
	}
	written := st.LSN != r.m.snapLSN
	if written != r.m.dirty {
		r.fail("Snapshot wrote a snapshot: %v (LSN %d, previous %d); the model says something was logged since the last: %v",
			written, st.LSN, r.m.snapLSN, r.m.dirty)
	}
	if written {
		r.m.snapshotWritten(st.LSN)
	}
}

func (r *run) reopen() {
	r.note("Close and Open")
	if err := r.e.Close(); err != nil {
		r.e = nil
		r.fail("Close: %v", err)
	}
	r.e = nil
	closeSnapshot := r.m.cfg.snapOnClose && r.m.dirty
	lastSnap := r.m.snapLSN
	if closeSnapshot {
		r.m.snapshotWritten(0) // its LSN shows in the recovery stats
	}
	e, err := engine.Open(r.opts)
	if err != nil {
		r.fail("reopen: %v", err)
	}
	r.e = e
	rec := e.Stats().Recovery
	switch {
	case closeSnapshot && rec.SnapshotLSN <= lastSnap:
		r.fail("recovered from the snapshot at LSN %d, but Close should have written one after LSN %d", rec.SnapshotLSN, lastSnap)
	case closeSnapshot:
		r.m.snapLSN = rec.SnapshotLSN
	case rec.SnapshotLSN != r.m.snapLSN:
		r.fail("recovered from the snapshot at LSN %d, want %d", rec.SnapshotLSN, r.m.snapLSN)
	}
	dropping := r.m.reopen()
	live := 0
	for _, s := range r.m.sessions {
		if r.m.live(s) {
			live++
		}
	}
	// RecoveryStats.Sessions counts the sessions recovery keeps, which
	// include any expired in the second before Open (see mSession.dropping).
	if rec.Sessions < live || rec.Sessions > live+dropping {
		r.fail("recovered %d sessions, the model %d live and %d just expired", rec.Sessions, live, dropping)
	}
}

// getAll gets every token issued so far, in order.
func (r *run) getAll() {
	for _, id := range r.m.issued {
		s, err := r.e.Get(id)
		r.checkGet(id, nil, false, s, err)
	}
}

// checkRange compares what Range shows with the model's live sessions.
func (r *run) checkRange() {
	var got []string
	err := r.e.Range(func(s engine.Session) bool {
		got = append(got, view(s.ID(), s.Data(), s.Version(), s.UserID(), s.CreatedAt().UnixNano(),
			s.LastAccess().UnixNano(), s.Deadline().UnixNano(), int64(s.IdleTimeout()), s.AbsoluteExpiry().UnixNano()))
		return true
	})
	if err != nil {
		r.fail("Range: %v", err)
	}
	slices.Sort(got)
	want := r.m.rangeViews()
	if !slices.Equal(got, want) {
		r.fail("Range shows\n  %s\nthe model has\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// checkSession compares a session a call returned with the model's.
func (r *run) checkSession(what string, got engine.Session, s *mSession, id string, rotated bool) {
	r.t.Helper()
	if got.ID() != id || got.Rotated() != rotated {
		r.fail("%s returned ID %s rotated=%v, want %s rotated=%v", what, r.name(got.ID()), got.Rotated(), r.name(id), rotated)
	}
	g := view("", got.Data(), got.Version(), got.UserID(), got.CreatedAt().UnixNano(), got.LastAccess().UnixNano(),
		got.Deadline().UnixNano(), int64(got.IdleTimeout()), got.AbsoluteExpiry().UnixNano())
	w := view("", s.data, s.version, s.user, s.created, s.la, s.deadline(), s.idle, s.abs)
	if g != w {
		r.fail("%s returned\n  %s\nthe model has\n  %s", what, g, w)
	}
}

func (r *run) wantErr(err, want error, what string) {
	r.t.Helper()
	if !errors.Is(err, want) {
		r.fail("%s: got error %v, want %v", what, err, want)
	}
}

// wantExpired accepts ErrExpired for s, or ErrNotFound alone if the
// janitor or recovery may have dropped it.
func (r *run) wantExpired(err error, what string, s *mSession) {
	r.t.Helper()
	if !errors.Is(err, engine.ErrNotFound) || errors.Is(err, engine.ErrRotated) ||
		(!r.m.cfg.janitor && !s.dropping && !errors.Is(err, engine.ErrExpired)) {
		r.fail("%s: got error %v, want %v", what, err, engine.ErrExpired)
	}
}

// wantNotFound accepts ErrNotFound only: not expired, not rotated.
func (r *run) wantNotFound(err error, what string) {
	r.t.Helper()
	if !errors.Is(err, engine.ErrNotFound) || errors.Is(err, engine.ErrExpired) || errors.Is(err, engine.ErrRotated) {
		r.fail("%s: got error %v, want %v", what, err, engine.ErrNotFound)
	}
}

// name returns a short name for a token in traces: its issue number.
func (r *run) name(id string) string {
	if i := slices.Index(r.m.issued, id); i >= 0 {
		return fmt.Sprintf("#%d", i)
	}
	if id == "" {
		return `""`
	}
	return "unknown"
}
