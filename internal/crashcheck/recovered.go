package crashcheck

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/sesscache/sesscache/engine"
)

// observed is one session as recovery holds it.
type observed struct {
	ident   string
	user    string
	data    string
	version uint64
	authAt  int64
}

// observe lists what e holds, by logical session (which the data names),
// and counts the sessions whose data names none.
func observe(e *engine.Engine) (map[int][]observed, int) {
	out := map[int][]observed{}
	strays := 0
	for h, s := range e.All() {
		o := observed{ident: h.String(), user: s.UserID(), data: string(s.Data()), version: s.Version()}
		if !s.AuthenticatedAt().IsZero() {
			o.authAt = s.AuthenticatedAt().UnixNano()
		}
		n, ok := logical(o.data)
		if !ok {
			strays++
			continue
		}
		out[n] = append(out[n], o)
	}
	return out, strays
}

// checkIDs looks every ID the run knew up: the one a session has now must
// find it, every other (rotated away, deleted, revoked, evicted) must not,
// not even as a rotation's grace view, which ends with the process.
func (v *verifier) checkIDs() {
	for _, n := range slices.Sorted(maps.Keys(v.ids)) {
		live := map[string]bool{}
		for _, o := range v.obs[n] {
			live[o.ident] = true
		}
		for _, id := range v.ids[n] {
			v.verdict.Checked++
			want := live[v.identOf(id)]
			s, err := v.e.Get(id)
			switch {
			case err == nil && s.Rotated():
				v.verdict.problem("an old ID of session %d still reads it after recovery (a grace view outlived the process)", n)
			case err == nil && !want:
				v.verdict.problem("an ID of session %d that recovery does not list still finds a session", n)
			case errors.Is(err, engine.ErrNotFound) && want:
				v.verdict.problem("session %d is listed but its ID does not find it", n)
			case err != nil && !errors.Is(err, engine.ErrNotFound):
				v.verdict.problem("looking up session %d: %v", n, err)
			}
		}
	}
}

// checkStructure checks which sessions exist, under which IDs and users:
// each writer's as some prefix of its operations left them, the others as
// the model has them.
func (v *verifier) checkStructure() {
	if v.strays > 0 {
		v.verdict.problem("recovery holds %d sessions whose data nobody wrote", v.strays)
	}
	inDomain := map[int]bool{}
	for _, d := range v.domains {
		for n := range d.sessions {
			inDomain[n] = true
		}
	}
	for _, n := range slices.Sorted(maps.Keys(v.obs)) {
		if _, known := v.m.live[n]; !known && v.created[n] == nil {
			v.verdict.problem("recovery holds session %d, which nobody created", n)
		}
	}
	for _, n := range slices.Sorted(maps.Keys(v.m.live)) {
		if inDomain[n] {
			continue
		}
		v.verdict.Checked++
		if d := v.compareSession(n, slot{ident: v.m.live[n].ident, user: v.m.live[n].user, authAt: v.m.live[n].authAt}, true); d != "" {
			v.verdict.Lost++
			v.verdict.problem("session %d, which no operation touched, %s", n, d)
		}
	}
	v.matched = map[int][]int{}
	for _, w := range slices.Sorted(maps.Keys(v.byWriter)) {
		v.matchWriter(w)
	}
}

// compareSession compares session n as recovered with what a state says
// of it (present, with s), and returns what differs, or "".
func (v *verifier) compareSession(n int, s slot, present bool) string {
	obs := v.obs[n]
	switch {
	case len(obs) > 1:
		return fmt.Sprintf("is live %d times, under different IDs", len(obs))
	case !present && len(obs) == 0:
		return ""
	case !present:
		return "is live, expected gone"
	case len(obs) == 0:
		return "is gone, expected live"
	}
	o := obs[0]
	switch {
	case s.ident != "" && o.ident != s.ident:
		return "is live under another ID than expected"
	case s.ident == "" && slices.ContainsFunc(v.ids[n], func(id string) bool { return v.identOf(id) == o.ident }),
		s.ident == "" && v.m.live[n] != nil && v.m.live[n].ident == o.ident:
		return "is live under its old ID, expected a new one"
	case o.user != s.user:
		return fmt.Sprintf("belongs to %q, expected %q", o.user, s.user)
	case s.authAt != unknownAuth && o.authAt != s.authAt:
		return "has another authentication time than reported"
	}
	return ""
}

// compare compares the sessions of a writer's domain with st and returns
// the differences, by session.
func (v *verifier) compare(d *domain, st state) map[int]string {
	diff := map[int]string{}
	check := func(n int) {
		s, ok := st[n]
		if x := v.compareSession(n, s, ok); x != "" {
			diff[n] = x
		}
	}
	for n := range d.sessions {
		check(n)
	}
	for n, obs := range v.obs {
		if !d.sessions[n] && slices.ContainsFunc(obs, func(o observed) bool { return d.users[o.user] }) {
			check(n)
		}
	}
	return diff
}

// matchWriter finds after which of writer w's operations its sessions
// are as recovered, and reports it if that is nowhere the guarantees
// allow: an acknowledged operation lost, or one come back in part.
func (v *verifier) matchWriter(w int) {
	ops, d := v.byWriter[w], v.domains[w]
	lo := 0 // every operation before lo must have taken effect
	for i, op := range ops {
		if v.guaranteed(op) {
			lo = i + 1
		}
	}
	states := []state{v.base()}
	type closest struct {
		cut  int
		diff map[int]string
	}
	var best *closest
	var matches []int
	for cut := 0; ; cut++ {
		for _, st := range states {
			v.verdict.Checked++
			diff := v.compare(d, st)
			if len(diff) == 0 {
				matches = append(matches, cut)
				break
			}
			if best == nil || len(diff) <= len(best.diff) {
				best = &closest{cut, diff}
			}
		}
		if cut == len(ops) {
			break
		}
		var next []state
		for _, st := range states {
			next = append(next, v.apply(st, ops[cut])...)
		}
		states = next
	}
	v.matched[w] = slices.DeleteFunc(slices.Clone(matches), func(c int) bool { return c < lo })
	if len(v.matched[w]) > 0 {
		return
	}
	if len(matches) > 0 {
		// Recovery is as after fewer operations than were guaranteed.
		for _, op := range ops[slices.Max(matches):lo] {
			if op.Status == Acked {
				v.verdict.Lost++
				v.verdict.problem("acknowledged %s was lost", op)
			}
		}
		return
	}
	where := "before its first operation"
	if best.cut > 0 {
		where = fmt.Sprintf("after %d of its %d operations", best.cut, len(ops))
	}
	var parts []string
	for _, n := range slices.Sorted(maps.Keys(best.diff)) {
		parts = append(parts, fmt.Sprintf("session %d %s", n, best.diff[n]))
	}
	msg := fmt.Sprintf("writer %d: recovery matches no state its operations could leave; closest: %s: %s",
		w, where, strings.Join(parts, "; "))
	// The operations either side of the closest state are the likeliest
	// to have come back in part.
	if best.cut > 0 {
		msg += "; the operation before: " + v.partly(ops[best.cut-1], best.cut-1, w)
	}
	if best.cut < len(ops) {
		msg += "; the operation after: " + v.partly(ops[best.cut], best.cut, w)
	}
	v.verdict.problem("%s", msg)
}

// partly describes how much of op, the operation after the closest state,
// recovery shows: an operation come back in part reads as such.
func (v *verifier) partly(op *Op, cut, w int) string {
	status := map[Status]string{InFlight: "in flight at the kill", Acked: "acknowledged", Failed: "failed"}[op.Status]
	// The state op applied to, as the child saw it.
	st := v.base()
	for _, o := range v.byWriter[w][:cut] {
		st = v.apply(st, o)[0]
	}
	live := func(n int) bool { return len(v.obs[n]) > 0 }
	desc := fmt.Sprintf("%s, %s", op, status)
	switch op.Kind {
	case Rotate, Login:
		old := st[op.N].ident
		oldLive, newLive := false, false
		for _, o := range v.obs[op.N] {
			if o.ident == old {
				oldLive = true
			} else {
				newLive = true
			}
		}
		switch {
		case oldLive && newLive:
			desc += ": both the old and the new ID are live"
		case !oldLive && !newLive:
			desc += ": neither the old nor the new ID is live"
		}
	case RevokeUser, RevokeOthers:
		total, gone := 0, 0
		for n, s := range st {
			if s.user == op.User && (op.Kind != RevokeOthers || n != op.N) {
				total++
				if !live(n) {
					gone++
				}
			}
		}
		desc += fmt.Sprintf(": %d of the %d sessions it ends are gone", gone, total)
	case Create:
		if op.User != "" && v.cfg.MaxPerUser > 0 {
			choices := v.evictions(st, op)
			gone := 0
			for _, n := range choices[0] {
				if !live(n) {
					gone++
				}
			}
			desc += fmt.Sprintf(": the new session is %s; %d of the %d sessions the cap evicts are gone",
				map[bool]string{true: "live", false: "gone"}[live(op.N)], gone, len(choices[0]))
		}
	}
	return desc
}

// checkContent checks each recovered session's data and version against
// what was written to it: no acknowledged state lost, no state that nobody
// wrote or that a failed update tried to write.
func (v *verifier) checkContent() {
	type history struct {
		versions   map[uint64]string // acknowledged (and the model's) states by version
		guaranteed uint64            // the highest version that must have survived
		written    map[string]bool   // every data anybody began to write
		failed     map[string]bool
	}
	hist := map[int]*history{}
	get := func(n int) *history {
		h := hist[n]
		if h == nil {
			h = &history{versions: map[uint64]string{}, written: map[string]bool{}, failed: map[string]bool{}}
			hist[n] = h
		}
		return h
	}
	for n, e := range v.m.live {
		h := get(n)
		h.versions[e.version], h.guaranteed, h.written[e.data] = e.data, e.version, true
	}
	for _, op := range v.run.Ops {
		switch {
		case op.Data == "":
		case op.Status == Failed:
			get(op.N).failed[op.Data] = true
		default:
			get(op.N).written[op.Data] = true
		}
	}
	for _, op := range v.run.Ops {
		if op.Status != Acked {
			continue
		}
		h := get(op.N)
		ver, data := op.Version, op.Result
		switch op.Kind {
		case Create:
			ver, data = 1, op.Data
		case Update:
			data = op.Data
		case Rotate, Login:
			if !h.written[data] {
				v.verdict.problem("%s returned data nobody wrote", op)
			}
		default:
			continue
		}
		h.versions[ver] = data
		if v.guaranteed(op) {
			h.guaranteed = max(h.guaranteed, ver)
		}
	}
	for _, n := range slices.Sorted(maps.Keys(v.obs)) {
		obs, h := v.obs[n], hist[n]
		if len(obs) != 1 || h == nil {
			continue // reported already
		}
		o := obs[0]
		v.verdict.Checked++
		want, ok := h.versions[o.version]
		switch {
		case h.failed[o.data]:
			v.verdict.problem("session %d holds the data of an update that failed", n)
		case !h.written[o.data]:
			v.verdict.problem("session %d holds data nobody wrote", n)
		case o.version < h.guaranteed:
			v.verdict.Lost++
			v.verdict.problem("session %d lost an acknowledged write: recovered at version %d, acknowledged %d",
				n, o.version, h.guaranteed)
		case ok && want != o.data:
			v.verdict.problem("session %d holds other data at version %d than was acknowledged", n, o.version)
		}
	}
}

// checkPrefix checks, after a power cut under SyncEverySecond, that what
// was lost is a tail of the log: no acknowledged write lost while a write
// begun after its acknowledgement survived. (Under the other policies, or
// after a kill alone, every acknowledged write must survive, which the
// other checks cover.)
func (v *verifier) checkPrefix() {
	if !v.run.Cut || v.cfg.Sync != "everysec" {
		return
	}
	var applied, lost []*Op
	for w, ops := range v.byWriter {
		m := v.matched[w]
		if len(m) == 0 {
			continue
		}
		applied = append(applied, ops[:slices.Min(m)]...)
		for _, op := range ops[slices.Max(m):] {
			if op.Status == Acked {
				lost = append(lost, op)
			}
		}
	}
	for _, op := range v.run.Ops {
		obs := v.obs[op.N]
		if op.Kind != Update || op.Status != Acked || len(obs) != 1 {
			continue
		}
		if op.Version <= obs[0].version {
			applied = append(applied, op)
		} else {
			lost = append(lost, op)
		}
	}
	for _, x := range lost {
		for _, y := range applied {
			if y.begun > x.ended {
				v.verdict.problem("acknowledged %s (writer %d) was lost, yet %s (writer %d), begun after it was acknowledged, survived: the log kept is not a prefix",
					x, x.Writer, y, y.Writer)
				return
			}
		}
	}
}

// fallbackCopy is a copy of the directory as the child left it, for the
// fallback check.
type fallbackCopy struct {
	dir   string
	older uint64 // the LSN of the newest snapshot but one
}

func (f *fallbackCopy) remove() {
	if f != nil {
		_ = os.RemoveAll(f.dir)
	}
}

// snapshotLSNs returns the LSNs of the snapshots in dir, newest first.
func snapshotLSNs(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(filepath.Join(dir, "snapshots"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var lsns []uint64
	for _, e := range ents {
		hex, ok := strings.CutSuffix(e.Name(), ".snap")
		if !ok || len(hex) != 16 {
			continue
		}
		if lsn, err := strconv.ParseUint(hex, 16, 64); err == nil && lsn > 0 {
			lsns = append(lsns, lsn)
		}
	}
	slices.Sort(lsns)
	slices.Reverse(lsns)
	return lsns, nil
}

// copyForFallback copies dir if it holds two snapshots or more; it returns
// nil if not.
func copyForFallback(dir, tmp string) (*fallbackCopy, error) {
	lsns, err := snapshotLSNs(dir)
	if err != nil || len(lsns) < 2 {
		return nil, err
	}
	to, err := os.MkdirTemp(tmp, "crashcheck-fallback-")
	if err != nil {
		return nil, err
	}
	if err := os.CopyFS(to, os.DirFS(dir)); err != nil {
		_ = os.RemoveAll(to)
		return nil, fmt.Errorf("copying the directory for the fallback check: %w", err)
	}
	return &fallbackCopy{dir: to, older: lsns[1]}, nil
}

// checkFallback recovers the copy with its newest snapshot moved aside and
// compares the result with the normal recovery: the older snapshot and the
// log after it must give the same sessions.
func (v *verifier) checkFallback(f *fallbackCopy) error {
	lsns, err := snapshotLSNs(f.dir)
	if err != nil {
		return err
	}
	newest := filepath.Join(f.dir, "snapshots", fmt.Sprintf("%016x.snap", lsns[0]))
	if err := os.Rename(newest, filepath.Join(f.dir, "newest.snap.aside")); err != nil {
		return err
	}
	e, err := engine.Open(engine.Options{Dir: f.dir, Logger: v.opts.Logger, IdleTimeout: longTimeout, AbsoluteTimeout: longTimeout})
	if err != nil {
		v.verdict.problem("recovery from the older snapshot failed: %v", err)
		return nil
	}
	if got := e.Stats().Recovery.SnapshotLSN; got != f.older {
		v.verdict.problem("recovery with the newest snapshot gone did not start from the older one (it loaded LSN %d, the older is %d)", got, f.older)
	}
	obs, strays := observe(e)
	if err := e.Close(); err != nil {
		return fmt.Errorf("closing the fallback engine: %w", err)
	}
	if strays != v.strays {
		v.verdict.problem("recovery from the older snapshot holds %d sessions whose data nobody wrote, the normal recovery %d", strays, v.strays)
	}
	var differ []string
	for _, n := range slices.Sorted(maps.Keys(v.obs)) {
		v.verdict.Checked++
		if d := diffObserved(v.obs[n], obs[n]); d != "" {
			differ = append(differ, fmt.Sprintf("session %d %s", n, d))
		}
	}
	for _, n := range slices.Sorted(maps.Keys(obs)) {
		if _, ok := v.obs[n]; !ok {
			differ = append(differ, fmt.Sprintf("session %d %s", n, diffObserved(nil, obs[n])))
		}
	}
	if len(differ) > 0 {
		v.verdict.problem("recovery from the older snapshot and the log differs from the normal recovery: %s", strings.Join(differ, "; "))
	}
	return nil
}

// diffObserved describes how b, a session as the fallback recovered it,
// differs from a, as the normal recovery did, or returns "".
func diffObserved(a, b []observed) string {
	switch {
	case len(a) == len(b) && sameSet(a, b):
		return ""
	case len(a) != len(b):
		return fmt.Sprintf("is live %d times there, %d times normally", len(b), len(a))
	case len(a) != 1:
		return "is live under other IDs there"
	case a[0].ident != b[0].ident:
		return "is live under another ID there"
	case a[0].user != b[0].user:
		return fmt.Sprintf("belongs to %q there, to %q normally", b[0].user, a[0].user)
	case a[0].version != b[0].version || a[0].data != b[0].data:
		return fmt.Sprintf("is at version %d there, %d normally", b[0].version, a[0].version)
	}
	return "has another authentication time there"
}

// sameSet reports whether a and b hold the same sessions in any order.
func sameSet(a, b []observed) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

// settle makes the model what recovery holds: after a passing check, the
// model's sessions, with every in-flight operation settled as it fell.
func (v *verifier) settle() {
	live := map[int]*entry{}
	for n, obs := range v.obs {
		if len(obs) != 1 {
			continue
		}
		o := obs[0]
		e := &entry{ident: o.ident, user: o.user, data: o.data, version: o.version, authAt: o.authAt}
		for _, id := range v.ids[n] {
			if v.identOf(id) == o.ident {
				e.id = id
			}
		}
		live[n] = e
	}
	v.m.live = live
	for n := range v.created {
		v.m.next = max(v.m.next, n+1)
	}
}
