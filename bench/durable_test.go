package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/sesscache/sesscache/engine"
)

// durableValue is the size of every value BenchmarkDurable writes.
const durableValue = 200

// durableStore is a store whose writes reach a disk: put stores a new
// value under a new key and returns once the store's durability policy
// holds for it.
type durableStore interface {
	put(key, value []byte) error
	close() error
}

// durableKinds are the stores BenchmarkDurable compares, sesscache first.
// pebble is an embedded LSM store whose WAL group-commits as sesscache's log
// does: pebble.Sync returns after the WAL's fsync (sesscache's SyncAlways),
// pebble.NoSync once the record is in the WAL's buffer, with no fsync on a
// schedule (closer to SyncNo than to SyncEverySecond, which fsyncs every
// second).
var durableKinds = []struct {
	name string
	open func(dir string) (durableStore, error)
}{
	{"sesscache-always", func(dir string) (durableStore, error) { return openDurableEngine(dir, engine.SyncAlways) }},
	{"pebble-sync", func(dir string) (durableStore, error) { return openPebble(dir, pebble.Sync) }},
	{"sesscache-everysec", func(dir string) (durableStore, error) { return openDurableEngine(dir, engine.SyncEverySecond) }},
	{"pebble-nosync", func(dir string) (durableStore, error) { return openPebble(dir, pebble.NoSync) }},
}

// BenchmarkDurable measures durable writes of new 200-byte values at 1, 8
// and 64 concurrent writers: sesscache's Create under SyncAlways and
// SyncEverySecond against pebble's Set of a new 16-byte key with
// pebble.Sync and pebble.NoSync. sesscache draws its own 32-byte session
// IDs and writes them to its log as digests, so its keys are not the
// benchmark's. Each store writes to a directory of its own under TMPDIR.
func BenchmarkDurable(b *testing.B) {
	for _, k := range durableKinds {
		for _, writers := range []int{1, 8, 64} {
			b.Run(fmt.Sprintf("store=%s/writers=%d", k.name, writers), func(b *testing.B) {
				s, err := k.open(b.TempDir())
				if err != nil {
					b.Fatal(err)
				}
				var next atomic.Uint64
				b.ReportAllocs()
				b.ResetTimer()
				var wg sync.WaitGroup
				for w := range writers {
					n := b.N / writers
					if w < b.N%writers {
						n++
					}
					wg.Go(func() {
						key := make([]byte, 16)
						value := make([]byte, durableValue)
						binary.BigEndian.PutUint64(key, uint64(w)+1)
						for range n {
							binary.BigEndian.PutUint64(key[8:], next.Add(1))
							value[0]++
							if err := s.put(key, value); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				b.StopTimer()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
				if err := s.close(); err != nil {
					b.Fatal(err)
				}
			})
		}
	}
}

type durableEngine struct{ e *engine.Engine }

func openDurableEngine(dir string, sync engine.SyncPolicy) (durableStore, error) {
	e, err := engine.Open(engine.Options{
		Dir:    dir,
		Sync:   sync,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		return nil, err
	}
	return durableEngine{e}, nil
}

func (d durableEngine) put(_, value []byte) error {
	_, err := d.e.Create(context.Background(), engine.CreateOptions{Data: value})
	return err
}

func (d durableEngine) close() error { return d.e.Close() }

type pebbleStore struct {
	db   *pebble.DB
	opts *pebble.WriteOptions
}

func openPebble(dir string, opts *pebble.WriteOptions) (durableStore, error) {
	db, err := pebble.Open(dir, &pebble.Options{Logger: quietPebble{}})
	if err != nil {
		return nil, err
	}
	return pebbleStore{db, opts}, nil
}

func (p pebbleStore) put(key, value []byte) error { return p.db.Set(key, value, p.opts) }

func (p pebbleStore) close() error { return p.db.Close() }

// quietPebble discards pebble's informational log lines.
type quietPebble struct{}

func (quietPebble) Infof(string, ...any)      {}
func (quietPebble) Errorf(f string, a ...any) { fmt.Printf("pebble: "+f+"\n", a...) }
func (quietPebble) Fatalf(f string, a ...any) { panic(fmt.Sprintf("pebble: "+f, a...)) }
