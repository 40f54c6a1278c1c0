package engine

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sesscache/sesscache/token"
)

// The fixture: one engine holding benchN() sessions (1M unless
// SESSCACHE_BENCH_N says otherwise) of benchData bytes,
// built once and shared by every benchmark in this file, with the same IDs in
// an unlocked map as the physical-limit baseline.
const (
	benchSessions = 1 << 20
	benchData     = 200
	seqLen        = 1 << 16
)

var (
	fixtureOnce sync.Once
	fixtureEng  *Engine
	fixtureIDs  []string
	fixtureMap  map[string][]byte
	zipfSeq     []uint32 // key indexes drawn from a Zipf distribution
	uniformSeq  []uint32
)

func fixture(b *testing.B) (*Engine, []string) {
	b.Helper()
	fixtureOnce.Do(func() {
		e, err := Open(Options{})
		if err != nil {
			panic(err)
		}
		fixtureEng = e
		n := benchN()
		fixtureIDs = make([]string, n)
		fixtureMap = make(map[string][]byte, n)
		data := make([]byte, benchData)
		data[0] = 1
		for i := range fixtureIDs {
			s, err := e.Create(bg, CreateOptions{Data: data})
			if err != nil {
				panic(err)
			}
			fixtureMap[s.ID()] = s.Data()
			fixtureIDs[i] = s.ID()
		}
		// Look up with copies, as a server does with the ID it reads from a
		// request, made in a pass of their own: the map's key comparison can
		// neither shortcut on pointer equality nor find the stored key on a
		// line the copy just brought in.
		for i, id := range fixtureIDs {
			fixtureIDs[i] = strings.Clone(id)
		}
		r := rand.New(rand.NewPCG(1, 2))
		z := rand.NewZipf(r, 1.01, 1, uint64(n-1))
		zipfSeq = make([]uint32, seqLen)
		uniformSeq = make([]uint32, seqLen)
		// Scatter ranks over the ID list so hot keys are not neighbours.
		perm := r.Perm(n)
		for i := range zipfSeq {
			zipfSeq[i] = uint32(perm[z.Uint64()])
			uniformSeq[i] = uint32(r.IntN(n))
		}
	})
	return fixtureEng, fixtureIDs
}

// zipfIndexes draws a Zipf key sequence over n sessions, ranks scattered.
func zipfIndexes(n int) []uint32 {
	r := rand.New(rand.NewPCG(3, 4))
	z := rand.NewZipf(r, 1.01, 1, uint64(n-1))
	perm := r.Perm(n)
	seq := make([]uint32, seqLen)
	for i := range seq {
		seq[i] = uint32(perm[z.Uint64()])
	}
	return seq
}

var seqStart atomic.Uint32

// runKeys runs op over the benchmark's key sequence in parallel, each
// goroutine starting at a different point of it.
func runKeys(b *testing.B, seq []uint32, op func(i uint32)) {
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		j := seqStart.Add(7919)
		for pb.Next() {
			op(seq[j%seqLen])
			j++
		}
	})
}

var sink atomic.Int64

func BenchmarkGet(b *testing.B) {
	e, ids := fixture(b)
	for _, dist := range []struct {
		name string
		seq  *[]uint32
	}{{"zipf", &zipfSeq}, {"uniform", &uniformSeq}} {
		b.Run(dist.name+"/engine", func(b *testing.B) {
			var n int64
			runKeys(b, *dist.seq, func(i uint32) {
				s, err := e.Get(ids[i])
				if err != nil {
					b.Fatal(err)
				}
				n += int64(len(s.Data()))
			})
			sink.Add(n)
		})
		b.Run(dist.name+"/unlocked-map", func(b *testing.B) {
			var n int64
			runKeys(b, *dist.seq, func(i uint32) { n += int64(len(fixtureMap[ids[i]])) })
			sink.Add(n)
		})
		// The same lookups reading the first byte of the data, as a handler
		// using its session does: the map's value is then dereferenced too.
		b.Run(dist.name+"/engine+data", func(b *testing.B) {
			var n int64
			runKeys(b, *dist.seq, func(i uint32) {
				s, err := e.Get(ids[i])
				if err != nil {
					b.Fatal(err)
				}
				n += int64(s.Data()[0])
			})
			sink.Add(n)
		})
		b.Run(dist.name+"/unlocked-map+data", func(b *testing.B) {
			var n int64
			runKeys(b, *dist.seq, func(i uint32) { n += int64(fixtureMap[ids[i]][0]) })
			sink.Add(n)
		})
		// Latency: each lookup's key depends on the data the previous one
		// read (always 1), so no lookup can start before the last ends.
		// This is one request's cost, without the overlap of independent
		// lookups that a tight loop gets from the CPU.
		b.Run(dist.name+"/engine+data/chained", func(b *testing.B) {
			chained(b, *dist.seq, func(id string) byte {
				s, err := e.Get(id)
				if err != nil {
					b.Fatal(err)
				}
				return s.Data()[0]
			})
		})
		b.Run(dist.name+"/unlocked-map+data/chained", func(b *testing.B) {
			chained(b, *dist.seq, func(id string) byte { return fixtureMap[id][0] })
		})
	}
}

// chained runs get over the key sequence, each key chosen with the byte the
// previous get returned, so that the gets form one dependency chain.
func chained(b *testing.B, seq []uint32, get func(id string) byte) {
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		j := seqStart.Add(7919)
		for pb.Next() {
			j += uint32(get(fixtureIDs[seq[j%seqLen]]))
		}
	})
}

func BenchmarkUpdate(b *testing.B) {
	e, ids := fixture(b)
	data := make([]byte, benchData)
	runKeys(b, zipfSeq, func(i uint32) {
		if _, err := e.Update(bg, ids[i], 0, func(Session) ([]byte, error) { return data, nil }); err != nil {
			b.Fatal(err)
		}
	})
}

func BenchmarkMix90Get10Update(b *testing.B) {
	e, ids := fixture(b)
	data := make([]byte, benchData)
	var ctr atomic.Uint32
	runKeys(b, zipfSeq, func(i uint32) {
		if ctr.Add(1)%10 == 0 {
			if _, err := e.Update(bg, ids[i], 0, func(Session) ([]byte, error) { return data, nil }); err != nil {
				b.Fatal(err)
			}
			return
		}
		if _, err := e.Get(ids[i]); err != nil {
			b.Fatal(err)
		}
	})
}

func BenchmarkCreate(b *testing.B) {
	e, err := Open(Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	data := make([]byte, benchData)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.Create(bg, CreateOptions{Data: data}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkMemory reports the heap an engine holds per session beyond the
// 16-byte ID and the data, at 1M sessions of 200 bytes.
func BenchmarkMemory(b *testing.B) {
	for range b.N {
		before := heapInUse()
		e, err := Open(Options{})
		if err != nil {
			b.Fatal(err)
		}
		data := make([]byte, benchData)
		for range benchSessions {
			if _, err := e.Create(bg, CreateOptions{Data: data}); err != nil {
				b.Fatal(err)
			}
		}
		after := heapInUse()
		per := float64(after-before) / benchSessions
		b.ReportMetric(per-16-benchData, "B-overhead/session")
		b.ReportMetric(per, "B/session")
		runtime.KeepAlive(e)
		e.Close()
	}
}

func heapInUse() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

var _ = fmt.Sprint

// BenchmarkGetMiss times lookups of IDs that do not exist: random ones, and
// ones sharing all but their last character with a live ID. Equal costs
// mean the lookup leaks nothing about how close a guess came (the table
// slot comes from a seeded hash, and keys compare without early exit).
func BenchmarkGetMiss(b *testing.B) {
	e, ids := fixture(b)
	near := make([]string, seqLen)
	random := make([]string, seqLen)
	for i := range near {
		id := ids[uniformSeq[i]]
		last := id[len(id)-1]
		alt := byte('A')
		if last == 'A' {
			alt = 'Q'
		}
		near[i] = id[:len(id)-1] + string(alt)
		random[i] = token.New().String()
	}
	for _, c := range []struct {
		name string
		ids  []string
	}{{"random", random}, {"near-a-live-id", near}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				j := seqStart.Add(7919)
				for pb.Next() {
					if _, err := e.Get(c.ids[j%seqLen]); err == nil {
						b.Fatal("found a session that should not exist")
					}
					j++
				}
			})
		})
	}
}
