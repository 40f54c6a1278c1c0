package bench

import (
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/sesscache/sesscache/token"
)

// Benchmark names are Benchmark<Workload>[/<distribution>]/store=<name>, so
// that `benchstat -col /store` puts the stores side by side.

// sink keeps results alive so the compiler cannot drop the work.
var sink atomic.Int64

// BenchmarkGet looks up existing sessions: the hot path of every request.
func BenchmarkGet(b *testing.B) {
	for _, d := range distributions(sessionCount(b)) {
		b.Run(d.name, func(b *testing.B) {
			for _, k := range kinds {
				b.Run("store="+k.name, func(b *testing.B) {
					s, lookup := fixture(b, k)
					var misses atomic.Int64
					parallel(b, d, func(pb *testing.PB, seq []uint32) {
						var n, miss int64
						for j := 0; pb.Next(); j++ {
							v, ok := s.Get(lookup[seq[j&seqMask]])
							if !ok {
								miss++
							}
							n += int64(len(v))
						}
						sink.Add(n)
						misses.Add(miss)
					})
					checkMisses(b, misses.Load())
				})
			}
		})
	}
}

// BenchmarkMix90_10 is 90% Gets and 10% Updates of the session just drawn,
// with new data, as a server whose handlers sometimes write the session.
func BenchmarkMix90_10(b *testing.B) {
	for _, d := range distributions(sessionCount(b)) {
		b.Run(d.name, func(b *testing.B) {
			for _, k := range kinds {
				if k.readsOnly {
					continue
				}
				b.Run("store="+k.name, func(b *testing.B) {
					s, lookup := fixture(b, k)
					var misses atomic.Int64
					var fill atomic.Int32
					parallel(b, d, func(pb *testing.PB, seq []uint32) {
						data := sessionData(byte(fill.Add(1)))
						var n, miss int64
						for j := 0; pb.Next(); j++ {
							id := lookup[seq[j&seqMask]]
							var ok bool
							if j%10 == 9 {
								ok = s.Update(id, data)
							} else {
								var v []byte
								v, ok = s.Get(id)
								n += int64(len(v))
							}
							if !ok {
								miss++
							}
						}
						sink.Add(n)
						misses.Add(miss)
					})
					checkMisses(b, misses.Load())
				})
			}
		})
	}
}

// BenchmarkUpdate overwrites existing sessions with new data.
func BenchmarkUpdate(b *testing.B) {
	for _, d := range distributions(sessionCount(b)) {
		b.Run(d.name, func(b *testing.B) {
			for _, k := range kinds {
				if k.readsOnly {
					continue
				}
				b.Run("store="+k.name, func(b *testing.B) {
					s, lookup := fixture(b, k)
					var misses atomic.Int64
					var fill atomic.Int32
					parallel(b, d, func(pb *testing.PB, seq []uint32) {
						data := sessionData(byte(fill.Add(1)))
						var miss int64
						for j := 0; pb.Next(); j++ {
							if !s.Update(lookup[seq[j&seqMask]], data) {
								miss++
							}
						}
						misses.Add(miss)
					})
					checkMisses(b, misses.Load())
				})
			}
		})
	}
}

func checkMisses(b *testing.B, misses int64) {
	b.Helper()
	if misses > 0 {
		b.Fatalf("%d of %d operations found no session", misses, b.N)
	}
}

// createChunk is how many keys a goroutine of BenchmarkCreate claims at a
// time, so that handing out keys costs one atomic add per chunk rather than
// one contended add per operation.
const createChunk = 1024

// BenchmarkCreate inserts b.N new sessions into an empty store, keys made
// before the timer starts. run.sh runs it with -benchtime=Nx, so that every
// store grows from empty to the fixture's size, through the same resizes.
//
// sesscache draws each ID itself (see sesscacheStore.Create); the peers are
// handed theirs. BenchmarkNewID measures the difference.
//
// dropped/op is the fraction of Creates the store did not keep: only
// ristretto drops writes, when its buffer is full, and its time per Create
// then counts work it did not do.
func BenchmarkCreate(b *testing.B) {
	for _, k := range kinds {
		if k.readsOnly {
			continue
		}
		b.Run("store="+k.name, func(b *testing.B) {
			// Alone on the heap, as in every other benchmark.
			release()
			keys := freshIDs(b.N + createChunk*runtime.GOMAXPROCS(0))
			s := k.open(len(keys))
			defer s.Close()
			data := sessionData(1)
			var next, dropped atomic.Int64
			runtime.GC()
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				var i, end int
				var drop int64
				for pb.Next() {
					if i == end {
						end = int(next.Add(createChunk))
						i = end - createChunk
					}
					if !s.Create(keys[i], data) {
						drop++
					}
					i++
				}
				dropped.Add(drop)
			})
			b.StopTimer()
			b.ReportMetric(float64(dropped.Load())/float64(b.N), "dropped/op")
		})
	}
}

// BenchmarkNewID measures drawing and encoding one session ID, which
// sesscache's Create includes and the peers' Creates do not.
func BenchmarkNewID(b *testing.B) {
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var n int64
		for pb.Next() {
			n += int64(len(token.New().String()))
		}
		sink.Add(n)
	})
}

// BenchmarkMemory reports the live heap each store holds per session, with
// N sessions of dataSize bytes, measured after a full collection before and
// after loading them. It runs alone on the heap and inserts from one
// goroutine. The keys are drawn during the loading, so a store that keeps
// its key strings is charged for them, as it would be in a server; one that
// keeps only a hash of them (ristretto) is not.
//
// B/session is the whole; B-overhead/session is what remains beyond the
// 22-byte ID and the data.
func BenchmarkMemory(b *testing.B) {
	n := sessionCount(b)
	for _, k := range kinds {
		b.Run("store="+k.name, func(b *testing.B) {
			release()
			data := sessionData(2)
			// One measurement per call, whatever b.N is: the figure does
			// not depend on it, and loading N sessions b.N times would make
			// one -benchtime for every benchmark impossible.
			before := heapLive()
			s := k.open(n)
			for range n {
				id := token.New().String()
				for !s.Create(id, data) {
					settle(s)
				}
			}
			settle(s)
			after := heapLive()
			runtime.KeepAlive(s)
			s.Close()
			per := (float64(after) - float64(before)) / float64(n)
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(per, "B/session")
			b.ReportMetric(per-token.Len-dataSize, "B-overhead/session")
		})
	}
}

// heapLive returns the bytes of live heap after a full collection; the
// second collection frees what the first one's finalizers released.
func heapLive() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkAdapter measures what the store interface costs: Gets through
// it against the same Gets written directly, for the unlocked map (where the
// call is the largest share of the work) and for sesscache.
func BenchmarkAdapter(b *testing.B) {
	for _, d := range distributions(sessionCount(b)) {
		b.Run(d.name, func(b *testing.B) {
			for _, k := range kinds {
				if k.name != "unlocked-map" && k.name != sesscacheName {
					continue
				}
				b.Run("store="+k.name, func(b *testing.B) {
					b.Run("call=direct", func(b *testing.B) {
						s, lookup := fixture(b, k)
						var misses atomic.Int64
						parallel(b, d, func(pb *testing.PB, seq []uint32) {
							var miss int64
							switch s := s.(type) {
							case *unlockedMap:
								miss = directMap(pb, s.m, lookup, seq)
							case *sesscacheStore:
								miss = directEngine(pb, s, lookup, seq)
							}
							misses.Add(miss)
						})
						checkMisses(b, misses.Load())
					})
					b.Run("call=interface", func(b *testing.B) {
						s, lookup := fixture(b, k)
						var misses atomic.Int64
						parallel(b, d, func(pb *testing.PB, seq []uint32) {
							var n, miss int64
							for j := 0; pb.Next(); j++ {
								v, ok := s.Get(lookup[seq[j&seqMask]])
								if !ok {
									miss++
								}
								n += int64(len(v))
							}
							sink.Add(n)
							misses.Add(miss)
						})
						checkMisses(b, misses.Load())
					})
				})
			}
		})
	}
}

// directMap is BenchmarkGet's loop with the map indexed in place.
func directMap(pb *testing.PB, m map[string][]byte, lookup []string, seq []uint32) (misses int64) {
	var n int64
	for j := 0; pb.Next(); j++ {
		v, ok := m[lookup[seq[j&seqMask]]]
		if !ok {
			misses++
		}
		n += int64(len(v))
	}
	sink.Add(n)
	return misses
}

// directEngine is BenchmarkGet's loop with the engine called in place.
func directEngine(pb *testing.PB, s *sesscacheStore, lookup []string, seq []uint32) (misses int64) {
	e := s.e
	var n int64
	for j := 0; pb.Next(); j++ {
		sess, err := e.Get(lookup[seq[j&seqMask]])
		if err != nil {
			misses++
		}
		n += int64(len(sess.Data()))
	}
	sink.Add(n)
	return misses
}
