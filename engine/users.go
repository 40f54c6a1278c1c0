package engine

import (
	"fmt"
	"sync"

	"github.com/cespare/xxhash/v2"
	"github.com/sesscache/sesscache/shard"
	"github.com/sesscache/sesscache/wal"
)

// userIndex maps an owner to the keys of its sessions and the shard each is
// in. It is striped like the shards. Lock order: shard locks (ascending
// index), then one stripe.
type userIndex struct {
	stripes []userStripe
	mask    uint64
}

type userStripe struct {
	mu sync.Mutex
	m  map[string]map[shard.Key]int
	_  [48]byte
}

func (x *userIndex) init(n int) {
	x.stripes = make([]userStripe, n)
	x.mask = uint64(n - 1)
	for i := range x.stripes {
		x.stripes[i].m = make(map[string]map[shard.Key]int)
	}
}

func (x *userIndex) stripe(user string) *userStripe {
	return &x.stripes[xxhash.Sum64String(user)&x.mask]
}

func (x *userIndex) add(user string, k shard.Key, shardIdx int) int {
	st := x.stripe(user)
	st.mu.Lock()
	set := st.m[user]
	if set == nil {
		set = make(map[shard.Key]int, 1)
		st.m[user] = set
	}
	set[k] = shardIdx
	n := len(set)
	st.mu.Unlock()
	return n
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

// count returns how many sessions the user has.
func (x *userIndex) count(user string) int {
	st := x.stripe(user)
	st.mu.Lock()
	n := len(st.m[user])
	st.mu.Unlock()
	return n
}

// enforceUserCap deletes user's oldest sessions, never keep, until the user
// holds at most Options.MaxSessionsPerUser live ones. Sessions past their
// deadline do not exist for any caller, so they neither count nor are
// chosen, whether or not the janitor has reaped them yet. Concurrent
// creators for one user race to delete the same oldest session, so between
// them they delete only as many as the cap requires.
func (e *Engine) enforceUserCap(user string, keep shard.Key) error {
	limit := e.opts.MaxSessionsPerUser
	for {
		keys := e.users.list(user)
		if len(keys) <= limit {
			return nil
		}
		now := e.clock.nanos()
		live := 0
		var victim shard.Rec
		var vk userKey
		for _, uk := range keys {
			r := e.shards[uk.shard].Lookup(&uk.key, shard.Hash(&uk.key))
			if r.IsZero() || r.Deadline(r.LastAccess()) <= now {
				continue
			}
			live++
			if uk.key == keep {
				continue
			}
			if victim.IsZero() || r.Created() < victim.Created() {
				victim, vk = r, uk
			}
		}
		if live <= limit || victim.IsZero() {
			return nil
		}
		if err := e.evict(user, vk, victim, limit); err != nil {
			return err
		}
	}
}

// evict deletes victim, one of user's sessions, if it is still there and the
// user still holds more than limit sessions.
func (e *Engine) evict(user string, uk userKey, victim shard.Rec, limit int) error {
	p := e.pending()
	defer release(p)
	if err := encodeDelete(p, diskKey(victim)); err != nil {
		return err
	}
	s := &e.shards[uk.shard].Shard
	h := shard.Hash(&uk.key)
	s.Lock()
	if !s.Current(victim, h) || e.users.count(user) <= limit {
		s.Unlock()
		return nil
	}
	lsn, err := e.appendLocked(p)
	if err != nil {
		s.Unlock()
		return err
	}
	e.forget(uk.shard, victim)
	s.Remove(victim, h)
	s.Unlock()
	e.stats.deleted.Add(1)
	return e.wait(lsn)
}

// RevokeUser deletes every session owned by user that existed when it was
// called, including any rotated meanwhile, and returns how many it deleted.
// The deletions are logged as one record, so recovery applies all or none.
// Sessions the user creates while it runs may survive.
func (e *Engine) RevokeUser(user string) (int, error) {
	if e.closed.Load() {
		return 0, ErrClosed
	}
	if user == "" {
		return 0, fmt.Errorf("%w: empty user ID", ErrInvalid)
	}
	start := e.clock.nanos()
	total := 0
	p := e.pending()
	defer release(p)
	type doomed struct {
		r  shard.Rec
		si int
		h  uint64
	}
	for {
		var victims []doomed
		var dels []wal.Record
		var idx []int
		moved := false
		for _, uk := range e.users.list(user) {
			h := shard.Hash(&uk.key)
			r := e.shards[uk.shard].Lookup(&uk.key, h)
			if r.IsZero() {
				// Deleted, or rotated to a key the next listing holds.
				moved = true
				continue
			}
			if r.UserID() != user || r.Created() > start {
				continue
			}
			victims = append(victims, doomed{r, uk.shard, h})
			idx = append(idx, uk.shard)
			if p != nil {
				dels = append(dels, wal.Record{Op: wal.OpDelete, Key: diskKey(r)})
			}
		}
		if len(victims) > 0 {
			if p != nil {
				if err := p.Encode(&wal.Record{Op: wal.OpBatch, Ops: dels}); err != nil {
					return total, err
				}
			}
			unlock := e.lockShards(idx...)
			changed := false
			for _, v := range victims {
				if !e.shards[v.si].Current(v.r, v.h) {
					changed = true
					break
				}
			}
			if changed {
				unlock()
				continue
			}
			lsn, err := e.appendLocked(p)
			if err != nil {
				unlock()
				return total, err
			}
			for _, v := range victims {
				e.forget(v.si, v.r)
				e.shards[v.si].Remove(v.r, v.h)
			}
			unlock()
			e.stats.deleted.Add(uint64(len(victims)))
			total += len(victims)
			if err := e.wait(lsn); err != nil {
				return total, err
			}
		}
		if !moved {
			return total, nil
		}
	}
}
