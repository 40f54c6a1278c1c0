package crashcheck

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"

	"github.com/sesscache/sesscache/engine"
)

// writer is one writer goroutine. It alone makes the structural calls
// (create, rotate, login, delete, revocations) on its own sessions and
// users, one at a time, so that for each of them the parent knows the
// order of the calls; its updates may go to any writer's sessions.
type writer struct {
	ch    *child
	idx   int
	r     *rand.Rand
	own   map[int]*childSession
	users []string
}

func (ch *child) writer(w int) *writer {
	wr := &writer{ch: ch, idx: w, r: rand.New(rand.NewPCG(ch.cfg.Seed, uint64(w)+2)), own: ch.st.own[w]}
	for k := w; k < ch.cfg.Users; k += ch.cfg.Writers {
		wr.users = append(wr.users, "u"+strconv.Itoa(k))
	}
	return wr
}

// run makes calls until ctx is done (between calls: a call once begun is
// finished, so that an in-process test ends with every call acknowledged)
// or one fails unexpectedly.
func (w *writer) run(ctx context.Context) error {
	call := context.WithoutCancel(ctx)
	for ctx.Err() == nil {
		if err := w.step(call); err != nil {
			return w.ch.failed(ctx, fmt.Errorf("writer %d: %w", w.idx, err))
		}
	}
	return ctx.Err()
}

// step chooses one call and makes it.
func (w *writer) step(ctx context.Context) error {
	m := w.ch.cfg.Mix
	weights := []int{m.Create, m.Update, m.Rotate, m.Login, m.Delete, m.RevokeUser, m.RevokeOthers, m.RevokeSession}
	kinds := []Kind{Create, Update, Rotate, Login, Delete, RevokeUser, RevokeOthers, RevokeSession}
	total := 0
	for _, x := range weights {
		total += x
	}
	p := w.r.IntN(total)
	kind := Create
	for i, x := range weights {
		if p < x {
			kind = kinds[i]
			break
		}
		p -= x
	}
	switch kind {
	case Update:
		if ok, err := w.update(ctx); ok || err != nil {
			return err
		}
	case Rotate, Delete:
		if n, ok := w.pick(func(s *childSession) bool { return s.id != "" }); ok {
			if kind == Rotate {
				return w.rotate(ctx, n)
			}
			return w.delete(ctx, n)
		}
	case Login:
		// Mostly anonymous sessions logging in; sometimes a user's session
		// authenticating afresh.
		anon := w.r.IntN(4) > 0
		if n, ok := w.pick(func(s *childSession) bool { return s.id != "" && (s.user == "") == anon }); ok && len(w.users) > 0 {
			user := w.own[n].user
			if user == "" {
				user = w.users[w.r.IntN(len(w.users))]
			}
			return w.login(ctx, n, user)
		}
	case RevokeUser:
		if len(w.users) > 0 {
			return w.revokeUser(ctx, w.users[w.r.IntN(len(w.users))])
		}
	case RevokeOthers:
		if n, ok := w.pick(func(s *childSession) bool { return s.id != "" && s.user != "" }); ok {
			return w.revokeOthers(ctx, n)
		}
	case RevokeSession:
		if n, ok := w.pick(func(s *childSession) bool { return s.user != "" }); ok {
			return w.revokeSession(ctx, n)
		}
	}
	return w.create(ctx) // the default, and what there is to do when nothing fits
}

// pick returns a random one of the writer's sessions for which ok is true.
func (w *writer) pick(ok func(*childSession) bool) (int, bool) {
	var fit []int
	for _, n := range slices.Sorted(maps.Keys(w.own)) { // sorted: the same seed makes the same calls
		if ok(w.own[n]) {
			fit = append(fit, n)
		}
	}
	if len(fit) == 0 {
		return 0, false
	}
	return fit[w.r.IntN(len(fit))], true
}

// data returns fresh data for session n: "s<n>-<random>", so that data
// alone tells the logical session and the state.
func (w *writer) data(n int) string { return fmt.Sprintf("s%d-%x", n, w.r.Uint64()) }

func (w *writer) begin(kind Kind, target string, fields ...string) error {
	return w.ch.out.line(append([]string{"B", strconv.Itoa(w.idx), string(kind), target}, fields...)...)
}

func (w *writer) ack(kind Kind, target string, fields ...string) error {
	return w.ch.out.line(append([]string{"A", strconv.Itoa(w.idx), string(kind), target}, fields...)...)
}

func (w *writer) create(ctx context.Context) error {
	n := int(w.ch.st.next.Add(1) - 1)
	user := ""
	if len(w.users) > 0 && w.r.IntN(100) >= w.ch.cfg.Mix.Anonymous {
		user = w.users[w.r.IntN(len(w.users))]
	}
	data := w.data(n)
	if err := w.begin(Create, strconv.Itoa(n), undash(user), data); err != nil {
		return err
	}
	before := w.sessionsOf(user)
	s, err := w.ch.e.Create(ctx, engine.CreateOptions{UserID: user, Data: []byte(data),
		IdleTimeout: longTimeout, AbsoluteTimeout: longTimeout})
	if err != nil {
		return fmt.Errorf("create of session %d: %w", n, err)
	}
	w.own[n] = &childSession{id: s.ID(), user: user}
	w.share(n, s.ID())
	evicted, err := w.evicted(ctx, user, before)
	if err != nil {
		return err
	}
	return w.ack(Create, strconv.Itoa(n), s.ID(), authAt(s), evicted)
}

// update writes fresh data to a session: one of the hot sessions every
// writer shares, with the version just read, or one of the writer's own,
// half the time unconditionally. It reports whether it found a session to
// write to. A version conflict, or a session gone or rotated meanwhile,
// is an outcome (F), not a failure.
func (w *writer) update(ctx context.Context) (bool, error) {
	var n int
	var id string
	cas := true
	if w.r.IntN(100) < w.ch.cfg.Mix.Contended {
		var ok bool
		if n, id, ok = w.ch.st.hot(w.r, w.ch.cfg.Hot); !ok {
			return false, nil
		}
	} else {
		var ok bool
		if n, ok = w.pick(func(s *childSession) bool { return s.id != "" }); !ok {
			return false, nil
		}
		id, cas = w.own[n].id, w.r.IntN(2) == 0
	}
	var base uint64
	if cas {
		s, err := w.ch.e.Get(id)
		if err != nil || s.Rotated() {
			return false, nil // gone or moved since the writer looked: choose again
		}
		base = s.Version()
	}
	data := w.data(n)
	if err := w.begin(Update, strconv.Itoa(n), data, strconv.FormatUint(base, 10)); err != nil {
		return true, err
	}
	s, err := w.ch.e.Update(ctx, id, base, func(engine.Session) ([]byte, error) { return []byte(data), nil })
	var reason string
	switch {
	case err == nil:
		return true, w.ack(Update, strconv.Itoa(n), strconv.FormatUint(s.Version(), 10))
	case errors.Is(err, engine.ErrVersionConflict):
		reason = "conflict"
	case errors.Is(err, engine.ErrRotated):
		reason = "rotated"
	case errors.Is(err, engine.ErrNotFound):
		reason = "gone"
	default:
		return true, fmt.Errorf("update of session %d: %w", n, err)
	}
	return true, w.ch.out.line("F", strconv.Itoa(w.idx), string(Update), strconv.Itoa(n), reason)
}

func (w *writer) rotate(ctx context.Context, n int) error {
	if err := w.begin(Rotate, strconv.Itoa(n)); err != nil {
		return err
	}
	s, err := w.ch.e.Rotate(ctx, w.own[n].id)
	if err != nil {
		return fmt.Errorf("rotation of session %d: %w", n, err)
	}
	w.own[n].id = s.ID()
	w.share(n, s.ID())
	return w.ack(Rotate, strconv.Itoa(n), s.ID(), strconv.FormatUint(s.Version(), 10), string(s.Data()))
}

func (w *writer) login(ctx context.Context, n int, user string) error {
	if err := w.begin(Login, strconv.Itoa(n), user); err != nil {
		return err
	}
	before := w.sessionsOf(user)
	s, err := w.ch.e.RotateWith(ctx, w.own[n].id, engine.RotateOptions{UserID: user})
	if err != nil {
		return fmt.Errorf("login of session %d: %w", n, err)
	}
	w.own[n] = &childSession{id: s.ID(), user: user}
	w.share(n, s.ID())
	evicted, err := w.evicted(ctx, user, before)
	if err != nil {
		return err
	}
	return w.ack(Login, strconv.Itoa(n), s.ID(), strconv.FormatUint(s.Version(), 10), string(s.Data()), authAt(s), evicted)
}

func (w *writer) delete(ctx context.Context, n int) error {
	if err := w.begin(Delete, strconv.Itoa(n)); err != nil {
		return err
	}
	if err := w.ch.e.Delete(ctx, w.own[n].id); err != nil {
		return fmt.Errorf("deletion of session %d: %w", n, err)
	}
	w.drop(n)
	return w.ack(Delete, strconv.Itoa(n))
}

func (w *writer) revokeUser(ctx context.Context, user string) error {
	if err := w.begin(RevokeUser, user); err != nil {
		return err
	}
	count, err := w.ch.e.RevokeUser(ctx, user)
	if err != nil {
		return fmt.Errorf("RevokeUser(%s): %w", user, err)
	}
	for _, n := range w.sessionsOf(user) {
		w.drop(n)
	}
	return w.ack(RevokeUser, user, strconv.Itoa(count))
}

func (w *writer) revokeOthers(ctx context.Context, keep int) error {
	s := w.own[keep]
	if err := w.begin(RevokeOthers, strconv.Itoa(keep), s.user); err != nil {
		return err
	}
	h, err := w.ch.e.HandleOf(s.id)
	if err != nil {
		return err
	}
	count, err := w.ch.e.RevokeOthers(ctx, s.user, h)
	if err != nil {
		return fmt.Errorf("RevokeOthers keeping session %d: %w", keep, err)
	}
	for _, n := range w.sessionsOf(s.user) {
		if n != keep {
			w.drop(n)
		}
	}
	return w.ack(RevokeOthers, strconv.Itoa(keep), strconv.Itoa(count))
}

// revokeSession ends one of a user's sessions by its handle, as a "log out
// that device" button does: it can end an orphan, whose ID nobody knows.
func (w *writer) revokeSession(ctx context.Context, n int) error {
	s := w.own[n]
	h, err := w.handle(ctx, n, s)
	if err != nil {
		return err
	}
	if err := w.begin(RevokeSession, strconv.Itoa(n), s.user); err != nil {
		return err
	}
	if err := w.ch.e.RevokeSession(ctx, s.user, h); err != nil {
		return fmt.Errorf("RevokeSession of session %d: %w", n, err)
	}
	w.drop(n)
	return w.ack(RevokeSession, strconv.Itoa(n))
}

// handle returns session n's handle: from its ID, or, for an orphan, from
// its user's list, where its data names it.
func (w *writer) handle(ctx context.Context, n int, s *childSession) (engine.Handle, error) {
	if s.id != "" {
		return w.ch.e.HandleOf(s.id)
	}
	list, err := w.ch.e.UserSessions(ctx, s.user)
	if err != nil {
		return engine.Handle{}, err
	}
	for _, x := range list {
		if m, ok := logical(string(x.Data())); ok && m == n {
			return x.Handle(), nil
		}
	}
	return engine.Handle{}, fmt.Errorf("session %d of %s is not among the user's sessions", n, s.user)
}

// sessionsOf returns the writer's sessions of user, sorted; none for "".
func (w *writer) sessionsOf(user string) []int {
	if user == "" {
		return nil
	}
	var out []int
	for n, s := range w.own {
		if s.user == user {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// evicted returns, as the protocol spells it, which of before, the user's
// sessions before a creation or login, the call evicted: those no longer
// among the user's sessions. Only this writer changes which sessions the
// user has, so the list right after the call shows the call's effect. The
// parent checks that they are the ones the cap should have chosen.
func (w *writer) evicted(ctx context.Context, user string, before []int) (string, error) {
	if user == "" || len(before) == 0 {
		return "-", nil
	}
	list, err := w.ch.e.UserSessions(ctx, user)
	if err != nil {
		return "", err
	}
	live := map[int]bool{}
	for _, s := range list {
		if n, ok := logical(string(s.Data())); ok {
			live[n] = true
		}
	}
	var gone []string
	for _, n := range before {
		if !live[n] {
			w.drop(n)
			gone = append(gone, strconv.Itoa(n))
		}
	}
	if len(gone) == 0 {
		return "-", nil
	}
	return strings.Join(gone, ","), nil
}

// share publishes session n's current ID to the other writers' updates.
func (w *writer) share(n int, id string) {
	w.ch.st.mu.Lock()
	w.ch.st.ids[n] = id
	w.ch.st.mu.Unlock()
}

// drop forgets session n, which the writer's last call ended.
func (w *writer) drop(n int) {
	delete(w.own, n)
	w.ch.st.mu.Lock()
	delete(w.ch.st.ids, n)
	w.ch.st.mu.Unlock()
}

// hot returns one of the hot sessions: the live ones with the lowest
// logical numbers, which every writer updates.
func (st *childState) hot(r *rand.Rand, hot int) (int, string, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.ids) == 0 {
		return 0, "", false
	}
	keys := slices.SortedFunc(maps.Keys(st.ids), cmp.Compare[int])
	n := keys[r.IntN(min(hot, len(keys)))]
	return n, st.ids[n], true
}

// authAt returns the protocol's spelling of a session's authentication
// time: Unix nanoseconds, 0 for an anonymous session.
func authAt(s engine.Session) string {
	if s.AuthenticatedAt().IsZero() {
		return "0"
	}
	return strconv.FormatInt(s.AuthenticatedAt().UnixNano(), 10)
}

// logical returns the logical session that data ("s<n>-...") belongs to.
func logical(data string) (int, bool) {
	rest, ok := strings.CutPrefix(data, "s")
	if !ok {
		return 0, false
	}
	num, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(num)
	return n, err == nil && n >= 0
}
