package redistier

import (
	"errors"
	"sync"
	"time"
	"unsafe"

	"github.com/sesscache/sesscache/engine"
	"github.com/sesscache/sesscache/shard"
)

// INTERIM, until package engine can make one itself. UserSessions must
// return sessions as engine.Engine.UserSessions does: no token (ID empty)
// and the session's real Handle. The engine's public API builds such a
// "listed" view only for sessions it holds, and this instance holds no
// copy (and no token) of most of an owner's sessions. listedView builds
// the view the engine would build for a session recovered from disk (a
// record keyed by its handle), by mirroring engine.Session's layout. A
// self-check below verifies, once, that the mirror still matches the
// engine; if it does not, UserSessions fails with errNoListedView instead
// of returning anything wrong. The engine change that removes this file:
//
//	// ListedReplica returns the session with handle h and state st as
//	// UserSessions and All return sessions: no ID, that Handle.
//	func ListedReplica(h Handle, st SessionState) Session

// sessionMirror has engine.Session's fields, in order.
type sessionMirror struct {
	id   string
	rec  shard.Rec
	la   int64
	view uint8
}

// viewListed is engine's value for a session from All or UserSessions.
const viewListed = 2

var errNoListedView = errors.New("redistier: this engine version cannot list sessions through redistier (needs engine.ListedReplica)")

var (
	listedOnce sync.Once
	listedOK   bool
)

func buildListed(h engine.Handle, st engine.SessionState) engine.Session {
	k := shard.Key(h)
	m := shard.Meta{Version: st.Version, Created: st.CreatedAt.UnixNano(), Idle: int64(st.IdleTimeout),
		Absolute: st.AbsoluteExpiry.UnixNano(), Flags: shard.FlagCold, Digest: k}
	if !st.AuthenticatedAt.IsZero() {
		m.AuthAt = st.AuthenticatedAt.UnixNano()
	}
	if st.Fingerprint != 0 {
		m.Flags |= shard.FlagBound
		m.Fingerprint = st.Fingerprint
	}
	la := st.LastAccess.UnixNano()
	mirror := sessionMirror{rec: shard.NewRec(&k, m, la, st.UserID, st.Label, st.Data), la: la, view: viewListed}
	return *(*engine.Session)(unsafe.Pointer(&mirror))
}

func checkListed() bool {
	if unsafe.Sizeof(engine.Session{}) != unsafe.Sizeof(sessionMirror{}) {
		return false
	}
	h := engine.Handle{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	t0 := time.Unix(1_700_000_000, 0)
	st := engine.SessionState{Version: 7, UserID: "u", Label: "l", Data: []byte("d"), CreatedAt: t0,
		LastAccess: t0.Add(time.Minute), AuthenticatedAt: t0.Add(time.Second), IdleTimeout: time.Hour,
		AbsoluteExpiry: t0.Add(2 * time.Hour)}
	s := buildListed(h, st)
	return s.ID() == "" && s.Handle() == h && !s.Rotated() && s.UserID() == "u" && s.Label() == "l" &&
		string(s.Data()) == "d" && s.Version() == 7 && s.CreatedAt().Equal(t0) &&
		s.LastAccess().Equal(st.LastAccess) && s.AuthenticatedAt().Equal(st.AuthenticatedAt) &&
		s.IdleTimeout() == time.Hour && s.AbsoluteExpiry().Equal(st.AbsoluteExpiry)
}

// listedView returns the session with handle h and state st as a listed
// view: no ID, that Handle.
func listedView(h engine.Handle, st engine.SessionState) (engine.Session, error) {
	listedOnce.Do(func() { listedOK = checkListed() })
	if !listedOK {
		return engine.Session{}, errNoListedView
	}
	return buildListed(h, st), nil
}
