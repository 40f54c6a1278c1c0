package engine

import (
	"math/rand/v2"

	"github.com/sesscache/sesscache/shard"
)

// victim is a session chosen for eviction and its shard.
type victim struct {
	si int
	r  shard.Rec
}

// Eviction samples, as Redis's approximated LRU does: it looks at the
// earliest-deadline end of a few shards' heaps, where the sessions used
// least recently sit (their deadlines are last access plus idle timeout),
// and takes the best it saw.
const (
	evictShards = 4  // shards with candidates to look at
	evictPeek   = 32 // heap entries to look at per shard
)

// anonymousVictims returns up to n anonymous sessions to evict, not already
// in tx: expired ones first, then those with the earliest deadline among a
// sample. It looks further, up to every session, only when the sample holds
// too few.
func (e *Engine) anonymousVictims(n int, tx *txn) []victim {
	if e.anon.Load() <= 0 {
		return nil
	}
	var best []victim
	consider := func(si int, r shard.Rec) {
		if r.Flags()&shard.FlagAlias != 0 || r.UserID() != "" {
			return
		}
		for _, c := range tx.list() {
			if c.old == r {
				return
			}
		}
		for _, v := range best {
			if v.r == r {
				return
			}
		}
		d := r.Deadline(r.LastAccess())
		if len(best) < n {
			best = append(best, victim{si, r})
			return
		}
		worst := 0
		for i := range best {
			if best[i].r.Deadline(best[i].r.LastAccess()) > best[worst].r.Deadline(best[worst].r.LastAccess()) {
				worst = i
			}
		}
		if d < best[worst].r.Deadline(best[worst].r.LastAccess()) {
			best[worst] = victim{si, r}
		}
	}
	start := rand.IntN(len(e.shards))
	for _, peek := range [2]int{evictPeek, 1 << 30} {
		seen := 0
		for j := range e.shards {
			si := (start + j) % len(e.shards)
			s := &e.shards[si]
			found := false
			s.Lock()
			m := 0
			s.Range(func(r shard.Rec) bool {
				if m++; m > peek {
					return false
				}
				k := r.Key()
				if _, busy := s.pending[k]; !busy && r.Flags()&shard.FlagAlias == 0 && r.UserID() == "" {
					found = true
					consider(si, r)
				}
				return true
			})
			s.Unlock()
			if found {
				seen++
			}
			if seen >= evictShards && len(best) >= n {
				return best
			}
		}
		if len(best) >= n {
			return best
		}
	}
	return best
}
