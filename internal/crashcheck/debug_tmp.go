package crashcheck

import (
	"fmt"
	"os"
	"maps"
	"slices"
)

func (v *verifier) debugDump() {
	path := os.Getenv("CRASHCHECK_DEBUG")
	if path == "" || len(v.verdict.Problems) == 0 {
		return
	}
	f, _ := os.Create(path)
	defer f.Close()
	fmt.Fprintf(f, "cut=%v cutLine=%d sync=%s\n", v.run.Cut, v.run.cutLine, v.cfg.Sync)
	for _, op := range v.run.Ops {
		fmt.Fprintf(f, "w%d %s status=%d begun=%d ended=%d ver=%d ev=%v count=%d guaranteed=%v auth=%d\n", op.Writer, op, op.Status, op.begun, op.ended, op.Version, op.Evicted, op.Count, v.guaranteed(op), op.AuthAt)
	}
	fmt.Fprintf(f, "snapBegun=%v\n", v.run.snapBegun)
	for _, n := range slices.Sorted(maps.Keys(v.obs)) {
		for _, o := range v.obs[n] {
			fmt.Fprintf(f, "obs %d user=%s ver=%d data=%s auth=%d\n", n, o.user, o.version, o.data, o.authAt)
		}
	}
	for _, n := range slices.Sorted(maps.Keys(v.m.live)) {
		e := v.m.live[n]
		fmt.Fprintf(f, "base %d user=%s ver=%d data=%s\n", n, e.user, e.version, e.data)
	}
	for _, p := range v.verdict.Problems {
		fmt.Fprintln(f, "PROBLEM", p)
	}
}
