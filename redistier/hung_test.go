//go:build unix

package redistier

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sesscache/sesscache/engine"
)

// pauseStandalone stops the standalone server with SIGSTOP: it keeps its
// connections open and answers nothing, as a hung server, or a network
// that silently drops packets, does (the kernel still acknowledges TCP
// keepalives, so only the client's own pings notice). resume sends
// SIGCONT; the cleanup sends it too, whatever happens.
func pauseStandalone(t testing.TB) (resume func()) {
	t.Helper()
	if redisDir == "" {
		t.Fatal("this test needs REDISTIER_DIR (testdata/redis.sh's directory)")
	}
	port := standaloneAddr[strings.LastIndexByte(standaloneAddr, ':')+1:]
	b, err := os.ReadFile(filepath.Join(redisDir, port, "pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	resume = func() { once.Do(func() { _ = syscall.Kill(pid, syscall.SIGCONT) }) }
	t.Cleanup(resume)
	return resume
}

// hungStores returns an instance that writes and one that holds a copy of
// a session the first created, over the standalone server.
func hungStores(t testing.TB, l Layout, connTimeout time.Duration) (a, b *Store, id string) {
	t.Helper()
	tp := topologies()[0]
	tp.layout = l
	prefix := freshPrefix()
	quiet := slog.New(slog.DiscardHandler) // each flush is logged
	a = open(t, tp, Options{KeyPrefix: prefix, ConnTimeout: connTimeout, Logger: quiet})
	b = open(t, tp, Options{KeyPrefix: prefix, ConnTimeout: connTimeout, Logger: quiet})
	id = mustCreate(t, a, engine.CreateOptions{UserID: "ivy"}).ID()
	return a, b, id
}

// TestHungRedisFailsClosed: when Redis stops answering but keeps its
// connections open, an instance drops its copies by itself, with no
// command of its own under way, and from then on refuses rather than
// serves what it can no longer vouch for; once Redis answers again it
// serves again.
func TestHungRedisFailsClosed(t *testing.T) {
	for _, l := range layouts {
		t.Run("layout="+l.String(), func(t *testing.T) {
			_, b, id := hungStores(t, l, 300*time.Millisecond)
			held(t, b, id)
			flushes := b.Stats().Flushes
			resume := pauseStandalone(t)
			eventually(t, 10*time.Second, "B drops its copies", func() bool { return b.Stats().Flushes > flushes })
			if live := b.Stats().Local.Live; live != 0 {
				t.Fatalf("B keeps %d copies after losing its invalidations", live)
			}
			tctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			_, err := b.Find(tctx, id, nil)
			cancel()
			if !errors.Is(err, ErrUnavailable) && !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("B's read while Redis hangs: %v, want ErrUnavailable", err)
			}
			resume()
			eventually(t, 10*time.Second, "B reads again", func() bool {
				_, err := b.Find(ctx, id, nil)
				return err == nil
			})
		})
	}
}

// BenchmarkHungRedis measures the window during which an instance may
// still serve a copy after Redis stops answering on connections that stay
// open (SIGSTOP): from the stop to the flush that drops every copy. No
// command of the instance is under way, so only the client's background
// ping notices. Reported, for ConnTimeout 500 ms and the default 2 s:
// p50, p99 and max over b.N stops, in ms and as a multiple of ConnTimeout
// (run with -benchtime 10x).
func BenchmarkHungRedis(b *testing.B) {
	for _, connTimeout := range []time.Duration{500 * time.Millisecond, defaultConnTimeout} {
		b.Run("ConnTimeout="+connTimeout.String(), func(b *testing.B) { benchHung(b, connTimeout) })
	}
}

func benchHung(b *testing.B, connTimeout time.Duration) {
	_, inst, id := hungStores(b, LayoutHash, connTimeout)
	window := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		held(b, inst, id)
		flushes := inst.Stats().Flushes
		b.StartTimer()
		start := time.Now()
		resume := pauseStandalone(b)
		window = append(window, awaitFlush(b, inst, flushes, start, 30*time.Second, "Redis hanging"))
		b.StopTimer()
		resume()
		b.StartTimer()
	}
	b.StopTimer()
	top := reportWindow(b, window, time.Millisecond, "ms")
	b.ReportMetric(float64(top)/float64(connTimeout), "max-x-ConnTimeout")
}
