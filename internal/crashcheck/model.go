package crashcheck

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"

	"github.com/sesscache/sesscache/engine"
)

// Model is what the parent knows of the directory: the live sessions by
// logical number, and the data of sessions that exist but whose ID it never
// learnt (a create or rotation the engine completed but the kill cut off
// before the writer said so). The zero Model is an empty directory. A Model
// is not safe for concurrent use.
type Model struct {
	live    map[int]*modelSession
	next    int
	orphans map[string]bool
}

// modelSession is what the parent knows of one logical session.
type modelSession struct {
	id   string
	data string
}

// Live returns the number of sessions the model knows by ID.
func (m *Model) Live() int { return len(m.live) }

// Stdin returns the writer's stdin for the next cycle: the live sessions in
// logical order, then the next free number.
func (m *Model) Stdin() io.Reader {
	var b strings.Builder
	for _, n := range slices.Sorted(maps.Keys(m.live)) {
		s := m.live[n]
		fmt.Fprintf(&b, "%d %s %s\n", n, s.id, s.data)
	}
	fmt.Fprintf(&b, "next %d\n", m.next)
	return strings.NewReader(b.String())
}

// VerifyOptions configures Verify. The zero value works.
type VerifyOptions struct {
	// Logger receives the recovering engine's reports; nil means
	// slog.Default(), as in engine.Options.
	Logger *slog.Logger
}

// Verdict is one cycle's check. Problems describe what recovery got wrong,
// sessions by logical number, never by ID; a cycle passed if there are
// none.
type Verdict struct {
	// Acked counts the acknowledged operations checked; Checked the session
	// lookups made to check them.
	Acked, Checked int
	// Lost counts acknowledged writes recovery did not hold.
	Lost int
	// FromSnapshot says recovery started from a snapshot.
	FromSnapshot bool
	Problems     []string
}

func (v *Verdict) problem(format string, args ...any) {
	v.Problems = append(v.Problems, fmt.Sprintf(format, args...))
}

// Verify advances m by the acknowledged ops of one cycle, recovers dir, the
// directory the killed writer left, and checks it against m: every
// acknowledged write is there, every session whose acknowledgement a kill
// cut off is still there, nothing nobody wrote is there, and the counts
// agree. It then settles m on what recovery shows for the operation that was
// in flight, which may or may not have taken effect. An error means the
// harness itself failed (the ops do not fit the model, or the recovered
// engine failed a read or a close); what recovery got wrong is in the
// Verdict. After Problems, m no longer matches dir.
func (m *Model) Verify(dir string, ops []Op, opts VerifyOptions) (Verdict, error) {
	if m.live == nil {
		m.live, m.orphans = map[int]*modelSession{}, map[string]bool{}
	}
	var v Verdict
	var inflight *Op
	for i := range ops {
		op := &ops[i]
		if !op.Acked {
			if i != len(ops)-1 {
				return v, errors.New("the writer began an operation before the previous one returned")
			}
			inflight = op
			break
		}
		v.Acked++
		if op.Kind != Create && m.live[op.N] == nil {
			return v, fmt.Errorf("the writer used session %d, which the model does not hold", op.N)
		}
		switch op.Kind {
		case Create:
			m.live[op.N] = &modelSession{id: op.ID, data: op.Data}
			m.next = max(m.next, op.N+1)
		case Update:
			m.live[op.N].data = op.Data
		case Rotate:
			m.live[op.N].id = op.ID
		case Delete:
			delete(m.live, op.N)
		}
	}
	if inflight != nil && inflight.Kind != Create && m.live[inflight.N] == nil {
		return v, fmt.Errorf("the writer used session %d, which the model does not hold", inflight.N)
	}

	e, err := engine.Open(engine.Options{Dir: dir, Logger: opts.Logger})
	if err != nil {
		v.problem("recovery failed: %v", err)
		return v, nil
	}
	v.FromSnapshot = e.Stats().Recovery.SnapshotLSN > 0
	recovered := map[string]bool{}
	for _, s := range e.All() {
		recovered[string(s.Data())] = true
	}
	expect := map[string]bool{}
	for _, n := range slices.Sorted(maps.Keys(m.live)) {
		s := m.live[n]
		if inflight != nil && inflight.N == n && inflight.Kind != Create {
			continue // settled below
		}
		v.Checked++
		got, err := e.Get(s.id)
		switch {
		case err != nil:
			v.Lost++
			v.problem("session %d was acknowledged but not recovered: %v", n, err)
		case string(got.Data()) != s.data:
			v.Lost++
			v.problem("session %d lost an acknowledged write", n)
		}
		expect[s.data] = true
	}
	for d := range m.orphans {
		if !recovered[d] {
			v.Lost++
			v.problem("a session whose acknowledgement the kill cut off disappeared")
		}
		expect[d] = true
	}
	if inflight != nil {
		m.settle(e, inflight, recovered, expect, &v)
	}
	unexpected := 0
	for d := range recovered {
		if !expect[d] {
			unexpected++
		}
	}
	if unexpected > 0 {
		v.problem("recovery holds %d session states nobody wrote", unexpected)
	}
	if len(expect) != e.Len() {
		v.problem("recovered %d sessions, expected %d", e.Len(), len(expect))
	}
	return v, e.Close()
}

// settle checks the one operation the kill interrupted, which may or may
// not have taken effect, and brings the model to what happened.
func (m *Model) settle(e *engine.Engine, op *Op, recovered, expect map[string]bool, v *Verdict) {
	switch op.Kind {
	case Create:
		if recovered[op.Data] {
			m.orphans[op.Data] = true // created, ID never reported
			expect[op.Data] = true
		}
		m.next = max(m.next, op.N+1)
	case Update:
		s := m.live[op.N]
		v.Checked++
		got, err := e.Get(s.id)
		if err != nil {
			v.Lost++
			v.problem("session %d was lost during an update: %v", op.N, err)
			return
		}
		if d := string(got.Data()); d != s.data && d != op.Data {
			v.Lost++
			v.problem("session %d holds neither its acknowledged data nor the update in flight", op.N)
		}
		s.data = string(got.Data())
		expect[s.data] = true
	case Delete:
		s := m.live[op.N]
		v.Checked++
		_, err := e.Get(s.id)
		switch {
		case err == nil:
			expect[s.data] = true
		case errors.Is(err, engine.ErrNotFound):
			delete(m.live, op.N)
		default:
			v.problem("session %d: %v", op.N, err)
		}
	case Rotate:
		s := m.live[op.N]
		v.Checked++
		_, err := e.Get(s.id)
		switch {
		case err == nil:
		case errors.Is(err, engine.ErrNotFound):
			// Rotated to an ID the writer never reported.
			delete(m.live, op.N)
			m.orphans[s.data] = true
		default:
			v.problem("session %d: %v", op.N, err)
		}
		if !recovered[s.data] {
			v.Lost++
			v.problem("session %d was lost during a rotation", op.N)
		}
		expect[s.data] = true
	}
}
