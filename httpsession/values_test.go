package httpsession_test

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/sesscache/sesscache/engine"
	"github.com/sesscache/sesscache/httpsession"
	"github.com/stretchr/testify/assert"
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

var getterCases = []struct {
	name string
	get  func(ctx context.Context) any
	want any
}{
	{"GetString string", func(c context.Context) any { return httpsession.GetString(c, "s") }, "text"},
	{"GetString int", func(c context.Context) any { return httpsession.GetString(c, "i") }, ""},
	{"GetString bytes", func(c context.Context) any { return httpsession.GetString(c, "bytes") }, ""},
	{"GetString missing", func(c context.Context) any { return httpsession.GetString(c, "nope") }, ""},
	{"GetInt small", func(c context.Context) any { return httpsession.GetInt(c, "i") }, 42},
	{"GetInt negative", func(c context.Context) any { return httpsession.GetInt(c, "neg") }, -7},
	{"GetInt int64", func(c context.Context) any { return httpsession.GetInt(c, "big") }, 1 << 40},
	{"GetInt uint8", func(c context.Context) any { return httpsession.GetInt(c, "u8") }, 200},
	{"GetInt out of range", func(c context.Context) any { return httpsession.GetInt(c, "huge") }, 0},
	{"GetInt float", func(c context.Context) any { return httpsession.GetInt(c, "f") }, 0},
	{"GetInt string", func(c context.Context) any { return httpsession.GetInt(c, "s") }, 0},
	{"GetBool bool", func(c context.Context) any { return httpsession.GetBool(c, "b") }, true},
	{"GetBool string", func(c context.Context) any { return httpsession.GetBool(c, "s") }, false},
	{"GetTime time", func(c context.Context) any { return httpsession.GetTime(c, "t") }, stamp.UTC()},
	{"GetTime string", func(c context.Context) any { return httpsession.GetTime(c, "s") }, time.Time{}},
	{"GetBytes bytes", func(c context.Context) any { return httpsession.GetBytes(c, "bytes") }, []byte{1, 2}},
	{"GetBytes string", func(c context.Context) any { return httpsession.GetBytes(c, "s") }, []byte(nil)},
	{"Get float", func(c context.Context) any { return httpsession.Get(c, "f") }, 1.5},
	{"Get missing", func(c context.Context) any { return httpsession.Get(c, "nope") }, nil},
	{"GetAs struct", func(c context.Context) any {
		v, ok := httpsession.GetAs[cart](c, "cart")
		return fmt.Sprint(v, ok)
	}, "{[tea] 3} true"},
	{"GetAs wrong type", func(c context.Context) any {
		v, ok := httpsession.GetAs[int](c, "s")
		return fmt.Sprint(v, ok)
	}, "0 false"},
	{"GetAs missing", func(c context.Context) any {
		v, ok := httpsession.GetAs[cart](c, "nope")
		return fmt.Sprint(v, ok)
	}, "{[] 0} false"},
}

// Each getter gives the same answer in the request that put the values and
// in a later one that reads them from the store.
func TestTypedGetters(t *testing.T) {
	var mu sync.Mutex
	got := map[string]map[string]any{} // request -> case -> result
	check := func(req string, ctx context.Context) {
		mu.Lock()
		defer mu.Unlock()
		got[req] = map[string]any{}
		for _, tc := range getterCases {
			got[req][tc.name] = tc.get(ctx)
		}
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/put" {
			for k, v := range typedValues {
				httpsession.Put(r.Context(), k, v)
			}
		}
		check(r.URL.Path, r.Context())
	})
	f := newFixture(t, engine.Options{}, httpsession.Options{}, h)
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

func TestPopRemoveKeys(t *testing.T) {
	results := make(chan string, 10)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		switch r.URL.Path {
		case "/set":
			httpsession.Put(ctx, "flash", "saved")
			httpsession.Put(ctx, "a", 1)
			httpsession.Put(ctx, "b", 2)
			httpsession.Remove(ctx, "b")
		case "/pop":
			results <- fmt.Sprintf("%v %v", httpsession.Pop(ctx, "flash"), httpsession.Keys(ctx))
		case "/remove":
			httpsession.Remove(ctx, "a")
			httpsession.Put(ctx, "c", 3)
		}
		results <- fmt.Sprint(httpsession.Keys(ctx))
	})
	f := newFixture(t, engine.Options{}, httpsession.Options{}, h)
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
