// Package bench puts sesscache's engine side by side with peer caches
// (otter, ristretto, go-cache, scs's memstore, sync.Map, a sharded RWMutex
// map and an unlocked map) on the same workloads, in one run.
//
// It is a module of its own so that importing sesscache never pulls the
// peers in. It holds benchmarks only: no code here is meant to be imported.
// run.sh runs them and writes RESULTS.md; README.md says how to run one by
// hand.
package bench
