package httpsession

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"time"
)

// Keys starting with reservedPrefix belong to this package (RememberMe's
// flag); Put refuses them and Get, Keys, Exists and Clear do not see them.
const reservedPrefix = "\x00"

func reserved(key string) bool { return len(key) > 0 && key[0] == reservedPrefix[0] }

// Put sets key to value in the request's session, creating the session at
// commit if the request has none. The value is msgpack-encoded at once
// (see the package documentation), so later changes to it are not seen,
// and what GetAs returns in this request is what later requests will get.
// A value that cannot be encoded (a channel, a func), and a key starting
// with a NUL byte (reserved to this package), fail the commit, which
// reports it to Options.ErrorFunc or to Commit. Values too large for the
// store are reported the same way.
//
// Only keys this request changes are written: a request running at the
// same time on the same session that changes other keys keeps its changes
// too. When both change the same key, the one that commits last wins.
func (m *Manager) Put(ctx context.Context, key string, value any) {
	st := m.from(ctx)
	if reserved(key) {
		st.mu.Lock()
		defer st.mu.Unlock()
		if st.putErr == nil {
			st.putErr = fmt.Errorf("httpsession: Put: key %q is reserved", key)
		}
		return
	}
	raw, err := encodeValue(value)
	st.mu.Lock()
	defer st.mu.Unlock()
	if err != nil {
		if st.putErr == nil {
			st.putErr = fmt.Errorf("httpsession: encoding the value of %q: %w", key, err)
		}
		return
	}
	st.putLocked(key, raw)
}

func (st *state) putLocked(key string, raw []byte) {
	if st.delta == nil {
		st.delta = make(map[string]change, 1)
	}
	st.delta[key] = change{raw: raw}
	st.status = Modified
}

// Get returns the value of key decoded into Go's generic types, or nil if
// the session has no such key (or its value is damaged). What comes back
// depends on the encoded value, not on the Go type that was put:
//
//   - an integer: int if it fits in an int, else int64, else uint64 (so
//     Put(ctx, k, int8(42)) and Put(ctx, k, uint64(42)) both read as
//     int(42));
//   - a float: float64 (a float32 widened exactly);
//   - a string: string; a []byte: []byte; a bool: bool; nil: nil;
//   - a time.Time: time.Time in UTC, to the nanosecond, without the
//     monotonic reading;
//   - a slice or array: []any; a map or struct: map[string]any, or
//     map[any]any if a key is not a string;
//   - a value of a type registered with msgpack.RegisterExt: that type.
//
// GetAs and the typed getters return a value in the type the caller needs,
// exactly or not at all.
func (m *Manager) Get(ctx context.Context, key string) any {
	raw, ok := m.from(ctx).raw(key)
	if !ok {
		return nil
	}
	v, err := decodeGeneric(raw)
	if err != nil {
		return nil
	}
	return v
}

// GetAs returns the value of key decoded into a T. It returns ErrNoValue if
// the session has no such key, and an error matching ErrValueType if the
// value does not fit a T exactly: an integer out of T's range (300 into
// an int8), a float into an integer, a float64 into a float32 that cannot
// hold it, a string into a []byte or the other way round, a nil into a
// type without nil. Integers go into floats that represent them exactly.
// Structs are read from maps by field name (or `msgpack` tag, as msgpack
// encodes them; keys without a field are skipped, fields without a key
// keep their zero value, so a struct may change between releases); an
// interface{} takes the types Get returns. Types that decode themselves in
// msgpack (msgpack.CustomDecoder, msgpack.Unmarshaler,
// encoding.BinaryUnmarshaler, encoding.TextUnmarshaler) decide for
// themselves what fits.
func GetAs[T any](m *Manager, ctx context.Context, key string) (T, error) {
	v, found, err := getAs[T](m.from(ctx), key)
	switch {
	case !found:
		return v, fmt.Errorf("%w: %q", ErrNoValue, key)
	case err != nil:
		return v, decodeError(key, err)
	}
	return v, nil
}

// getAs is GetAs without building errors, which cost allocations the typed
// getters do without: found reports whether key has a value, err whether
// it did not decode (T's zero value then).
func getAs[T any](st *state, key string) (v T, found bool, err error) {
	raw, ok := st.raw(key)
	if !ok {
		return v, false, nil
	}
	done, err := decodeScalar(raw, &v)
	if !done {
		// A value of its own, so that v, which reflection would make
		// escape, stays on the stack for the common types above.
		p := new(T)
		err = decodeInto(raw, reflect.ValueOf(p).Elem())
		v = *p
	}
	if err != nil {
		var zero T
		return zero, true, err
	}
	return v, true, nil
}

// decodeScalar decodes raw into *p, without reflection or allocation, if
// T is one of the common types; done reports whether it was.
func decodeScalar[T any](raw []byte, p *T) (done bool, err error) {
	switch p := any(p).(type) {
	case *string:
		if s, ok := plainString(raw); ok {
			*p = s
			return true, nil
		}
		*p, err = decodeRaw(raw, func(x decoder) (string, error) { return x.string(stringType) })
	case *int:
		*p, err = decodeRaw(raw, func(x decoder) (int, error) {
			n, err := x.signed(intType.Bits(), intType)
			return int(n), err
		})
	case *int64:
		*p, err = decodeRaw(raw, func(x decoder) (int64, error) { return x.signed(64, int64Type) })
	case *bool:
		*p, err = decodeRaw(raw, func(x decoder) (bool, error) { return x.bool(boolType) })
	case *float64:
		*p, err = decodeRaw(raw, func(x decoder) (float64, error) { return x.float(64, floatType) })
	case *[]byte:
		*p, err = decodeRaw(raw, func(x decoder) ([]byte, error) { return x.bytes(bytesType) })
	case *time.Time:
		*p, err = decodeRaw(raw, func(x decoder) (time.Time, error) { return x.time(timeType) })
	case *any:
		*p, err = decodeGeneric(raw)
	default:
		return false, nil
	}
	return true, err
}

// GetString returns the value of key if it is a string, and "" if it is
// missing or of another type.
func (m *Manager) GetString(ctx context.Context, key string) string {
	s, _, _ := getAs[string](m.from(ctx), key)
	return s
}

// GetInt returns the value of key if it is an integer that fits in an int,
// and 0 if it is missing, of another type (floats included) or out of
// range.
func (m *Manager) GetInt(ctx context.Context, key string) int {
	n, _, _ := getAs[int](m.from(ctx), key)
	return n
}

// GetFloat returns the value of key if it is a float, or an integer a
// float64 holds exactly, and 0 if it is missing or of another type.
func (m *Manager) GetFloat(ctx context.Context, key string) float64 {
	f, _, _ := getAs[float64](m.from(ctx), key)
	return f
}

// GetBool returns the value of key if it is a bool, and false if it is
// missing or of another type.
func (m *Manager) GetBool(ctx context.Context, key string) bool {
	b, _, _ := getAs[bool](m.from(ctx), key)
	return b
}

// GetBytes returns the value of key if it is a []byte, and nil if it is
// missing or of another type (a string included). The slice is the
// caller's.
func (m *Manager) GetBytes(ctx context.Context, key string) []byte {
	b, _, _ := getAs[[]byte](m.from(ctx), key)
	return b
}

// GetTime returns the value of key if it is a time.Time, in UTC, and the
// zero time if it is missing or of another type. Monotonic clock readings
// do not survive storage; nanoseconds do.
func (m *Manager) GetTime(ctx context.Context, key string) time.Time {
	t, _, _ := getAs[time.Time](m.from(ctx), key)
	return t
}

// Exists reports whether the session has a value under key.
func (m *Manager) Exists(ctx context.Context, key string) bool {
	_, ok := m.from(ctx).raw(key)
	return ok
}

// Pop returns the value of key, as Get does, and removes it: a one-shot
// value such as a flash message.
func (m *Manager) Pop(ctx context.Context, key string) any {
	st := m.from(ctx)
	st.mu.Lock()
	raw, ok := st.rawLocked(key)
	if ok {
		st.removeLocked(key)
	}
	st.mu.Unlock()
	if !ok {
		return nil
	}
	v, err := decodeGeneric(raw)
	if err != nil {
		return nil
	}
	return v
}

// Remove deletes key from the session. Removing a key the session does not
// have changes nothing, so it neither creates a session nor commits one.
func (m *Manager) Remove(ctx context.Context, key string) {
	st := m.from(ctx)
	st.mu.Lock()
	defer st.mu.Unlock()
	if _, ok := st.rawLocked(key); ok {
		st.removeLocked(key)
	}
}

// Clear removes every value from the session and keeps the session itself:
// its ID, owner and lifetime (Destroy ends it). A session without values
// is not ended by it; the next Put fills it again.
func (m *Manager) Clear(ctx context.Context) {
	st := m.from(ctx)
	st.mu.Lock()
	defer st.mu.Unlock()
	st.clearLocked()
}

func (st *state) clearLocked() {
	for _, k := range st.keysLocked() {
		st.removeLocked(k)
	}
}

// Keys returns the session's keys, sorted, as this request sees them: the
// stored ones with the request's own changes applied.
func (m *Manager) Keys(ctx context.Context) []string {
	st := m.from(ctx)
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.keysLocked()
}

func (st *state) keysLocked() []string {
	var keys []string
	_ = walk(st.sess.Data(), func(k, _ []byte) bool {
		if _, ok := st.delta[string(k)]; !ok && !reserved(string(k)) {
			keys = append(keys, string(k))
		}
		return true
	})
	for k, c := range st.delta {
		if !c.removed && !reserved(k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// raw returns key's encoded value as the request sees it; reserved keys
// are not there.
func (st *state) raw(key string) ([]byte, bool) {
	if reserved(key) {
		return nil, false
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.rawLocked(key)
}

func (st *state) rawLocked(key string) ([]byte, bool) {
	if c, ok := st.delta[key]; ok {
		return c.raw, !c.removed
	}
	// Finding the value in place costs no allocation; sessions are small
	// (the engine caps them at 64 KiB by default) and requests read few
	// values, so this beats taking the session apart into a map.
	raw, ok, err := lookupValue(st.sess.Data(), key)
	return raw, ok && err == nil
}

func (st *state) removeLocked(key string) {
	if st.sess.IsZero() {
		// Nothing is stored: forgetting the pending value is enough.
		delete(st.delta, key)
	} else {
		if st.delta == nil {
			st.delta = make(map[string]change, 1)
		}
		st.delta[key] = change{removed: true}
	}
	st.status = Modified
}

// Status says what a request has done to its session so far.
type Status int

// Statuses, as scs's.
const (
	// Unmodified: nothing changed.
	Unmodified Status = iota
	// Modified: values were put or removed, or the session was created,
	// logged in, renewed or given a deadline.
	Modified
	// Destroyed: the session was ended (Destroy, LogoutEverywhere, or
	// EndSession of the current session) and nothing was put since.
	Destroyed
)

// String returns the status's name.
func (s Status) String() string {
	switch s {
	case Unmodified:
		return "unmodified"
	case Modified:
		return "modified"
	case Destroyed:
		return "destroyed"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// Status returns what the request has done to its session so far.
func (m *Manager) Status(ctx context.Context) Status {
	st := m.from(ctx)
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.status
}
