package main

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sesscache/sesscache/engine"
)

// snapshotEvent is one snapshot that ran during a run.
type snapshotEvent struct {
	// Trigger is "engine" (its own interval or size rule) or "harness"
	// (-snapshot-every).
	Trigger string `json:"trigger"`
	// Phase is when it started: "preload", "workload" or "after".
	Phase string `json:"phase"`
	// StartNs is when it started, from the start of the workload (negative
	// during preload). For engine snapshots it is read from the engine's
	// coarse clock.
	StartNs    time.Duration `json:"start_ns"`
	DurationNs time.Duration `json:"duration_ns"`
	Bytes      int64         `json:"bytes"`
	Sessions   uint64        `json:"sessions"`
}

// snapshotWatch notices the snapshots the engine takes by its own rules,
// which the harness neither starts nor sees begin: it polls Stats and keeps
// each new one's figures. Stats waits while a snapshot is being written, so
// the poll never misses one that completed.
type snapshotWatch struct {
	eng  *engine.Engine
	done chan struct{}
	wg   sync.WaitGroup

	mu   sync.Mutex
	seen map[uint64]engine.SnapshotStats
}

// snapshotPoll is how often the watch looks; the engine checks its rules
// once a second, so no two snapshots complete within one poll.
const snapshotPoll = 200 * time.Millisecond

func watchSnapshots(eng *engine.Engine) *snapshotWatch {
	w := &snapshotWatch{eng: eng, done: make(chan struct{}), seen: map[uint64]engine.SnapshotStats{}}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		t := time.NewTicker(snapshotPoll)
		defer t.Stop()
		for {
			select {
			case <-w.done:
				return
			case <-t.C:
				w.poll()
			}
		}
	}()
	return w
}

func (w *snapshotWatch) poll() {
	st := w.eng.Stats().Snapshot
	if st.LSN == 0 {
		return
	}
	w.mu.Lock()
	w.seen[st.LSN] = st
	w.mu.Unlock()
}

func (w *snapshotWatch) stop() {
	select {
	case <-w.done:
	default:
		close(w.done)
		w.wg.Wait()
	}
}

// events returns the snapshots seen so far, placed against the workload's
// start and end, in the order they were taken.
func (w *snapshotWatch) events(start, end time.Time) []snapshotEvent {
	w.poll()
	w.mu.Lock()
	defer w.mu.Unlock()
	evs := make([]snapshotEvent, 0, len(w.seen))
	for _, st := range w.seen {
		ev := snapshotEvent{Trigger: "engine", StartNs: st.Created.Sub(start), DurationNs: st.Duration, Bytes: st.Bytes, Sessions: st.Sessions}
		ev.Phase = phaseOf(st.Created, start, end)
		evs = append(evs, ev)
	}
	sortEvents(evs)
	return evs
}

func phaseOf(t, start, end time.Time) string {
	switch {
	case t.Before(start):
		return "preload"
	case t.Before(end):
		return "workload"
	}
	return "after"
}

func sortEvents(evs []snapshotEvent) {
	for i := 1; i < len(evs); i++ {
		for j := i; j > 0 && evs[j].StartNs < evs[j-1].StartNs; j-- {
			evs[j], evs[j-1] = evs[j-1], evs[j]
		}
	}
}

// snapshotDriver takes snapshots from the harness every so often during the
// workload and raises a flag while one runs, so that the workers can file
// each operation's latency under "snapshot running" or "not".
type snapshotDriver struct {
	done chan struct{}
	wg   sync.WaitGroup

	// Written by the driver goroutine; read after wg.Wait.
	events []snapshotEvent
	spans  [][2]time.Duration // start and end of each snapshot, from the workload's start
	err    error
}

func startSnapshotDriver(eng *engine.Engine, every time.Duration, snapping *atomic.Bool, start time.Time) *snapshotDriver {
	d := &snapshotDriver{done: make(chan struct{})}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		var last uint64
		for {
			select {
			case <-d.done:
				return
			case <-t.C:
			}
			select {
			case <-d.done: // the workload ended while the tick waited
				return
			default:
			}
			began := time.Now()
			snapping.Store(true)
			st, err := eng.Snapshot(context.Background())
			snapping.Store(false)
			took := time.Since(began)
			if err != nil {
				d.err = err
				return
			}
			if st.LSN == last {
				continue // nothing written since the last one: the engine skipped it
			}
			last = st.LSN
			from := began.Sub(start)
			d.spans = append(d.spans, [2]time.Duration{from, from + took})
			d.events = append(d.events, snapshotEvent{Trigger: "harness", Phase: "workload", StartNs: from,
				DurationNs: took, Bytes: st.Bytes, Sessions: st.Sessions})
		}
	}()
	return d
}

// finish waits for a snapshot in progress and returns the snapshots taken
// and how much of the workload's first elapsed time had one running.
func (d *snapshotDriver) finish(elapsed time.Duration) ([]snapshotEvent, time.Duration, error) {
	close(d.done)
	d.wg.Wait()
	var running time.Duration
	for i, s := range d.spans {
		running += max(min(s[1], elapsed)-s[0], 0)
		if s[0] >= elapsed {
			d.events[i].Phase = "after"
		}
	}
	return d.events, running, d.err
}
