package bench

import (
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sesscache/sesscache/token"
)

// The fixture every read and update benchmark shares: N sessions of dataSize
// bytes, N from SESSBENCH_N (default 1<<20, as in the engine's benchmarks),
// and key sequences drawn once.
const (
	dataSize = 200
	// seqLen is the length of one goroutine's key sequence; a power of two
	// so that the index wraps with a mask.
	seqLen  = 1 << 16
	seqMask = seqLen - 1
	// seqCount sequences are drawn per distribution, one per goroutine of
	// RunParallel; beyond that many goroutines they are reused.
	seqCount = 16
	// zipfS is the Zipf exponent: a few very hot sessions, a long tail.
	zipfS = 1.01
)

var (
	nOnce sync.Once
	nVal  int
)

// sessionCount returns the number of sessions each fixture holds.
func sessionCount(tb testing.TB) int {
	tb.Helper()
	nOnce.Do(func() {
		nVal = 1 << 20
		if s := os.Getenv("SESSBENCH_N"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 2 {
				nVal = -1
				return
			}
			nVal = n
		}
	})
	if nVal < 0 {
		tb.Fatalf("SESSBENCH_N=%q: want an integer of at least 2", os.Getenv("SESSBENCH_N"))
	}
	return nVal
}

// distribution is a way of choosing which session each operation touches:
// seqCount sequences of indexes into the fixture's IDs, the same for every
// store, because they depend only on N and fixed seeds.
type distribution struct {
	name string
	seqs [][]uint32
}

var (
	distMu sync.Mutex
	distN  int
	dists  []distribution
)

// distributions returns the Zipf and the uniform distribution over n
// sessions, drawn on the first call for that n.
func distributions(n int) []distribution {
	distMu.Lock()
	defer distMu.Unlock()
	if distN == n {
		return dists
	}
	// Scatter Zipf ranks over the IDs so that hot sessions are not
	// neighbours in creation order, and so, for every store, not neighbours
	// in memory.
	perm := rand.New(rand.NewPCG(1, 2)).Perm(n)
	zipf := distribution{name: "zipf", seqs: make([][]uint32, seqCount)}
	uniform := distribution{name: "uniform", seqs: make([][]uint32, seqCount)}
	for g := range seqCount {
		zr := rand.New(rand.NewPCG(3, uint64(g)))
		z := rand.NewZipf(zr, zipfS, 1, uint64(n-1))
		ur := rand.New(rand.NewPCG(4, uint64(g)))
		zs, us := make([]uint32, seqLen), make([]uint32, seqLen)
		for i := range seqLen {
			zs[i] = uint32(perm[z.Uint64()])
			us[i] = ur.Uint32N(uint32(n))
		}
		zipf.seqs[g], uniform.seqs[g] = zs, us
	}
	distN, dists = n, []distribution{zipf, uniform}
	return dists
}

// loaded is the one store that holds the fixture. Only one store is loaded at
// a time: every store's benchmark must run with its own heap alone, since a
// garbage collection marks every live byte, and another store's million
// sessions would make the collector's work, and so the cost of allocating,
// depend on which stores happened to be loaded. Benchmarks run one at a
// time, so no lock guards it.
var loaded struct {
	name   string
	s      store
	lookup []string // fresh copies of ids, for lookups
}

// ids are the fixture's session IDs, as the engine drew them; every store
// loaded after the engine that drew them holds these same strings.
var ids []string

// fixture returns the store k loaded with the fixture's sessions, and the
// IDs to look them up with. Loading sesscache draws new IDs (only the engine
// can make its sessions), which the peers loaded after it then share; run.sh
// runs each store in a process of its own, which draws its own.
func fixture(b *testing.B, k kind) (store, []string) {
	b.Helper()
	if loaded.name == k.name {
		return loaded.s, loaded.lookup
	}
	n := sessionCount(b)
	distributions(n)
	release()
	s, err := load(k, n)
	if err != nil {
		b.Fatal(err)
	}
	// Look up with copies, as a server does with the ID it reads from a
	// request, made in a pass of their own after all inserts: the map's key
	// comparison can neither shortcut on pointer equality nor find the
	// stored key on a cache line the copy just brought in.
	lookup := make([]string, len(ids))
	for i, id := range ids {
		lookup[i] = strings.Clone(id)
	}
	loaded.name, loaded.s, loaded.lookup = k.name, s, lookup
	runtime.GC()
	return s, lookup
}

// load returns store k holding n sessions under ids, drawing the ids with a
// new engine first if k is sesscache or there are none yet.
func load(k kind, n int) (store, error) {
	data := sessionData(0)
	var s store
	if k.name == sesscacheName || len(ids) != n {
		e := openSesscache(n).(*sesscacheStore)
		ids = make([]string, n)
		for i := range ids {
			ids[i] = e.create(data)
		}
		if k.name == sesscacheName {
			s = e
		} else {
			e.Close()
		}
	}
	if s == nil {
		s = k.open(n)
		for _, id := range ids {
			// Only ristretto drops writes; waiting for its buffer to drain
			// makes room.
			for !s.Create(id, data) {
				settle(s)
			}
		}
	}
	settle(s)
	for i, id := range ids {
		if _, ok := s.Get(id); !ok {
			s.Close()
			return nil, fmt.Errorf("%s: session %d of %d missing after loading", k.name, i, n)
		}
	}
	return s, nil
}

func settle(s store) {
	if st, ok := s.(settler); ok {
		st.settle()
	}
}

// release closes the loaded store, if any, and collects it.
func release() {
	if loaded.s != nil {
		loaded.s.Close()
	}
	loaded.name, loaded.s, loaded.lookup = "", nil, nil
	runtime.GC()
}

// sessionData returns dataSize bytes of session data; fill tells writes
// apart.
func sessionData(fill byte) []byte {
	b := make([]byte, dataSize)
	for i := range b {
		b[i] = fill + byte(i)
	}
	return b
}

// freshIDs returns n IDs no store holds, in the engine's format.
func freshIDs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = token.New().String()
	}
	return out
}

// parallel runs body on RunParallel's goroutines, giving the i-th goroutine
// of every run the i-th sequence of d, so that every store sees the same
// keys in the same order on each goroutine.
func parallel(b *testing.B, d distribution, body func(pb *testing.PB, seq []uint32)) {
	var next atomic.Int32
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		body(pb, d.seqs[int(next.Add(1)-1)%len(d.seqs)])
	})
}
