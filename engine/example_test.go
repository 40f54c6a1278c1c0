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
	store, err := engine.Open(engine.Options{}) // in memory, 30 min idle, 24 h absolute
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
