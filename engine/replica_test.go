package engine

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReplicas(t *testing.T) {
	var events []Event
	e, clock := open(t, Options{OnEvent: func(ev Event) { events = append(events, ev) }})
	id := e.NewID()
	st := SessionState{Version: 3, UserID: "u", Label: "l", Data: []byte("v3"), CreatedAt: epoch,
		LastAccess: epoch, AuthenticatedAt: epoch, IdleTimeout: time.Hour, AbsoluteExpiry: epoch.Add(12 * time.Hour)}
	s, err := e.PutReplica(id, st)
	require.NoError(t, err)
	assert.Equal(t, id, s.ID())
	got, err := e.Get(id)
	require.NoError(t, err)
	assert.Equal(t, "v3", string(got.Data()))
	gs := got.State()
	assert.True(t, gs.CreatedAt.Equal(st.CreatedAt) && gs.LastAccess.Equal(st.LastAccess) &&
		gs.AuthenticatedAt.Equal(st.AuthenticatedAt) && gs.AbsoluteExpiry.Equal(st.AbsoluteExpiry))
	gs.CreatedAt, gs.LastAccess, gs.AuthenticatedAt, gs.AbsoluteExpiry = st.CreatedAt, st.LastAccess, st.AuthenticatedAt, st.AbsoluteExpiry
	assert.Equal(t, st, gs)
	h, err := e.HandleOf(id)
	require.NoError(t, err)
	assert.Equal(t, got.Handle(), h)

	old := st
	old.Version, old.Data = 2, []byte("v2")
	s, err = e.PutReplica(id, old)
	require.NoError(t, err)
	assert.Equal(t, "v3", string(s.Data()), "an older copy never replaces a newer one")
	next := st
	next.Version, next.Data, next.UserID = 4, []byte("v4"), "w"
	_, err = e.PutReplica(id, next)
	require.NoError(t, err)
	got, err = e.Get(id)
	require.NoError(t, err)
	assert.Equal(t, "v4", string(got.Data()))
	assert.Equal(t, 0, e.users.count("u"))
	assert.Equal(t, 1, e.users.count("w"))

	e.DropReplica(id)
	_, err = e.Get(id)
	assert.ErrorIs(t, err, ErrNotFound)
	for range 3 {
		_, err := e.PutReplica(e.NewID(), st)
		require.NoError(t, err)
	}
	assert.Equal(t, 3, e.Len())
	e.DropAllReplicas()
	assert.Equal(t, 0, e.Len())
	assert.Equal(t, 0, e.users.count("u"))
	assert.Empty(t, events, "copies are not the engine's sessions")
	stats := e.Stats()
	assert.Zero(t, stats.Created+stats.Deleted)

	_, err = e.PutReplica("forged", st)
	assert.ErrorIs(t, err, ErrMalformedToken)
	clock.Advance(13 * time.Hour)
	_, err = e.PutReplica(e.NewID(), st)
	assert.ErrorIs(t, err, ErrInvalid, "a state past its deadline")

	p := openDir(t, t.TempDir(), NewManualClock(epoch), Options{})
	_, err = p.PutReplica(p.NewID(), st)
	assert.ErrorIs(t, err, ErrInvalid, "a persistent engine holds its own sessions only")
}

func TestOnTouchOncePerInterval(t *testing.T) {
	var touched []time.Time
	e, clock := open(t, Options{TouchLogInterval: time.Minute, OnTouch: func(h Handle, at time.Time) {
		touched = append(touched, at)
	}})
	s := mustCreate(t, e, CreateOptions{})
	for range 30 {
		clock.Advance(5 * time.Second)
		_, err := e.Get(s.ID())
		require.NoError(t, err)
	}
	// 150 s of reads every 5 s: reported at 60 s and 120 s.
	require.Len(t, touched, 2)
	assert.Equal(t, epoch.Add(60*time.Second), touched[0].UTC())
	assert.Equal(t, epoch.Add(120*time.Second), touched[1].UTC())
}

func TestViews(t *testing.T) {
	st := SessionState{Version: 2, UserID: "u", Label: "l", Data: []byte("d"), CreatedAt: epoch,
		LastAccess: epoch.Add(time.Minute), AuthenticatedAt: epoch, IdleTimeout: time.Hour,
		AbsoluteExpiry: epoch.Add(12 * time.Hour), Fingerprint: FingerprintHash([]byte("ua"))}
	h := Handle{1, 2, 3}
	v := ViewOf("tok", h, st)
	assert.Equal(t, "tok", v.ID())
	assert.Equal(t, h, v.Handle())
	assert.Equal(t, "u", v.UserID())
	assert.False(t, v.Rotated())
	assert.Equal(t, st.Fingerprint, v.State().Fingerprint)
	assert.True(t, v.LastAccess().Equal(st.LastAccess))

	l := ListedView(h, st)
	assert.Empty(t, l.ID())
	assert.Equal(t, h, l.Handle())
	assert.Equal(t, "l", l.Label())

	g := GraceView("old", st)
	assert.Equal(t, "old", g.ID())
	assert.True(t, g.Rotated())
	assert.Empty(t, g.UserID())
	assert.True(t, g.Handle().IsZero())
	assert.True(t, g.AuthenticatedAt().IsZero())
	assert.Equal(t, []byte("d"), g.Data())
}
