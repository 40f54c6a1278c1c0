package fuzz

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sesscache/sesscache/engine"
	"github.com/sesscache/sesscache/token"
)

// The engine target's program format. The first two bytes configure the
// engine; every later op is one byte, op%numOps, followed by its argument
// bytes (zero once the input runs out). Programs are cut at maxOps ops so
// that an exec stays within a few milliseconds.
//
//	config A bit 0      RotateGrace 30 s
//	config A bits 1-2   MaxSessionsPerUser 0..3
//	config A bit 3      SnapshotOnClose
//	config A bit 4      janitor on: ClockResolution 1 ms (else 1 h: it seldom runs)
//	config A bit 5      signed tokens
//	config A bit 6      encryption at rest
//	config A bit 7      log and snapshots on an in-memory file system (else the disk)
//	config B bits 0-1   MaxSessions 0, 2, 3, 6
//	config B bits 2-3   MaxAnonymousSessions 0, 1, 2, 4
//	config B bits 4-5   Sync: no, every second, always, no
//	config B bit 6      TouchLogInterval 3 s (else 1 s)
//	config B bit 7      one shard (else 64)
const (
	opCreate        = iota // a: user, idle, absolute timeout, fingerprint; b: data length; c: label
	opGet                  // a: target
	opGetBound             // a: target; b: fingerprint, and GetBound or Find
	opUpdate               // a: target; b: version mode; c: data length
	opDelete               // a: target
	opRotate               // a: target; b: new owner, privileged, label (0: a plain Rotate)
	opRevokeUser           // a: user
	opAdvance              // a: how far
	opSnapshot             //
	opReopen               //
	opGetAll               // Get every token ever issued
	opRevokeOthers         // a: user; b: the handle kept
	opRevokeSession        // a: user; b: the handle revoked
	opUserSessions         // a: user
	opSetDeadline          // a: target; b: how far ahead
	opPause                // let the janitor run: 3 ms of real time
	numOps

	maxOps = 40
)

var (
	users        = []string{"", "u1", "u2", "u3", strings.Repeat("x", 300)} // the last is too long
	revokeUsers  = []string{"", "u1", "u2", "u3", "nobody"}
	labels       = []string{"", "phone", "Firefox on Linux", strings.Repeat("L", 300)} // the last is too long
	fingerprints = [][]byte{nil, []byte("ua-1"), []byte("ua-2")}
	idles        = []time.Duration{0, time.Second, time.Minute, time.Hour} // 0: the engine's default
	absolutes    = []time.Duration{0, 2 * time.Second, 90 * time.Second, 3 * time.Hour}
	advances     = []time.Duration{time.Millisecond, 400 * time.Millisecond, time.Second, 2 * time.Second,
		61 * time.Second, 30*time.Minute + time.Second, time.Hour, 25 * time.Hour}
	deadlines = []time.Duration{-time.Second, 0, time.Nanosecond, 2 * time.Second, 90 * time.Second, time.Hour,
		30 * time.Hour} // SetDeadline's t, from now
	maxSessionsOpts = []int{0, 2, 3, 6}
	maxAnonOpts     = []int{0, 1, 2, 4}
	syncOpts        = []engine.SyncPolicy{engine.SyncNo, engine.SyncEverySecond, engine.SyncAlways, engine.SyncNo}
)

const (
	// The engine's defaults, which the target leaves in place.
	defaultIdle     = 30 * time.Minute
	defaultAbsolute = 12 * time.Hour
	maxIDSize       = 256 // MaxUserIDSize and MaxLabelSize
	maxData         = 64
	grace           = 30 * time.Second
	// touchGrain is how far the clock must move past a session's last
	// access before a lookup records a new one: a second, or a 64th of the
	// session's own idle timeout if shorter (see model.access).
	touchGrain = time.Second
)

// engineConfig is what the first two bytes of a program select.
type engineConfig struct {
	rotateGrace   time.Duration
	maxPerUser    int
	snapOnClose   bool
	janitor       bool
	signed        bool
	encrypted     bool
	memFS         bool
	maxSessions   int
	maxAnon       int
	sync          engine.SyncPolicy
	touchLog      time.Duration
	oneShard      bool
	signingKey    []byte
	encryptionKey []byte
}

func parseConfig(a, b byte) engineConfig {
	c := engineConfig{
		maxPerUser:  int(a>>1) & 3,
		snapOnClose: a&8 != 0,
		janitor:     a&16 != 0,
		signed:      a&32 != 0,
		encrypted:   a&64 != 0,
		memFS:       a&128 != 0,
		maxSessions: maxSessionsOpts[b&3],
		maxAnon:     maxAnonOpts[(b>>2)&3],
		sync:        syncOpts[(b>>4)&3],
		touchLog:    time.Second,
		oneShard:    b&128 != 0,
	}
	if a&1 != 0 {
		c.rotateGrace = grace
	}
	if b&64 != 0 {
		c.touchLog = 3 * time.Second
	}
	c.signingKey = bytes.Repeat([]byte{'k'}, token.MinKeySize)
	c.encryptionKey = bytes.Repeat([]byte{'e'}, 32)
	return c
}

func (c engineConfig) String() string {
	return fmt.Sprintf("grace=%v perUser=%d snapOnClose=%v janitor=%v signed=%v encrypted=%v memFS=%v maxSessions=%d maxAnon=%d sync=%v touchLog=%v oneShard=%v",
		c.rotateGrace, c.maxPerUser, c.snapOnClose, c.janitor, c.signed, c.encrypted, c.memFS, c.maxSessions, c.maxAnon,
		c.sync, c.touchLog, c.oneShard)
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
// engine and on the model. After every step it checks that each call
// returned what the model says, that the events (Options.OnEvent) are the
// model's, that All shows the model's live sessions field by field, and
// that Stats agrees with the model's counts and LSN. With FUZZENGINE_TRACE
// set in the environment, it logs the trace of a passing program too (run
// with -v to see it).
func FuzzEngine(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		p := &program{b: b}
		r := newRun(t, parseConfig(p.next(), p.next()))
		defer r.close()
		for step := 0; step < maxOps && len(p.b) > 0; step++ {
			r.step = step
			r.do(p)
			r.check()
		}
		r.step = maxOps
		r.getAll()
		for _, u := range revokeUsers[1:] {
			r.userSessions(u)
		}
		r.check()
		if os.Getenv("FUZZENGINE_TRACE") != "" {
			t.Logf("trace:\n%s", strings.Join(r.trace, "\n"))
		}
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

	evMu          sync.Mutex
	events        []engine.Event // reported by OnEvent, not yet taken
	pendingEvents []engine.Event // taken, other than expiries, not yet matched to a call
}

var start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func newRun(t *testing.T, cfg engineConfig) *run {
	r := &run{t: t, clock: engine.NewManualClock(start), m: newModel(cfg, start.UnixNano())}
	r.opts = engine.Options{
		Dir:                  t.TempDir(),
		Sync:                 cfg.sync,
		SegmentSize:          4 << 10,
		TouchLogInterval:     cfg.touchLog,
		SnapshotInterval:     -1,
		SnapshotAfterBytes:   -1,
		SnapshotOnClose:      cfg.snapOnClose,
		Logger:               slog.New(slog.DiscardHandler),
		RotateGrace:          cfg.rotateGrace,
		MaxSessionsPerUser:   cfg.maxPerUser,
		MaxSessions:          cfg.maxSessions,
		MaxAnonymousSessions: cfg.maxAnon,
		MaxDataSize:          maxData,
		Shards:               64,
		Clock:                r.clock,
		ClockResolution:      time.Hour,
		OnEvent: func(ev engine.Event) {
			r.evMu.Lock()
			r.events = append(r.events, ev)
			r.evMu.Unlock()
		},
	}
	if cfg.oneShard {
		r.opts.Shards = 1
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
	r.note("config %v", cfg)
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

var ctx = context.Background()

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

// handleTarget picks the handle an op names: one a session had, the zero
// Handle, or one no session has.
func (r *run) handleTarget(b byte) engine.Handle {
	switch {
	case b%8 == 7 || (b%8 != 6 && len(r.m.handles) == 0):
		return engine.Handle{}
	case b%8 == 6:
		return engine.Handle{0xee, 0xee, byte(r.step)}
	}
	return r.m.handles[int(b)%len(r.m.handles)]
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
		r.create(p.next(), p.next(), p.next())
	case opGet:
		r.get(r.target(p.next()), nil, lookupGet)
	case opGetBound:
		b := p.next()
		r.get(r.target(b), fingerprints[int(p.next())%len(fingerprints)], lookupKind(1+(b/16)%2))
	case opUpdate:
		r.update(r.target(p.next()), p.next(), p.next())
	case opDelete:
		r.delete(r.target(p.next()))
	case opRotate:
		r.rotate(r.target(p.next()), p.next())
	case opRevokeUser:
		r.revoke(revokeAll, revokeUsers[int(p.next())%len(revokeUsers)], engine.Handle{})
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
	case opRevokeOthers:
		user := revokeUsers[int(p.next())%len(revokeUsers)]
		r.revoke(revokeOthers, user, r.handleTarget(p.next()))
	case opRevokeSession:
		user := revokeUsers[int(p.next())%len(revokeUsers)]
		r.revoke(revokeOne, user, r.handleTarget(p.next()))
	case opUserSessions:
		r.userSessions(revokeUsers[int(p.next())%len(revokeUsers)])
	case opSetDeadline:
		r.setDeadline(r.target(p.next()), p.next())
	case opPause:
		r.note("pause")
		time.Sleep(3 * time.Millisecond)
	}
}

// orDefault returns d, or def when d is zero.
func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// lastLSN returns the log's last LSN.
func (r *run) lastLSN() uint64 { return r.e.Stats().Log.LastLSN }

func (r *run) create(a, b, c byte) {
	user := users[int(a)%len(users)]
	idle := idles[int(a/5)%len(idles)]
	abs := absolutes[int(a/20)%len(absolutes)]
	fp := fingerprints[int(a/80)%len(fingerprints)]
	data := r.data(int(b) % (maxData + 8))
	label := labels[int(c)%len(labels)]
	r.note("Create user=%.8q label=%.8q idle=%v abs=%v fp=%q len=%d", user, label, idle, abs, fp, len(data))

	// What the caps call for, as far as the model can tell: sessions past
	// their deadline count for MaxSessions and MaxAnonymousSessions while
	// the engine holds them, and the janitor may have reaped them.
	m := r.m
	victims := m.userVictims(user)
	tl := m.tally()
	var overLo, overHi, anonLo, anonHi bool
	if limit := m.cfg.maxSessions; limit > 0 {
		overLo, overHi = tl.held+1 > limit, tl.held+tl.maybe+1 > limit
	}
	if limit := m.cfg.maxAnon; limit > 0 && user == "" {
		anonLo, anonHi = tl.heldAnon+1 > limit, tl.heldAnon+tl.maybeAnon+1 > limit
	}
	needLo := max(b2i(overLo)-len(victims), b2i(anonLo))
	needHi := max(b2i(overHi)-len(victims), b2i(anonHi))
	// If the session it picks to evict is reaped meanwhile, Create starts
	// over, with a new stamp.
	retry := needHi > 0 && tl.maybeAnon > 0

	s, err := r.e.Create(ctx, engine.CreateOptions{UserID: user, Label: label, Data: data, IdleTimeout: idle,
		AbsoluteTimeout: abs, Fingerprint: fp})
	r.outcome(err)
	what := "Create"
	switch {
	case len(data) > maxData || len(user) > maxIDSize || len(label) > maxIDSize:
		r.wantErr(err, engine.ErrTooLarge, what)
		r.wantEvents(what)
		return
	case errors.Is(err, engine.ErrFull):
		// Allowed only if an eviction was due and there may be no
		// anonymous session to evict.
		if needHi == 0 || tl.heldAnon > 0 {
			r.fail("%s: %v; %d anonymous sessions live, an eviction due: %v", what, err, tl.heldAnon, needLo > 0)
		}
		m.nextStamp() // drawn before the caps were applied
		m.stampSlack = m.stampSlack || retry
		r.wantEvents(what)
		return
	case err != nil:
		r.fail("%s: %v", what, err)
	}
	if needLo > 0 && tl.heldAnon+tl.maybeAnon == 0 {
		r.fail("%s succeeded; the caps call for an eviction and there is no anonymous session", what)
	}
	if err := m.issue(s.ID()); err != nil {
		r.fail("%s: %v", what, err)
	}
	if h, err := r.e.HandleOf(s.ID()); err != nil || h != handleOf(s.ID()) {
		r.fail("HandleOf a new token: %v, %v; want %v", h, err, handleOf(s.ID()))
	}
	m.stampSlack = m.stampSlack || retry
	stamp := r.takeStamp(unixNano(s.CreatedAt()), what+"'s creation time")
	ms := m.create(s.ID(), stamp, user, label, data, orDefault(idle, defaultIdle), orDefault(abs, defaultAbsolute), fp)
	m.lsn++
	m.c.Created++
	r.checkSession(what, s, ms.fullView())

	want := make([]string, 0, len(victims)+1)
	for _, v := range victims {
		want = append(want, r.event(engine.EventEvicted, v.h, engine.Handle{}, v.user))
	}
	want = append(want, r.event(engine.EventCreated, ms.h, engine.Handle{}, user))
	got := r.syncEvents()
	// Anonymous sessions the caps evicted: the model cannot say which.
	anon := 0
	for i := 0; i < len(got); i++ {
		ev := got[i]
		if ev.Kind != engine.EventEvicted || ev.UserID != "" {
			continue
		}
		v := m.byHandle[ev.Handle]
		switch {
		case v == nil || v == ms:
			r.fail("%s evicted a session the model does not know: %v", what, ev.Handle)
		case !v.present:
			r.fail("%s evicted %s, which the engine no longer held", what, r.name(v.id))
		case v.user != "":
			r.fail("%s evicted %s, which is authenticated, for MaxSessions or MaxAnonymousSessions", what, r.name(v.id))
		case !ev.Time.Equal(time.Unix(0, m.now)):
			r.fail("%s: eviction event at %v, want %v", what, ev.Time, time.Unix(0, m.now))
		}
		r.note("  evicted anonymous %s", r.name(v.id))
		m.remove(v)
		m.c.Evicted++
		anon++
		got = slices.Delete(got, i, i+1)
		i--
	}
	if anon < needLo || anon > needHi {
		r.fail("%s evicted %d anonymous sessions; the caps call for %d to %d (%d held, %d anonymous, %d perhaps expired, %d by user cap)",
			what, anon, needLo, needHi, tl.held, tl.heldAnon, tl.maybe, len(victims))
	}
	r.compareEvents(what, got, want)
	for _, v := range victims {
		m.remove(v)
		m.c.Evicted++
	}
}

// lookupKind is the call a lookup makes.
type lookupKind uint8

const (
	lookupGet lookupKind = iota
	lookupGetBound
	lookupFind
)

func (r *run) get(id string, fp []byte, kind lookupKind) {
	var s engine.Session
	var err error
	switch kind {
	case lookupGet:
		r.note("Get %s", r.name(id))
		s, err = r.e.Get(id)
	case lookupGetBound:
		r.note("GetBound %s fp=%q", r.name(id), fp)
		s, err = r.e.GetBound(id, fp)
	case lookupFind:
		r.note("Find %s fp=%q", r.name(id), fp)
		s, err = r.e.Find(ctx, id, fp)
	}
	r.outcome(err)
	r.checkGet(id, fp, s, err)
}

// bindingRefuses reports whether a lookup with fingerprint fp is refused
// for s: s is bound, and fp is not its fingerprint (Get gives none).
func bindingRefuses(s *mSession, fp []byte) bool {
	return s.fp != nil && !bytes.Equal(fp, s.fp)
}

func (r *run) checkGet(id string, fp []byte, s engine.Session, err error) {
	r.t.Helper()
	m := r.m
	what := "lookup of " + r.name(id)
	if id == "not-a-session-token" {
		r.wantErr(err, engine.ErrMalformedToken, what)
		m.c.Misses++
		return
	}
	if ms := m.sessions[id]; ms != nil && ms.present {
		switch {
		case !m.live(ms):
			m.c.Misses++
			r.wantExpired(err, what, ms)
		case bindingRefuses(ms, fp):
			m.c.Misses++
			m.c.BindingMismatches++
			r.wantNotFound(err, what+" with another fingerprint")
		default:
			if err != nil {
				r.fail("%s: %v, want the session", what, err)
			}
			m.c.Hits++
			m.access(ms)
			r.checkSession(what, s, ms.fullView())
		}
		return
	}
	a, ok := m.aliases[id]
	if !ok {
		m.c.Misses++
		r.wantNotFound(err, what)
		return
	}
	t := m.sessions[a.to]
	switch {
	case a.until <= m.now:
		m.c.Misses++
		r.wantNotFound(err, what+" (old ID past its grace)")
	case t == nil || !t.present:
		m.c.Misses++
		r.wantNotFound(err, what+" (old ID of a session gone)")
	case !m.live(t):
		m.c.Misses++
		r.wantExpired(err, what+" (old ID of an expired session)", t)
	case bindingRefuses(t, fp):
		m.c.Misses++
		m.c.BindingMismatches++
		r.wantNotFound(err, what+" (old ID, another fingerprint)")
	default:
		if err != nil {
			r.fail("%s (old ID in its grace): %v, want the session", what, err)
		}
		m.c.Hits++
		r.checkSession(what+" (old ID in its grace)", s, t.graceView(id))
	}
}

// writeTarget is what a write (Update, SetDeadline, RotateWith) finds under
// id: the live session, or the error it must return. For a session past
// its deadline it returns expired instead, and the caller checks the error
// with wantExpired.
func (r *run) writeTarget(id string) (s *mSession, expired *mSession, want error) {
	m := r.m
	if id == "not-a-session-token" {
		return nil, nil, engine.ErrMalformedToken
	}
	if s := m.sessions[id]; s != nil && s.present {
		if !m.live(s) {
			return nil, s, nil
		}
		return s, nil, nil
	}
	if a, ok := m.aliases[id]; ok && a.until > m.now {
		return nil, nil, engine.ErrRotated
	}
	return nil, nil, engine.ErrNotFound
}

// errFn is what an update function returns to make Update fail.
var errFn = errors.New("update function refused")

func (r *run) update(id string, mode, n byte) {
	m := r.m
	s, expired, want := r.writeTarget(id)
	data := r.data(int(n) % (maxData + 8))
	var version uint64
	fnErr := false
	switch mode % 5 {
	case 1, 2:
		if s != nil {
			version = s.version
		}
	case 3:
		if s != nil {
			version = s.version + 1
		} else {
			version = 1
		}
	case 4:
		fnErr = true
	}
	r.note("Update %s version=%d fnErr=%v len=%d", r.name(id), version, fnErr, len(data))
	calls := 0
	got, err := r.e.Update(ctx, id, version, func(cur engine.Session) ([]byte, error) {
		calls++
		if s != nil && sessionView(cur) != s.fullView() {
			r.fail("Update's function got\n  %s\nthe model has\n  %s", sessionView(cur), s.fullView())
		}
		if fnErr {
			return nil, errFn
		}
		return data, nil
	})
	r.outcome(err)
	what := "Update " + r.name(id)
	switch {
	case want != nil:
		r.wantWriteErr(err, want, what)
	case expired != nil:
		r.wantExpired(err, what, expired)
	case version != 0 && version != s.version:
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
		s.data = bytes.Clone(data)
		s.version++
		s.la = max(m.now, s.la)
		m.put(s)
		m.lsn++
		m.c.Updated++
		r.checkSession(what, got, s.fullView())
	}
	r.wantEvents(what)
}

func (r *run) setDeadline(id string, b byte) {
	m := r.m
	d := deadlines[int(b)%len(deadlines)]
	at := m.now + int64(d)
	r.note("SetDeadline %s now%+v", r.name(id), d)
	s, expired, want := r.writeTarget(id)
	got, err := r.e.SetDeadline(ctx, id, time.Unix(0, at))
	r.outcome(err)
	what := "SetDeadline " + r.name(id)
	switch {
	case want == engine.ErrMalformedToken:
		r.wantErr(err, want, what)
	case at <= m.now:
		r.wantErr(err, engine.ErrInvalid, what+" (not in the future)")
	case want != nil:
		r.wantWriteErr(err, want, what)
	case expired != nil:
		r.wantExpired(err, what, expired)
	default:
		if err != nil {
			r.fail("%s: %v", what, err)
		}
		s.abs = at
		s.version++
		s.la = max(m.now, s.la)
		m.put(s)
		m.lsn++
		m.c.Updated++
		r.checkSession(what, got, s.fullView())
	}
	r.wantEvents(what)
}

func (r *run) delete(id string) {
	m := r.m
	r.note("Delete %s", r.name(id))
	before := r.lastLSN()
	err := r.e.Delete(ctx, id)
	r.outcome(err)
	what := "Delete " + r.name(id)
	if id == "not-a-session-token" {
		r.wantErr(err, engine.ErrMalformedToken, what)
		r.wantEvents(what)
		return
	}
	if err != nil {
		r.fail("%s: %v, want nil", what, err)
	}
	s := m.sessions[id]
	switch {
	case s != nil && s.present && m.live(s):
		m.remove(s)
		m.lsn++
		m.c.Deleted++
		r.wantEvents(what, r.event(engine.EventDeleted, s.h, engine.Handle{}, s.user))
	case s != nil && s.present:
		// Past its deadline: Delete removes it, as expired, unless the
		// janitor (or recovery) was first. Only the log says which.
		r.absorbAsync()
		if r.lastLSN() != before {
			if s.present {
				r.fail("%s removed an expired session (logged) without an EventExpired", what)
			}
			m.lsn++
			s.onDisk = false
			r.wantEvents(what)
			break
		}
		r.note("  (not held any more)")
		r.gone(s, what)
		r.wantEvents(what)
	default:
		// An old ID in its grace loses its read-only access; anything else
		// is already gone.
		delete(m.aliases, id)
		r.wantEvents(what)
	}
}

func (r *run) rotate(id string, b byte) {
	m := r.m
	owner := users[int(b)%len(users)]
	privileged := (b/5)%2 == 1
	label := labels[int(b/10)%len(labels)]
	o := engine.RotateOptions{UserID: owner, Privileged: privileged, Label: label}
	var got engine.Session
	var err error
	if o == (engine.RotateOptions{}) {
		r.note("Rotate %s", r.name(id))
		got, err = r.e.Rotate(ctx, id)
	} else {
		r.note("RotateWith %s owner=%.8q privileged=%v label=%.8q", r.name(id), owner, privileged, label)
		got, err = r.e.RotateWith(ctx, id, o)
	}
	r.outcome(err)
	what := "Rotate " + r.name(id)
	if len(owner) > maxIDSize || len(label) > maxIDSize {
		// Refused before the ID is looked at.
		r.wantErr(err, engine.ErrTooLarge, what)
		r.wantEvents(what)
		return
	}
	s, expired, want := r.writeTarget(id)
	switch {
	case want != nil:
		r.wantWriteErr(err, want, what)
		r.wantEvents(what)
		return
	case expired != nil:
		r.wantExpired(err, what, expired)
		r.wantEvents(what)
		return
	case err != nil:
		r.fail("%s: %v", what, err)
	}
	if err := m.issue(got.ID()); err != nil {
		r.fail("%s: %v", what, err)
	}
	newOwner := s.user
	var victims []*mSession
	if owner != "" {
		newOwner = owner
		if owner != s.user {
			victims = m.userVictims(owner)
		}
	}
	old, oldH := s.id, s.h
	m.rotate(s, got.ID())
	m.lsn++
	m.c.Rotated++
	if owner != "" {
		s.user = owner
		s.authAt = r.takeStamp(unixNano(got.AuthenticatedAt()), what+"'s authentication time")
	}
	if label != "" {
		s.label = label
	}
	if m.cfg.rotateGrace > 0 && !privileged && owner == "" {
		m.aliases[old] = mAlias{to: s.id, until: satAdd(m.now, int64(m.cfg.rotateGrace))}
	}
	r.checkSession(what, got, s.fullView())
	var want2 []string
	for _, v := range victims {
		want2 = append(want2, r.event(engine.EventEvicted, v.h, engine.Handle{}, v.user))
		m.remove(v)
		m.c.Evicted++
	}
	want2 = append(want2, r.event(engine.EventRotated, s.h, oldH, newOwner))
	r.wantEvents(what, want2...)
}

// revokeKind is RevokeUser, RevokeOthers or RevokeSession.
type revokeKind uint8

const (
	revokeAll revokeKind = iota
	revokeOthers
	revokeOne
)

func (r *run) revoke(kind revokeKind, user string, h engine.Handle) {
	m := r.m
	var n int
	var err error
	switch kind {
	case revokeAll:
		r.note("RevokeUser %q", user)
		n, err = r.e.RevokeUser(ctx, user)
	case revokeOthers:
		r.note("RevokeOthers %q keep=%.8s", user, h)
		n, err = r.e.RevokeOthers(ctx, user, h)
	case revokeOne:
		r.note("RevokeSession %q %.8s", user, h)
		err = r.e.RevokeSession(ctx, user, h)
	}
	r.note("  -> %d, %v", n, err)
	what := fmt.Sprintf("revocation of %q", user)
	if user == "" {
		r.wantErr(err, engine.ErrInvalid, what)
		r.wantEvents(what)
		return
	}
	// Only live sessions are revoked: those past their deadline are not
	// alive, and the janitor takes them.
	var doomed []*mSession
	for _, s := range m.sessions {
		if s.user != user || !m.held(s) {
			continue
		}
		if kind == revokeAll || (kind == revokeOthers && s.h != h) || (kind == revokeOne && s.h == h) {
			doomed = append(doomed, s)
		}
	}
	switch {
	case kind == revokeOne && len(doomed) == 0:
		r.wantNotFound(err, what+" (no such session of the user)")
	case err != nil:
		r.fail("%s: %v", what, err)
	case kind != revokeOne && n != len(doomed):
		r.fail("%s ended %d sessions, the model %d", what, n, len(doomed))
	}
	var want []string
	for _, s := range doomed {
		want = append(want, r.event(engine.EventRevoked, s.h, engine.Handle{}, user))
		m.remove(s)
		m.c.Revoked++
	}
	if len(doomed) > 0 {
		m.lsn++ // one record, all or nothing
	}
	r.wantEvents(what, want...)
}

func (r *run) userSessions(user string) {
	r.note("UserSessions %q", user)
	list, err := r.e.UserSessions(ctx, user)
	if err != nil {
		r.fail("UserSessions %q: %v", user, err)
	}
	got := make([]string, len(list))
	for i, s := range list {
		got[i] = sessionView(s)
	}
	if want := r.m.userSessions(user); !slices.Equal(got, want) {
		r.fail("UserSessions %q shows\n  %s\nthe model has\n  %s", user, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func (r *run) snapshot() {
	m := r.m
	r.note("Snapshot")
	st, err := r.e.Snapshot(ctx)
	if err != nil {
		r.fail("Snapshot: %v", err)
	}
	switch {
	case !m.dirty() && st.LSN != m.snapLSN:
		r.fail("Snapshot wrote one at LSN %d with nothing logged since the last, at %d", st.LSN, m.snapLSN)
	case !m.dirty():
	case st.LSN != m.lsn:
		r.fail("Snapshot wrote one at LSN %d, want %d", st.LSN, m.lsn)
	case st.Sessions != uint64(m.tally().held):
		r.fail("Snapshot holds %d sessions, the model %d live", st.Sessions, m.tally().held)
	default:
		m.snapshotWritten(st.LSN)
	}
}

func (r *run) reopen() {
	m := r.m
	r.note("Close and Open")
	if err := r.e.Close(); err != nil {
		r.e = nil
		r.fail("Close: %v", err)
	}
	r.e = nil
	// Close stopped the janitor: every event it will ever report is in.
	r.absorbAsync()
	r.wantEvents("Close")
	if m.cfg.snapOnClose && m.dirty() {
		m.snapshotWritten(m.lsn)
	}
	if m.stamp >= m.now {
		// A stamp of this very tick was handed out. The reopened engine
		// stamps after the newest time it recovers, which may be older than
		// that if its session is gone, so move on past it.
		r.clock.Advance(time.Millisecond)
		m.now += int64(time.Millisecond)
		r.note("  advance 1ms")
	}
	e, err := engine.Open(r.opts)
	if err != nil {
		r.fail("reopen: %v", err)
	}
	r.e = e
	want := m.reopen()
	st := e.Stats()
	rec := st.Recovery
	switch {
	case rec.SnapshotLSN != m.snapLSN:
		r.fail("recovered from the snapshot at LSN %d, want %d", rec.SnapshotLSN, m.snapLSN)
	case st.Log.LastLSN != m.lsn:
		r.fail("the reopened log's last LSN is %d, want %d", st.Log.LastLSN, m.lsn)
	case rec.Sessions+rec.ExpiredOnLoad != want.onDisk:
		r.fail("recovered %d sessions and dropped %d as expired; the disk holds %d", rec.Sessions, rec.ExpiredOnLoad, want.onDisk)
	case rec.Sessions < want.live || rec.Sessions > want.live+want.dropping:
		// RecoveryStats.Sessions counts the sessions recovery keeps,
		// which may include some expired in the second before Open.
		r.fail("recovered %d sessions, the model %d live and %d just expired", rec.Sessions, want.live, want.dropping)
	}
}

// getAll gets every token issued so far, in order.
func (r *run) getAll() {
	r.note("Get every token")
	for _, id := range r.m.issued {
		s, err := r.e.Get(id)
		r.note("  Get %s -> %v", r.name(id), errString(err))
		r.checkGet(id, nil, s, err)
	}
}

// check compares, after a step, what the engine shows as a whole with the
// model: the events of the janitor, All, and Stats.
func (r *run) check() {
	r.absorbAsync()
	r.wantEvents("the janitor")
	r.checkAll()
	r.checkStats()
}

// checkAll compares what All shows with the model's live sessions.
func (r *run) checkAll() {
	var got []string
	for h, s := range r.e.All() {
		if h != s.Handle() {
			r.fail("All yields handle %v with a session whose handle is %v", h, s.Handle())
		}
		got = append(got, sessionView(s))
	}
	slices.Sort(got)
	if want := r.m.allViews(); !slices.Equal(got, want) {
		r.fail("All shows\n  %s\nthe model has\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// checkStats compares Stats with the model: the counters it knows exactly,
// ranges for those the janitor changes behind its back, and the caps.
func (r *run) checkStats() {
	m := r.m
	expiredBefore := m.expired
	late := 0
	for _, s := range m.sessions {
		if s.late {
			late++
		}
	}
	st := r.e.Stats()
	got := counts{Hits: st.Hits, Misses: st.Misses, Created: st.Created, Updated: st.Updated, Rotated: st.Rotated,
		Deleted: st.Deleted, Revoked: st.Revoked, Evicted: st.Evicted, BindingMismatches: st.BindingMismatches}
	if got != m.c {
		r.fail("Stats counts\n  %+v\nthe model\n  %+v", got, m.c)
	}
	if st.Log.LastLSN != m.lsn {
		r.fail("the log's last LSN is %d, the model's %d", st.Log.LastLSN, m.lsn)
	}
	tl := m.tally()
	aliases, liveAliases := len(m.aliases), 0
	for _, a := range m.aliases {
		if a.until > m.now {
			liveAliases++
		}
	}
	entries := 0
	for _, n := range st.ShardSizes {
		entries += n
	}
	switch {
	case st.Live < tl.held || st.Live > tl.held+tl.maybe:
		r.fail("Stats.Live %d; the model holds %d live and %d perhaps expired", st.Live, tl.held, tl.maybe)
	case st.Anonymous < tl.heldAnon || st.Anonymous > tl.heldAnon+tl.maybeAnon:
		r.fail("Stats.Anonymous %d; the model holds %d live and %d perhaps expired", st.Anonymous, tl.heldAnon, tl.maybeAnon)
	case st.Expired < expiredBefore || st.Expired > expiredBefore+uint64(tl.maybe+late):
		r.fail("Stats.Expired %d; the model has seen %d expire, and %d more may have", st.Expired, expiredBefore, tl.maybe+late)
	case entries < tl.held+liveAliases || entries > tl.held+tl.maybe+aliases:
		r.fail("the shards hold %d entries; the model %d live sessions, %d perhaps expired, %d aliases of which %d live",
			entries, tl.held, tl.maybe, aliases, liveAliases)
	case m.cfg.maxSessions > 0 && tl.held > m.cfg.maxSessions:
		r.fail("%d live sessions, MaxSessions is %d", tl.held, m.cfg.maxSessions)
	case m.cfg.maxAnon > 0 && tl.heldAnon > m.cfg.maxAnon:
		r.fail("%d live anonymous sessions, MaxAnonymousSessions is %d", tl.heldAnon, m.cfg.maxAnon)
	}
	if limit := m.cfg.maxPerUser; limit > 0 {
		per := map[string]int{}
		for _, s := range m.sessions {
			if s.user != "" && m.held(s) {
				if per[s.user]++; per[s.user] > limit {
					r.fail("user %q holds %d live sessions, MaxSessionsPerUser is %d", s.user, per[s.user], limit)
				}
			}
		}
	}
}

// takeEvents returns the events reported since the last call.
func (r *run) takeEvents() []engine.Event {
	r.evMu.Lock()
	defer r.evMu.Unlock()
	evs := r.events
	r.events = nil
	return evs
}

// absorbAsync takes the events reported so far: it applies the expiries to
// the model and keeps the others for the call that made them.
func (r *run) absorbAsync() { r.pendingEvents = append(r.pendingEvents, r.absorb(r.takeEvents())...) }

// absorb applies the EventExpired among evs to the model (the janitor's,
// or a Delete's of an expired session) and returns the others.
func (r *run) absorb(evs []engine.Event) []engine.Event {
	var rest []engine.Event
	for _, ev := range evs {
		if ev.Kind != engine.EventExpired {
			rest = append(rest, ev)
			continue
		}
		s := r.m.byHandle[ev.Handle]
		switch {
		case s == nil:
			r.fail("EventExpired for a handle the model does not know: %v", ev.Handle)
		case !s.present && !s.late:
			r.fail("EventExpired for %s, which the engine no longer held", r.name(s.id))
		case s.present && r.m.live(s):
			r.fail("EventExpired for %s, which is live until %v (now %v)", r.name(s.id),
				time.Unix(0, s.deadline()), time.Unix(0, r.m.now))
		case ev.UserID != s.user || ev.Previous != (engine.Handle{}):
			r.fail("EventExpired for %s says user %q previous %v", r.name(s.id), ev.UserID, ev.Previous)
		case ev.Time.UnixNano() < s.deadline():
			r.fail("EventExpired for %s at %v, before its deadline %v", r.name(s.id), ev.Time, time.Unix(0, s.deadline()))
		}
		r.note("  expired %s", r.name(s.id))
		s.present, s.unsure, s.late = false, false, false
		r.m.expired++
	}
	return rest
}

// syncEvents returns the events the call just made reported, other than
// expiries, which it applies to the model.
func (r *run) syncEvents() []engine.Event {
	r.absorbAsync()
	evs := r.pendingEvents
	r.pendingEvents = nil
	return evs
}

// event is one expected event, as compared.
func (r *run) event(kind engine.EventKind, h, prev engine.Handle, user string) string {
	return fmt.Sprintf("%v handle=%.8s previous=%.8s user=%.8q", kind, h, prev, user)
}

// wantEvents checks that the call just made reported exactly want (in any
// order, but every removal before a creation or rotation), each at the
// model's time, besides expiries.
func (r *run) wantEvents(what string, want ...string) {
	r.t.Helper()
	r.compareEvents(what, r.syncEvents(), want)
}

func (r *run) compareEvents(what string, evs []engine.Event, want []string) {
	r.t.Helper()
	got := make([]string, len(evs))
	for i, ev := range evs {
		got[i] = r.event(ev.Kind, ev.Handle, ev.Previous, ev.UserID)
		if !ev.Time.Equal(time.Unix(0, r.m.now)) {
			r.fail("%s: event %s at %v, want %v", what, got[i], ev.Time, time.Unix(0, r.m.now))
		}
		if i > 0 && (evs[i-1].Kind == engine.EventCreated || evs[i-1].Kind == engine.EventRotated) {
			r.fail("%s: event %s after the %v event", what, got[i], evs[i-1].Kind)
		}
	}
	slices.Sort(got)
	want = slices.Clone(want)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		r.fail("%s reported the events\n  %s\nthe model expects\n  %s", what, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// gone records that a call found no s, present in the model but past its
// deadline. If recovery may have dropped it, that is that (though the
// janitor's event may yet come); otherwise the janitor must have reaped it,
// and its event must come.
func (r *run) gone(s *mSession, what string) {
	r.t.Helper()
	r.absorbAsync()
	if !s.present {
		return
	}
	if s.unsure {
		s.present, s.unsure, s.late = false, false, true
		return
	}
	for deadline := time.Now().Add(10 * time.Second); s.present; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			r.fail("%s found no %s, past its deadline, and no EventExpired says it was reaped", what, r.name(s.id))
		}
		r.absorbAsync()
	}
}

// checkSession compares a session a call returned with the model's view.
func (r *run) checkSession(what string, got engine.Session, want string) {
	r.t.Helper()
	if g := sessionView(got); g != want {
		r.fail("%s returned\n  %s\nthe model has\n  %s", what, g, want)
	}
}

func (r *run) wantErr(err, want error, what string) {
	r.t.Helper()
	if !errors.Is(err, want) {
		r.fail("%s: got error %v, want %v", what, err, want)
	}
}

// wantWriteErr checks a write's error for a token that names no live
// session: ErrMalformedToken, ErrRotated (an old ID in its grace), or
// ErrNotFound alone.
func (r *run) wantWriteErr(err, want error, what string) {
	r.t.Helper()
	if want == engine.ErrNotFound {
		r.wantNotFound(err, what)
		return
	}
	r.wantErr(err, want, what)
}

// wantExpired accepts ErrExpired for s, present but past its deadline, or
// ErrNotFound alone if the janitor reaped it (its event must come) or
// recovery dropped it.
func (r *run) wantExpired(err error, what string, s *mSession) {
	r.t.Helper()
	switch {
	case errors.Is(err, engine.ErrExpired) && errors.Is(err, engine.ErrNotFound) && !errors.Is(err, engine.ErrRotated):
	case errors.Is(err, engine.ErrNotFound) && !errors.Is(err, engine.ErrExpired) && !errors.Is(err, engine.ErrRotated):
		r.note("  (not held any more)")
		r.gone(s, what)
	default:
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

// takeStamp checks a creation or authentication time the engine handed out
// against the model's next one (later ones only if the engine may have
// drawn some the model did not see) and returns it.
func (r *run) takeStamp(got int64, what string) int64 {
	r.t.Helper()
	m := r.m
	want := m.nextStamp()
	if got != want {
		if !m.stampSlack || got < want {
			r.fail("%s is %d, want %d", what, got, want)
		}
		r.note("  (stamp %d, not %d: a retry drew one)", got, want)
		m.stamp = got
	}
	m.stampSlack = false
	return got
}

// outcome notes a call's error in the trace.
func (r *run) outcome(err error) { r.note("  -> %s", errString(err)) }

func errString(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
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
