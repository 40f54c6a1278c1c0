#!/usr/bin/env bash
# run.sh runs every benchmark of the bench module and regenerates RESULTS.md
# from what it measured: the machine, the exact commands, benchstat's tables
# of every store against sesscache, and the headline ratios.
#
# Usage: bench/run.sh
#
# Run it on a quiet machine: at the defaults it takes 35 to 40 minutes.
# Environment, with defaults:
#   COUNT=6              runs of every benchmark (benchstat wants at least 6)
#   CPU=1,2              GOMAXPROCS values
#   BENCHTIME=1s         -benchtime of the Get, Mix and Update benchmarks
#   SESSBENCH_N=1048576  sessions per store
#   MEMCOUNT=3           runs of the memory benchmark
#   STORES="..."         the stores, sesscache first (see kinds in stores_test.go)
#   BENCHSTAT=benchstat  benchstat binary; fetched with `go run` if absent
#
# Each store runs in processes of its own, so no store's heap ever shares a
# garbage collector with another's. Rounds interleave the stores (round 1 of
# every store, then round 2, ...) so that a drift in the machine's speed
# spreads over all of them instead of landing on one.
set -euo pipefail
cd "$(dirname "$0")"

COUNT=${COUNT:-6}
CPU=${CPU:-1,2}
BENCHTIME=${BENCHTIME:-1s}
export SESSBENCH_N=${SESSBENCH_N:-1048576}
MEMCOUNT=${MEMCOUNT:-3}
STORES=${STORES:-sesscache otter-eaa otter-eaa-coarse otter ristretto go-cache scs-memstore sync.Map rwmutex-shards unlocked-map}
# The x/perf version benchstat is fetched at when it is not installed.
PERF_VERSION=v0.0.0-20260908200009-22c9c6c9d4da

if [ -z "${BENCHSTAT:-}" ]; then
  if command -v benchstat >/dev/null; then
    BENCHSTAT=benchstat
  elif [ -x "$(go env GOPATH)/bin/benchstat" ]; then
    BENCHSTAT="$(go env GOPATH)/bin/benchstat"
  else
    BENCHSTAT="go run golang.org/x/perf/cmd/benchstat@$PERF_VERSION"
  fi
fi

results=results
mkdir -p "$results"
rm -f "$results"/*.txt
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
: >"$tmp/commands"

load_average() { cut -d' ' -f1-3 /proc/loadavg; }
load_before=$(load_average)
started=$(date -u '+%Y-%m-%d %H:%M:%S UTC')

# quote prints its arguments as a shell would need them typed.
quote() {
  local a out=()
  for a in "$@"; do
    if [[ $a =~ ^[A-Za-z0-9_./,=:-]+$ ]]; then
      out+=("$a")
    else
      out+=("'${a//\'/\'\\\'\'}'")
    fi
  done
  echo "${out[*]}"
}

# bench FILE ARGS... runs `go test ARGS... .`, appends its output to
# results/FILE and logs the command once for RESULTS.md.
bench() {
  local file=$1
  shift
  local cmd
  cmd="SESSBENCH_N=$SESSBENCH_N go test -run '^\$' $(quote "$@") ."
  grep -qxF -- "$cmd" "$tmp/commands" || echo "$cmd" >>"$tmp/commands"
  echo "== $cmd" >&2
  go test -run '^$' "$@" . | tee -a "$results/$file" >&2
}

# The stores' names as a benchstat column order, sesscache first, so every
# column is compared with it.
order="/store@($STORES)"

for round in $(seq "$COUNT"); do
  echo "== round $round of $COUNT" >&2
  for s in $STORES; do
    bench ops.txt -bench "^Benchmark(Get|Mix90_10|Update)\$/./^store=$s\$" \
      -benchmem -cpu "$CPU" -count 1 -benchtime "$BENCHTIME" -timeout 0
    # Every store grows from empty to N sessions. The unlocked map is not
    # safe for concurrent writes and has no Create benchmark.
    [ "$s" = unlocked-map ] && continue
    bench create.txt -bench "^BenchmarkCreate\$/^store=$s\$" \
      -benchmem -cpu "$CPU" -count 1 -benchtime "${SESSBENCH_N}x" -timeout 0
  done
  bench newid.txt -bench '^BenchmarkNewID$' -benchmem -cpu "$CPU" -count 1 -benchtime "$BENCHTIME"
  for s in unlocked-map sesscache; do
    bench adapter.txt -bench "^BenchmarkAdapter\$/./^store=$s\$" \
      -benchmem -cpu "$CPU" -count 1 -benchtime "$BENCHTIME" -timeout 0
  done
  bench middleware.txt -bench '^BenchmarkMiddleware$' -benchmem -cpu "$CPU" -count 1 -benchtime "$BENCHTIME" -timeout 0
  bench durable.txt -bench '^BenchmarkDurable$' -benchmem -cpu "$CPU" -count 1 -benchtime "$BENCHTIME" -timeout 0
done
for round in $(seq "$MEMCOUNT"); do
  for s in $STORES; do
    # One GOMAXPROCS: the stores are loaded from one goroutine.
    bench memory.txt -bench "^BenchmarkMemory\$/^store=$s\$" -cpu 1 -count 1 -benchtime 1x -timeout 0
  done
done

load_after=$(load_average)
finished=$(date -u '+%Y-%m-%d %H:%M:%S UTC')

cpu_model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || true)
[ -n "$cpu_model" ] || cpu_model=$(uname -m)
mem_total=$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
# Its own outputs (results/, RESULTS.md) change during the run and do not count.
if [ -n "$(git status --porcelain -- .. ':!results' ':!RESULTS.md' 2>/dev/null)" ]; then commit="$commit (work tree modified)"; fi

# table TITLE BENCHSTAT-ARGS... puts one benchstat report in a text block.
table() {
  echo "$BENCHSTAT $*" >>"$tmp/benchstat-commands"
  echo '```text'
  $BENCHSTAT "$@"
  echo '```'
}

go build -o "$tmp/ratios" ./cmd/ratios

{
  cat <<EOF
# sesscache against peer caches: results

Written by \`bench/run.sh\`; do not edit, run it again. The raw benchmark
output is in \`bench/results/\`. README.md says what each store is and how
its semantics differ from sesscache's.

## Machine

| | |
|---|---|
| CPU | $cpu_model |
| cores | $(nproc) |
| memory | $mem_total |
| Go | $(go version) |
| OS | $(uname -sr) |
| sesscache commit | $commit |
| started | $started |
| finished | $finished |
| load average (1, 5, 15 min) before | $load_before |
| load average (1, 5, 15 min) after | $load_after |

Settings: SESSBENCH_N=$SESSBENCH_N sessions of 200 bytes, COUNT=$COUNT,
CPU=$CPU (GOMAXPROCS), BENCHTIME=$BENCHTIME, MEMCOUNT=$MEMCOUNT.

## Headline ratios

EOF
  "$tmp/ratios" "$results"/ops.txt "$results"/create.txt "$results"/newid.txt \
    "$results"/memory.txt "$results"/adapter.txt
  cat <<EOF

## Get, Mix90_10 and Update

Every store against sesscache (the first column). The unlocked map runs Gets
only: it is not safe for concurrent writes.

EOF
  table -col "$order" "$results/ops.txt"
  cat <<EOF

## Create

Inserting N new sessions into an empty store. sesscache's Create includes
drawing the session ID (see NewID below); the peers are handed theirs.
dropped/op is the fraction of Creates the store did not keep.

EOF
  table -col "$order" "$results/create.txt"
  cat <<EOF

## Memory per session

Live heap after a full collection, per session, with N sessions loaded;
B-overhead/session is what remains beyond the 22-byte ID and the 200 bytes
of data.

EOF
  table -col "$order" "$results/memory.txt"
  cat <<EOF

## net/http middleware

Per request, with a session cookie already set: httpsession's Handler
against scs's LoadAndSave with its memstore, for a handler that reads one
string value and one that writes one (ServeHTTP with a recorder, no network;
the request and recorder are part of both).

EOF
  table -col '/mw@(sesscache scs-memstore)' "$results/middleware.txt"
  cat <<EOF

## NewID

Drawing one session ID (16 bytes from crypto/rand, base64url-encoded): part
of sesscache's Create, not of the peers'.

EOF
  table "$results/newid.txt"
  cat <<EOF

## Adapter overhead

Gets through the store interface the workloads use, against the same loop
calling the store directly.

EOF
  table -col /call "$results/adapter.txt"
  cat <<EOF

## Durable writes against pebble

New 200-byte values written by 1, 8 and 64 concurrent writers to a
directory under TMPDIR: sesscache's Create against pebble v2's Set of a new
16-byte key (pebble is an embedded LSM store whose write-ahead log also
group-commits). sesscache's SyncAlways against pebble.Sync: each write
returns after an fsync covers it. sesscache's SyncEverySecond against
pebble.NoSync: each write returns once it is in the operating system's
hands (sesscache also fsyncs every second; pebble does not).

EOF
  table -col '/store@(sesscache-always pebble-sync)' -filter '/store:(sesscache-always OR pebble-sync)' "$results/durable.txt"
  echo
  table -col '/store@(sesscache-everysec pebble-nosync)' -filter '/store:(sesscache-everysec OR pebble-nosync)' "$results/durable.txt"
  cat <<EOF

## Durable writes against Redis

Produced by \`bench/redis.sh\`, which writes \`bench/results/redis.md\`.

EOF
  if [ -f "$results/redis.md" ]; then
    cat "$results/redis.md"
  else
    echo "Not run yet: \`bench/results/redis.md\` does not exist."
  fi
  cat <<EOF

## Commands

Run from \`bench/\`, in this order, COUNT rounds of the first group and
MEMCOUNT of the memory benchmarks:

\`\`\`sh
$(cat "$tmp/commands")
\`\`\`

Tables made with:

\`\`\`sh
$(cat "$tmp/benchstat-commands")
go run ./cmd/ratios results/ops.txt results/create.txt results/newid.txt results/memory.txt results/adapter.txt
\`\`\`
EOF
} >"$tmp/RESULTS.md"

mv "$tmp/RESULTS.md" RESULTS.md
echo "wrote bench/RESULTS.md and bench/results/" >&2
