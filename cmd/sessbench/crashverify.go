package main

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/sesscache/sesscache/engine"
)

// crashSession is what the parent knows of one logical session.
type crashSession struct {
	id   string
	data string
}

// crashModel is what the parent knows: live sessions by logical number, and
// the data of sessions that exist but whose ID it never learnt (a create or
// rotation the engine completed but the kill cut off before the writer
// said so). Every state of every session has distinct data, so data alone
// identifies a state.
type crashModel struct {
	live    map[int]*crashSession
	next    int
	orphans map[string]bool

	// For the progress line.
	cycles, acked atomic.Int64
}

func newCrashModel() *crashModel {
	return &crashModel{live: map[int]*crashSession{}, orphans: map[string]bool{}}
}

// childInput is the writer's stdin: the live sessions, then the next number.
func (m *crashModel) childInput() string {
	var b strings.Builder
	for n, s := range m.live {
		fmt.Fprintf(&b, "%d %s %s\n", n, s.id, s.data)
	}
	fmt.Fprintf(&b, "next %d\n", m.next)
	return b.String()
}

// verdict is one cycle's check.
type verdict struct {
	acked, checked, lost int
	fromSnapshot         bool
	problems             []string
}

func (v *verdict) problem(format string, args ...any) {
	v.problems = append(v.problems, fmt.Sprintf(format, args...))
}

// verifyCrash advances the model by the acknowledged ops, recovers the
// directory the killed writer left and checks it against the model, then
// settles the model on what recovery shows for the operation that was in
// flight. An error means the harness itself failed; what recovery got wrong
// is in the verdict.
func verifyCrash(dir string, m *crashModel, ops []crashOp, cycle int) (verdict, error) {
	var v verdict
	var inflight *crashOp
	for i := range ops {
		op := &ops[i]
		if !op.acked {
			if i != len(ops)-1 {
				return v, errors.New("the writer began an operation before the previous one returned")
			}
			inflight = op
			break
		}
		v.acked++
		if op.kind != "C" && m.live[op.n] == nil {
			return v, fmt.Errorf("the writer used session %d, which the model does not hold", op.n)
		}
		switch op.kind {
		case "C":
			m.live[op.n] = &crashSession{id: op.id, data: op.data}
			m.next = max(m.next, op.n+1)
		case "U":
			m.live[op.n].data = op.data
		case "R":
			m.live[op.n].id = op.id
		case "D":
			delete(m.live, op.n)
		}
	}
	if inflight != nil && inflight.kind != "C" && m.live[inflight.n] == nil {
		return v, fmt.Errorf("the writer used session %d, which the model does not hold", inflight.n)
	}
	m.acked.Add(int64(v.acked))
	defer m.cycles.Add(1)

	e, err := engine.Open(engine.Options{Dir: dir, Logger: quietLogger(os.Stderr)})
	if err != nil {
		v.problem("recovery failed: %v", err)
		return v, nil
	}
	v.fromSnapshot = e.Stats().Recovery.SnapshotLSN > 0
	recovered := map[string]bool{}
	if err := e.Range(func(s engine.Session) bool {
		recovered[string(s.Data())] = true
		return true
	}); err != nil {
		_ = e.Close()
		return v, err
	}
	expect := map[string]bool{}
	for _, n := range sortedKeys(m.live) {
		s := m.live[n]
		if inflight != nil && inflight.n == n && inflight.kind != "C" {
			continue // settled below
		}
		v.checked++
		got, err := e.Get(s.id)
		switch {
		case err != nil:
			v.lost++
			v.problem("session %d was acknowledged but not recovered: %v", n, err)
		case string(got.Data()) != s.data:
			v.lost++
			v.problem("session %d lost an acknowledged write", n)
		}
		expect[s.data] = true
	}
	for d := range m.orphans {
		if !recovered[d] {
			v.lost++
			v.problem("a session whose acknowledgement the kill cut off disappeared")
		}
		expect[d] = true
	}
	if inflight != nil {
		settleInflight(e, m, inflight, recovered, expect, &v)
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
	if err := e.Close(); err != nil {
		return v, err
	}
	return v, nil
}

// settleInflight checks the one operation the kill interrupted, which may
// or may not have taken effect, and brings the model to what happened.
func settleInflight(e *engine.Engine, m *crashModel, op *crashOp, recovered, expect map[string]bool, v *verdict) {
	switch op.kind {
	case "C":
		if recovered[op.data] {
			m.orphans[op.data] = true // created, ID never reported
			expect[op.data] = true
		}
		m.next = max(m.next, op.n+1)
	case "U":
		s := m.live[op.n]
		v.checked++
		got, err := e.Get(s.id)
		if err != nil {
			v.lost++
			v.problem("session %d was lost during an update: %v", op.n, err)
			return
		}
		if d := string(got.Data()); d != s.data && d != op.data {
			v.lost++
			v.problem("session %d holds neither its acknowledged data nor the update in flight", op.n)
		}
		s.data = string(got.Data())
		expect[s.data] = true
	case "D":
		s := m.live[op.n]
		v.checked++
		_, err := e.Get(s.id)
		switch {
		case err == nil:
			expect[s.data] = true
		case errors.Is(err, engine.ErrNotFound):
			delete(m.live, op.n)
		default:
			v.problem("session %d: %v", op.n, err)
		}
	case "R":
		s := m.live[op.n]
		v.checked++
		_, err := e.Get(s.id)
		switch {
		case err == nil:
		case errors.Is(err, engine.ErrNotFound):
			// Rotated to an ID the writer never reported.
			delete(m.live, op.n)
			m.orphans[s.data] = true
		default:
			v.problem("session %d: %v", op.n, err)
		}
		if !recovered[s.data] {
			v.lost++
			v.problem("session %d was lost during a rotation", op.n)
		}
		expect[s.data] = true
	}
}

func sortedKeys(m map[int]*crashSession) []int {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
