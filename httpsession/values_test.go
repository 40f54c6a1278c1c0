package httpsession_test

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/sesscache/sesscache/engine"
	"github.com/sesscache/sesscache/httpsession"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type cart struct {
	Items []string
	Total int
}

// stamp has nanoseconds and a zone, to show both come back (the zone as UTC).
var stamp = time.Date(2026, 3, 4, 5, 6, 7, 89, time.FixedZone("X", 3600))

// typedValues are what /put stores; getterCases read them.
var typedValues = map[string]any{
	"s":     "text",
	"i":     42,
	"neg":   -7,
	"big":   int64(1) << 40,
	"u8":    uint8(200),
	"huge":  uint64(math.MaxUint64),
	"b":     true,
	"t":     stamp,
	"bytes": []byte{1, 2},
	"f":     1.5,
	"cart":  cart{Items: []string{"tea"}, Total: 3},
}

type getter func(m *httpsession.Manager, ctx context.Context) any

func getAs[T any](key string) getter {
	return func(m *httpsession.Manager, ctx context.Context) any {
		v, err := httpsession.GetAs[T](m, ctx, key)
		return fmt.Sprint(v, " ", err == nil)
	}
}

var getterCases = []struct {
	name string
	get  getter
	want any
}{
	{"GetString string", func(m *httpsession.Manager, c context.Context) any { return m.GetString(c, "s") }, "text"},
	{"GetString int", func(m *httpsession.Manager, c context.Context) any { return m.GetString(c, "i") }, ""},
	{"GetString bytes", func(m *httpsession.Manager, c context.Context) any { return m.GetString(c, "bytes") }, ""},
	{"GetString missing", func(m *httpsession.Manager, c context.Context) any { return m.GetString(c, "nope") }, ""},
	{"GetInt small", func(m *httpsession.Manager, c context.Context) any { return m.GetInt(c, "i") }, 42},
	{"GetInt negative", func(m *httpsession.Manager, c context.Context) any { return m.GetInt(c, "neg") }, -7},
	{"GetInt int64", func(m *httpsession.Manager, c context.Context) any { return m.GetInt(c, "big") }, 1 << 40},
	{"GetInt uint8", func(m *httpsession.Manager, c context.Context) any { return m.GetInt(c, "u8") }, 200},
	{"GetInt out of range", func(m *httpsession.Manager, c context.Context) any { return m.GetInt(c, "huge") }, 0},
	{"GetInt float", func(m *httpsession.Manager, c context.Context) any { return m.GetInt(c, "f") }, 0},
	{"GetInt string", func(m *httpsession.Manager, c context.Context) any { return m.GetInt(c, "s") }, 0},
	{"GetFloat float", func(m *httpsession.Manager, c context.Context) any { return m.GetFloat(c, "f") }, 1.5},
	{"GetFloat int", func(m *httpsession.Manager, c context.Context) any { return m.GetFloat(c, "i") }, 42.0},
	{"GetBool bool", func(m *httpsession.Manager, c context.Context) any { return m.GetBool(c, "b") }, true},
	{"GetBool string", func(m *httpsession.Manager, c context.Context) any { return m.GetBool(c, "s") }, false},
	{"GetTime time", func(m *httpsession.Manager, c context.Context) any { return m.GetTime(c, "t") }, stamp.UTC()},
	{"GetTime string", func(m *httpsession.Manager, c context.Context) any { return m.GetTime(c, "s") }, time.Time{}},
	{"GetBytes bytes", func(m *httpsession.Manager, c context.Context) any { return m.GetBytes(c, "bytes") }, []byte{1, 2}},
	{"GetBytes string", func(m *httpsession.Manager, c context.Context) any { return m.GetBytes(c, "s") }, []byte(nil)},
	{"Get int", func(m *httpsession.Manager, c context.Context) any { return m.Get(c, "i") }, 42},
	{"Get uint8", func(m *httpsession.Manager, c context.Context) any { return m.Get(c, "u8") }, 200},
	{"Get huge", func(m *httpsession.Manager, c context.Context) any { return m.Get(c, "huge") }, uint64(math.MaxUint64)},
	{"Get float", func(m *httpsession.Manager, c context.Context) any { return m.Get(c, "f") }, 1.5},
	{"Get struct", func(m *httpsession.Manager, c context.Context) any { return m.Get(c, "cart") },
		map[string]any{"Items": []any{"tea"}, "Total": 3}},
	{"Get missing", func(m *httpsession.Manager, c context.Context) any { return m.Get(c, "nope") }, nil},
	{"Exists", func(m *httpsession.Manager, c context.Context) any { return m.Exists(c, "cart") }, true},
	{"Exists missing", func(m *httpsession.Manager, c context.Context) any { return m.Exists(c, "nope") }, false},
	{"GetAs struct", getAs[cart]("cart"), "{[tea] 3} true"},
	{"GetAs wrong type", getAs[int]("s"), "0 false"},
	{"GetAs out of range", getAs[int8]("u8"), "0 false"},
	{"GetAs missing", getAs[cart]("nope"), "{[] 0} false"},
}

// Each getter gives the same answer in the request that put the values and
// in a later one that reads them from the store.
func TestTypedGetters(t *testing.T) {
	var mu sync.Mutex
	got := map[string]map[string]any{} // request -> case -> result
	f := newFixture(t, engine.Options{}, httpsession.Options{}, func(f *fixture) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/put" {
				for k, v := range typedValues {
					f.m.Put(r.Context(), k, v)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			got[r.URL.Path] = map[string]any{}
			for _, tc := range getterCases {
				got[r.URL.Path][tc.name] = tc.get(f.m, r.Context())
			}
		})
	})
	c := f.client(t)
	f.do(t, c, "POST /put")
	f.do(t, c, "GET /read")
	for _, req := range []string{"/put", "/read"} {
		for _, tc := range getterCases {
			t.Run(req+"/"+tc.name, func(t *testing.T) {
				assert.Equal(t, tc.want, got[req][tc.name])
			})
		}
	}
}

type smallCart struct {
	Items []string
	Total int8
}

// cartV2 is cart after a release that added a field.
type cartV2 struct {
	Items  []string
	Total  int
	Coupon string
}

type Base struct{ ID int }

type withBase struct {
	Base
	Name string `msgpack:"name"`
	Skip int    `msgpack:"-"`
}

// loaded returns a context holding a session, outside HTTP, in which put
// stored its values, read back from the store.
func loaded(t *testing.T, m *httpsession.Manager, put func(ctx context.Context)) context.Context {
	t.Helper()
	ctx, err := m.Load(t.Context(), "")
	require.NoError(t, err)
	put(ctx)
	token, _, err := m.Commit(ctx)
	require.NoError(t, err)
	ctx, err = m.Load(t.Context(), token)
	require.NoError(t, err)
	return ctx
}

// GetAs returns what was put exactly, or an error: never a value changed
// on the way.
func TestGetAsExact(t *testing.T) {
	m := httpsession.New(openStore(t, engine.Options{}), httpsession.Options{})
	tests := []struct {
		name  string
		value any
		get   func(ctx context.Context) (any, error)
		want  any // nil: want ErrValueType
	}{
		{"300 into int8", 300, func(c context.Context) (any, error) { return httpsession.GetAs[int8](m, c, "v") }, nil},
		{"300 into uint8", 300, func(c context.Context) (any, error) { return httpsession.GetAs[uint8](m, c, "v") }, nil},
		{"300 into int16", 300, func(c context.Context) (any, error) { return httpsession.GetAs[int16](m, c, "v") }, int16(300)},
		{"300 into float32", 300, func(c context.Context) (any, error) { return httpsession.GetAs[float32](m, c, "v") }, float32(300)},
		{"-1 into uint", -1, func(c context.Context) (any, error) { return httpsession.GetAs[uint](m, c, "v") }, nil},
		{"-128 into int8", -128, func(c context.Context) (any, error) { return httpsession.GetAs[int8](m, c, "v") }, int8(-128)},
		{"-129 into int8", -129, func(c context.Context) (any, error) { return httpsession.GetAs[int8](m, c, "v") }, nil},
		{"uint8 200 into int8", uint8(200), func(c context.Context) (any, error) { return httpsession.GetAs[int8](m, c, "v") }, nil},
		{"max uint64 into int64", uint64(math.MaxUint64), func(c context.Context) (any, error) { return httpsession.GetAs[int64](m, c, "v") }, nil},
		{"max uint64 into uint64", uint64(math.MaxUint64), func(c context.Context) (any, error) { return httpsession.GetAs[uint64](m, c, "v") }, uint64(math.MaxUint64)},
		{"max uint64 into float64", uint64(math.MaxUint64), func(c context.Context) (any, error) { return httpsession.GetAs[float64](m, c, "v") }, nil},
		{"2^53 into float64", 1 << 53, func(c context.Context) (any, error) { return httpsession.GetAs[float64](m, c, "v") }, float64(1 << 53)},
		{"2^53+1 into float64", 1<<53 + 1, func(c context.Context) (any, error) { return httpsession.GetAs[float64](m, c, "v") }, nil},
		{"1.5 into int", 1.5, func(c context.Context) (any, error) { return httpsession.GetAs[int](m, c, "v") }, nil},
		{"1.5 into float32", 1.5, func(c context.Context) (any, error) { return httpsession.GetAs[float32](m, c, "v") }, float32(1.5)},
		{"0.1 into float32", 0.1, func(c context.Context) (any, error) { return httpsession.GetAs[float32](m, c, "v") }, nil},
		{"float32 into float64", float32(0.1), func(c context.Context) (any, error) { return httpsession.GetAs[float64](m, c, "v") }, float64(float32(0.1))},
		{"string into []byte", "text", func(c context.Context) (any, error) { return httpsession.GetAs[[]byte](m, c, "v") }, nil},
		{"[]byte into string", []byte("text"), func(c context.Context) (any, error) { return httpsession.GetAs[string](m, c, "v") }, nil},
		{"nil into int", nil, func(c context.Context) (any, error) { return httpsession.GetAs[int](m, c, "v") }, nil},
		{"nil into *int", nil, func(c context.Context) (any, error) { return httpsession.GetAs[*int](m, c, "v") }, (*int)(nil)},
		{"int into *int", 7, func(c context.Context) (any, error) {
			p, err := httpsession.GetAs[*int](m, c, "v")
			if p == nil {
				return nil, err
			}
			return *p, err
		}, 7},
		{"time into string", stamp, func(c context.Context) (any, error) { return httpsession.GetAs[string](m, c, "v") }, nil},
		{"string into time", "2026-01-01T00:00:00Z", func(c context.Context) (any, error) { return httpsession.GetAs[time.Time](m, c, "v") }, nil},
		{"struct", cart{[]string{"tea"}, 3}, func(c context.Context) (any, error) { return httpsession.GetAs[cart](m, c, "v") }, cart{[]string{"tea"}, 3}},
		{"struct field out of range", cart{[]string{"tea"}, 300}, func(c context.Context) (any, error) { return httpsession.GetAs[smallCart](m, c, "v") }, nil},
		{"struct that gained a field", cart{[]string{"tea"}, 3}, func(c context.Context) (any, error) { return httpsession.GetAs[cartV2](m, c, "v") }, cartV2{[]string{"tea"}, 3, ""}},
		{"struct that lost a field", cartV2{[]string{"tea"}, 3, "X"}, func(c context.Context) (any, error) { return httpsession.GetAs[cart](m, c, "v") }, cart{[]string{"tea"}, 3}},
		{"struct into map", cart{[]string{"tea"}, 3}, func(c context.Context) (any, error) { return httpsession.GetAs[map[string]any](m, c, "v") }, map[string]any{"Items": []any{"tea"}, "Total": 3}},
		{"embedded struct and tags", withBase{Base{7}, "x", 9}, func(c context.Context) (any, error) { return httpsession.GetAs[withBase](m, c, "v") }, withBase{Base{7}, "x", 0}},
		{"slice element out of range", []int{1, 300}, func(c context.Context) (any, error) { return httpsession.GetAs[[]int8](m, c, "v") }, nil},
		{"slice", []int{1, 300}, func(c context.Context) (any, error) { return httpsession.GetAs[[]int16](m, c, "v") }, []int16{1, 300}},
		{"array of the right length", []int{1, 2}, func(c context.Context) (any, error) { return httpsession.GetAs[[2]int](m, c, "v") }, [2]int{1, 2}},
		{"array of another length", []int{1, 2}, func(c context.Context) (any, error) { return httpsession.GetAs[[3]int](m, c, "v") }, nil},
		{"map value out of range", map[string]int{"a": 300}, func(c context.Context) (any, error) { return httpsession.GetAs[map[string]int8](m, c, "v") }, nil},
		{"map with int keys", map[int]string{1: "a"}, func(c context.Context) (any, error) { return httpsession.GetAs[map[int]string](m, c, "v") }, map[int]string{1: "a"}},
		{"self-decoding type", netip.MustParseAddr("192.0.2.1"), func(c context.Context) (any, error) { return httpsession.GetAs[netip.Addr](m, c, "v") }, netip.MustParseAddr("192.0.2.1")},
		{"any", []int8{1}, func(c context.Context) (any, error) { return httpsession.GetAs[any](m, c, "v") }, []any{1}},
		{"time", stamp, func(c context.Context) (any, error) { return httpsession.GetAs[time.Time](m, c, "v") }, stamp.UTC()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := loaded(t, m, func(ctx context.Context) { m.Put(ctx, "v", tt.value) })
			got, err := tt.get(ctx)
			if tt.want == nil {
				assert.ErrorIs(t, err, httpsession.ErrValueType)
				if err != nil {
					assert.Contains(t, err.Error(), `"v"`, "the error names the key")
				}
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
	ctx := loaded(t, m, func(ctx context.Context) { m.Put(ctx, "v", 1) })
	_, err := httpsession.GetAs[int](m, ctx, "missing")
	assert.ErrorIs(t, err, httpsession.ErrNoValue)
}

func TestGetGenericTypes(t *testing.T) {
	m := httpsession.New(openStore(t, engine.Options{}), httpsession.Options{})
	tests := []struct {
		name        string
		value, want any
	}{
		{"int8", int8(42), 42},
		{"uint64", uint64(42), 42},
		{"negative int64", int64(-1) << 40, -1 << 40},
		{"above MaxInt64", uint64(math.MaxInt64) + 1, uint64(math.MaxInt64) + 1},
		{"float32", float32(1.5), 1.5},
		{"string", "s", "s"},
		{"bytes", []byte{1}, []byte{1}},
		{"nil", nil, nil},
		{"slice", []string{"a"}, []any{"a"}},
		{"map with string keys", map[string]int{"a": 1}, map[string]any{"a": 1}},
		{"map with int keys", map[int]string{1: "a"}, map[any]any{1: "a"}},
		{"struct", cart{Total: 2}, map[string]any{"Items": nil, "Total": 2}},
		{"time", stamp, stamp.UTC()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := loaded(t, m, func(ctx context.Context) { m.Put(ctx, "v", tt.value) })
			assert.Equal(t, tt.want, m.Get(ctx, "v"))
		})
	}
}

// The typed getters read in place: no allocation for scalars, nor for a
// missing key.
func TestGettersDoNotAllocate(t *testing.T) {
	m := httpsession.New(openStore(t, engine.Options{}), httpsession.Options{})
	ctx := loaded(t, m, func(ctx context.Context) {
		m.Put(ctx, "n", 42)
		m.Put(ctx, "b", true)
		m.Put(ctx, "f", 1.5)
	})
	allocs := func(fn func()) float64 {
		n := testing.AllocsPerRun(100, fn) // run under -race too: fn must not fail
		// Under -race the count is meaningless (see raceEnabled).
		if raceEnabled {
			return 0
		}
		return n
	}
	assert.Equal(t, 42, m.GetInt(ctx, "n"))
	assert.Zero(t, allocs(func() { _ = m.GetInt(ctx, "n") }), "GetInt")
	assert.Zero(t, allocs(func() { _ = m.GetBool(ctx, "b") }), "GetBool")
	assert.Zero(t, allocs(func() { _ = m.GetFloat(ctx, "f") }), "GetFloat")
	assert.Zero(t, allocs(func() { _ = m.Exists(ctx, "n") }), "Exists")
	assert.Zero(t, allocs(func() { _ = m.GetString(ctx, "missing") }), "GetString of a missing key")
	assert.Zero(t, allocs(func() { _ = m.GetInt(ctx, "missing") }), "GetInt of a missing key")
}

func TestPopRemoveKeys(t *testing.T) {
	results := make(chan string, 10)
	f := newFixture(t, engine.Options{}, httpsession.Options{}, func(f *fixture) http.Handler {
		m := f.m
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx := r.Context()
			switch r.URL.Path {
			case "/set":
				m.Put(ctx, "flash", "saved")
				m.Put(ctx, "a", 1)
				m.Put(ctx, "b", 2)
				m.Remove(ctx, "b")
			case "/pop":
				results <- fmt.Sprintf("%v %v", m.Pop(ctx, "flash"), m.Keys(ctx))
			case "/remove":
				m.Remove(ctx, "a")
				m.Put(ctx, "c", 3)
			}
			results <- fmt.Sprint(m.Keys(ctx))
		})
	})
	c := f.client(t)
	for _, step := range []struct{ req, want string }{
		{"POST /set", "[a flash]"},
		{"POST /pop", "saved [a]"},
		{"", "[a]"},
		{"POST /pop", "<nil> [a]"},
		{"", "[a]"},
		{"POST /remove", "[c]"},
		{"GET /keys", "[c]"},
	} {
		if step.req != "" {
			f.do(t, c, step.req)
		}
		assert.Equal(t, step.want, <-results, step.req)
	}
}

func TestClearExistsStatus(t *testing.T) {
	m := httpsession.New(openStore(t, engine.Options{}), httpsession.Options{})
	ctx, err := m.Load(t.Context(), "")
	require.NoError(t, err)
	assert.Equal(t, httpsession.Unmodified, m.Status(ctx))
	m.Put(ctx, "a", 1)
	m.Put(ctx, "b", 2)
	m.RememberMe(ctx, true)
	assert.Equal(t, httpsession.Modified, m.Status(ctx))
	token, _, err := m.Commit(ctx)
	require.NoError(t, err)

	ctx, err = m.Load(t.Context(), token)
	require.NoError(t, err)
	assert.Equal(t, httpsession.Unmodified, m.Status(ctx))
	assert.True(t, m.Exists(ctx, "a"))
	assert.False(t, m.Exists(ctx, "\x00remember"), "reserved keys are not values")
	assert.Equal(t, []string{"a", "b"}, m.Keys(ctx))
	m.Clear(ctx)
	assert.Equal(t, httpsession.Modified, m.Status(ctx))
	assert.False(t, m.Exists(ctx, "a"))
	assert.Empty(t, m.Keys(ctx))
	again, _, err := m.Commit(ctx)
	require.NoError(t, err)
	assert.Equal(t, token, again, "Clear keeps the session")

	ctx, err = m.Load(t.Context(), token)
	require.NoError(t, err)
	assert.Empty(t, m.Keys(ctx))
	require.NoError(t, m.Destroy(ctx))
	assert.Equal(t, httpsession.Destroyed, m.Status(ctx))
	m.Put(ctx, "fresh", 1)
	assert.Equal(t, httpsession.Modified, m.Status(ctx))
	assert.Equal(t, "destroyed", httpsession.Destroyed.String())
}
