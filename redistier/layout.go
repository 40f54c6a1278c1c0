package redistier

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/rueidis"

	"github.com/sesscache/sesscache/engine"
)

// Layout chooses how a Store keeps its records in Redis. Every instance
// sharing a Redis and a KeyPrefix must use the same one. The layouts use
// the same key names with different value types and neither reads the
// other's records: a LayoutHash instance fails (WRONGTYPE, as
// ErrUnavailable) on a LayoutString record, and a LayoutString instance
// finds no LayoutHash session. So a mixed deployment fails closed, and
// changing the layout of a running deployment ends every session.
type Layout int

const (
	// LayoutHash keeps a session's record as a hash (version, kind,
	// deadlines, owner and the sealed blob as fields), its last access in a
	// second key that every write sets, and every write is a Lua script.
	LayoutHash Layout = iota
	// LayoutString keeps a session's record as one string: a fixed-width
	// header (the fields the scripts need) followed by the sealed blob,
	// with the header bound to the blob by the seal. Its last access lives
	// in the record until a touch writes a later one to the access key. An
	// anonymous Create is a plain SET NX PX, a lookup a plain MGET, a
	// Delete a plain DEL; compare-and-swap, owned creations, rotations and
	// revocations are short scripts.
	LayoutString
)

// String returns the layout's name as the benchmarks use it: "hash",
// "string".
func (l Layout) String() string {
	switch l {
	case LayoutHash:
		return "hash"
	case LayoutString:
		return "string"
	}
	return "Layout(" + strconv.Itoa(int(l)) + ")"
}

// records is what a layout does in Redis. Each method is one atomic step
// in Redis (one script or one command) and one round trip unless it says
// otherwise. Errors are Redis's (the Store turns them into ErrUnavailable)
// or errRecord or errReply.
//
// Verdicts, as the scripts reply: "ok", "nf" (no such session), "ex"
// (expired), "rot" (an old ID within its grace period), "cf" (version
// conflict), "dup" (the new key exists: a minted ID collided).
type records interface {
	// get reads the session with handle h: kind "s" with its state
	// (LastAccess included), "g" with the handle it was rotated to, "nf"
	// or "ex". With touch, an access later than the last one recorded by
	// a TouchLogInterval is recorded.
	get(ctx context.Context, h engine.Handle, now time.Time, touch bool) (found, error)
	// create stores the new session st under h, applying the owner's cap.
	create(ctx context.Context, h engine.Handle, st *engine.SessionState, now time.Time) (verdict, error)
	// update replaces the session under h with st if it is at version
	// expect (a compare-and-swap).
	update(ctx context.Context, h engine.Handle, expect uint64, st *engine.SessionState, now time.Time) (verdict, error)
	// del ends the session or grace entry under h, whatever its state.
	del(ctx context.Context, h engine.Handle, now time.Time) error
	// rotate moves the session under h, if at version expect, to nh in the
	// same slot with state st, leaving h a grace entry for graceMS (0: h
	// ends) and applying capacity (0: none) to st's owner.
	rotate(ctx context.Context, h, nh engine.Handle, expect uint64, st *engine.SessionState, graceMS int64, capacity int, now time.Time) (verdict, error)
	// place stores st under nh, applying capacity to its owner: the first
	// step of a login into another slot.
	place(ctx context.Context, nh engine.Handle, st *engine.SessionState, capacity int, now time.Time) (verdict, error)
	// retire ends the session under h if it is at version expect: the
	// commit of a login into another slot.
	retire(ctx context.Context, h engine.Handle, expect uint64, now time.Time) (verdict, error)
	// revoke ends the sessions of owner uh that mode ("all", "others",
	// "one") picks relative to h, and returns those it ended.
	revoke(ctx context.Context, uh [16]byte, mode string, h engine.Handle, now time.Time) ([]engine.Handle, error)
	// list returns the live sessions indexed under owner uh, LastAccess
	// included (some may be another owner's whose hash collides).
	list(ctx context.Context, uh [16]byte, now time.Time) ([]listedState, error)
	// touch records the accesses ats[i] of the sessions hs[i], in one
	// pipeline; it returns a verdict or an error for each.
	touch(ctx context.Context, hs []engine.Handle, ats []int64, now time.Time) []touched
}

// found is what get read.
type found struct {
	kind   string
	st     engine.SessionState
	target engine.Handle // kind "g"
}

// verdict is a write's outcome, and the sessions a cap ended with it.
type verdict struct {
	kind  string
	ended []engine.Handle
}

// listedState is one session of an owner's listing.
type listedState struct {
	h  engine.Handle
	st engine.SessionState
}

// touched is one access write's outcome.
type touched struct {
	kind string
	err  error
}

// redisErr turns an error of a records method into the store's: the
// decoding errors as they are, Redis's through fail.
func (s *Store) redisErr(ctx context.Context, err error) error {
	if errors.Is(err, errRecord) || errors.Is(err, errReply) {
		return err
	}
	return s.fail(ctx, err)
}

// args returns the scripts' common arguments followed by more.
func (s *Store) args(now time.Time, more ...string) []string {
	a := make([]string, 0, 3+len(more))
	a = append(a, s.prefix, strconv.FormatInt(ms(now), 10), strconv.FormatInt(s.slackMS, 10))
	return append(a, more...)
}

// errReply is a reply of an unexpected form: a script of another version,
// or something else under the store's prefix.
var errReply = errors.New("redistier: unexpected reply from Redis")

// parseReply splits a script's reply into its first element and the rest.
func parseReply(res rueidis.RedisResult) (string, []rueidis.RedisMessage, error) {
	arr, err := res.ToArray()
	if err != nil {
		return "", nil, err
	}
	if len(arr) == 0 {
		return "", nil, errReply
	}
	k, err := arr[0].ToString()
	if err != nil {
		return "", nil, errReply
	}
	return k, arr[1:], nil
}

// verdictOf parses a write script's reply: its verdict and, after "ok",
// the handles a cap ended.
func verdictOf(res rueidis.RedisResult) (verdict, error) {
	kind, rest, err := parseReply(res)
	if err != nil {
		return verdict{}, err
	}
	v := verdict{kind: kind}
	if kind == "ok" {
		v.ended = handles(rest)
	}
	return v, nil
}

// handles parses the hex handles of a reply.
func handles(rest []rueidis.RedisMessage) []engine.Handle {
	out := make([]engine.Handle, 0, len(rest))
	for i := range rest {
		t, err := rest[i].ToString()
		if err != nil {
			continue
		}
		if h, ok := parseHex(t); ok {
			out = append(out, h)
		}
	}
	return out
}

// parseHex parses a handle's 32 hexadecimal digits.
func parseHex(t string) (engine.Handle, bool) {
	var h engine.Handle
	if len(t) != 2*len(h) {
		return h, false
	}
	if _, err := hex.Decode(h[:], []byte(t)); err != nil {
		return h, false
	}
	return h, true
}

// authMicros is the owner index's score of A: the auth time in unix µs, 0
// if never.
func authMicros(st *engine.SessionState) int64 {
	if st.AuthenticatedAt.IsZero() {
		return 0
	}
	return st.AuthenticatedAt.UnixMicro()
}

// newRecords returns the layout's implementation.
func newRecords(s *Store, l Layout) (records, error) {
	switch l {
	case LayoutHash:
		return hashRecords{s}, nil
	case LayoutString:
		return stringRecords{s}, nil
	}
	return nil, fmt.Errorf("redistier: %w: unknown Options.Layout %d", engine.ErrInvalid, int(l))
}
