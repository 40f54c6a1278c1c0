package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"
	"github.com/sesscache/sesscache/shard"
)

// userIndex maps an owner to the keys of its sessions and the shard each is
// in. It is striped like the shards. Lock order: shard locks (ascending
// index), then one stripe.
//
// It also holds, per user, a revocation's fence: while RevokeUser (or
// RevokeOthers, RevokeSession) runs for a user, commit makes every other
// write touching one of that user's sessions wait, so the revocation never
// chases a session that keeps moving and ends in a bounded number of
// steps. And it holds the writer locks that serialize the creations and
// logins of one user when MaxSessionsPerUser is set, so that the cap counts
// right.
type userIndex struct {
	stripes []userStripe
	mask    uint64
	fenced  atomic.Int64 // fences up, engine-wide: commit looks only if any
	writers [256]sync.Mutex
}

type userStripe struct {
	mu     sync.Mutex
	m      map[string]map[shard.Key]int
	fences map[string]chan struct{}
	_      [40]byte
}

func (x *userIndex) init(n int) {
	x.stripes = make([]userStripe, n)
	x.mask = uint64(n - 1)
	for i := range x.stripes {
		x.stripes[i].m = make(map[string]map[shard.Key]int)
		x.stripes[i].fences = make(map[string]chan struct{})
	}
}

func (x *userIndex) stripe(user string) *userStripe {
	return &x.stripes[xxhash.Sum64String(user)&x.mask]
}

func (x *userIndex) add(user string, k shard.Key, shardIdx int) {
	st := x.stripe(user)
	st.mu.Lock()
	set := st.m[user]
	if set == nil {
		set = make(map[shard.Key]int, 1)
		st.m[user] = set
	}
	set[k] = shardIdx
	st.mu.Unlock()
}

func (x *userIndex) remove(user string, k shard.Key) {
	st := x.stripe(user)
	st.mu.Lock()
	if set := st.m[user]; set != nil {
		delete(set, k)
		if len(set) == 0 {
			delete(st.m, user)
		}
	}
	st.mu.Unlock()
}

// move re-keys one of user's sessions in shard si from old to k.
func (x *userIndex) move(user string, old, k shard.Key, si int) {
	st := x.stripe(user)
	st.mu.Lock()
	if set := st.m[user]; set != nil {
		delete(set, old)
		set[k] = si
	}
	st.mu.Unlock()
}

// userKey is one session of a user: its key and shard.
type userKey struct {
	key   shard.Key
	shard int
}

// list returns the user's sessions.
func (x *userIndex) list(user string) []userKey {
	st := x.stripe(user)
	st.mu.Lock()
	keys := make([]userKey, 0, len(st.m[user]))
	for k, i := range st.m[user] {
		keys = append(keys, userKey{k, i})
	}
	st.mu.Unlock()
	return keys
}

// userRec is one of a user's sessions as the index led to it.
type userRec struct {
	si int
	h  uint64
	r  shard.Rec
}

// userRecs returns user's sessions: what the index lists, looked up in
// their shards. The index and the shards change together under the
// shard's lock, but this reads them without it: a listed session may be
// moving just then (a recovered one re-keyed on first use, a write
// applying itself), found under neither its old key nor, in this listing,
// its new one. Then it lists again, so that a session live throughout is
// never left out. After maxAttempts such passes (writes without end on the
// user's sessions) it returns the last one and false.
func (e *Engine) userRecs(user string) ([]userRec, bool) {
	var out []userRec
	for attempt := 0; attempt < maxAttempts; attempt++ {
		out = out[:0]
		moving := false
		for _, uk := range e.users.list(user) {
			h := shard.Hash(&uk.key)
			r := e.shards[uk.shard].Lookup(&uk.key, h)
			if r.IsZero() || r.UserID() != user {
				moving = true
				break
			}
			out = append(out, userRec{uk.shard, h, r})
		}
		if !moving {
			return out, true
		}
		runtime.Gosched()
	}
	return out, false
}

// count returns how many sessions the user has.
func (x *userIndex) count(user string) int {
	st := x.stripe(user)
	st.mu.Lock()
	n := len(st.m[user])
	st.mu.Unlock()
	return n
}

// writer returns the lock that serializes user's creations and logins.
func (x *userIndex) writer(user string) *sync.Mutex {
	return &x.writers[xxhash.Sum64String(user)%uint64(len(x.writers))]
}

// fence raises user's revocation fence, waiting out one already up, and
// returns the function that lowers it.
func (x *userIndex) fence(ctx context.Context, user string) (func(), error) {
	st := x.stripe(user)
	for {
		st.mu.Lock()
		old := st.fences[user]
		if old == nil {
			ch := make(chan struct{})
			st.fences[user] = ch
			x.fenced.Add(1)
			st.mu.Unlock()
			return func() {
				st.mu.Lock()
				delete(st.fences, user)
				st.mu.Unlock()
				x.fenced.Add(-1)
				close(ch)
			}, nil
		}
		st.mu.Unlock()
		select {
		case <-old:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// fenceOf returns the channel that closes when user's fence is lowered, or
// nil if there is none.
func (x *userIndex) fenceOf(user string) <-chan struct{} {
	st := x.stripe(user)
	st.mu.Lock()
	ch := st.fences[user]
	st.mu.Unlock()
	if ch == nil {
		return nil
	}
	return ch
}

// RevokeUser ends every session of user: "log out everywhere", or after a
// password change. Every session the user held when it was called is gone
// when it returns, whatever Creates, Rotates, logins and Updates run
// meantime (they wait for it). The deletions are logged as one record, so
// recovery applies all or none, and fsynced before it returns. It returns
// how many sessions it ended.
func (e *Engine) RevokeUser(ctx context.Context, user string) (int, error) {
	return e.revoke(ctx, user, func(Handle) bool { return true })
}

// RevokeOthers ends every session of user but the one whose handle is keep
// (the current one): "log out my other devices" (ASVS 3.3.4). It works as
// RevokeUser does and returns how many sessions it ended.
func (e *Engine) RevokeOthers(ctx context.Context, user string, keep Handle) (int, error) {
	return e.revoke(ctx, user, func(h Handle) bool { return h != keep })
}

// RevokeSession ends the session of user whose handle is h, as listed by
// UserSessions: a "log out that device" button. It returns ErrNotFound if
// user has no such session, so a handle cannot end another user's session.
func (e *Engine) RevokeSession(ctx context.Context, user string, h Handle) error {
	n, err := e.revoke(ctx, user, func(x Handle) bool { return x == h })
	if err == nil && n == 0 {
		return ErrNotFound
	}
	return err
}

// revoke ends the sessions of user whose handles doom says, behind user's
// fence, and returns how many it ended.
func (e *Engine) revoke(ctx context.Context, user string, doom func(Handle) bool) (total int, err error) {
	defer e.observe(OpRevoke, e.startTimer(), &err)
	if err := e.writable(); err != nil {
		return 0, err
	}
	if user == "" {
		return 0, fmt.Errorf("%w: empty user ID", ErrInvalid)
	}
	lower, err := e.users.fence(ctx, user)
	if err != nil {
		return 0, err
	}
	defer lower()
	// Under the fence only writes already past commit's checks can still
	// change the user's sessions; each pass waits for them, so the loop
	// ends once they have.
	for attempt := 0; ; attempt++ {
		recs, settled := e.userRecs(user)
		if !settled || attempt >= maxAttempts {
			return total, fmt.Errorf("sesscache: revoking: gave up after %d attempts", attempt+1)
		}
		now := e.now()
		tx := new(txn).init(txnRemove, now)
		tx.durable = true
		tx.exempt = user
		for _, ur := range recs {
			r := ur.r
			if r.Deadline(r.LastAccess()) <= now || !doom(handleOf(r)) {
				continue // expired sessions are not alive; the janitor takes them
			}
			tx.add(change{si: ur.si, h: ur.h, old: r, disk: e.diskKey(r), cause: EventRevoked, anyOld: true})
		}
		if len(tx.list()) == 0 {
			return total, nil
		}
		err := e.commit(ctx, tx)
		switch {
		case err == nil:
			total += len(tx.list())
		case !errors.Is(err, errStale):
			return total, err
		}
	}
}

// UserSessions returns the live sessions of user, oldest first, for a "your
// devices" page (ASVS 3.3.3): each with its Handle, CreatedAt, LastAccess,
// AuthenticatedAt and Label, and never its token (ID is empty). Sessions
// recovered from disk are included like any other.
func (e *Engine) UserSessions(ctx context.Context, user string) ([]Session, error) {
	if e.closed.Load() {
		return nil, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	recs, _ := e.userRecs(user)
	now := e.now()
	var out []Session
	for _, ur := range recs {
		r := ur.r
		la := r.LastAccess()
		if r.Deadline(la) <= now {
			continue
		}
		out = append(out, Session{rec: r, la: la, view: viewListed})
	}
	slices.SortFunc(out, func(a, b Session) int { return cmp.Compare(a.rec.Created(), b.rec.Created()) })
	return out, nil
}

// addEvictions adds to tx, which creates or logs in a session for user
// (keep), the removals the caps call for: user's sessions that
// authenticated longest ago beyond MaxSessionsPerUser, then anonymous
// sessions for what over says Create reserved beyond MaxSessions and
// MaxAnonymousSessions. It returns ErrFull if there is no anonymous session
// to make room with.
func (e *Engine) addEvictions(tx *txn, user string, over overage, keep shard.Key) error {
	freed := 0
	if limit := e.opts.MaxSessionsPerUser; user != "" && limit > 0 {
		recs, settled := e.userRecs(user)
		if !settled {
			return errStale // the caller tries again
		}
		now := e.now()
		var mine []shard.Rec
		var shards []int
		for _, ur := range recs {
			r := ur.r
			if r.Key() == keep || r.Deadline(r.LastAccess()) <= now {
				continue // sessions past their deadline neither count nor are chosen
			}
			mine = append(mine, r)
			shards = append(shards, ur.si)
		}
		order := make([]int, len(mine))
		for i := range order {
			order[i] = i
		}
		slices.SortFunc(order, func(a, b int) int { return cmp.Compare(mine[a].AuthAt(), mine[b].AuthAt()) })
		for _, i := range order[:max(0, len(mine)-(limit-1))] {
			tx.add(e.eviction(shards[i], mine[i]))
			freed++
		}
	}
	need := max(over.total-freed, over.anon)
	if need <= 0 {
		return nil
	}
	victims := e.anonymousVictims(need, tx)
	if len(victims) < need {
		return ErrFull
	}
	for _, v := range victims {
		tx.add(e.eviction(v.si, v.r))
	}
	return nil
}

// eviction is the change that evicts r from shard si.
func (e *Engine) eviction(si int, r shard.Rec) change {
	k := r.Key()
	return change{si: si, h: shard.Hash(&k), old: r, disk: e.diskKey(r), cause: EventEvicted, anyOld: true}
}

// overage is how many sessions a Create must evict to stay within
// MaxSessions (total) and MaxAnonymousSessions (anon).
type overage struct{ total, anon int }

// reserve counts a session about to be created and says what it takes the
// counts over.
func (e *Engine) reserve(anonymous bool) overage {
	var o overage
	if n, limit := e.live.Add(1), int64(e.opts.MaxSessions); limit > 0 && n > limit {
		o.total = 1
	}
	if anonymous {
		if n, limit := e.anon.Add(1), int64(e.opts.MaxAnonymousSessions); limit > 0 && n > limit {
			o.anon = 1
		}
	}
	return o
}

func (e *Engine) unreserve(anonymous bool) {
	e.live.Add(-1)
	if anonymous {
		e.anon.Add(-1)
	}
}
