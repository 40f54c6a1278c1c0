package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime/trace"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sesscache/sesscache/engine"
)

// Operations and phases index the workers' histograms.
const (
	opGet = iota
	opUpdate
	numOps
)

const (
	phaseQuiet    = iota // no harness snapshot running
	phaseSnapshot        // a harness snapshot running (-snapshot-every)
	numPhases
)

var opNames = [numOps]string{"Get", "Update"}

// worker is one workload goroutine's private tally; ops is published for the
// progress line every few operations.
type worker struct {
	h      [numPhases][numOps]hist
	misses [numOps]uint64
	err    error
	ops    atomic.Uint64
	_      [64]byte // keep the next worker's counter off this cache line
}

// measure preloads eng and runs the timed workload; the caller closes eng.
func measure(ctx context.Context, eng *engine.Engine, c runConfig, prog *progress) (*runResult, error) {
	res := &runResult{Command: "run", Config: c, Environment: currentEnvironment(), Storage: c.storageLabel()}
	var snaps *snapshotWatch
	if !c.memory && c.SnapshotEvery == 0 {
		snaps = watchSnapshots(eng)
		defer snaps.stop()
	}

	heapBefore := heapAlloc()
	walBefore := eng.Stats().Log
	t0 := time.Now()
	ids, err := preload(ctx, eng, c, prog)
	if err != nil {
		return nil, err
	}
	res.Preload = preloadResult{Sessions: c.Sessions, Writers: c.PreloadWriters, DurationNs: time.Since(t0)}
	res.Preload.CreatesPerSec = float64(c.Sessions) / res.Preload.DurationNs.Seconds()
	res.Timing.PreloadNs = res.Preload.DurationNs
	// Stats reads the latest snapshot's figures under the snapshot lock, so
	// it waits for one the preload set off: neither the heap measured next
	// nor the workload's start includes a snapshot half-written.
	eng.Stats()
	// The harness's own list of IDs is not the engine's: a string header per
	// ID and the 22-byte string, which the allocator rounds to 24.
	heap := int64(heapAlloc()) - int64(cap(ids))*16 - int64(len(ids))*24 - int64(heapBefore)
	res.Memory = memoryResult{HeapBytes: heap, BytesPerSession: float64(heap) / float64(c.Sessions), DataBytes: c.Data}

	statsBefore := eng.Stats()
	walMid := statsBefore.Log
	gcBefore := readGC()
	workers := make([]worker, c.Workers)
	var stop, snapping atomic.Bool
	var wg sync.WaitGroup
	stopTrace, err := startTrace(c.trace)
	if err != nil {
		return nil, err
	}
	defer func() { _ = stopTrace() }() // for the early returns; checked below
	start := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			work(eng, ids, c, &stop, &snapping, &workers[w], c.Seed+uint64(w))
		}()
	}
	var driver *snapshotDriver
	if c.SnapshotEvery > 0 {
		driver = startSnapshotDriver(eng, c.SnapshotEvery, &snapping, start)
	}
	r := rate{lastT: start}
	prog.show(func() string {
		var n uint64
		for i := range workers {
			n += workers[i].ops.Load()
		}
		s := fmt.Sprintf("run      %4.1f / %.0f s  %s ops  %s ops/s", time.Since(start).Seconds(), c.Duration.Seconds(), si(float64(n)), si(r.per(n)))
		if snapping.Load() {
			s += "  (snapshot running)"
		}
		return s
	})
	timer := time.NewTimer(c.Duration)
	interrupted := false
	select {
	case <-timer.C: // the workload's length, not synchronisation
	case <-ctx.Done():
		timer.Stop()
		interrupted = true
	}
	stop.Store(true)
	wg.Wait()
	elapsed := time.Since(start)
	if err := stopTrace(); err != nil {
		return nil, err
	}
	prog.stop()
	gc := readGC().since(gcBefore)
	var snapRunning time.Duration
	if driver != nil {
		if res.Snapshots, snapRunning, err = driver.finish(elapsed); err != nil {
			return nil, fmt.Errorf("snapshot: %w", err)
		}
	}
	if interrupted {
		return nil, errors.New("interrupted")
	}
	statsAfter := eng.Stats()
	if snaps != nil {
		res.Snapshots = snaps.events(start, start.Add(elapsed))
	}
	res.Timing.WorkloadNs = elapsed

	var total worker
	for i := range workers {
		w := &workers[i]
		if w.err != nil {
			return nil, w.err
		}
		for ph := range numPhases {
			for op := range numOps {
				total.h[ph][op].merge(&w.h[ph][op])
			}
		}
		for op := range numOps {
			total.misses[op] += w.misses[op]
		}
	}
	res.summarize(&total, elapsed, snapRunning)
	res.GC = gcResult{Cycles: gc.cycles, PauseTotalNs: gc.pause, CPUFraction: gc.cpuShare}
	if !c.memory {
		res.WAL = &walResult{
			Preload:       walDelta(walBefore, walMid),
			Workload:      walDelta(walMid, statsAfter.Log),
			Segments:      statsAfter.Log.Segments,
			DiskBytes:     statsAfter.Log.DiskBytes,
			SnapshotBytes: statsAfter.Snapshot.Bytes,
		}
	}
	res.Expiry = expiryResult{
		IdleTimeoutNs:     idleOrDefault(c.Idle),
		AbsoluteTimeoutNs: absoluteOrDefault(c.Absolute),
		Expired:           statsAfter.Expired - statsBefore.Expired,
		Misses:            statsAfter.Misses - statsBefore.Misses,
		LiveAtStart:       statsBefore.Live,
		LiveAtEnd:         statsAfter.Live,
	}
	return res, nil
}

// preload creates c.Sessions sessions from c.PreloadWriters goroutines and
// returns their IDs.
func preload(ctx context.Context, eng *engine.Engine, c runConfig, prog *progress) ([]string, error) {
	ids := make([]string, c.Sessions)
	data := make([]byte, c.Data)
	var wg sync.WaitGroup
	var done atomic.Int64
	var firstErr atomic.Pointer[error]
	writers := min(c.PreloadWriters, c.Sessions)
	per := (c.Sessions + writers - 1) / writers
	start := time.Now()
	r := rate{lastT: start}
	prog.show(func() string {
		n := done.Load()
		return fmt.Sprintf("preload  %s / %s sessions  %.1f s  %s creates/s", si(float64(n)), si(float64(c.Sessions)), time.Since(start).Seconds(), si(r.per(uint64(n))))
	})
	defer prog.stop()
	for w := range writers {
		lo, hi := w*per, min((w+1)*per, c.Sessions)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := lo; i < hi; i++ {
				if (i-lo)&1023 == 1023 {
					done.Add(1024)
					if ctx.Err() != nil {
						return
					}
				}
				s, err := eng.Create(context.Background(), engine.CreateOptions{Data: data})
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
	if ctx.Err() != nil {
		return nil, errors.New("interrupted")
	}
	return ids, nil
}

// keyDraw picks each operation's session, drawn afresh every time: a
// precomputed sequence that repeats would touch only the keys it happens to
// hold (a million Zipf draws over a million sessions hit about a fifth of
// them), which flatters the cache and keeps the rest from ever being read
// again, or expiring as they would. Drawing costs the worker about 40 ns
// for Zipf, outside the timed call.
type keyDraw struct {
	r *rand.Rand
	z *rand.Zipf
	n uint64
}

// scatter spreads Zipf ranks over the sessions so that the hot ones are not
// neighbours in memory: multiplying by a prime larger than any session
// count is a bijection modulo that count.
const scatter = 2654435761

func newKeyDraw(c runConfig, seed uint64) *keyDraw {
	k := &keyDraw{r: rand.New(rand.NewPCG(seed, 99)), n: uint64(c.Sessions)}
	if c.Dist == "zipf" {
		k.z = rand.NewZipf(k.r, c.ZipfS, 1, k.n-1)
	}
	return k
}

func (k *keyDraw) next() int {
	if k.z != nil {
		return int(k.z.Uint64() * scatter % k.n)
	}
	return int(k.r.Uint64N(k.n))
}

// work runs operations until stop, recording each one's latency in the
// histogram of its kind and of the phase (snapshot running or not) it
// started in. A session that has expired is a miss, not a failure: with
// short timeouts the janitor reaps sessions under the workload's feet.
func work(eng *engine.Engine, ids []string, c runConfig, stop, snapping *atomic.Bool, w *worker, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 1234))
	keys := newKeyDraw(c, seed)
	data := make([]byte, c.Data)
	setData := func(engine.Session) ([]byte, error) { return data, nil }
	readBelow := uint64(c.Read * (1 << 32))
	for i := 0; ; i++ {
		if i&63 == 0 {
			w.ops.Store(uint64(i))
			if stop.Load() {
				return
			}
		}
		id := ids[keys.next()]
		ph := phaseQuiet
		if snapping.Load() {
			ph = phaseSnapshot
		}
		op := opUpdate
		if r.Uint64()>>32 < readBelow {
			op = opGet
		}
		var err error
		t := time.Now()
		if op == opGet {
			_, err = eng.Get(id)
		} else {
			_, err = eng.Update(context.Background(), id, 0, setData)
		}
		d := time.Since(t)
		w.h[ph][op].record(uint64(d))
		if d >= slowOp && trace.IsEnabled() {
			trace.Log(context.Background(), "slow-op", fmt.Sprintf("%s %d", opNames[op], d.Nanoseconds()))
		}
		switch {
		case err == nil:
		case errors.Is(err, engine.ErrNotFound):
			w.misses[op]++
		default:
			w.err = fmt.Errorf("%s: %w", opNames[op], err)
			stop.Store(true)
			return
		}
	}
}

func idleOrDefault(d time.Duration) time.Duration {
	if d == 0 {
		return 30 * time.Minute
	}
	return d
}

func absoluteOrDefault(d time.Duration) time.Duration {
	if d == 0 {
		return 12 * time.Hour
	}
	return d
}

// slowOp is the latency from which -trace logs an operation in the trace.
const slowOp = time.Millisecond

// startTrace starts an execution trace into path, if not empty. The
// function it returns stops it and closes the file; calls after the first
// do nothing.
func startTrace(path string) (func() error, error) {
	if path == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := trace.Start(f); err != nil {
		_ = f.Close() // the error above is the one to report
		return nil, err
	}
	var once sync.Once
	var cerr error
	return func() error {
		once.Do(func() {
			trace.Stop()
			cerr = f.Close()
		})
		return cerr
	}, nil
}
