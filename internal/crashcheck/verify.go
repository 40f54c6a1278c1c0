package crashcheck

import (
	"cmp"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/sesscache/sesscache/engine"
)

// VerifyOptions configures Verify. The zero value works.
type VerifyOptions struct {
	// Logger receives the recovering engines' reports; nil means
	// slog.Default(), as in engine.Options.
	Logger *slog.Logger
	// TempDir is where the fallback check copies the directory; "" means
	// os.TempDir().
	TempDir string
	// Trace, if set, receives an account of every cycle with problems:
	// its plan, its operations and how each ended, and the sessions before
	// and after, by logical number. It is for reproducing a failure.
	Trace io.Writer
}

// Verdict is one cycle's check. Problems describe what recovery got wrong,
// sessions by logical number, never by ID; a cycle passed if there are
// none.
type Verdict struct {
	// Acked counts the acknowledged operations checked, ByKind the same by
	// operation; Failed the updates that failed as they may (a version
	// conflict, the session gone or rotated away), whose data must appear
	// nowhere.
	Acked  int
	ByKind map[Kind]int
	Failed int
	// InFlight counts the operations in flight when the child died;
	// MultiInFlight those of them that change several sessions, or may
	// (a rotation, a login, a revocation, a creation for a capped user).
	InFlight, MultiInFlight int
	// Checked counts the session lookups and comparisons made.
	Checked int
	// Lost counts acknowledged writes recovery did not hold.
	Lost int
	// FromSnapshot says recovery started from a snapshot; Fallback that
	// the directory held an older snapshot too, and recovery from it (with
	// the newest moved aside) was compared with the normal recovery.
	FromSnapshot, Fallback bool
	// Snapshots counts the snapshots the child completed.
	Snapshots int
	// KilledInOpen says the child died before its engine was open;
	// PowerCut that it cut the power first.
	KilledInOpen, PowerCut bool
	// MappedCut says the power cut hit a log on mapped segments.
	MappedCut bool
	Problems  []string
}

func (v *Verdict) problem(format string, args ...any) {
	v.Problems = append(v.Problems, fmt.Sprintf(format, args...))
}

// Verify recovers dir, the directory the child of run left, and checks it
// against m and run:
//
//   - what the child saw while it ran: revocations ended every session the
//     user had (RevokeOthers: but one), and the cap evicted the sessions
//     that authenticated longest ago, no more and no fewer;
//   - every acknowledged write is there, except, after a power cut under
//     SyncEverySecond, writes neither fsynced since (a removal, or a write
//     acknowledged before a later removal began or before a completed
//     snapshot began) nor older than run.Plan.LossWindow;
//   - each writer's sessions are as a prefix of its operations left them,
//     each operation whole or not at all: a rotation or login leaves
//     exactly one of the old and new IDs live, a revocation ends all of
//     the user's sessions or none, a creation or login evicts what the
//     cap says exactly when it takes effect;
//   - after a power cut under SyncEverySecond, nothing survived that
//     began after an acknowledged write that was lost (the log is a
//     prefix);
//   - old IDs are dead (a rotation's grace ends with the process), known
//     IDs find their sessions, and no session holds data that nobody
//     wrote or that a failed update tried to write;
//   - if dir holds two snapshots or more, recovery from the older one and
//     the log after it (in a copy, with the newest moved aside) gives the
//     same sessions.
//
// Then it settles m on what recovery shows. An error means the harness
// itself failed (the operations do not fit the model, or a recovered
// engine failed a read or a close); what recovery got wrong is in the
// Verdict. After Problems, m no longer matches dir.
func (m *Model) Verify(dir string, run *Run, opts VerifyOptions) (Verdict, error) {
	if m.live == nil {
		m.live = map[int]*entry{}
	}
	v := &verifier{m: m, run: run, cfg: run.Plan.Config, opts: opts,
		verdict: Verdict{ByKind: map[Kind]int{}, Snapshots: run.Snapshots, KilledInOpen: !run.Ready, PowerCut: run.Cut,
			MappedCut: run.Cut && run.Plan.Config.Mapped}}
	if err := v.simulate(); err != nil {
		return v.verdict, err
	}
	fallback, err := copyForFallback(dir, opts.TempDir)
	if err != nil {
		return v.verdict, err
	}
	defer fallback.remove()

	e, err := engine.Open(engine.Options{Dir: dir, Logger: opts.Logger, IdleTimeout: longTimeout, AbsoluteTimeout: longTimeout})
	if err != nil {
		v.verdict.problem("recovery failed: %v", err)
		v.trace(opts.Trace)
		return v.verdict, nil
	}
	v.e = e
	v.verdict.FromSnapshot = e.Stats().Recovery.SnapshotLSN > 0
	v.obs, v.strays = observe(e)
	v.checkIDs()
	v.checkStructure()
	v.checkContent()
	v.checkPrefix()
	if err := e.Close(); err != nil {
		return v.verdict, fmt.Errorf("closing the recovered engine: %w", err)
	}
	if fallback != nil {
		v.verdict.Fallback = true
		if err := v.checkFallback(fallback); err != nil {
			return v.verdict, err
		}
	}
	v.trace(opts.Trace)
	v.settle()
	return v.verdict, nil
}

// verifier is one Verify call.
type verifier struct {
	m       *Model
	run     *Run
	cfg     Config
	opts    VerifyOptions
	verdict Verdict
	e       *engine.Engine

	// byWriter holds each writer's structural operations in order; ids
	// every ID each session had, base or reported; created the sessions
	// created in the run.
	byWriter map[int][]*Op
	ids      map[int][]string
	created  map[int]*Op
	// domains holds, by writer, the sessions its structural operations
	// touched or could have touched, and its users.
	domains map[int]*domain
	// matched holds, by writer, the numbers of its operations after which
	// recovery matches it.
	matched map[int][]int

	obs    map[int][]observed
	strays int
	idents map[string]string // identOf's answers, which settle needs after the engine is closed
}

type domain struct {
	sessions map[int]bool
	users    map[string]bool
}

// slot is one live session in a state the verifier thinks possible.
type slot struct {
	ident  string // "" for an ID nobody reported: any but the session's known ones
	user   string
	authAt int64 // unknownAuth if nobody reported it
}

const unknownAuth = -1

type state map[int]slot

// base returns the model's sessions as a state.
func (v *verifier) base() state {
	st := state{}
	for n, e := range v.m.live {
		st[n] = slot{ident: e.ident, user: e.user, authAt: e.authAt}
	}
	return st
}

// simulate replays the run as the child saw it (every acknowledged
// operation applied in turn) to check that the operations fit the model,
// to check what the child saw, and to learn the writers' domains.
func (v *verifier) simulate() error {
	v.byWriter, v.ids, v.created, v.domains = map[int][]*Op{}, map[int][]string{}, map[int]*Op{}, map[int]*domain{}
	for n, e := range v.m.live {
		if e.id != "" {
			v.ids[n] = append(v.ids[n], e.id)
		}
	}
	st := v.base()
	for _, op := range v.run.Ops {
		switch op.Status {
		case Acked:
			v.verdict.Acked++
			v.verdict.ByKind[op.Kind]++
		case Failed:
			v.verdict.Failed++
		case InFlight:
			v.verdict.InFlight++
			if op.Kind == Rotate || op.Kind == Login || op.Kind == RevokeUser || op.Kind == RevokeOthers ||
				(op.Kind == Create && op.User != "" && v.cfg.MaxPerUser > 0) {
				v.verdict.MultiInFlight++
			}
		}
		if op.ID != "" {
			v.ids[op.N] = append(v.ids[op.N], op.ID)
		}
		if op.Kind == Create {
			if op.N < v.m.next || v.created[op.N] != nil {
				return fmt.Errorf("writer %d created session %d, a number already used", op.Writer, op.N)
			}
			v.created[op.N] = op
		}
		if !op.Kind.structural() {
			if _, ok := v.m.live[op.N]; !ok && v.created[op.N] == nil {
				return fmt.Errorf("writer %d updated session %d, which the model does not hold", op.Writer, op.N)
			}
			continue
		}
		if op.Kind != Create && op.Kind != RevokeUser {
			if _, ok := st[op.N]; !ok {
				return fmt.Errorf("writer %d used session %d, which the model does not hold", op.Writer, op.N)
			}
		}
		v.byWriter[op.Writer] = append(v.byWriter[op.Writer], op)
		d := v.domains[op.Writer]
		if d == nil {
			d = &domain{sessions: map[int]bool{}, users: map[string]bool{}}
			v.domains[op.Writer] = d
		}
		if op.N >= 0 {
			d.sessions[op.N] = true
			if s, ok := st[op.N]; ok && s.user != "" {
				d.users[s.user] = true
			}
		}
		if op.User != "" {
			d.users[op.User] = true
		}
		if op.Status == Acked {
			v.checkSeen(st, op)
			st = v.apply(st, op)[0]
		}
	}
	// A writer's domain also holds every session its users had.
	for _, d := range v.domains {
		for n, e := range v.m.live {
			if d.users[e.user] {
				d.sessions[n] = true
			}
		}
	}
	owner := map[int]int{}
	users := map[string]int{}
	for w, d := range v.domains {
		for n := range d.sessions {
			if o, ok := owner[n]; ok && o != w {
				return fmt.Errorf("writers %d and %d both changed session %d", o, w, n)
			}
			owner[n] = w
		}
		for u := range d.users {
			if o, ok := users[u]; ok && o != w {
				return fmt.Errorf("writers %d and %d both changed the sessions of %s", o, w, u)
			}
			users[u] = w
		}
	}
	return nil
}

// checkSeen checks what an acknowledged structural operation reported
// against st, the state it was applied to.
func (v *verifier) checkSeen(st state, op *Op) {
	switch op.Kind {
	case RevokeUser, RevokeOthers:
		want := 0
		for n, s := range st {
			if s.user == op.User && (op.Kind != RevokeOthers || n != op.N) {
				want++
			}
		}
		if op.Count != want {
			v.verdict.problem("%s reported ending %d sessions; the user had %d to end", op, op.Count, want)
		}
	case RevokeSession:
		if st[op.N].user != op.User {
			v.verdict.problem("%s succeeded, but the session is not %s's", op, op.User)
		}
	case Create, Login:
		choices := v.evictions(st, op)
		got := slices.Sorted(slices.Values(op.Evicted))
		if !slices.ContainsFunc(choices, func(c []int) bool { return slices.Equal(c, got) }) {
			v.verdict.problem("%s evicted sessions %v; the cap of %d called for %s", op, got, v.cfg.MaxPerUser, describeChoices(choices))
		}
	}
}

func describeChoices(choices [][]int) string {
	if len(choices) == 1 && len(choices[0]) == 0 {
		return "none"
	}
	var parts []string
	for _, c := range choices {
		parts = append(parts, fmt.Sprint(c))
	}
	return strings.Join(parts, " or ")
}

// evictions returns the sets of sessions (sorted) that the cap may evict
// when op, a creation or login, takes effect on st: the user's sessions
// that authenticated longest ago, as many as take the user past the cap;
// among sessions that authenticated at the same instant, any.
func (v *verifier) evictions(st state, op *Op) [][]int {
	limit := v.cfg.MaxPerUser
	if op.User == "" || limit <= 0 || (op.Kind == Login && st[op.N].user == op.User) {
		return [][]int{nil}
	}
	var mine []int
	for n, s := range st {
		if s.user == op.User && n != op.N {
			mine = append(mine, n)
		}
	}
	auth := func(n int) int64 {
		if a := st[n].authAt; a != unknownAuth {
			return a
		}
		return math.MaxInt64
	}
	slices.SortFunc(mine, func(a, b int) int { return cmp.Or(cmp.Compare(auth(a), auth(b)), cmp.Compare(a, b)) })
	k := len(mine) + 1 - limit
	if k <= 0 {
		return [][]int{nil}
	}
	edge := auth(mine[k-1])
	var must, tied []int
	for _, n := range mine {
		switch {
		case auth(n) < edge:
			must = append(must, n)
		case auth(n) == edge:
			tied = append(tied, n)
		}
	}
	var out [][]int
	for _, pick := range combinations(tied, k-len(must)) {
		out = append(out, slices.Sorted(slices.Values(append(slices.Clone(must), pick...))))
	}
	return out
}

// combinations returns every way to choose k of set.
func combinations(set []int, k int) [][]int {
	if k == 0 {
		return [][]int{nil}
	}
	if len(set) < k {
		return nil
	}
	with := combinations(set[1:], k-1)
	for i := range with {
		with[i] = append([]int{set[0]}, with[i]...)
	}
	return append(with, combinations(set[1:], k)...)
}

// apply returns the states op, a structural operation, may leave st in:
// one if it was acknowledged (what it reported is what it did), one per
// eviction the cap allows if it was not.
func (v *verifier) apply(st state, op *Op) []state {
	known := op.Status == Acked
	ident := ""
	auth := int64(unknownAuth)
	if known {
		ident = v.identOf(op.ID)
		auth = op.AuthAt
	}
	next := maps.Clone(st)
	switch op.Kind {
	case Rotate:
		s := next[op.N]
		s.ident = ident
		next[op.N] = s
	case Delete, RevokeSession:
		delete(next, op.N)
	case RevokeUser, RevokeOthers:
		for n, s := range st {
			if s.user == op.User && (op.Kind != RevokeOthers || n != op.N) {
				delete(next, n)
			}
		}
	case Create, Login:
		if op.Kind == Create && op.User == "" {
			auth = 0
		}
		choices := [][]int{op.Evicted}
		if !known {
			choices = v.evictions(st, op)
		}
		out := make([]state, 0, len(choices))
		for _, evict := range choices {
			s := maps.Clone(next)
			for _, n := range evict {
				delete(s, n)
			}
			s[op.N] = slot{ident: ident, user: op.User, authAt: auth}
			out = append(out, s)
		}
		return out
	}
	return []state{next}
}

// identOf returns the handle of the session with token id, in text, as
// recovery names sessions; "" for a token the engine rejects.
func (v *verifier) identOf(id string) string {
	if s, ok := v.idents[id]; ok {
		return s
	}
	if v.e == nil {
		return "" // simulate runs before recovery; only the states' shape matters then
	}
	s := ""
	if h, err := v.e.HandleOf(id); err == nil {
		s = h.String()
	}
	if v.idents == nil {
		v.idents = map[string]string{}
	}
	v.idents[id] = s
	return s
}

// guaranteed reports whether op, acknowledged, must have survived.
func (v *verifier) guaranteed(op *Op) bool {
	if op.Status != Acked {
		return false
	}
	if !v.run.Cut || v.cfg.Sync != "everysec" || op.fsynced() {
		return true
	}
	if v.run.cutAt.Sub(op.endedAt) > v.run.Plan.LossWindow {
		return true
	}
	// Fsynced since: acknowledged before a removal that returned (and so
	// was fsynced, and everything logged before it) began, or before a
	// snapshot that completed (and so was published, with the log through
	// what it copied made durable) began.
	for _, o := range v.run.Ops {
		if o.fsynced() && o.begun > op.ended {
			return true
		}
	}
	for _, s := range v.run.snapBegun {
		if s > op.ended {
			return true
		}
	}
	return false
}

// Totals sums the verdicts of a run's cycles, for its report.
type Totals struct {
	Cycles                  int
	Acked, Failed           int
	ByKind                  map[Kind]int
	InFlight, MultiInFlight int
	Checked, Lost, Problems int
	FromSnapshot, Fallbacks int
	KilledInOpen, PowerCuts int
	MappedCuts              int // power cuts on mapped segments
	Snapshots               int
}

// Add counts one cycle's verdict.
func (t *Totals) Add(v Verdict) {
	t.Cycles++
	t.Acked += v.Acked
	t.Failed += v.Failed
	if t.ByKind == nil {
		t.ByKind = map[Kind]int{}
	}
	for k, n := range v.ByKind {
		t.ByKind[k] += n
	}
	t.InFlight += v.InFlight
	t.MultiInFlight += v.MultiInFlight
	t.Checked += v.Checked
	t.Lost += v.Lost
	t.Problems += len(v.Problems)
	t.Snapshots += v.Snapshots
	for _, c := range []struct {
		ok bool
		n  *int
	}{{v.FromSnapshot, &t.FromSnapshot}, {v.Fallback, &t.Fallbacks}, {v.KilledInOpen, &t.KilledInOpen}, {v.PowerCut, &t.PowerCuts}, {v.MappedCut, &t.MappedCuts}} {
		if c.ok {
			*c.n++
		}
	}
}

// Kinds lists the operations in the order reports show them.
var Kinds = []Kind{Create, Update, Rotate, Login, Delete, RevokeUser, RevokeOthers, RevokeSession}

// Summary returns the totals in one line.
func (t Totals) Summary() string {
	var kinds []string
	for _, k := range Kinds {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, t.ByKind[k]))
	}
	return fmt.Sprintf("%d cycles (%d killed inside Open, %d power cuts, %d of them on mapped segments; %d recovered from a snapshot, %d fallbacks to the older one checked); "+
		"%d acknowledged operations checked (%s), %d updates failed as they may; %d in flight at the kill, %d of them multi-session; "+
		"%d snapshots taken; %d lost, %d problems",
		t.Cycles, t.KilledInOpen, t.PowerCuts, t.MappedCuts, t.FromSnapshot, t.Fallbacks,
		t.Acked, strings.Join(kinds, ", "), t.Failed, t.InFlight, t.MultiInFlight, t.Snapshots, t.Lost, t.Problems)
}
