package main

import (
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sesscache/sesscache/engine"
)

type runConfig struct {
	sessions int
	duration time.Duration
	read     float64
	dist     string
	zipfS    float64
	data     int
	workers  int
	idle     time.Duration
	absolute time.Duration
}

func parseRun(args []string, stderr io.Writer) (runConfig, error) {
	var c runConfig
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&c.sessions, "sessions", 1_000_000, "sessions to preload")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "length of the timed workload")
	fs.Float64Var(&c.read, "read", 0.9, "fraction of operations that are Gets; the rest are Updates")
	fs.StringVar(&c.dist, "dist", "zipf", "key distribution: zipf or uniform")
	fs.Float64Var(&c.zipfS, "zipf-s", 1.01, "Zipf skew (> 1; larger is more skewed)")
	fs.IntVar(&c.data, "data", 200, "bytes of data per session")
	fs.IntVar(&c.workers, "workers", runtime.GOMAXPROCS(0), "concurrent workers")
	fs.DurationVar(&c.idle, "idle", 0, "idle timeout (0: the engine's default, 30m)")
	fs.DurationVar(&c.absolute, "absolute", 0, "absolute timeout (0: the engine's default, 24h)")
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: sessbench run [flags]\n\nPreload sessions, then run a timed mix of Get and Update from every worker.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	var bad string
	switch {
	case fs.NArg() > 0:
		bad = fmt.Sprintf("unexpected argument %q", fs.Arg(0))
	case c.sessions < 1:
		bad = "-sessions must be at least 1"
	case c.duration <= 0:
		bad = "-duration must be positive"
	case c.read < 0 || c.read > 1:
		bad = "-read must be between 0 and 1"
	case c.dist != "zipf" && c.dist != "uniform":
		bad = "-dist must be zipf or uniform"
	case c.dist == "zipf" && c.zipfS <= 1:
		bad = "-zipf-s must be greater than 1"
	case c.data < 0:
		bad = "-data must not be negative"
	case c.workers < 1:
		bad = "-workers must be at least 1"
	case c.idle < 0 || c.absolute < 0:
		bad = "timeouts must not be negative"
	}
	if bad != "" {
		fmt.Fprintln(stderr, "sessbench run:", bad)
		fs.Usage()
		return c, fmt.Errorf("%s", bad)
	}
	return c, nil
}

// seqLen is the length of each worker's precomputed key sequence: drawing
// from a Zipf distribution costs more than the Get being measured.
const seqLen = 1 << 16

type result struct {
	get, update hist
	errors      int64
}

func runWorkload(c runConfig, out io.Writer) error {
	eng, err := engine.Open(engine.Options{IdleTimeout: c.idle, AbsoluteTimeout: c.absolute})
	if err != nil {
		return err
	}
	defer eng.Close()

	heapBefore := heapAlloc()
	t0 := time.Now()
	ids, err := preload(eng, c)
	if err != nil {
		return err
	}
	loadTime := time.Since(t0)
	// The harness's own list of IDs is not the engine's: a slice header per
	// ID and the 22-byte string, which the allocator rounds to 24.
	heapAfter := heapAlloc() - uint64(cap(ids))*16 - uint64(len(ids))*24

	seqs := keySequences(c)
	gcBefore := readGC()
	var stop atomic.Bool
	results := make([]result, c.workers)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range c.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			work(eng, ids, seqs[w], c, &stop, &results[w], uint64(w))
		}()
	}
	time.Sleep(c.duration) // the workload's length, not synchronisation
	stop.Store(true)
	wg.Wait()
	elapsed := time.Since(start)
	gc := readGC().since(gcBefore)

	var total result
	for i := range results {
		total.get.merge(&results[i].get)
		total.update.merge(&results[i].update)
		total.errors += results[i].errors
	}
	if total.errors > 0 {
		return fmt.Errorf("%d operations failed", total.errors)
	}
	report(out, c, loadTime, elapsed, &total, heapBefore, heapAfter, gc)
	return nil
}

func preload(eng *engine.Engine, c runConfig) ([]string, error) {
	ids := make([]string, c.sessions)
	data := make([]byte, c.data)
	var wg sync.WaitGroup
	var firstErr atomic.Pointer[error]
	per := (c.sessions + c.workers - 1) / c.workers
	for w := range c.workers {
		lo, hi := w*per, min((w+1)*per, c.sessions)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := lo; i < hi; i++ {
				s, err := eng.Create(engine.CreateOptions{Data: data})
				if err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
				ids[i] = s.ID()
			}
		}()
	}
	wg.Wait()
	if p := firstErr.Load(); p != nil {
		return nil, fmt.Errorf("preload: %w", *p)
	}
	return ids, nil
}

// keySequences draws each worker's key indexes. Zipf ranks are scattered
// over the IDs by one shared permutation, so hot sessions are not neighbours
// in memory.
func keySequences(c runConfig) [][]uint32 {
	r := rand.New(rand.NewPCG(42, 7))
	perm := r.Perm(c.sessions)
	seqs := make([][]uint32, c.workers)
	for w := range seqs {
		wr := rand.New(rand.NewPCG(uint64(w), 99))
		seq := make([]uint32, seqLen)
		if c.dist == "zipf" {
			z := rand.NewZipf(wr, c.zipfS, 1, uint64(c.sessions-1))
			for i := range seq {
				seq[i] = uint32(perm[z.Uint64()])
			}
		} else {
			for i := range seq {
				seq[i] = uint32(wr.IntN(c.sessions))
			}
		}
		seqs[w] = seq
	}
	return seqs
}

func work(eng *engine.Engine, ids []string, seq []uint32, c runConfig, stop *atomic.Bool, res *result, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 1234))
	data := make([]byte, c.data)
	setData := func(engine.Session) ([]byte, error) { return data, nil }
	readBelow := uint64(c.read * (1 << 32))
	for i := 0; ; i++ {
		if i&63 == 0 && stop.Load() {
			return
		}
		id := ids[seq[i&(seqLen-1)]]
		if r.Uint64()>>32 < readBelow {
			t := time.Now()
			_, err := eng.Get(id)
			res.get.record(uint64(time.Since(t)))
			if err != nil {
				res.errors++
			}
		} else {
			t := time.Now()
			_, err := eng.Update(id, 0, setData)
			res.update.record(uint64(time.Since(t)))
			if err != nil {
				res.errors++
			}
		}
	}
}
