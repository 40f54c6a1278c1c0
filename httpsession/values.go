package httpsession

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// Put sets key to value in the request's session, creating the session at
// commit if the request has none. The value is msgpack-encoded at once, so
// later changes to it are not seen, and what Get returns in this request is
// what later requests will get. A value that cannot be encoded (a channel,
// a func) fails the commit, which reports it to Options.ErrorFunc or to
// Commit. Values too large for the engine are reported the same way.
//
// Only keys this request changes are written: a request running at the
// same time on the same session that changes other keys keeps its changes
// too. When both change the same key, the one that commits last wins.
func Put(ctx context.Context, key string, value any) {
	raw, err := encodeValue(value)
	st := from(ctx)
	st.mu.Lock()
	defer st.mu.Unlock()
	if err != nil {
		if st.putErr == nil {
			st.putErr = fmt.Errorf("httpsession: encoding the value of %q: %w", key, err)
		}
		return
	}
	if st.delta == nil {
		st.delta = make(map[string]change, 1)
	}
	st.delta[key] = change{raw: raw}
}

// Get returns the value of key decoded into a Go value, or nil if the
// session has no such key. Values come back in msgpack's generic types:
// string, []byte, bool, time.Time (in UTC), integers as the smallest type
// that holds them (42 comes back as int8, whatever type was put), float32
// or float64, []any and map[string]any (a stored struct comes back as the
// latter). The typed getters and GetAs spare callers the conversions.
func Get(ctx context.Context, key string) any {
	raw, ok := from(ctx).raw(key)
	if !ok {
		return nil
	}
	return decodeStored(raw)
}

// GetAs decodes the value of key into a T, such as a struct (fields by name
// or `msgpack` tag). It reports false, with T's zero value, if the key is
// missing or its value does not decode into a T. msgpack's conversions are
// lenient: integers change width without a range check (300 into an int8
// gives 44) and a []byte decodes into a string. For exact types of scalars
// use the typed getters.
func GetAs[T any](ctx context.Context, key string) (T, bool) {
	var v T
	raw, ok := from(ctx).raw(key)
	if !ok {
		return v, false
	}
	if err := decodeValue(raw, &v); err != nil {
		var zero T
		return zero, false
	}
	return v, true
}

// GetString returns the value of key if it is a string, and "" if it is
// missing or of another type.
func GetString(ctx context.Context, key string) string {
	s, _ := Get(ctx, key).(string)
	return s
}

// GetBool returns the value of key if it is a bool, and false if it is
// missing or of another type.
func GetBool(ctx context.Context, key string) bool {
	b, _ := Get(ctx, key).(bool)
	return b
}

// GetBytes returns the value of key if it is a []byte, and nil if it is
// missing or of another type (a string included). The slice is the
// caller's.
func GetBytes(ctx context.Context, key string) []byte {
	b, _ := Get(ctx, key).([]byte)
	return b
}

// GetTime returns the value of key if it is a time.Time, in UTC, and the
// zero time if it is missing or of another type. Monotonic clock readings
// do not survive storage; nanoseconds do.
func GetTime(ctx context.Context, key string) time.Time {
	t, _ := Get(ctx, key).(time.Time)
	return t
}

// GetInt returns the value of key if it is an integer of any Go integer
// type that fits in an int, and 0 if it is missing, of another type
// (floats included) or out of range.
func GetInt(ctx context.Context, key string) int {
	switch n := Get(ctx, key).(type) {
	case int8:
		return int(n)
	case int16:
		return int(n)
	case int32:
		return int(n)
	case int64:
		if int64(int(n)) == n {
			return int(n)
		}
	case uint8:
		return int(n)
	case uint16:
		return int(n)
	case uint32:
		if uint64(n) <= uint64(maxInt) {
			return int(n)
		}
	case uint64:
		if n <= uint64(maxInt) {
			return int(n)
		}
	}
	return 0
}

const maxInt = int(^uint(0) >> 1)

// Pop returns the value of key, as Get does, and removes it: a one-shot
// value such as a flash message.
func Pop(ctx context.Context, key string) any {
	st := from(ctx)
	st.mu.Lock()
	raw, ok := st.rawLocked(key)
	if ok {
		st.removeLocked(key)
	}
	st.mu.Unlock()
	if !ok {
		return nil
	}
	return decodeStored(raw)
}

// Remove deletes key from the session. Removing a key the session does not
// have changes nothing, so it neither creates a session nor commits one.
func Remove(ctx context.Context, key string) {
	st := from(ctx)
	st.mu.Lock()
	defer st.mu.Unlock()
	if _, ok := st.rawLocked(key); ok {
		st.removeLocked(key)
	}
}

// Keys returns the session's keys, sorted, as this request sees them: the
// stored ones with the request's own changes applied.
func Keys(ctx context.Context) []string {
	st := from(ctx)
	st.mu.Lock()
	defer st.mu.Unlock()
	var keys []string
	_ = walk(st.sess.Data(), func(k, _ []byte) bool {
		if _, ok := st.delta[string(k)]; !ok {
			keys = append(keys, string(k))
		}
		return true
	})
	for k, c := range st.delta {
		if !c.removed {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// raw returns key's encoded value as the request sees it.
func (st *state) raw(key string) ([]byte, bool) {
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
	if st.delta == nil {
		st.delta = make(map[string]change, 1)
	}
	st.delta[key] = change{removed: true}
}

// decodeStored decodes one stored value; a value that does not decode
// reads as missing.
func decodeStored(raw []byte) any {
	v, err := decodeAny(raw)
	if err != nil {
		return nil
	}
	if t, ok := v.(time.Time); ok {
		// msgpack decodes times in the local zone; the zone a time was
		// stored in is lost anyway, so give the one answer that does not
		// depend on the server's TZ.
		return t.UTC()
	}
	return v
}
