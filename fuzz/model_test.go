package fuzz

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"time"
)

// model is the reference the engine target checks the engine against: a
// plain map of sessions with the rules of DESIGN.md and the engine's
// documentation, and nothing of the engine's machinery (no shards, no log).
// Besides what a caller sees, it tracks what the log and snapshots hold
// (diskLA, diskLogged, dirty), because that decides what a reopened engine
// recovers: a restart may end an idle session early by up to the touch
// interval, never later.
type model struct {
	cfg      engineConfig
	now      int64                // unix ns, the engine's manual clock
	sessions map[string]*mSession // by current token; expired ones stay until deleted or dropped at reopen
	aliases  map[string]mAlias    // old token of a rotation -> new, during RotateGrace
	dirty    bool                 // a record was logged since the last snapshot
	snapLSN  uint64               // LSN of the newest snapshot, as the engine reported it
	issued   []string             // every token the engine returned, in order
	issuedAt map[string]struct{}  // the same, as a set
}

// mSession is one session as the model knows it.
type mSession struct {
	id      string
	data    []byte
	version uint64
	user    string
	created int64
	idle    int64
	abs     int64  // absolute deadline, unix ns
	fp      []byte // the fingerprint it is bound to; nil when unbound
	la      int64  // last access, in memory
	logged  int64  // unix seconds of the last logged access, in memory: a Get logs a touch when its second is past it
	cold    bool   // recovered and its token not presented since: Range shows no ID
	// dropping: past its deadline when the engine reopened, in the last
	// second before it. Recovery drops expired sessions a whole second at a
	// time (the expiry heap keeps deadlines in seconds), so such a session
	// may still be held, invisible, until the janitor reaps it.
	dropping bool

	diskLA     int64 // the last access recovery would restore
	diskLogged int64 // what logged would be after recovery: the second of the last Put's access
}

type mAlias struct {
	to    string
	until int64 // unix ns; the alias works while now < until
}

func newModel(cfg engineConfig, now int64) *model {
	return &model{cfg: cfg, now: now, sessions: map[string]*mSession{}, aliases: map[string]mAlias{},
		issuedAt: map[string]struct{}{}}
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

// issue records a token the engine handed out; it must be new.
func (m *model) issue(id string) error {
	if _, dup := m.issuedAt[id]; dup {
		return fmt.Errorf("the engine issued token #%d twice", slices.Index(m.issued, id))
	}
	m.issued = append(m.issued, id)
	m.issuedAt[id] = struct{}{}
	return nil
}

// put records a logged Put of s at its current last access: the state
// recovery would rebuild for it.
func (m *model) put(s *mSession) {
	s.diskLA = s.la
	s.diskLogged = unixSec(s.la)
	m.dirty = true
}

// access is a Get's touch: the last access moves to now, and is logged when
// its second is past the last logged one.
func (m *model) access(s *mSession) {
	if m.now <= s.la {
		return
	}
	s.la = m.now
	if sec := unixSec(m.now); sec > s.logged {
		s.logged = sec
		s.diskLA = m.now
		m.dirty = true
	}
}

// create adds a session the engine created.
func (m *model) create(id string, user string, data []byte, idle, abs time.Duration, fp []byte) *mSession {
	s := &mSession{id: id, data: bytes.Clone(data), version: 1, user: user, created: m.now,
		idle: int64(idle), abs: satAdd(m.now, int64(abs)), la: m.now, logged: unixSec(m.now)}
	if len(fp) > 0 {
		s.fp = bytes.Clone(fp)
	}
	m.sessions[id] = s
	m.put(s)
	return s
}

// remove deletes s, as a logged Delete does.
func (m *model) remove(s *mSession) {
	delete(m.sessions, s.id)
	m.dirty = true
}

// rotate moves s to the token nid, possibly to a new owner.
func (m *model) rotate(s *mSession, nid, owner string) {
	old := s.id
	delete(m.sessions, old)
	s.id = nid
	s.version++
	s.la = max(m.now, s.la)
	s.logged = unixSec(s.la)
	s.cold = false
	if owner != "" {
		s.user = owner
	}
	m.sessions[nid] = s
	m.put(s)
	if g := m.cfg.rotateGrace; g > 0 {
		m.aliases[old] = mAlias{to: nid, until: satAdd(m.now, int64(g))}
	}
}

// enforceCap applies MaxSessionsPerUser after user gained the session keep:
// while user holds more live sessions than the cap, the oldest other than
// keep is deleted. Expired sessions do not exist for any caller, so they
// neither count nor are chosen.
func (m *model) enforceCap(user, keep string) {
	limit := m.cfg.maxPerUser
	if limit == 0 || user == "" {
		return
	}
	for {
		var mine []*mSession
		for _, s := range m.sessions {
			if s.user == user && m.live(s) {
				mine = append(mine, s)
			}
		}
		if len(mine) <= limit {
			return
		}
		var victim *mSession
		for _, s := range mine {
			if s.id != keep && (victim == nil || s.created < victim.created) {
				victim = s
			}
		}
		if victim == nil {
			return
		}
		m.remove(victim)
	}
}

// snapshotWritten records a snapshot: every live session is written whole
// at its current last access.
func (m *model) snapshotWritten(lsn uint64) {
	for _, s := range m.sessions {
		if m.live(s) {
			s.diskLA = s.la
			s.diskLogged = unixSec(s.la)
		}
	}
	m.dirty = false
	m.snapLSN = lsn
}

// reopen turns the model into what a reopened engine recovers: sessions at
// their logged last access, keyed by digest until presented, and those
// already past their deadline then dropped (but see mSession.dropping).
// Rotation aliases are not logged. It returns how many sessions recovery may
// count beyond the live ones.
func (m *model) reopen() (dropping int) {
	clear(m.aliases)
	for id, s := range m.sessions {
		s.la, s.logged, s.cold = s.diskLA, s.diskLogged, true
		switch {
		case m.live(s):
		case s.deadline() > m.now/1e9*1e9:
			s.dropping = true
			dropping++
		default:
			delete(m.sessions, id)
		}
	}
	return dropping
}

// liveUsers returns how many sessions of user are live and how many exist
// past their deadline but not yet removed by a call.
func (m *model) userSessions(user string) (live, expired int) {
	for _, s := range m.sessions {
		if s.user != user {
			continue
		}
		if m.live(s) {
			live++
		} else {
			expired++
		}
	}
	return live, expired
}

// view is what Range shows of one session, as a comparable string.
func view(id string, data []byte, version uint64, user string, created, la, deadline, idle, abs int64) string {
	return fmt.Sprintf("id=%q data=%x v=%d user=%q created=%d la=%d deadline=%d idle=%d abs=%d",
		id, data, version, user, created, la, deadline, idle, abs)
}

// rangeViews returns the views Range should show, sorted.
func (m *model) rangeViews() []string {
	var out []string
	for _, s := range m.sessions {
		if !m.live(s) {
			continue
		}
		id := s.id
		if s.cold {
			id = ""
		}
		out = append(out, view(id, s.data, s.version, s.user, s.created, s.la, s.deadline(), s.idle, s.abs))
	}
	slices.SortFunc(out, cmp.Compare)
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
