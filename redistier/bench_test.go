package redistier

// Benchmarks. They need the servers of testdata/redis.sh (TestMain starts
// them when REDISTIER_STANDALONE is unset) and run against the standalone
// one; see README.md for the commands and what each is compared with.

import (
	"bytes"
	"math/rand"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sesscache/sesscache/engine"
)

const benchSessions = 1024

var benchData = bytes.Repeat([]byte("x"), 200)

func benchTopology() topology { return topologies()[0] }

// writers64 sets RunParallel's goroutines to 64 (or the next multiple of
// GOMAXPROCS), as redis-benchmark -c 64 has 64 clients.
func writers64(b *testing.B) {
	p := runtime.GOMAXPROCS(0)
	b.SetParallelism((64 + p - 1) / p)
}

// held creates n sessions on s and reads each until s holds its copy.
func heldSessions(b *testing.B, s *Store, n int, o engine.CreateOptions) []string {
	b.Helper()
	ids := make([]string, n)
	for i := range ids {
		sess, err := s.Create(ctx, o)
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = sess.ID()
	}
	settled(b, s, uint64(n)*ownEchoes(s)) // the creations' own invalidations, if they come
	for _, id := range ids {
		for try := 0; ; try++ {
			s.Find(ctx, id, nil) //nolint:errcheck
			r := s.Stats().Reads
			if _, err := s.Find(ctx, id, nil); err != nil {
				b.Fatal(err)
			}
			if s.Stats().Reads == r {
				break
			}
			if try > 100 {
				b.Fatal("no copy kept")
			}
		}
	}
	return ids
}

// BenchmarkGet compares three ways of looking a session up: Find on a
// local hit (goal: at most 1.3 times the plain engine's ns/op, and no
// allocation), the plain in-memory engine's Get, and one Redis GET per
// lookup on the same Redis (goal: the hit at least 50 times faster).
func BenchmarkGet(b *testing.B) {
	b.Run("tier-hit", func(b *testing.B) {
		s := open(b, benchTopology(), Options{KeyPrefix: freshPrefix()})
		ids := heldSessions(b, s, benchSessions, engine.CreateOptions{Data: benchData})
		reads := s.Stats().Reads
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := rand.Intn(benchSessions)
			for pb.Next() {
				if _, err := s.Find(ctx, ids[i%benchSessions], nil); err != nil {
					b.Error(err)
					return
				}
				i++
			}
		})
		b.StopTimer()
		if n := s.Stats().Reads - reads; n > 0 {
			b.ReportMetric(float64(n)/float64(b.N), "redis-reads/op")
		}
	})
	b.Run("engine", func(b *testing.B) {
		e, err := engine.Open(engine.Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer e.Close()
		ids := make([]string, benchSessions)
		for i := range ids {
			s, err := e.Create(ctx, engine.CreateOptions{Data: benchData})
			if err != nil {
				b.Fatal(err)
			}
			ids[i] = s.ID()
		}
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := rand.Intn(benchSessions)
			for pb.Next() {
				if _, err := e.Get(ids[i%benchSessions]); err != nil {
					b.Error(err)
					return
				}
				i++
			}
		})
	})
	b.Run("redis-GET", func(b *testing.B) {
		c := admin(b, benchTopology())
		p := freshPrefix()
		for i := range benchSessions {
			if err := c.Do(ctx, c.B().Set().Key(p+strconv.Itoa(i)).Value(string(benchData)).Build()).Error(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := rand.Intn(benchSessions)
			for pb.Next() {
				if err := c.Do(ctx, c.B().Get().Key(p+strconv.Itoa(i%benchSessions)).Build()).Error(); err != nil {
					b.Error(err)
					return
				}
				i++
			}
		})
	})
}

// BenchmarkWrite64 measures Create and Update from 64 goroutines, 200-byte
// data, against `redis-benchmark -t set -c 64 -d 200` on the same server
// (goal: at least 0.8 times its requests/s), with each layout side by side
// (benchstat -col /layout). Create-owned mints IDs in its owner's slot
// (about 256 tries). Each reports what Redis spent per operation (see
// redisProfile.report): its main thread's CPU, and calls and µs per call
// of each command.
func BenchmarkWrite64(b *testing.B) {
	for _, op := range []struct {
		name string
		run  func(b *testing.B, tp topology)
	}{
		{"Create", benchCreate(func(int64) engine.CreateOptions { return engine.CreateOptions{Data: benchData} })},
		{"Create-owned", benchCreate(func(n int64) engine.CreateOptions {
			return engine.CreateOptions{UserID: "user" + strconv.FormatInt(n%10000, 10), Data: benchData}
		})},
		{"Update", benchUpdate},
	} {
		b.Run("op="+op.name, func(b *testing.B) { eachBenchLayout(b, op.run) })
	}
}

// eachBenchLayout runs f as a sub-benchmark "layout=..." for each layout,
// over the standalone server.
func eachBenchLayout(b *testing.B, f func(b *testing.B, tp topology)) {
	for _, l := range layouts {
		tp := benchTopology()
		tp.layout = l
		b.Run("layout="+l.String(), func(b *testing.B) { f(b, tp) })
	}
}

// timed runs loop as the benchmark's timed part, and reports what Redis
// spent meanwhile.
func timed(b *testing.B, tp topology, loop func()) {
	adm := admin(b, tp)
	before := profileRedis(b, adm)
	b.ReportAllocs()
	b.ResetTimer()
	loop()
	b.StopTimer()
	profileRedis(b, adm).since(before).report(b, b.N)
}

func benchCreate(opts func(n int64) engine.CreateOptions) func(b *testing.B, tp topology) {
	return func(b *testing.B, tp topology) {
		s := open(b, tp, Options{KeyPrefix: freshPrefix()})
		writers64(b)
		var n atomic.Int64
		timed(b, tp, func() {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := s.Create(ctx, opts(n.Add(1))); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

func benchUpdate(b *testing.B, tp topology) {
	s := open(b, tp, Options{KeyPrefix: freshPrefix()})
	ids := make([]string, benchSessions)
	for i := range ids {
		sess, err := s.Create(ctx, engine.CreateOptions{Data: benchData})
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = sess.ID()
	}
	writers64(b)
	timed(b, tp, func() {
		b.RunParallel(func(pb *testing.PB) {
			i := rand.Intn(benchSessions)
			for pb.Next() {
				if _, err := s.Update(ctx, ids[i%benchSessions], 0, func(engine.Session) ([]byte, error) {
					return benchData, nil
				}); err != nil {
					b.Error(err)
					return
				}
				i++
			}
		})
	})
}

// BenchmarkTouchTraffic counts what sliding expiry costs Redis: 1000
// sessions, each used every second on one instance, for one simulated
// minute per iteration on a manual clock, at the default TouchLogInterval
// (1 minute). It reports Redis writes per active session per minute (goal:
// at most 1) and the invalidations they caused on a second instance that
// holds copies of every session (goal: 0).
func BenchmarkTouchTraffic(b *testing.B) { eachBenchLayout(b, benchTouchTraffic) }

func benchTouchTraffic(b *testing.B, tp topology) {
	const n = 1000
	clock := engine.NewManualClock(time.Now())
	opts := Options{KeyPrefix: freshPrefix(), TouchFlushInterval: time.Hour, Local: engine.Options{Clock: clock}}
	a := open(b, tp, opts)
	other := open(b, tp, opts)
	ids := heldSessions(b, a, n, engine.CreateOptions{})
	for _, id := range ids {
		if _, err := other.Find(ctx, id, nil); err != nil {
			b.Fatal(err)
		}
	}
	touches, inval := a.Stats().Touches, other.Stats().Invalidations
	b.ResetTimer()
	minutes := 0
	for b.Loop() {
		for range 60 {
			clock.Advance(time.Second)
			for _, id := range ids {
				if _, err := a.Find(ctx, id, nil); err != nil {
					b.Fatal(err)
				}
			}
			a.flushTouches(ctx)
		}
		minutes++
	}
	b.StopTimer()
	b.ReportMetric(float64(a.Stats().Touches-touches)/n/float64(minutes), "redis-writes/session/min")
	b.ReportMetric(float64(other.Stats().Invalidations-inval)/n/float64(minutes), "invalidations/session/min")
}

// BenchmarkZipf runs a zipf workload (s=1.1 over 10,000 sessions, 95%
// Find, 5% Update, 64 goroutines) on one instance alone and on three
// instances over the same Redis, each goroutine using one instance, and
// reports the local hit ratio; ns/op gives requests/s. Each layout runs
// side by side.
func BenchmarkZipf(b *testing.B) {
	for _, instances := range []int{1, 3} {
		b.Run("instances="+strconv.Itoa(instances), func(b *testing.B) {
			eachBenchLayout(b, func(b *testing.B, tp topology) {
				const n = 10000
				p := freshPrefix()
				stores := make([]*Store, instances)
				for i := range stores {
					stores[i] = open(b, tp, Options{KeyPrefix: p})
				}
				ids := make([]string, n)
				for i := range ids {
					s, err := stores[0].Create(ctx, engine.CreateOptions{Data: benchData})
					if err != nil {
						b.Fatal(err)
					}
					ids[i] = s.ID()
				}
				before := make([]engine.Stats, instances)
				for i, s := range stores {
					before[i] = s.Stats().Local
				}
				var g atomic.Int64
				writers64(b)
				adm := admin(b, tp)
				redis0 := profileRedis(b, adm)
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					k := g.Add(1)
					s := stores[int(k)%instances]
					r := rand.New(rand.NewSource(k))
					z := rand.NewZipf(r, 1.1, 1, n-1)
					for pb.Next() {
						id := ids[z.Uint64()]
						if r.Intn(100) < 5 {
							if _, err := s.Update(ctx, id, 0, func(engine.Session) ([]byte, error) { return benchData, nil }); err != nil {
								b.Error(err)
								return
							}
							continue
						}
						if _, err := s.Find(ctx, id, nil); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.StopTimer()
				profileRedis(b, adm).since(redis0).report(b, b.N)
				var hits, lookups uint64
				for i, s := range stores {
					st := s.Stats().Local
					hits += st.Hits - before[i].Hits
					lookups += st.Hits + st.Misses - before[i].Hits - before[i].Misses
				}
				b.ReportMetric(float64(hits)/float64(max(lookups, 1)), "hit-ratio")
			})
		})
	}
}
