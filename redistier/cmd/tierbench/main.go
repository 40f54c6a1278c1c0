// Command tierbench runs a session workload against several redistier
// instances in one process over one Redis (or a Cluster), and reports what
// the local tier saves: the local hit ratio, Redis commands per 1,000
// requests (from INFO commandstats before and after), how fast a change on
// one instance reaches another (invalidation latency), and requests/s;
// then the same workload with one plain Redis GET (or SET) per request as
// the peer row. The store rows run once per record layout in -layouts
// (redistier.Options.Layout), one after the other, each on fresh keys.
//
// Usage (Redis from testdata/redis.sh, on loopback only):
//
//	eval "$(bash testdata/redis.sh start)"
//	go run ./cmd/tierbench -redis "$REDISTIER_STANDALONE" -duration 10s
//	go run ./cmd/tierbench -redis "$REDISTIER_CLUSTER" -duration 10s
//	bash testdata/redis.sh stop "$REDISTIER_DIR"
//
// Columns: requests/s; the local hit ratio (lookups served from a copy);
// sent/1000, the commands the stores sent to Redis per 1,000 requests
// (Stats.Commands: round trips); calls/1000, every command INFO
// commandstats counted, the calls scripts make included; the invalidation
// latency, from the start of a write on one instance until another has
// dropped its copy.
//
// The workload: preload -sessions sessions of -data bytes; then
// -goroutines goroutines, each bound to one of -instances stores, pick
// sessions by -dist (zipf with exponent -zipf-s, or uniform) and Update
// -updates of the time, Find otherwise, for -duration.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"math"
	mrand "math/rand"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/sesscache/sesscache/engine"
	"github.com/sesscache/sesscache/redistier"
)

type config struct {
	addrs      []string
	instances  int
	sessions   int
	data       int
	duration   time.Duration
	goroutines int
	dist       string
	zipfS      float64
	updates    float64
	samples    int
	peer       bool
	layouts    []redistier.Layout
}

func main() {
	var c config
	addrs := flag.String("redis", os.Getenv("REDISTIER_STANDALONE"), "Redis address(es), comma-separated (loopback only)")
	flag.IntVar(&c.instances, "instances", 3, "store instances in this process")
	flag.IntVar(&c.sessions, "sessions", 100000, "sessions preloaded")
	flag.IntVar(&c.data, "data", 200, "bytes of data per session")
	flag.DurationVar(&c.duration, "duration", 10*time.Second, "how long the workload runs")
	flag.IntVar(&c.goroutines, "goroutines", 64, "concurrent clients")
	flag.StringVar(&c.dist, "dist", "zipf", "session popularity: zipf or uniform")
	flag.Float64Var(&c.zipfS, "zipf-s", 1.01, "zipf exponent (> 1), as sessbench's default")
	flag.Float64Var(&c.updates, "updates", 0.05, "fraction of requests that are Updates")
	flag.IntVar(&c.samples, "inval-samples", 500, "writes timed for the invalidation latency")
	flag.BoolVar(&c.peer, "peer", true, "also run the peer row: one plain Redis GET (or SET) per request")
	layouts := flag.String("layouts", "hash,string", "record layouts to run a store row for, comma-separated: hash, string")
	flag.Parse()
	for _, l := range strings.Split(*layouts, ",") {
		switch l {
		case "hash":
			c.layouts = append(c.layouts, redistier.LayoutHash)
		case "string":
			c.layouts = append(c.layouts, redistier.LayoutString)
		default:
			fail(fmt.Errorf("unknown layout %q (hash, string)", l))
		}
	}
	c.addrs = strings.Split(*addrs, ",")
	if *addrs == "" {
		fail(errors.New("no Redis address: set -redis or REDISTIER_STANDALONE"))
	}
	for _, a := range c.addrs {
		if !loopback(a) {
			fail(fmt.Errorf("%s is not a loopback address; tierbench only targets this machine", a))
		}
	}
	if c.instances < 1 || c.instances > 64 || c.sessions < 1 || c.goroutines < 1 || c.duration <= 0 || c.duration > time.Hour ||
		c.updates < 0 || c.updates > 1 || (c.dist != "zipf" && c.dist != "uniform") || c.zipfS <= 1 {
		fail(errors.New("flag out of range (see -h)"))
	}
	ctx := context.Background()
	admin, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: c.addrs, DisableCache: true})
	if err != nil {
		fail(err)
	}
	defer admin.Close()

	fmt.Printf("tierbench: %s, %d instances, %d sessions of %d B, %s popularity, %.0f%% updates, %d goroutines, %v\n\n",
		mode(admin), c.instances, c.sessions, c.data, c.dist, c.updates*100, c.goroutines, c.duration)
	fmt.Printf("%-22s %12s %10s %12s %12s %10s %10s %s\n", "row", "requests/s", "hit ratio", "sent/1000", "calls/1000",
		"inval p50", "inval p99", "inval max")

	for _, l := range c.layouts {
		tier, err := runTier(ctx, c, admin, l)
		if err != nil {
			fail(err)
		}
		tier.print(fmt.Sprintf("redistier x%d %s", c.instances, l))
	}
	if c.peer {
		peer, err := runPeer(ctx, c, admin)
		if err != nil {
			fail(err)
		}
		peer.print("redis GET per request")
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "tierbench:", err)
	os.Exit(1)
}

func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func mode(c rueidis.Client) string {
	if c.Mode() == rueidis.ClientModeCluster {
		return fmt.Sprintf("Redis Cluster (%d nodes)", len(c.Nodes()))
	}
	return "standalone Redis"
}

type result struct {
	requests  uint64
	elapsed   time.Duration
	hitRatio  float64 // NaN: not applicable
	commands  uint64  // every command INFO commandstats counted, calls inside scripts included
	sent      uint64  // the commands clients sent: round trips
	latencies []time.Duration
	lost      int
}

func (r result) print(name string) {
	hr := "-"
	if !math.IsNaN(r.hitRatio) {
		hr = fmt.Sprintf("%.4f", r.hitRatio)
	}
	p := func(q float64) string {
		if len(r.latencies) == 0 {
			return "-"
		}
		return r.latencies[min(len(r.latencies)-1, int(q*float64(len(r.latencies))))].Round(time.Microsecond).String()
	}
	maxl := "-"
	if len(r.latencies) > 0 {
		maxl = r.latencies[len(r.latencies)-1].Round(time.Microsecond).String()
		if r.lost > 0 {
			maxl += fmt.Sprintf(" (%d not seen in 5s)", r.lost)
		}
	}
	per := func(n uint64) float64 { return 1000 * float64(n) / float64(max(r.requests, 1)) }
	fmt.Printf("%-22s %12.0f %10s %12.1f %12.1f %10s %10s %s\n", name, float64(r.requests)/r.elapsed.Seconds(), hr,
		per(r.sent), per(r.commands), p(0.5), p(0.99), maxl)
}

// commandCalls sums the calls of every command on every master, the calls
// scripts make included, and its own INFOs left out.
func commandCalls(ctx context.Context, admin rueidis.Client) (calls uint64, err error) {
	var total uint64
	for _, n := range admin.Nodes() {
		info, err := n.Do(ctx, n.B().Info().Section("replication").Build()).ToString()
		if err != nil {
			return 0, err
		}
		if !strings.Contains(info, "role:master") {
			continue
		}
		stats, err := n.Do(ctx, n.B().Info().Section("commandstats").Build()).ToString()
		if err != nil {
			return 0, err
		}
		for _, line := range strings.Split(stats, "\n") {
			name, ok := strings.CutPrefix(line, "cmdstat_")
			if !ok {
				continue
			}
			name, rest, _ := strings.Cut(name, ":calls=")
			if name == "info" {
				continue
			}
			v, _, _ := strings.Cut(rest, ",")
			n, _ := strconv.ParseUint(v, 10, 64)
			total += n
		}
	}
	return total, nil
}

func prefix() string {
	var b [6]byte
	rand.Read(b[:])
	return "tierbench-" + hex.EncodeToString(b[:]) + ":"
}

// picker returns a session index generator for one goroutine.
func picker(c config, seed int64) (func() int, *mrand.Rand) {
	r := mrand.New(mrand.NewSource(seed))
	if c.dist == "uniform" {
		return func() int { return r.Intn(c.sessions) }, r
	}
	z := mrand.NewZipf(r, c.zipfS, 1, uint64(c.sessions-1))
	return func() int { return int(z.Uint64()) }, r
}

// drive runs op from c.goroutines goroutines for c.duration and returns
// the requests done.
func drive(c config, op func(g int, next func() int, r *mrand.Rand) error) (uint64, time.Duration, error) {
	var done atomic.Uint64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	start := time.Now()
	for g := range c.goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			next, r := picker(c, int64(g)+1)
			var n uint64
			for {
				select {
				case <-stop:
					done.Add(n)
					return
				default:
				}
				if err := op(g, next, r); err != nil {
					firstErr.CompareAndSwap(nil, err)
				}
				n++
			}
		}()
	}
	time.Sleep(c.duration) // the workload's duration, not synchronisation
	close(stop)
	wg.Wait()
	elapsed := time.Since(start)
	if err, _ := firstErr.Load().(error); err != nil {
		return done.Load(), elapsed, err
	}
	return done.Load(), elapsed, nil
}

func runTier(ctx context.Context, c config, admin rueidis.Client, layout redistier.Layout) (result, error) {
	p := prefix()
	var mu sync.Mutex
	waiting := map[engine.Handle]chan struct{}{}
	stores := make([]*redistier.Store, c.instances)
	for i := range stores {
		o := redistier.Options{Addrs: c.addrs, KeyPrefix: p, Layout: layout}
		if i == 1 || c.instances == 1 {
			o.OnInvalidation = func(h engine.Handle) {
				mu.Lock()
				if ch := waiting[h]; ch != nil {
					close(ch)
					delete(waiting, h)
				}
				mu.Unlock()
			}
		}
		s, err := redistier.New(ctx, o)
		if err != nil {
			return result{}, err
		}
		defer s.Close() //nolint:errcheck // the run's results are in
		stores[i] = s
	}
	data := make([]byte, c.data)
	ids := make([]string, c.sessions)
	if err := preload(c, func(i int) error {
		s, err := stores[0].Create(ctx, engine.CreateOptions{Data: data})
		ids[i] = s.ID()
		return err
	}); err != nil {
		return result{}, err
	}
	before := make([]redistier.Stats, len(stores))
	for i, s := range stores {
		before[i] = s.Stats()
	}
	calls0, err := commandCalls(ctx, admin)
	if err != nil {
		return result{}, err
	}
	n, elapsed, err := drive(c, func(g int, next func() int, r *mrand.Rand) error {
		s := stores[g%len(stores)]
		id := ids[next()]
		if r.Float64() < c.updates {
			_, err := s.Update(ctx, id, 0, func(engine.Session) ([]byte, error) { return data, nil })
			return err
		}
		_, err := s.Find(ctx, id, nil)
		return err
	})
	if err != nil {
		return result{}, err
	}
	calls1, err := commandCalls(ctx, admin)
	if err != nil {
		return result{}, err
	}
	var hits, lookups, sent uint64
	for i, s := range stores {
		st, b := s.Stats(), before[i]
		hits += st.Local.Hits - b.Local.Hits
		lookups += st.Local.Hits + st.Local.Misses - b.Local.Hits - b.Local.Misses
		sent += st.Commands - b.Commands
	}
	res := result{requests: n, elapsed: elapsed, hitRatio: float64(hits) / float64(max(lookups, 1)),
		commands: calls1 - calls0, sent: sent}

	// Invalidation latency: A (instance 0) writes a session B (instance 1,
	// or A itself when alone) holds a copy of; time from the write's start
	// until B has dropped its copy.
	a, b := stores[0], stores[min(1, len(stores)-1)]
	for i := range c.samples {
		id := ids[i%len(ids)]
		var h engine.Handle
		for range 10 {
			b.Find(ctx, id, nil) //nolint:errcheck
			s, err := b.Find(ctx, id, nil)
			if err != nil {
				return result{}, err
			}
			h = s.Handle()
			if b.Stats().Local.Live > 0 {
				break
			}
		}
		ch := make(chan struct{})
		mu.Lock()
		waiting[h] = ch
		mu.Unlock()
		start := time.Now()
		if _, err := a.Update(ctx, id, 0, func(engine.Session) ([]byte, error) { return data, nil }); err != nil {
			return result{}, err
		}
		select {
		case <-ch:
			res.latencies = append(res.latencies, time.Since(start))
		case <-time.After(5 * time.Second):
			res.lost++
			mu.Lock()
			delete(waiting, h)
			mu.Unlock()
		}
	}
	slices.Sort(res.latencies)
	return res, nil
}

func preload(c config, create func(i int) error) error {
	var wg sync.WaitGroup
	var first atomic.Value
	var next atomic.Int64
	for range min(c.goroutines, 64) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= c.sessions {
					return
				}
				if err := create(i); err != nil {
					first.CompareAndSwap(nil, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := first.Load().(error); err != nil {
		return err
	}
	return nil
}

func runPeer(ctx context.Context, c config, admin rueidis.Client) (result, error) {
	client, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: c.addrs, DisableCache: true})
	if err != nil {
		return result{}, err
	}
	defer client.Close()
	p := prefix()
	data := string(make([]byte, c.data))
	key := func(i int) string { return p + "{" + strconv.Itoa(i%16384) + "}" + strconv.Itoa(i) }
	if err := preload(c, func(i int) error {
		return client.Do(ctx, client.B().Set().Key(key(i)).Value(data).Build()).Error()
	}); err != nil {
		return result{}, err
	}
	calls0, err := commandCalls(ctx, admin)
	if err != nil {
		return result{}, err
	}
	n, elapsed, err := drive(c, func(g int, next func() int, r *mrand.Rand) error {
		k := key(next())
		if r.Float64() < c.updates {
			return client.Do(ctx, client.B().Set().Key(k).Value(data).Build()).Error()
		}
		return client.Do(ctx, client.B().Get().Key(k).Build()).Error()
	})
	if err != nil {
		return result{}, err
	}
	calls1, err := commandCalls(ctx, admin)
	if err != nil {
		return result{}, err
	}
	return result{requests: n, elapsed: elapsed, hitRatio: math.NaN(),
		commands: calls1 - calls0, sent: calls1 - calls0}, nil
}
