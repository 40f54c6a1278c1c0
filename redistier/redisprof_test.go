package redistier

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/rueidis"
)

// redisProfile is what Redis's masters spent, from INFO commandstats and
// INFO cpu: a benchmark snapshots it before and after its timed loop and
// reports the difference per operation, so that one can say where Redis's
// time goes.
type redisProfile struct {
	cmds   map[string]cmdStat // by command: "set", "evalsha", "hset"...
	cpuSec float64            // the main threads' user+system CPU
}

type cmdStat struct {
	calls, usec int64
}

// profileRedis snapshots every master of c.
func profileRedis(tb testing.TB, c rueidis.Client) redisProfile {
	tb.Helper()
	p := redisProfile{cmds: map[string]cmdStat{}}
	for _, n := range c.Nodes() {
		role, err := n.Do(ctx, n.B().Role().Build()).ToArray()
		if err != nil || len(role) == 0 {
			continue // a node that is down
		}
		if r, _ := role[0].ToString(); r != "master" {
			continue
		}
		info, err := n.Do(ctx, n.B().Info().Section("commandstats").Section("cpu").Build()).ToString()
		if err != nil {
			tb.Fatalf("INFO: %v", err)
		}
		for _, line := range strings.Split(info, "\n") {
			line = strings.TrimSpace(line)
			if name, ok := strings.CutPrefix(line, "cmdstat_"); ok {
				name, rest, _ := strings.Cut(name, ":")
				var st cmdStat
				for _, f := range strings.Split(rest, ",") {
					k, v, _ := strings.Cut(f, "=")
					switch k {
					case "calls":
						st.calls, _ = strconv.ParseInt(v, 10, 64)
					case "usec":
						st.usec, _ = strconv.ParseInt(v, 10, 64)
					}
				}
				t := p.cmds[name]
				p.cmds[name] = cmdStat{t.calls + st.calls, t.usec + st.usec}
				continue
			}
			k, v, _ := strings.Cut(line, ":")
			if k == "used_cpu_user_main_thread" || k == "used_cpu_sys_main_thread" {
				f, _ := strconv.ParseFloat(v, 64)
				p.cpuSec += f
			}
		}
	}
	return p
}

// since returns what Redis spent between before and p.
func (p redisProfile) since(before redisProfile) redisProfile {
	d := redisProfile{cmds: map[string]cmdStat{}, cpuSec: p.cpuSec - before.cpuSec}
	for name, st := range p.cmds {
		b := before.cmds[name]
		if st.calls > b.calls {
			d.cmds[name] = cmdStat{st.calls - b.calls, st.usec - b.usec}
		}
	}
	return d
}

// adminCommands are the profiling's own commands and the clients'
// housekeeping, left out of the report.
var adminCommands = map[string]bool{"info": true, "role": true, "ping": true, "hello": true, "client|tracking": true,
	"client|setinfo": true, "client|setname": true, "cluster|slots": true, "cluster|shards": true, "config|get": true,
	"script|load": true, "command": true, "readonly": true, "select": true}

// report reports d per operation (n operations) as custom metrics:
// redis-cpu-us/op, the main threads' CPU time (command execution, I/O and
// the event loop), and for each command, largest share of time first,
// <cmd>-calls/op and <cmd>-us/call. A script's us/call includes the
// commands it calls, which are also counted under their own names (in
// Redis 7, a SET a script makes and a client's SET are both "set").
func (d redisProfile) report(b *testing.B, n int) {
	if n <= 0 {
		return
	}
	b.ReportMetric(d.cpuSec*1e6/float64(n), "redis-cpu-us/op")
	type row struct {
		name string
		cmdStat
	}
	var rows []row
	for name, st := range d.cmds {
		if !adminCommands[name] {
			rows = append(rows, row{name, st})
		}
	}
	slices.SortFunc(rows, func(a, b row) int { return cmp.Compare(b.usec, a.usec) })
	for _, r := range rows {
		name := strings.ReplaceAll(r.name, "|", "-")
		b.ReportMetric(float64(r.calls)/float64(n), name+"-calls/op")
		b.ReportMetric(float64(r.usec)/float64(r.calls), name+"-us/call")
	}
}
