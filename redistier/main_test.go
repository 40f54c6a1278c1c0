package redistier

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/sesscache/sesscache/engine"
)

// The tests run against real servers: REDISTIER_STANDALONE (one address)
// and REDISTIER_CLUSTER (comma-separated nodes of a 3-master, 3-replica
// Cluster), as testdata/redis.sh prints them. When they are not set,
// TestMain runs testdata/redis.sh itself (redis-server must be on PATH),
// and fails, rather than skips, when it cannot.
var (
	standaloneAddr string
	clusterAddrs   []string
	redisDir       string // testdata/redis.sh's directory, when TestMain started it or REDISTIER_DIR says
)

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	standaloneAddr = os.Getenv("REDISTIER_STANDALONE")
	cl := os.Getenv("REDISTIER_CLUSTER")
	redisDir = os.Getenv("REDISTIER_DIR")
	if standaloneAddr == "" || cl == "" {
		if _, err := exec.LookPath("redis-server"); err != nil {
			fmt.Fprintln(os.Stderr, "redistier: the tests need Redis: set REDISTIER_STANDALONE and REDISTIER_CLUSTER "+
				"(see testdata/redis.sh), or put redis-server on PATH (apt-get install -y redis-server)")
			return 1
		}
		cmd := exec.Command("bash", "testdata/redis.sh", "start", "-p", strconv.Itoa(os.Getpid()))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			fmt.Fprintf(os.Stderr, "redistier: testdata/redis.sh start failed: %v\n%s", err, stderr.String())
			return 1
		}
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			k, v, _ := strings.Cut(sc.Text(), "=")
			switch k {
			case "REDISTIER_STANDALONE":
				standaloneAddr = v
			case "REDISTIER_CLUSTER":
				cl = v
			case "REDISTIER_DIR":
				redisDir = v
			}
		}
		defer exec.Command("bash", "testdata/redis.sh", "stop", redisDir).Run() //nolint:errcheck
	}
	clusterAddrs = strings.Split(cl, ",")
	os.Setenv("REDISTIER_STANDALONE", standaloneAddr) // for the examples
	os.Setenv("REDISTIER_CLUSTER", cl)
	code := m.Run()
	if code == 0 {
		if leaked := leftover(); len(leaked) > 0 {
			fmt.Fprintf(os.Stderr, "%d goroutines outlived the tests:\n%s\n", len(leaked), strings.Join(leaked, "\n\n"))
			code = 1
		}
	}
	return code
}

// ours matches the goroutines a Store starts: its own, its engines', and
// its client's.
func ours(stack string) bool {
	if strings.Contains(stack, "testing.tRunner") || strings.Contains(stack, "main.main") {
		return false // a test's own goroutine, or the test binary's
	}
	return strings.Contains(stack, "sesscache/sesscache/redistier.") ||
		strings.Contains(stack, "sesscache/sesscache/engine.") ||
		strings.Contains(stack, "github.com/redis/rueidis")
}

// leftover returns the stacks of our goroutines still alive after a grace
// period in which goroutines told to stop finish unwinding (10 s: after a
// topology change rueidis closes replaced connections 5 s later).
func leftover() []string {
	deadline := time.Now().Add(10 * time.Second)
	for {
		buf := make([]byte, 1<<22)
		buf = buf[:runtime.Stack(buf, true)]
		var found []string
		for _, g := range strings.Split(string(buf), "\n\n")[1:] {
			if ours(g) && !strings.Contains(g, "leftover") {
				found = append(found, g)
			}
		}
		if len(found) == 0 || time.Now().After(deadline) {
			return found
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// topology is a Redis to test against, and the layout the stores opened
// on it use.
type topology struct {
	name   string
	addrs  []string
	layout Layout
}

// layouts are the record layouts the behaviour tests run against.
var layouts = []Layout{LayoutHash, LayoutString}

func topologies() []topology {
	return []topology{{name: "standalone", addrs: []string{standaloneAddr}}, {name: "cluster", addrs: clusterAddrs}}
}

// eachTopology runs f as a subtest against the standalone server and
// against the Cluster, each with every layout.
func eachTopology(t *testing.T, f func(t *testing.T, tp topology)) {
	for _, tp := range topologies() {
		t.Run(tp.name, func(t *testing.T) { eachLayout(t, tp, f) })
	}
}

// eachLayout runs f as a subtest over tp with every layout.
func eachLayout(t *testing.T, tp topology, f func(t *testing.T, tp topology)) {
	for _, l := range layouts {
		tp.layout = l
		t.Run("layout="+l.String(), func(t *testing.T) { f(t, tp) })
	}
}

// ownEchoes is how many invalidations of its own a store receives for
// each session it creates: LayoutHash creates with a script, whose writes
// Redis reports to the writer too (NOLOOP does not cover them);
// LayoutString's plain SET is not reported back (in a Cluster, a replica
// may still report it late).
func ownEchoes(s *Store) uint64 {
	if s.opts.Layout == LayoutHash {
		return 1
	}
	return 0
}

// freshPrefix returns a key prefix no other test uses, so that tests
// sharing a server never see each other's keys.
func freshPrefix() string {
	var b [6]byte
	rand.Read(b[:])
	return "t" + hex.EncodeToString(b[:]) + ":"
}

// open returns a store over tp with opts (Addrs and, if empty, KeyPrefix
// filled in), closed by the test's cleanup unless the test closed it.
func open(t testing.TB, tp topology, opts Options) *Store {
	t.Helper()
	opts.Addrs = tp.addrs
	opts.Layout = tp.layout
	if opts.KeyPrefix == "" {
		t.Fatal("open: the test must choose a KeyPrefix (freshPrefix) shared by its instances")
	}
	s, err := New(context.Background(), opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil && !errors.Is(err, engine.ErrClosed) {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// admin returns a plain client of tp for the tests' own inspection, closed
// by the cleanup.
func admin(t testing.TB, tp topology) rueidis.Client {
	t.Helper()
	c, closeAdmin, err := newAdmin(tp)
	if err != nil {
		t.Fatalf("admin client: %v", err)
	}
	t.Cleanup(closeAdmin)
	return c
}

// newAdmin returns a plain client of tp and the function that closes it
// and every connection it dialed, as Store.Close does (see connSet): the
// tests kill connections and nodes, and a reconnection under way as the
// client closes must not outlive it.
func newAdmin(tp topology) (rueidis.Client, func(), error) {
	cs := new(connSet)
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: tp.addrs, DisableCache: true, DialCtxFn: cs.dial})
	if err != nil {
		cs.closeAll()
		return nil, nil, err
	}
	return c, func() { c.Close(); cs.closeAll() }, nil
}

// eventually polls cond until it holds or d has passed.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", d, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// redisScript runs testdata/redis.sh with args.
func redisScript(t testing.TB, args ...string) {
	t.Helper()
	if redisDir == "" {
		t.Fatal("this test needs REDISTIER_DIR (testdata/redis.sh's directory)")
	}
	out, err := exec.Command("bash", append([]string{"testdata/redis.sh"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis.sh %v: %v\n%s", args, err, out)
	}
}
