package engine_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/sesscache/sesscache/engine"
)

func Example() {
	store, err := engine.Open(engine.Options{}) // in memory, 30 min idle, 12 h absolute
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	s, err := store.Create(context.Background(), engine.CreateOptions{UserID: "alice", Data: []byte("theme=dark")})
	if err != nil {
		log.Fatal(err)
	}
	// Hand s.ID() to the client, in a cookie for instance. Later:
	got, err := store.Get(s.ID())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(got.UserID(), string(got.Data()))
	// Output: alice theme=dark
}

func ExampleEngine_Update() {
	store, _ := engine.Open(engine.Options{})
	defer store.Close()
	s, _ := store.Create(context.Background(), engine.CreateOptions{Data: []byte("1")})

	// Read-modify-write: fn may run again if another write lands first.
	s, err := store.Update(context.Background(), s.ID(), 0, func(cur engine.Session) ([]byte, error) {
		return append(cur.DataCopy(), '+'), nil
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(s.Data()), s.Version())

	// Compare-and-swap: apply only if nobody wrote since version 1.
	_, err = store.Update(context.Background(), s.ID(), 1, func(engine.Session) ([]byte, error) { return []byte("stale"), nil })
	fmt.Println(errors.Is(err, engine.ErrVersionConflict))
	// Output:
	// 1+ 2
	// true
}

func ExampleEngine_Rotate() {
	store, _ := engine.Open(engine.Options{})
	defer store.Close()
	anon, _ := store.Create(context.Background(), engine.CreateOptions{Data: []byte("cart=3")})

	// After login, move the session to a fresh ID so that an ID planted or
	// seen before login is worthless.
	s, err := store.Rotate(context.Background(), anon.ID())
	if err != nil {
		log.Fatal(err)
	}
	_, err = store.Get(anon.ID())
	fmt.Println(errors.Is(err, engine.ErrNotFound), string(s.Data()))
	// Output: true cart=3
}

func ExampleEngine_RevokeUser() {
	store, _ := engine.Open(engine.Options{})
	defer store.Close()
	phone, _ := store.Create(context.Background(), engine.CreateOptions{UserID: "bob"})
	laptop, _ := store.Create(context.Background(), engine.CreateOptions{UserID: "bob"})

	// "Log out everywhere", or a password change.
	n, _ := store.RevokeUser(context.Background(), "bob")
	_, err1 := store.Get(phone.ID())
	_, err2 := store.Get(laptop.ID())
	fmt.Println(n, errors.Is(err1, engine.ErrNotFound), errors.Is(err2, engine.ErrNotFound))
	// Output: 2 true true
}

func ExampleNewManualClock() {
	clock := engine.NewManualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	store, _ := engine.Open(engine.Options{Clock: clock, IdleTimeout: 10 * time.Minute})
	defer store.Close()
	s, _ := store.Create(context.Background(), engine.CreateOptions{})

	clock.Advance(11 * time.Minute)
	_, err := store.Get(s.ID())
	fmt.Println(errors.Is(err, engine.ErrExpired))
	// Output: true
}

func ExampleEngine_RotateWith() {
	store, _ := engine.Open(engine.Options{RotateGrace: 10 * time.Second})
	defer store.Close()
	anon, _ := store.Create(context.Background(), engine.CreateOptions{Data: []byte("cart=3")})

	// Login: the session becomes alice's under a fresh ID. A change of
	// privilege ends the old ID at once, whatever RotateGrace says.
	s, err := store.RotateWith(context.Background(), anon.ID(), engine.RotateOptions{UserID: "alice", Label: "Firefox on Linux"})
	if err != nil {
		log.Fatal(err)
	}
	_, err = store.Get(anon.ID())
	fmt.Println(s.UserID(), string(s.Data()), errors.Is(err, engine.ErrNotFound))
	// Output: alice cart=3 true
}

func ExampleEngine_UserSessions() {
	store, _ := engine.Open(engine.Options{})
	defer store.Close()
	ctx := context.Background()
	phone, _ := store.Create(ctx, engine.CreateOptions{UserID: "carol", Label: "phone"})
	store.Create(ctx, engine.CreateOptions{UserID: "carol", Label: "laptop"})
	store.Create(ctx, engine.CreateOptions{UserID: "carol", Label: "tablet"})

	// A "your devices" page lists sessions by handle and label, never by
	// token, and logs one out by its handle.
	list, _ := store.UserSessions(ctx, "carol")
	for _, s := range list {
		if s.Label() == "laptop" {
			_ = store.RevokeSession(ctx, "carol", s.Handle())
		}
	}
	// "Log out other devices", from the phone.
	n, _ := store.RevokeOthers(ctx, "carol", phone.Handle())
	list, _ = store.UserSessions(ctx, "carol")
	fmt.Println(n, len(list), list[0].Label(), list[0].ID() == "")
	// Output: 1 1 phone true
}

func ExampleOptions_onEvent() {
	store, _ := engine.Open(engine.Options{
		// An audit trail: every change with the session's handle and
		// owner, never its token.
		OnEvent: func(ev engine.Event) { fmt.Printf("%s %q\n", ev.Kind, ev.UserID) },
	})
	defer store.Close()
	ctx := context.Background()
	s, _ := store.Create(ctx, engine.CreateOptions{})
	s, _ = store.RotateWith(ctx, s.ID(), engine.RotateOptions{UserID: "dave"})
	_, _ = store.RevokeUser(ctx, "dave")
	// Output:
	// created ""
	// rotated "dave"
	// revoked "dave"
}
