package main

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// syncBuffer is a bytes.Buffer safe to write from the progress goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestProgressOnlyOnATerminal(t *testing.T) {
	var quiet bytes.Buffer
	p := newProgress(&quiet)
	p.show(func() string { return "working" })
	time.Sleep(2 * progressEvery)
	p.stop()
	assert.Empty(t, quiet.String(), "not a terminal: nothing")

	var out syncBuffer
	p = &progress{w: &out, on: true}
	p.show(func() string { return "working hard" })
	time.Sleep(2*progressEvery + progressEvery/2)
	p.show(func() string { return "short" })
	time.Sleep(progressEvery + progressEvery/2)
	p.stop()
	p.stop()
	s := out.String()
	assert.Contains(t, s, "\rworking hard")
	assert.Contains(t, s, "\rshort")
	assert.True(t, strings.HasSuffix(s, "\r"), "the line is cleared for the report")
	assert.NotContains(t, s, "\n", "rewritten in place")
}
