package redistier

import (
	"context"
	"encoding/hex"
	"strconv"
	"time"

	"github.com/redis/rueidis"

	"github.com/sesscache/sesscache/engine"
)

// LayoutString keeps a session's record as one string: a header of fixed
// width, which the scripts read with one GETRANGE, then the blob (the
// whole state, sealed as in LayoutHash). The header, all ASCII:
//
//	offset len
//	0      1   'B', the format
//	1      1   's' a session, 'g' a grace entry
//	2      16  version, decimal, zero-padded (the scripts compare it as text)
//	18     15  absolute expiry (a grace entry: its end), unix ms
//	33     15  idle timeout, ms
//	48     15  last access as of the write that stored it, unix ms
//	63     32  owner hash (hex), or 32 '-' if none
//	95     17  auth time, unix µs, or 0
//
// A grace entry's header is followed by the handle (hex) of the session
// it was rotated to instead of a blob. The blob is sealed with the key
// name and the header as additional data, so neither a blob moved to
// another key nor an edited header opens.
//
// A session's last access is the later of the header's and its access
// key's: writes store it in the header (a compare-and-swap writes the
// whole record anyway), touches in the access key, which is not tracked.
// So an anonymous Create is one plain SET NX PX, with no access key and no
// script; a lookup is one MGET of both keys; a Delete is one DEL. A
// record that Redis judges expired (by the later of the two times plus
// the slack) is deleted by the script that finds it; a lookup leaves it
// to its time to live (at most one idle timeout more).
//
// The owner's index scores handles by absolute expiry, not auth time: a
// member past it is dead, and every admission drops those with one
// ZREMRANGEBYSCORE; the index lives as long as its longest-lived member
// may, so writes and touches never renew it (only a SetDeadline that
// moves the expiry touches it). Members whose sessions were deleted or
// idled out stay until then, or until a listing, revocation or capped
// admission finds them dead: Delete is one DEL and does not visit the
// index.
const (
	hdrLen  = 112
	hdrTag  = 'B'
	noOwner = "--------------------------------"
)

// header is a LayoutString record's header.
type header struct {
	kind    byte
	version uint64
	x, idle int64 // unix ms, ms
	w       int64 // unix ms
	owner   string
	auth    int64 // unix µs
}

// appendPadded appends v in decimal, zero-padded to width digits (v is
// clamped into range, so that the header keeps its layout).
func appendPadded(b []byte, v int64, width int) []byte {
	var tmp [20]byte
	d := strconv.AppendInt(tmp[:0], max(v, 0), 10)
	if len(d) > width {
		for range width {
			b = append(b, '9')
		}
		return b
	}
	for range width - len(d) {
		b = append(b, '0')
	}
	return append(b, d...)
}

func appendHeader(b []byte, hd header) []byte {
	b = append(b, hdrTag, hd.kind)
	b = appendPadded(b, int64(min(hd.version, 1<<62)), 16)
	b = appendPadded(b, hd.x, 15)
	b = appendPadded(b, hd.idle, 15)
	b = appendPadded(b, hd.w, 15)
	if hd.owner == "" {
		b = append(b, noOwner...)
	} else {
		b = append(b, hd.owner...)
	}
	return appendPadded(b, hd.auth, 17)
}

// parseHeader parses the header at the start of v.
func parseHeader(v string) (header, bool) {
	if len(v) < hdrLen || v[0] != hdrTag || (v[1] != 's' && v[1] != 'g') {
		return header{}, false
	}
	ok := true
	num := func(off, n int) int64 {
		x, err := strconv.ParseInt(v[off:off+n], 10, 64)
		if err != nil {
			ok = false
		}
		return x
	}
	hd := header{kind: v[1], version: uint64(num(2, 16)), x: num(18, 15), idle: num(33, 15), w: num(48, 15),
		owner: v[63:95], auth: num(95, 17)}
	if hd.owner == noOwner {
		hd.owner = ""
	}
	return hd, ok
}

// version16 is a version as the header holds it.
func version16(v uint64) string { return string(appendPadded(nil, int64(min(v, 1<<62)), 16)) }

// stringRecords is LayoutString.
type stringRecords struct{ s *Store }

func (r stringRecords) keys(h engine.Handle) []string {
	return []string{r.s.keyOf(kindRecord, h), r.s.keyOf(kindAccess, h)}
}

// value returns the record of st under key rk: its header (last access
// st.LastAccess) and its blob, sealed with rk and the header.
func (r stringRecords) value(rk string, st *engine.SessionState) string {
	s := r.s
	buf := make([]byte, 0, len(rk)+hdrLen+s.seal.blobSize(st))
	buf = append(buf, rk...)
	buf = appendHeader(buf, header{kind: 's', version: st.Version, x: ms(st.AbsoluteExpiry),
		idle: st.IdleTimeout.Milliseconds(), w: ms(st.LastAccess), owner: s.ownerField(st.UserID), auth: authMicros(st)})
	buf = s.seal.sealTo(buf, buf, st)
	return rueidis.BinaryString(buf[len(rk):])
}

// open returns the state in v, the record under rk whose header is hd.
func (r stringRecords) open(rk, v string, hd header) (engine.SessionState, error) {
	var aad []byte
	if r.s.seal != nil {
		aad = append(append(make([]byte, 0, len(rk)+hdrLen), rk...), v[:hdrLen]...)
	}
	st, err := r.s.seal.open(aad, []byte(v[hdrLen:]))
	if err != nil {
		return st, err
	}
	if st.Version != hd.version {
		return engine.SessionState{}, errRecord
	}
	return st, nil
}

// recordTTL is the time to live, in ms, of a record stored at now whose
// last access is st.LastAccess: its idle deadline plus the slack, and one
// more idle timeout so that touches seldom have to renew it (renewing the
// tracked record invalidates every copy), within its absolute expiry.
func (s *Store) recordTTL(st *engine.SessionState, now time.Time) int64 {
	x, i, n := ms(st.AbsoluteExpiry), st.IdleTimeout.Milliseconds(), ms(now)
	pa := max(min(x, ms(st.LastAccess)+i+s.slackMS)-n, 1)
	return max(min(x-n, pa+i), 1)
}

func (r stringRecords) get(ctx context.Context, h engine.Handle, now time.Time, touch bool) (found, error) {
	r.s.stats.commands.Add(1)
	s := r.s
	rk, ak := s.keyOf(kindRecord, h), s.keyOf(kindAccess, h)
	arr, err := s.client.Do(ctx, s.client.B().Mget().Key(rk, ak).Build()).ToArray()
	if err != nil {
		return found{}, err
	}
	if len(arr) != 2 {
		return found{}, errReply
	}
	if arr[0].IsNil() {
		return found{kind: "nf"}, nil
	}
	v, err := arr[0].ToString()
	if err != nil {
		return found{}, errReply
	}
	hd, ok := parseHeader(v)
	if !ok {
		return found{}, errRecord
	}
	n := ms(now)
	if hd.kind == 'g' {
		th, ok := parseHex(v[hdrLen:])
		switch {
		case n >= hd.x:
			return found{kind: "nf"}, nil
		case !ok:
			return found{}, errRecord
		}
		return found{kind: "g", target: th}, nil
	}
	la := hd.w
	if a, err := arr[1].AsInt64(); err == nil {
		la = max(la, a)
	}
	if n >= hd.x || n >= la+hd.idle+s.slackMS {
		// Expired by Redis's account. No copy outlives this judgement (a
		// copy's last access is ahead of Redis's by less than the slack),
		// so the record is left to its time to live: deleting it here
		// could not be made conditional without a script.
		return found{kind: "ex"}, nil
	}
	st, err := r.open(rk, v, hd)
	if err != nil {
		return found{}, err
	}
	st.LastAccess = time.UnixMilli(la)
	if touch && n-la >= s.touchMS {
		// Recorded as a local hit's is: written behind, in a batch.
		st.LastAccess = now
		s.onTouch(h, now)
	}
	return found{kind: "s", st: st}, nil
}

func (r stringRecords) create(ctx context.Context, h engine.Handle, st *engine.SessionState, now time.Time) (verdict, error) {
	s := r.s
	if st.UserID != "" {
		return r.place(ctx, h, st, s.cap, now)
	}
	s.stats.commands.Add(1)
	rk := s.keyOf(kindRecord, h)
	err := s.client.Do(ctx, s.client.B().Set().Key(rk).Value(r.value(rk, st)).Nx().
		PxMilliseconds(s.recordTTL(st, now)).Build()).Error()
	switch {
	case rueidis.IsRedisNil(err):
		return verdict{kind: "dup"}, nil
	case err != nil:
		return verdict{}, err
	}
	return verdict{kind: "ok"}, nil
}

func (r stringRecords) place(ctx context.Context, nh engine.Handle, st *engine.SessionState, capacity int, now time.Time) (verdict, error) {
	r.s.stats.commands.Add(1)
	s := r.s
	rk := s.keyOf(kindRecord, nh)
	return verdictOf(scriptSAdmit.Exec(ctx, s.client, []string{rk}, s.args(now,
		r.value(rk, st), strconv.FormatInt(s.recordTTL(st, now), 10), s.ownerField(st.UserID),
		hex.EncodeToString(nh[:]), strconv.FormatInt(ms(st.AbsoluteExpiry), 10), strconv.Itoa(capacity))))
}

func (r stringRecords) update(ctx context.Context, h engine.Handle, expect uint64, st *engine.SessionState, now time.Time) (verdict, error) {
	r.s.stats.commands.Add(1)
	s := r.s
	keys := r.keys(h)
	return verdictOf(scriptSUpdate.Exec(ctx, s.client, keys, s.args(now,
		version16(expect), r.value(keys[0], st), strconv.FormatInt(s.recordTTL(st, now), 10),
		strconv.FormatInt(ms(st.AbsoluteExpiry), 10), hex.EncodeToString(h[:]))))
}

func (r stringRecords) del(ctx context.Context, h engine.Handle, _ time.Time) error {
	r.s.stats.commands.Add(1)
	s := r.s
	return s.client.Do(ctx, s.client.B().Del().Key(r.keys(h)...).Build()).Error()
}

func (r stringRecords) rotate(ctx context.Context, h, nh engine.Handle, expect uint64, st *engine.SessionState, graceMS int64, capacity int, now time.Time) (verdict, error) {
	r.s.stats.commands.Add(1)
	s := r.s
	nrk := s.keyOf(kindRecord, nh)
	var grace []byte
	if graceMS > 0 {
		grace = appendHeader(make([]byte, 0, hdrLen+32), header{kind: 'g', version: expect, x: ms(now) + graceMS})
		grace = hex.AppendEncode(grace, nh[:])
	}
	return verdictOf(scriptSRotate.Exec(ctx, s.client, append(r.keys(h), nrk), s.args(now,
		version16(expect), r.value(nrk, st), strconv.FormatInt(s.recordTTL(st, now), 10), s.ownerField(st.UserID),
		hex.EncodeToString(h[:]), hex.EncodeToString(nh[:]), strconv.FormatInt(graceMS, 10),
		rueidis.BinaryString(grace), strconv.Itoa(capacity))))
}

func (r stringRecords) retire(ctx context.Context, h engine.Handle, expect uint64, now time.Time) (verdict, error) {
	r.s.stats.commands.Add(1)
	return verdictOf(scriptSRetire.Exec(ctx, r.s.client, r.keys(h), r.s.args(now,
		version16(expect), hex.EncodeToString(h[:]))))
}

func (r stringRecords) revoke(ctx context.Context, uh [16]byte, mode string, h engine.Handle, now time.Time) ([]engine.Handle, error) {
	return execRevoke(ctx, r.s, scriptSRevoke, uh, mode, h, now)
}

func (r stringRecords) list(ctx context.Context, uh [16]byte, now time.Time) ([]listedState, error) {
	return execList(ctx, r.s, scriptSList, uh, now, func(h engine.Handle, la, rec rueidis.RedisMessage) (engine.SessionState, error) {
		lams, err1 := la.AsInt64()
		v, err2 := rec.ToString()
		if err1 != nil || err2 != nil {
			return engine.SessionState{}, errReply
		}
		hd, ok := parseHeader(v)
		if !ok || hd.kind != 's' {
			return engine.SessionState{}, errRecord
		}
		st, err := r.open(r.s.keyOf(kindRecord, h), v, hd)
		if err != nil {
			return st, err
		}
		st.LastAccess = time.UnixMilli(lams)
		return st, nil
	})
}

func (r stringRecords) touch(ctx context.Context, hs []engine.Handle, ats []int64, now time.Time) []touched {
	return execTouches(ctx, r.s, scriptSTouch, hs, ats, now, r.keys)
}
