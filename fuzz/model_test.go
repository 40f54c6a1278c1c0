package fuzz

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"fmt"
	"slices"
	"time"

	"github.com/sesscache/sesscache/engine"
	"github.com/sesscache/sesscache/token"
)

// model is the reference the engine target checks the engine against: the
// sessions as DESIGN.md and the engine's documentation describe them, and
// nothing of the engine's machinery (no shards, no heaps, no log format).
//
// Besides what a caller sees, it tracks what the log and snapshots hold
// (onDisk, diskLA, diskLogged), because that decides what a reopened engine
// recovers, and the log's last LSN, because every write and every logged
// touch takes exactly one.
//
// Two things it cannot know exactly, and allows for:
//
//   - The janitor removes sessions past their deadline whenever it runs, on
//     its own goroutine, without logging anything. The model learns of each
//     removal from its EventExpired (Options.OnEvent). Until then a session
//     past its deadline may or may not still be held, so a call may find it
//     (ErrExpired) or not (ErrNotFound, and its event must follow).
//   - Recovery drops expired sessions a whole second at a time (the expiry
//     heap keeps deadlines in seconds), so a session whose deadline passed in
//     the last second before Open may still be held, or not, and no event
//     ever says which (mSession.unsure).
//
// MaxSessions and MaxAnonymousSessions evict an anonymous session that is
// only approximately the least recently used; the model does not predict
// which, but checks that the victim was an anonymous session it holds, that
// the number evicted is what the caps call for, and that the caps hold.
type model struct {
	cfg   engineConfig
	now   int64 // unix ns, the engine's manual clock
	stamp int64 // the last creation or authentication time handed out (engine.nextStamp)
	// stampSlack: the engine may have handed out stamps the model did not
	// see: a Create retried after the janitor reaped the expired session
	// it meant to evict draws a new one.
	stampSlack bool
	sessions   map[string]*mSession        // by current token; kept while held, on disk, or owed an event
	byHandle   map[engine.Handle]*mSession // the same, by handle
	aliases    map[string]mAlias           // old token of a plain rotation -> new, during RotateGrace
	lsn        uint64                      // the log's last LSN
	snapLSN    uint64                      // LSN of the newest snapshot
	issued     []string                    // every token the engine returned, in order
	issuedAt   map[string]struct{}         // the same, as a set
	handles    []engine.Handle             // every handle a session had, in order
	c          counts                      // Stats counters since Open that the model knows exactly
	expired    uint64                      // EventExpired received since Open
}

// counts are the Stats counters the model predicts exactly.
type counts struct {
	Hits, Misses, Created, Updated, Rotated, Deleted, Revoked, Evicted, BindingMismatches uint64
}

// mSession is one session as the model knows it.
type mSession struct {
	id      string        // current token
	h       engine.Handle // its handle
	data    []byte
	version uint64
	user    string
	label   string
	created int64
	authAt  int64 // 0: never authenticated
	idle    int64
	abs     int64  // absolute deadline, unix ns
	fp      []byte // the fingerprint it is bound to; nil when unbound
	la      int64  // last access, in memory
	logged  int64  // unix seconds of the last logged access, in memory: a Get logs a touch once its second is TouchLogInterval past it

	// present: the engine may hold it. A present session past its deadline
	// may have been reaped already, its event not yet received.
	present bool
	// unsure: present, but recovery may have dropped it without a trace
	// (past its deadline, in the last second before Open).
	unsure bool
	// late: not present, but a janitor's EventExpired for it may still come
	// (it went while unsure, and the janitor may have been the one).
	late bool

	onDisk     bool  // recovery would rebuild it (from a Put not deleted since)
	diskLA     int64 // the last access recovery would restore
	diskLogged int64 // what logged would be after recovery: the second of the last Put's access
}

type mAlias struct {
	to    string // the token it leads to
	until int64  // unix ns; the alias works while now < until
}

func newModel(cfg engineConfig, now int64) *model {
	return &model{cfg: cfg, now: now, sessions: map[string]*mSession{}, byHandle: map[engine.Handle]*mSession{},
		aliases: map[string]mAlias{}, issuedAt: map[string]struct{}{}}
}

// unixSec is the engine's whole-second view of a time for touch logging.
func unixSec(ns int64) int64 { return min(max(ns/1e9, 0), 1<<32-1) }

// deadline is min(la+idle, abs), computed without overflow as the engine does.
func (s *mSession) deadline() int64 {
	if s.idle > s.abs-s.la {
		return s.abs
	}
	return s.la + s.idle
}

func (m *model) live(s *mSession) bool { return s.deadline() > m.now }

// held reports whether the engine surely holds s: present and live (the
// janitor never removes a live session).
func (m *model) held(s *mSession) bool { return s.present && m.live(s) }

// handleOf returns the handle of the session whose token is tok: the first
// 16 bytes of the SHA-256 of its raw ID.
func handleOf(tok string) engine.Handle {
	id, err := token.Parse(tok[:min(len(tok), token.Len)])
	if err != nil {
		panic(fmt.Sprintf("handle of a token the engine issued: %v", err))
	}
	sum := sha256.Sum256(id[:])
	return engine.Handle(sum[:16])
}

// issue records a token the engine handed out; it must be new.
func (m *model) issue(id string) error {
	if _, dup := m.issuedAt[id]; dup {
		return fmt.Errorf("the engine issued token #%d twice", slices.Index(m.issued, id))
	}
	m.issued = append(m.issued, id)
	m.issuedAt[id] = struct{}{}
	return nil
}

// nextStamp is the engine's creation and authentication time: now, or just
// after the last one handed out, so that they order sessions strictly.
func (m *model) nextStamp() int64 {
	m.stamp = max(m.now, m.stamp+1)
	return m.stamp
}

// put records a logged Put of s at its current last access: the state
// recovery would rebuild for it. The caller counts the record's LSN.
func (m *model) put(s *mSession) {
	s.onDisk = true
	s.diskLA = s.la
	s.diskLogged = unixSec(s.la)
}

// access is a lookup's touch: once the clock is touchGrain (or a 64th of
// the session's idle timeout, if shorter) past the last access, the last
// access moves to now, and is logged (one LSN) when its
// second is TouchLogInterval past the last logged one.
func (m *model) access(s *mSession) {
	if m.now-s.la < min(int64(touchGrain), s.idle>>6) {
		return
	}
	s.la = m.now
	if sec := unixSec(m.now); sec-s.logged >= int64(m.cfg.touchLog/time.Second) && sec > s.logged {
		s.logged = sec
		s.diskLA = m.now
		m.lsn++
	}
}

// create adds a session the engine created at stamp, its last access now.
func (m *model) create(id string, stamp int64, user, label string, data []byte, idle, abs time.Duration, fp []byte) *mSession {
	s := &mSession{id: id, h: handleOf(id), data: bytes.Clone(data), version: 1, user: user, label: label,
		created: stamp, idle: int64(idle), abs: satAdd(stamp, int64(abs)), la: m.now, logged: unixSec(m.now),
		present: true}
	if user != "" {
		s.authAt = stamp
	}
	if len(fp) > 0 {
		s.fp = bytes.Clone(fp)
	}
	m.sessions[id] = s
	m.byHandle[s.h] = s
	m.handles = append(m.handles, s.h)
	m.put(s)
	return s
}

// remove ends s by a logged write (Delete, revocation, eviction): gone from
// memory and from disk. The caller counts the record's LSN.
func (m *model) remove(s *mSession) {
	s.present, s.unsure, s.late, s.onDisk = false, false, false, false
}

// rotate moves s to the token nid. The caller sets what else changes.
func (m *model) rotate(s *mSession, nid string) {
	old, oldH := s.id, s.h
	delete(m.sessions, old)
	delete(m.byHandle, oldH)
	s.id, s.h = nid, handleOf(nid)
	s.version++
	s.la = max(m.now, s.la)
	s.logged = unixSec(s.la)
	m.sessions[nid] = s
	m.byHandle[s.h] = s
	m.handles = append(m.handles, s.h)
	m.put(s)
}

// userVictims returns the sessions MaxSessionsPerUser evicts when user
// gains one more: beyond the cap, those of user's live sessions that
// authenticated longest ago. Sessions past their deadline neither count
// nor are chosen.
func (m *model) userVictims(user string) []*mSession {
	limit := m.cfg.maxPerUser
	if limit == 0 || user == "" {
		return nil
	}
	var mine []*mSession
	for _, s := range m.sessions {
		if s.user == user && m.held(s) {
			mine = append(mine, s)
		}
	}
	slices.SortFunc(mine, func(a, b *mSession) int { return cmp.Compare(a.authAt, b.authAt) })
	return mine[:max(0, len(mine)-(limit-1))]
}

// tally counts sessions: those surely held (present and live) and those
// perhaps held (present and past their deadline), with the anonymous ones
// among each.
type tally struct{ held, maybe, heldAnon, maybeAnon int }

func (m *model) tally() tally {
	var t tally
	for _, s := range m.sessions {
		switch {
		case m.held(s):
			t.held++
			if s.user == "" {
				t.heldAnon++
			}
		case s.present:
			t.maybe++
			if s.user == "" {
				t.maybeAnon++
			}
		}
	}
	return t
}

// snapshotWritten records a snapshot: every live session is written whole
// at its current last access; nothing else is on disk any more.
func (m *model) snapshotWritten(lsn uint64) {
	for _, s := range m.sessions {
		if m.held(s) {
			m.put(s)
		} else {
			s.onDisk = false
		}
	}
	m.snapLSN = lsn
}

// dirty reports whether a snapshot now would write one: something was
// logged since the last.
func (m *model) dirty() bool { return m.lsn != 0 && m.lsn != m.snapLSN }

// recovery is what the model expects Open to recover.
type recovery struct {
	onDisk   int // sessions recovery rebuilds: kept or dropped as expired
	live     int
	dropping int // past their deadline, in the last second: kept or dropped
}

// reopen turns the model into what a reopened engine holds: what the disk
// holds, at its logged last access, without rotation aliases (not logged),
// those already past their deadline dropped (but see mSession.unsure), and
// the counters zero.
func (m *model) reopen() recovery {
	var rec recovery
	clear(m.aliases)
	m.c, m.expired = counts{}, 0
	m.stampSlack = false // the reopened engine stamps after what it recovers, which the model has seen
	for id, s := range m.sessions {
		s.unsure, s.late = false, false
		if !s.onDisk {
			delete(m.sessions, id)
			delete(m.byHandle, s.h)
			continue
		}
		rec.onDisk++
		s.la, s.logged = s.diskLA, s.diskLogged
		switch d := s.deadline(); {
		case d > m.now:
			s.present = true
			rec.live++
		case d > m.now/1e9*1e9:
			s.present, s.unsure = true, true
			rec.dropping++
		default:
			s.present = false
		}
	}
	return rec
}

// sessionView is what a Session shows, as a comparable string.
func sessionView(s engine.Session) string {
	return viewString(s.ID(), s.Rotated(), s.Handle(), s.UserID(), s.Label(), unixNano(s.AuthenticatedAt()), s.Data(),
		s.Version(), unixNano(s.CreatedAt()), unixNano(s.LastAccess()), unixNano(s.Deadline()), int64(s.IdleTimeout()),
		unixNano(s.AbsoluteExpiry()))
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func viewString(id string, rotated bool, h engine.Handle, user, label string, authAt int64, data []byte, version uint64,
	created, la, deadline, idle, abs int64) string {
	return fmt.Sprintf("id=%.8q rotated=%v handle=%.8s user=%.8q label=%.8q auth=%d data=%x v=%d created=%d la=%d deadline=%d idle=%d abs=%d",
		id, rotated, h, user, label, authAt, data, version, created, la, deadline, idle, abs)
}

// fullView is what a call given s's own token (or that made it) shows.
func (s *mSession) fullView() string {
	return viewString(s.id, false, s.h, s.user, s.label, s.authAt, s.data, s.version, s.created, s.la, s.deadline(), s.idle, s.abs)
}

// listedView is what All and UserSessions show: no token.
func (s *mSession) listedView() string {
	return viewString("", false, s.h, s.user, s.label, s.authAt, s.data, s.version, s.created, s.la, s.deadline(), s.idle, s.abs)
}

// graceView is what an old token shows during RotateGrace: read-only and
// anonymous (no owner, authentication time or handle), the session's
// current data, its last access not moved.
func (s *mSession) graceView(old string) string {
	return viewString(old, true, engine.Handle{}, "", s.label, 0, s.data, s.version, s.created, s.la, s.deadline(), s.idle, s.abs)
}

// allViews returns what All should show: the live sessions, sorted.
func (m *model) allViews() []string {
	var out []string
	for _, s := range m.sessions {
		if m.held(s) {
			out = append(out, s.listedView())
		}
	}
	slices.Sort(out)
	return out
}

// userSessions returns what UserSessions(user) should show, oldest first.
func (m *model) userSessions(user string) []string {
	var mine []*mSession
	for _, s := range m.sessions {
		if s.user == user && user != "" && m.held(s) {
			mine = append(mine, s)
		}
	}
	slices.SortFunc(mine, func(a, b *mSession) int { return cmp.Compare(a.created, b.created) })
	out := make([]string, len(mine))
	for i, s := range mine {
		out[i] = s.listedView()
	}
	return out
}

// satAdd returns a+b, saturating instead of overflowing.
func satAdd(a, b int64) int64 {
	if s := a + b; (s > a) == (b > 0) {
		return s
	}
	if b > 0 {
		return 1<<63 - 1
	}
	return -1 << 63
}
