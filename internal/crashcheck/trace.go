package crashcheck

import (
	"fmt"
	"io"
	"maps"
	"slices"
)

// trace writes, for a cycle with problems, what it did and what recovery
// held, to Options.Trace: the plan, every operation with how it ended, and
// every session before and after, by logical number. IDs and handles stay
// out of it, as they stay out of the problems.
func (v *verifier) trace(w io.Writer) {
	if w == nil || len(v.verdict.Problems) == 0 {
		return
	}
	p := v.run.Plan
	c := p.Config
	fmt.Fprintf(w, "cycle: sync %s, power cut %v, writers %d, users %d, seed %d, cap %d, grace %v, kill after %d acks, in Open %v (after %v)\n",
		c.Sync, c.PowerCut, c.Writers, c.Users, c.Seed, c.MaxPerUser, c.RotateGrace, p.KillAfter, p.InOpen, p.OpenDelay)
	fmt.Fprintf(w, "child: ready %v (Open took %v), cut %v (line %d), %d snapshots completed, begun at lines %v\n",
		v.run.Ready, v.run.OpenTime, v.run.Cut, v.run.cutLine, v.run.Snapshots, v.run.snapBegun)
	status := map[Status]string{InFlight: "in flight", Acked: "acked", Failed: "failed"}
	for _, op := range v.run.Ops {
		fmt.Fprintf(w, "op  writer %d  lines %d-%d  %-9s %s", op.Writer, op.begun, op.ended, status[op.Status], op)
		switch op.Status {
		case Failed:
			fmt.Fprintf(w, " (%s)", op.Reason)
		case Acked:
			ver := op.Version
			if op.Kind == Create {
				ver = 1 // a creation's acknowledgement does not repeat it
			}
			fmt.Fprintf(w, " -> version %d, evicted %v, count %d, must survive %v", ver, op.Evicted, op.Count, v.guaranteed(op))
		}
		fmt.Fprintln(w)
	}
	for _, n := range slices.Sorted(maps.Keys(v.m.live)) {
		e := v.m.live[n]
		fmt.Fprintf(w, "before  session %d  user %q  version %d  data %s  auth %d  ID known %v\n", n, e.user, e.version, e.data, e.authAt, e.id != "")
	}
	for _, n := range slices.Sorted(maps.Keys(v.obs)) {
		for _, o := range v.obs[n] {
			fmt.Fprintf(w, "after   session %d  user %q  version %d  data %s  auth %d\n", n, o.user, o.version, o.data, o.authAt)
		}
	}
	for _, pr := range v.verdict.Problems {
		fmt.Fprintln(w, "PROBLEM", pr)
	}
}
