package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// progress rewrites one status line in place while a phase runs, and only
// when stdout is a terminal: piped or redirected output gets the report and
// nothing else.
type progress struct {
	w   io.Writer
	on  bool
	mu  sync.Mutex
	end func()
}

// progressEvery is how often the line is redrawn: often enough to look
// alive, rarely enough to cost nothing measurable.
const progressEvery = 250 * time.Millisecond

func newProgress(stdout io.Writer) *progress {
	return &progress{w: stdout, on: isTerminal(stdout)}
}

// isTerminal reports whether w is a character device, such as a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// show redraws the line from line() until the next show or stop.
func (p *progress) show(line func() string) {
	p.stop()
	if !p.on {
		return
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(progressEvery)
		defer t.Stop()
		width := 0
		for {
			select {
			case <-done:
				fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", width))
				return
			case <-t.C:
				s := line()
				pad := max(width-len(s), 0)
				width = max(width, len(s))
				fmt.Fprintf(p.w, "\r%s%s", s, strings.Repeat(" ", pad))
			}
		}
	}()
	p.mu.Lock()
	p.end = func() { close(done); wg.Wait() }
	p.mu.Unlock()
}

// stop ends the current line and clears it, so the report starts on a
// clean line.
func (p *progress) stop() {
	p.mu.Lock()
	end := p.end
	p.end = nil
	p.mu.Unlock()
	if end != nil {
		end()
	}
}

// rate tracks the current rate of a growing counter between redraws.
type rate struct {
	last  uint64
	lastT time.Time
}

// per returns the rate per second since the previous call.
func (r *rate) per(n uint64) float64 {
	now := time.Now()
	var v float64
	if !r.lastT.IsZero() && now.After(r.lastT) && n >= r.last {
		v = float64(n-r.last) / now.Sub(r.lastT).Seconds()
	}
	r.last, r.lastT = n, now
	return v
}
