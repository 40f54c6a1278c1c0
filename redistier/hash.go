package redistier

import (
	"context"
	"encoding/hex"
	"strconv"
	"time"

	"github.com/redis/rueidis"

	"github.com/sesscache/sesscache/engine"
)

// hashRecords is LayoutHash: every operation is one of the scripts of
// scripts.go, over a record hash, an access key that every write sets, and
// owners' indexes scored by auth time.
type hashRecords struct{ s *Store }

func (r hashRecords) keys(h engine.Handle) []string {
	return []string{r.s.keyOf(kindRecord, h), r.s.keyOf(kindAccess, h)}
}

func (r hashRecords) get(ctx context.Context, h engine.Handle, now time.Time, touch bool) (found, error) {
	r.s.stats.commands.Add(1)
	s := r.s
	every := strconv.FormatInt(s.touchMS, 10)
	if !touch {
		every = "9223372036854775807"
	}
	keys := r.keys(h)
	kind, rest, err := parseReply(scriptGet.Exec(ctx, s.client, keys, s.args(now, every)))
	if err != nil {
		return found{}, err
	}
	switch kind {
	case "nf", "ex":
		return found{kind: kind}, nil
	case "g":
		if len(rest) < 1 {
			return found{}, errReply
		}
		t, _ := rest[0].ToString()
		th, ok := parseHex(t)
		if !ok {
			return found{}, errReply
		}
		return found{kind: kind, target: th}, nil
	case "s":
		st, err := r.stateOf(keys[0], rest)
		return found{kind: kind, st: st}, err
	}
	return found{}, errReply
}

// stateOf decodes a {version, lastAccess, blob} reply of the record rk.
func (r hashRecords) stateOf(rk string, rest []rueidis.RedisMessage) (engine.SessionState, error) {
	if len(rest) < 3 {
		return engine.SessionState{}, errReply
	}
	v, err1 := rest[0].ToString()
	la, err2 := rest[1].ToString()
	blob, err3 := rest[2].ToString()
	if err1 != nil || err2 != nil || err3 != nil {
		return engine.SessionState{}, errReply
	}
	st, err := r.s.seal.open([]byte(rk), []byte(blob))
	if err != nil {
		return engine.SessionState{}, err
	}
	if strconv.FormatUint(st.Version, 10) != v {
		return engine.SessionState{}, errRecord
	}
	lams, err := strconv.ParseInt(la, 10, 64)
	if err != nil {
		return engine.SessionState{}, errReply
	}
	st.LastAccess = time.UnixMilli(lams)
	return st, nil
}

func (r hashRecords) create(ctx context.Context, h engine.Handle, st *engine.SessionState, now time.Time) (verdict, error) {
	r.s.stats.commands.Add(1)
	s := r.s
	keys := r.keys(h)
	return verdictOf(scriptCreate.Exec(ctx, s.client, keys, s.args(now,
		strconv.FormatInt(ms(st.AbsoluteExpiry), 10), strconv.FormatInt(st.IdleTimeout.Milliseconds(), 10),
		s.ownerField(st.UserID), strconv.FormatInt(now.UnixMicro(), 10), rueidis.BinaryString(s.seal.seal([]byte(keys[0]), st)),
		hex.EncodeToString(h[:]), strconv.Itoa(s.cap))))
}

func (r hashRecords) update(ctx context.Context, h engine.Handle, expect uint64, st *engine.SessionState, now time.Time) (verdict, error) {
	r.s.stats.commands.Add(1)
	s := r.s
	keys := r.keys(h)
	return verdictOf(scriptUpdate.Exec(ctx, s.client, keys, s.args(now,
		strconv.FormatUint(expect, 10), rueidis.BinaryString(s.seal.seal([]byte(keys[0]), st)),
		strconv.FormatInt(ms(st.AbsoluteExpiry), 10))))
}

func (r hashRecords) del(ctx context.Context, h engine.Handle, now time.Time) error {
	r.s.stats.commands.Add(1)
	_, err := verdictOf(scriptDelete.Exec(ctx, r.s.client, r.keys(h), r.s.args(now, hex.EncodeToString(h[:]))))
	return err
}

func (r hashRecords) rotate(ctx context.Context, h, nh engine.Handle, expect uint64, st *engine.SessionState, graceMS int64, capacity int, now time.Time) (verdict, error) {
	r.s.stats.commands.Add(1)
	s := r.s
	nrk, nak := s.keyOf(kindRecord, nh), s.keyOf(kindAccess, nh)
	return verdictOf(scriptRotate.Exec(ctx, s.client, append(r.keys(h), nrk, nak), s.args(now,
		strconv.FormatUint(expect, 10), rueidis.BinaryString(s.seal.seal([]byte(nrk), st)), s.ownerField(st.UserID),
		strconv.FormatInt(authMicros(st), 10), hex.EncodeToString(h[:]), hex.EncodeToString(nh[:]),
		strconv.FormatInt(graceMS, 10), strconv.Itoa(capacity))))
}

func (r hashRecords) place(ctx context.Context, nh engine.Handle, st *engine.SessionState, capacity int, now time.Time) (verdict, error) {
	r.s.stats.commands.Add(1)
	s := r.s
	keys := r.keys(nh)
	return verdictOf(scriptPlace.Exec(ctx, s.client, keys, s.args(now,
		strconv.FormatUint(st.Version, 10), strconv.FormatInt(ms(st.AbsoluteExpiry), 10),
		strconv.FormatInt(st.IdleTimeout.Milliseconds(), 10), s.ownerField(st.UserID),
		strconv.FormatInt(authMicros(st), 10), rueidis.BinaryString(s.seal.seal([]byte(keys[0]), st)),
		hex.EncodeToString(nh[:]), strconv.Itoa(capacity), strconv.FormatInt(ms(st.LastAccess), 10))))
}

func (r hashRecords) retire(ctx context.Context, h engine.Handle, expect uint64, now time.Time) (verdict, error) {
	r.s.stats.commands.Add(1)
	return verdictOf(scriptRetire.Exec(ctx, r.s.client, r.keys(h), r.s.args(now,
		strconv.FormatUint(expect, 10), hex.EncodeToString(h[:]))))
}

func (r hashRecords) revoke(ctx context.Context, uh [16]byte, mode string, h engine.Handle, now time.Time) ([]engine.Handle, error) {
	return execRevoke(ctx, r.s, scriptRevoke, uh, mode, h, now)
}

func (r hashRecords) list(ctx context.Context, uh [16]byte, now time.Time) ([]listedState, error) {
	s := r.s
	return execList(ctx, s, scriptList, uh, now, func(h engine.Handle, la, rec rueidis.RedisMessage) (engine.SessionState, error) {
		las, err1 := la.ToString()
		blob, err2 := rec.ToString()
		if err1 != nil || err2 != nil {
			return engine.SessionState{}, errReply
		}
		st, err := s.seal.open([]byte(s.keyOf(kindRecord, h)), []byte(blob))
		if err != nil {
			return st, err
		}
		lams, err := strconv.ParseInt(las, 10, 64)
		if err != nil {
			return st, errReply
		}
		st.LastAccess = time.UnixMilli(lams)
		return st, nil
	})
}

func (r hashRecords) touch(ctx context.Context, hs []engine.Handle, ats []int64, now time.Time) []touched {
	return execTouches(ctx, r.s, scriptTouch, hs, ats, now, r.keys)
}

// execTouches runs a layout's touch script for each access, in one
// pipeline.
func execTouches(ctx context.Context, s *Store, script *rueidis.Lua, hs []engine.Handle, ats []int64, now time.Time, keys func(engine.Handle) []string) []touched {
	s.stats.commands.Add(uint64(len(hs)))
	n := strconv.FormatInt(ms(now), 10)
	slack := strconv.FormatInt(s.slackMS, 10)
	execs := make([]rueidis.LuaExec, len(hs))
	for i, h := range hs {
		execs[i] = rueidis.LuaExec{Keys: keys(h), Args: []string{s.prefix, n, slack, strconv.FormatInt(ats[i], 10)}}
	}
	out := make([]touched, len(hs))
	for i, res := range script.ExecMulti(ctx, s.client, execs...) {
		kind, _, err := parseReply(res)
		out[i] = touched{kind: kind, err: err}
	}
	return out
}

// execRevoke runs a layout's revocation script over owner uh's index and
// returns the handles it ended.
func execRevoke(ctx context.Context, s *Store, script *rueidis.Lua, uh [16]byte, mode string, h engine.Handle, now time.Time) ([]engine.Handle, error) {
	s.stats.commands.Add(1)
	v, err := verdictOf(script.Exec(ctx, s.client, []string{s.keyOf(kindOwner, uh)},
		s.args(now, hex.EncodeToString(uh[:]), mode, hex.EncodeToString(h[:]))))
	if err == nil && v.kind != "ok" {
		err = errReply
	}
	return v.ended, err
}

// execList runs a layout's listing script over owner uh's index, whose
// reply is "ok" and then a handle, a last access and a record per session,
// and turns each triple into a session with decode.
func execList(ctx context.Context, s *Store, script *rueidis.Lua, uh [16]byte, now time.Time,
	decode func(h engine.Handle, la, rec rueidis.RedisMessage) (engine.SessionState, error)) ([]listedState, error) {
	s.stats.commands.Add(1)
	kind, rest, err := parseReply(script.Exec(ctx, s.client, []string{s.keyOf(kindOwner, uh)},
		s.args(now, hex.EncodeToString(uh[:]))))
	if err != nil {
		return nil, err
	}
	if kind != "ok" || len(rest)%3 != 0 {
		return nil, errReply
	}
	out := make([]listedState, 0, len(rest)/3)
	for i := 0; i < len(rest); i += 3 {
		hs := handles(rest[i : i+1])
		if len(hs) != 1 {
			return nil, errReply
		}
		st, err := decode(hs[0], rest[i+1], rest[i+2])
		if err != nil {
			return nil, err
		}
		out = append(out, listedState{h: hs[0], st: st})
	}
	return out, nil
}
