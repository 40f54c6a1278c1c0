package crashcheck

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/sesscache/sesscache/engine"
)

// Config is what the child runs with. The parent chooses it for each cycle
// (see Schedule) and hands it over encoded (Encode, DecodeConfig); the
// verification reads the same Config from the Run, so that both sides
// agree on the rules the child's engine applied.
type Config struct {
	// Dir is the data directory.
	Dir string `json:"dir"`
	// Sync is the engine's sync policy: "always" or "everysec".
	Sync string `json:"sync"`
	// Writers is the number of writer goroutines.
	Writers int `json:"writers"`
	// Users is the number of users ("u0", "u1", ...) the writers log in and
	// create sessions for. User k belongs to writer k % Writers.
	Users int `json:"users"`
	// Seed chooses the writers' operations and data.
	Seed uint64 `json:"seed"`
	// SegmentSize is the engine's log segment size: small, so that kills
	// land in segment rotations and compactions.
	SegmentSize int64 `json:"segment_size"`
	// SnapshotMin and SnapshotMax bound the random pause between the
	// snapshots the child forces; zero SnapshotMax: no forced snapshots.
	SnapshotMin time.Duration `json:"snapshot_min_ns"`
	SnapshotMax time.Duration `json:"snapshot_max_ns"`
	// MaxPerUser is the engine's Options.MaxSessionsPerUser (0: no cap).
	MaxPerUser int `json:"max_per_user"`
	// RotateGrace is the engine's Options.RotateGrace.
	RotateGrace time.Duration `json:"rotate_grace_ns"`
	// PowerCut runs the engine on a waltest.FS (with NeedDirSync), and
	// makes SIGUSR1 cut its power: the child reports P, calls PowerCut and
	// kills itself with SIGKILL, so that what was not fsynced is gone.
	PowerCut bool `json:"power_cut"`
	// Mapped lets the log map its segments under a power cut (waltest.FS
	// with Mappable: stores reach the file at fsync), instead of writing
	// them; without a power cut the log maps them wherever it can.
	Mapped bool `json:"mapped"`
	// Mix weighs the writers' operations.
	Mix Mix `json:"mix"`
	// Hot is how many sessions the contended updates share.
	Hot int `json:"hot"`

	// cut and die replace SIGUSR1 and the SIGKILL that follows the power
	// cut, for the package's in-process tests.
	cut <-chan struct{}
	die func()
}

// Mix weighs the operations a writer chooses among. Weights are relative;
// Contended and Anonymous are percentages.
type Mix struct {
	Create        int `json:"create"`
	Update        int `json:"update"`
	Rotate        int `json:"rotate"`
	Login         int `json:"login"`
	Delete        int `json:"delete"`
	RevokeUser    int `json:"revoke_user"`
	RevokeOthers  int `json:"revoke_others"`
	RevokeSession int `json:"revoke_session"`
	// Contended is the share of updates, in percent, that go to the Hot
	// sessions shared by every writer, each with the version it last read
	// (so that ErrVersionConflict is common); the others go to the
	// writer's own sessions, half of them unconditionally.
	Contended int `json:"contended"`
	// Anonymous is the share of creations, in percent, without a user.
	Anonymous int `json:"anonymous"`
}

// DefaultMix is the mix the callers use unless told otherwise: every
// operation often enough that most kills interrupt some multi-session call.
func DefaultMix() Mix {
	return Mix{Create: 22, Update: 34, Rotate: 10, Login: 10, Delete: 6, RevokeUser: 5, RevokeOthers: 5, RevokeSession: 4,
		Contended: 50, Anonymous: 35}
}

// fields names the fields of a Mix as ParseMix and String spell them.
func (m *Mix) fields() []struct {
	name string
	v    *int
} {
	return []struct {
		name string
		v    *int
	}{
		{"create", &m.Create}, {"update", &m.Update}, {"rotate", &m.Rotate}, {"login", &m.Login},
		{"delete", &m.Delete}, {"revoke-user", &m.RevokeUser}, {"revoke-others", &m.RevokeOthers},
		{"revoke-session", &m.RevokeSession}, {"contended", &m.Contended}, {"anonymous", &m.Anonymous},
	}
}

// String returns the mix as ParseMix reads it.
func (m Mix) String() string {
	var parts []string
	for _, f := range m.fields() {
		parts = append(parts, fmt.Sprintf("%s=%d", f.name, *f.v))
	}
	return strings.Join(parts, ",")
}

// ParseMix reads "name=weight,..." over DefaultMix: names not given keep
// their default weight, so "revoke-user=0" turns one operation off.
func ParseMix(s string) (Mix, error) {
	m := DefaultMix()
	if strings.TrimSpace(s) == "" {
		return m, nil
	}
	for part := range strings.SplitSeq(s, ",") {
		name, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return m, fmt.Errorf("mix: %q is not name=weight", part)
		}
		n, err := strconv.Atoi(val)
		if err != nil || n < 0 {
			return m, fmt.Errorf("mix: the weight of %s must be a whole number, not %q", name, val)
		}
		found := false
		for _, f := range m.fields() {
			if f.name == name {
				*f.v, found = n, true
			}
		}
		if !found {
			return m, fmt.Errorf("mix: unknown operation %q", name)
		}
	}
	if m.Contended > 100 || m.Anonymous > 100 {
		return m, fmt.Errorf("mix: contended and anonymous are percentages")
	}
	if m.Create == 0 {
		return m, fmt.Errorf("mix: create must not be 0: the writers create what the others use")
	}
	return m, nil
}

// Encode returns c as the child takes it.
func (c Config) Encode() string {
	b, err := json.Marshal(c)
	if err != nil {
		panic(err) // a Config has nothing json cannot encode
	}
	return string(b)
}

// DecodeConfig reads what Encode wrote.
func DecodeConfig(s string) (Config, error) {
	var c Config
	if err := json.Unmarshal([]byte(s), &c); err != nil {
		return c, fmt.Errorf("crashcheck: decoding the child's configuration: %w", err)
	}
	if _, err := c.policy(); err != nil {
		return c, err
	}
	if c.Writers < 1 || c.Users < 1 || c.Hot < 1 {
		return c, fmt.Errorf("crashcheck: a child needs writers, users and hot sessions")
	}
	return c, nil
}

// policy returns the engine's sync policy.
func (c Config) policy() (engine.SyncPolicy, error) {
	switch c.Sync {
	case "always":
		return engine.SyncAlways, nil
	case "everysec":
		return engine.SyncEverySecond, nil
	}
	return 0, fmt.Errorf("crashcheck: sync policy must be always or everysec, not %q", c.Sync)
}

// owner returns the writer that owns user ("u<k>"), or -1 for a name that
// is not a user of the run.
func (c Config) owner(user string) int {
	k, err := strconv.Atoi(strings.TrimPrefix(user, "u"))
	if err != nil || !strings.HasPrefix(user, "u") || k < 0 {
		return -1
	}
	return k % c.Writers
}

// Schedule draws the plans of a run's cycles from one seed, so that a run
// can be repeated. Set the exported fields, then call Next for each cycle.
type Schedule struct {
	// Base is the configuration every cycle starts from; Next sets its
	// Seed, and MaxPerUser, RotateGrace and PowerCut as below.
	Base Config
	// MaxAcks: a cycle not killed inside Open is killed after a random 5 to
	// MaxAcks acknowledged operations.
	MaxAcks int
	// InOpen is the share of cycles killed while the child is still
	// opening (recovering) the engine, after a random part of the time
	// the last Open took.
	InOpen float64
	// PowerCut is the share of cycles ended by a simulated power cut
	// rather than SIGKILL alone.
	PowerCut float64
	// Uncapped is the share of cycles run without Base.MaxPerUser, so that
	// users gather more sessions than the cap and the next capped
	// creation evicts several at once.
	Uncapped float64
	// Grace is the share of cycles whose engine has Base.RotateGrace.
	Grace float64
	// LossWindow is how much, before a power cut under SyncEverySecond,
	// acknowledged writes may be lost; see Plan.
	LossWindow time.Duration

	r        *rand.Rand
	openTime time.Duration
	// due accumulates the shares above, so that a share of cycles is
	// exactly that, spread evenly, whatever the seed.
	due [5]float64
}

// every reports whether this cycle is one of share's, counting with
// accumulator i.
func (s *Schedule) every(i int, share float64) bool {
	s.due[i] += share
	if s.due[i] >= 1 {
		s.due[i]--
		return true
	}
	return false
}

// NewSchedule returns a Schedule drawing from seed.
func NewSchedule(base Config, seed uint64) *Schedule {
	// Different phases, so that the shares do not pick the same cycles.
	return &Schedule{Base: base, MaxAcks: 150, LossWindow: DefaultLossWindow, r: rand.New(rand.NewPCG(seed, 3)),
		due: [5]float64{0.5, 0.3, 0.1, 0.7, 0.2}}
}

// DefaultLossWindow is SyncEverySecond's interval plus a second for a slow
// fsync and for the pipe.
const DefaultLossWindow = 2 * time.Second

// Next returns the next cycle's plan. last, if not nil, is the previous
// cycle's run, whose Open time it learns from.
func (s *Schedule) Next(last *Run) Plan {
	if last != nil && last.Ready {
		s.openTime = last.OpenTime
	}
	c := s.Base
	c.Seed = s.r.Uint64()
	if s.every(2, s.Uncapped) {
		c.MaxPerUser = 0
	}
	if !s.every(3, s.Grace) {
		c.RotateGrace = 0
	}
	c.PowerCut = s.every(1, s.PowerCut)
	// Half of the power cuts on mapped segments, half on written ones,
	// under the policies that map (SyncAlways writes its segments).
	c.Mapped = c.PowerCut && c.Sync != "always" && s.every(4, 0.5)
	p := Plan{Config: c, KillAfter: 5 + s.r.IntN(max(1, s.MaxAcks-4)), LossWindow: s.LossWindow}
	if s.every(0, s.InOpen) {
		open := s.openTime
		if open <= 0 {
			open = 20 * time.Millisecond // no Open measured yet
		}
		// Up to a little past the last Open, so that some kills land
		// just after it too.
		p.InOpen, p.OpenDelay = true, time.Duration(s.r.Int64N(int64(open)*5/4+1))
	}
	return p
}
