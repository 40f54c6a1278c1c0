// Command ratios reads the output of the bench module's benchmarks and
// writes, as Markdown, the headline comparisons the project tracks: the
// median time per operation of sesscache and of a peer, and their ratio, for
// each benchmark and GOMAXPROCS; and the median memory per session of every
// store. benchstat gives the full tables with confidence intervals; this
// gives the few numbers people quote.
//
// Usage:
//
//	ratios file...
//
// Benchmark names must carry the store as a store=<name> element, as
// Benchmark<Workload>[/<variant>]/store=<name>[-<GOMAXPROCS>] does.
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

const base = "sesscache"

// result is one benchmark line.
type result struct {
	name  string // the name without its store element and GOMAXPROCS suffix
	store string // "" for a benchmark of no store, such as NewID
	procs int
	units map[string]float64
}

// parse reads benchmark lines from r and ignores every other line.
func parse(r io.Reader) ([]result, error) {
	var out []result
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		if _, err := strconv.ParseInt(f[1], 10, 64); err != nil {
			continue
		}
		res := result{procs: 1, units: make(map[string]float64)}
		full := strings.TrimPrefix(f[0], "Benchmark")
		// The testing package appends -GOMAXPROCS unless it is 1.
		if i := strings.LastIndexByte(full, '-'); i >= 0 {
			if p, err := strconv.Atoi(full[i+1:]); err == nil {
				res.procs, full = p, full[:i]
			}
		}
		var parts []string
		for _, p := range strings.Split(full, "/") {
			if s, ok := strings.CutPrefix(p, "store="); ok {
				res.store = s
				continue
			}
			parts = append(parts, p)
		}
		res.name = strings.Join(parts, "/")
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, fmt.Errorf("%s: value %q: %w", f[0], f[i], err)
			}
			res.units[f[i+1]] = v
		}
		out = append(out, res)
	}
	return out, sc.Err()
}

// samples holds every value of one unit, by benchmark, GOMAXPROCS and store.
type samples map[string]map[int]map[string][]float64

func collect(rs []result, unit string) samples {
	s := samples{}
	for _, r := range rs {
		v, ok := r.units[unit]
		if !ok {
			continue
		}
		if s[r.name] == nil {
			s[r.name] = map[int]map[string][]float64{}
		}
		if s[r.name][r.procs] == nil {
			s[r.name][r.procs] = map[string][]float64{}
		}
		s[r.name][r.procs][r.store] = append(s[r.name][r.procs][r.store], v)
	}
	return s
}

// median returns the median of vs and how many there are; ok is false if
// there are none.
func median(vs []float64) (m float64, n int, ok bool) {
	if len(vs) == 0 {
		return 0, 0, false
	}
	s := slices.Sorted(slices.Values(vs))
	h := len(s) / 2
	if len(s)%2 == 1 {
		return s[h], len(s), true
	}
	return (s[h-1] + s[h]) / 2, len(s), true
}

func (s samples) median(name string, procs int, store string) (float64, int, bool) {
	return median(s[name][procs][store])
}

// procsOf returns the GOMAXPROCS values seen for name, in order.
func (s samples) procsOf(name string) []int {
	var ps []int
	for p := range s[name] {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps
}

// headline is one comparison the project tracks.
type headline struct {
	name  string
	peers []string
}

// headlines lists them: Get against otter with expire-after-access (the
// closest peer in semantics) and against the unlocked map (the physical
// limit); writes against otter-eaa. otter-eaa-coarse, otter given the same
// kind of coarse clock sesscache uses, shows how much of the gap is the
// clock.
var headlines = []headline{
	{"Get/zipf", []string{"otter-eaa", "otter-eaa-coarse", "unlocked-map"}},
	{"Get/uniform", []string{"otter-eaa", "otter-eaa-coarse", "unlocked-map"}},
	{"Mix90_10/zipf", []string{"otter-eaa"}},
	{"Mix90_10/uniform", []string{"otter-eaa"}},
	{"Create", []string{"otter-eaa"}},
	{"Update/zipf", []string{"otter-eaa"}},
	{"Update/uniform", []string{"otter-eaa"}},
}

func write(w io.Writer, rs []result) {
	ns := collect(rs, "ns/op")

	fmt.Fprintf(w, "### Time per operation\n\n")
	fmt.Fprintf(w, "Medians of ns/op; ratio is %s's time over the peer's, so below 1 %s is faster. "+
		"n is the number of runs behind each median.\n\n", base, base)
	fmt.Fprintf(w, "| benchmark | GOMAXPROCS | peer | %s ns/op | peer ns/op | ratio | %s is | n |\n", base, base)
	fmt.Fprintf(w, "|---|---|---|---:|---:|---:|---|---|\n")
	for _, h := range headlines {
		for _, p := range ns.procsOf(h.name) {
			b, bn, bok := ns.median(h.name, p, base)
			for _, peer := range h.peers {
				v, vn, ok := ns.median(h.name, p, peer)
				if !ok || !bok {
					continue
				}
				fmt.Fprintf(w, "| %s | %d | %s | %.1f | %.1f | %.2f | %s | %d/%d |\n",
					h.name, p, peer, b, v, b/v, verdict(b, v), bn, vn)
			}
			// sesscache's Create draws the session ID; the peers' are
			// handed one. Charging the peers for drawing one too is the
			// like-for-like comparison.
			if h.name == "Create" && bok {
				id, _, idok := ns.median("NewID", p, "")
				v, vn, ok := ns.median(h.name, p, "otter-eaa")
				if idok && ok {
					fmt.Fprintf(w, "| Create, peer + NewID | %d | otter-eaa | %.1f | %.1f | %.2f | %s | %d/%d |\n",
						p, b, v+id, b/(v+id), verdict(b, v+id), bn, vn)
				}
			}
		}
	}

	mem := collect(rs, "B/session")
	over := collect(rs, "B-overhead/session")
	if len(mem) > 0 {
		fmt.Fprintf(w, "\n### Memory per session\n\n")
		fmt.Fprintf(w, "Medians of live heap per session; overhead is what remains beyond the 22-byte ID and 200 bytes of data.\n\n")
		fmt.Fprintf(w, "| store | B/session | B-overhead/session | n |\n|---|---:|---:|---|\n")
		for _, store := range storesOf(rs, "Memory") {
			for _, p := range mem.procsOf("Memory") {
				m, n, ok := mem.median("Memory", p, store)
				o, _, ook := over.median("Memory", p, store)
				if ok && ook {
					fmt.Fprintf(w, "| %s | %.1f | %.1f | %d |\n", store, m, o, n)
				}
			}
		}
	}

	var adapter []string
	for name := range ns {
		if strings.HasPrefix(name, "Adapter/") && strings.HasSuffix(name, "/call=direct") {
			adapter = append(adapter, strings.TrimSuffix(name, "/call=direct"))
		}
	}
	slices.Sort(adapter)
	if len(adapter) > 0 {
		fmt.Fprintf(w, "\n### Adapter overhead\n\n")
		fmt.Fprintf(w, "Gets through the store interface against the same Gets written directly (medians of ns/op).\n\n")
		fmt.Fprintf(w, "| benchmark | GOMAXPROCS | store | direct | interface | difference |\n|---|---|---|---:|---:|---:|\n")
		for _, a := range adapter {
			for _, p := range ns.procsOf(a + "/call=direct") {
				for _, store := range storesOf(rs, a+"/call=direct") {
					d, _, dok := ns.median(a+"/call=direct", p, store)
					i, _, iok := ns.median(a+"/call=interface", p, store)
					if dok && iok {
						fmt.Fprintf(w, "| %s | %d | %s | %.1f | %.1f | %+.1f ns |\n", a, p, store, d, i, i-d)
					}
				}
			}
		}
	}
}

// storesOf returns the stores that ran name, in the order they first
// appear.
func storesOf(rs []result, name string) []string {
	var out []string
	for _, r := range rs {
		if r.name == name && !slices.Contains(out, r.store) {
			out = append(out, r.store)
		}
	}
	return out
}

func verdict(b, peer float64) string {
	switch {
	case b < peer:
		return fmt.Sprintf("%.2f× faster", peer/b)
	case b > peer:
		return fmt.Sprintf("%.2f× slower", b/peer)
	}
	return "even"
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: ratios file...")
		os.Exit(2)
	}
	var all []result
	for _, path := range os.Args[1:] {
		f, err := os.Open(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		rs, err := parse(f)
		_ = f.Close() // read-only
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", path, err)
			os.Exit(1)
		}
		all = append(all, rs...)
	}
	write(os.Stdout, all)
}
