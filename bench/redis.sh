#!/usr/bin/env bash
# redis.sh measures sesscache against Redis, the store it replaces, on the
# two things an operator asks of a persistent store, and writes
# results/redis.md, which run.sh puts into RESULTS.md:
#
#  1. Durable write throughput at 64 concurrent clients, 200-byte values,
#     under appendfsync always and everysec: Redis SET (redis-benchmark)
#     against sesscache Create (the engine's BenchmarkCreateDurable, 64
#     writer goroutines, run once at a fixed count).
#  2. Load time of 1M 200-byte values: Redis DEBUG LOADAOF of an AOF written
#     by BGREWRITEAOF, against `sessbench recover` timing engine.Open, each
#     in two forms: the log alone (a command AOF; sesscache's WAL) and a
#     compacted image plus a tail of 100k writes (an RDB-preamble AOF plus
#     100k SETs; a sesscache snapshot plus 100k Updates).
#
# Usage: bench/redis.sh
#
# Installs Redis with apt-get if redis-server is missing. Redis runs on
# 127.0.0.1 with a throwaway directory and is stopped at the end, whatever
# happens. Takes about 5 minutes at the defaults; run it on a quiet machine.
# Environment, with defaults:
#   DURATION=10       seconds each throughput measurement aims for
#   CLIENTS=64        Redis clients and sesscache writers
#   VALUE=200         bytes per value
#   LOAD_N=1000000    keys (sessions) loaded in part 2
#   TAIL=100000       writes after the compaction in part 2
#   REPEAT=3          loads timed per form (the median is reported)
#   ROUNDS=3          rounds of part 1 (medians and each round's ratio are reported)
#   REDIS_PORT=6399   port Redis listens on (127.0.0.1 only)
set -euo pipefail
cd "$(dirname "$0")"

DURATION=${DURATION:-10}
CLIENTS=${CLIENTS:-64}
VALUE=${VALUE:-200}
LOAD_N=${LOAD_N:-1000000}
TAIL=${TAIL:-100000}
REPEAT=${REPEAT:-3}
ROUNDS=${ROUNDS:-3}
REDIS_PORT=${REDIS_PORT:-6399}

if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null; then
  echo "== installing Redis with apt-get" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update
  $sudo apt-get install -y redis-server redis-tools
fi

tmp=$(mktemp -d /tmp/sesscache-redis.XXXXXX)
raw=$tmp/raw
mkdir -p "$raw"
redis_pid=""

stop_redis() {
  [ -n "$redis_pid" ] || return 0
  redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || kill "$redis_pid" 2>/dev/null || true
  wait "$redis_pid" 2>/dev/null || true
  redis_pid=""
}
trap 'stop_redis; rm -rf "$tmp"' EXIT

rcli() { redis-cli -p "$REDIS_PORT" "$@"; }

# start_redis NAME ARGS... starts a Redis of our own in a fresh directory.
start_redis() {
  local dir=$tmp/redis-$1
  shift
  mkdir -p "$dir"
  if rcli ping >/dev/null 2>&1; then
    echo "redis.sh: something already answers on port $REDIS_PORT; set REDIS_PORT" >&2
    exit 1
  fi
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$dir" --save '' \
    --logfile "$dir/redis.log" --enable-debug-command local "$@" &
  redis_pid=$!
  for _ in $(seq 100); do
    [ "$(rcli ping 2>/dev/null)" = PONG ] && return 0 # not LOADING
    sleep 0.1
  done
  echo "redis.sh: Redis did not start; see its log:" >&2
  cat "$dir/redis.log" >&2
  exit 1
}

# log_command records a command line for results/redis.md, once.
log_command() { grep -qxF -- "$*" "$raw/commands.txt" 2>/dev/null || echo "$*" >>"$raw/commands.txt"; }

# redis_set POLICY ROUND measures SET under appendfsync POLICY on a fresh
# Redis: a short probe finds the rate, then a run of about DURATION seconds
# is kept.
redis_set() {
  local policy=$1 round=$2 probe rps n
  start_redis "set-$policy-$round" --appendonly yes --appendfsync "$policy"
  probe=$(redis-benchmark -p "$REDIS_PORT" -c "$CLIENTS" -n 20000 -d "$VALUE" -r 1000000 -t set --csv |
    awk -F'"' '$2 == "SET" {print $4}')
  n=$(awk -v r="$probe" -v d="$DURATION" 'BEGIN {n = int(r * d); print (n < 20000 ? 20000 : n)}')
  local cmd=(redis-benchmark -p "$REDIS_PORT" -c "$CLIENTS" -n "$n" -d "$VALUE" -r 1000000 -t set --csv)
  log_command "redis-server --appendonly yes --appendfsync $policy --save '' ...; ${cmd[*]}"
  echo "== Redis SET, appendfsync $policy: $n requests" >&2
  "${cmd[@]}" | tee -a "$raw/redis-set-$policy.csv" >&2
  stop_redis
}

# sesscache_create POLICY runs BenchmarkCreateDurable at CLIENTS writers
# once, at a count found by a short probe to last about DURATION seconds.
sesscache_create() {
  local policy=$1 bench probe n
  bench="^BenchmarkCreateDurable\$/^sync=$policy\$/^writers=$CLIENTS\$"
  probe=$("$tmp/engine.test" -test.run '^$' -test.bench "$bench" -test.benchtime 20000x |
    awk '{for (i = 2; i <= NF; i++) if ($i == "creates/s") print $(i-1)}')
  n=$(awk -v r="$probe" -v d="$DURATION" 'BEGIN {n = int(r * d); print (n < 20000 ? 20000 : n)}')
  log_command "go test ./engine -run '^\$' -bench '$bench' -benchmem -benchtime ${n}x"
  echo "== sesscache Create, sync $policy: $n creates" >&2
  (cd ../engine && "$tmp/engine.test" -test.run '^$' -test.bench "$bench" -test.benchmem -test.benchtime "${n}x") |
    grep '^BenchmarkCreateDurable' | tee -a "$raw/sesscache-create.txt" >&2
}

# redis_load FORM times DEBUG LOADAOF REPEAT times, writing one line per
# load: the client's wall time and the load time Redis logged (base file
# plus incr file), in seconds.
redis_load() {
  local form=$1 log=$tmp/redis-load/redis.log lines t0 t1 logged keys
  log_command "redis-cli DEBUG LOADAOF   # $REPEAT times, $form"
  for i in $(seq "$REPEAT"); do
    lines=$(wc -l <"$log")
    t0=$(date +%s%N)
    rcli debug loadaof >/dev/null
    t1=$(date +%s%N)
    logged=$(tail -n +"$((lines + 1))" "$log" | awk '/DB loaded from (base|incr) file/ {s += $(NF-1); n++} END {if (n) print s; else print "-"}')
    keys=$(rcli dbsize)
    if [ "$keys" -ne "$LOAD_N" ]; then
      echo "redis.sh: DEBUG LOADAOF loaded $keys keys, want $LOAD_N" >&2
      exit 1
    fi
    echo "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", (b - a) / 1e9}') $logged" | tee -a "$raw/redis-load-$form.txt" >&2
  done
}

# rewrite_aof rewrites the AOF and waits until the rewrite is done.
rewrite_aof() {
  rcli bgrewriteaof >/dev/null
  for _ in $(seq 600); do
    if rcli info persistence | grep -q '^aof_rewrite_in_progress:0' &&
      rcli info persistence | grep -q '^aof_rewrite_scheduled:0'; then
      return 0
    fi
    sleep 0.1
  done
  echo "redis.sh: BGREWRITEAOF did not finish in a minute" >&2
  exit 1
}

# aof_bytes prints the size of the AOF: base (.aof, or .rdb with the RDB
# preamble), incr files and manifest.
aof_bytes() { du -cb "$tmp/redis-load/appendonlydir"/* | tail -1 | cut -f1; }

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date -u '+%Y-%m-%d %H:%M:%S UTC')

echo "== building" >&2
(cd .. && go test -c -o "$tmp/engine.test" ./engine && go build -o "$tmp/sessbench" ./cmd/sessbench)
go build -o "$tmp/redisreport" ./cmd/redisreport # before measuring, so a broken build costs nothing

# Part 1: durable write throughput, one system at a time, in rounds.
for round in $(seq "$ROUNDS"); do
  echo "== round $round of $ROUNDS" >&2
  for policy in always everysec; do
    redis_set "$policy" "$round"
    sesscache_create "$policy"
  done
done

# Part 2: load time. First the log alone: a command AOF of LOAD_N keys.
echo "== Redis load of $LOAD_N keys" >&2
start_redis load --appendonly yes --appendfsync everysec --aof-use-rdb-preamble no
log_command "redis-server --appendonly yes --appendfsync everysec --aof-use-rdb-preamble no --enable-debug-command local --save '' ..."
log_command "redis-cli DEBUG POPULATE $LOAD_N key $VALUE; redis-cli BGREWRITEAOF"
rcli debug populate "$LOAD_N" key "$VALUE" >/dev/null
rewrite_aof
echo "aof $(aof_bytes)" >"$raw/redis-files.txt"
redis_load aof
# Then a compacted image plus a tail: an RDB-preamble base and TAIL SETs of
# random existing keys in the incr file.
log_command "redis-cli CONFIG SET aof-use-rdb-preamble yes; redis-cli BGREWRITEAOF"
rcli config set aof-use-rdb-preamble yes >/dev/null
rewrite_aof
echo "rdb_base $(aof_bytes)" >>"$raw/redis-files.txt"
log_command "awk ... | redis-cli --pipe   # $TAIL SETs of random keys among the $LOAD_N, $VALUE-byte values"
awk -v n="$TAIL" -v keys="$LOAD_N" -v size="$VALUE" 'BEGIN {
  srand(1)
  v = sprintf("%" size "s", ""); gsub(/ /, "y", v)
  for (i = 0; i < n; i++) {
    k = "key:" int(rand() * keys)
    printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(k), k, size, v
  }
}' | rcli --pipe >&2
echo "rdb_base_tail $(aof_bytes)" >>"$raw/redis-files.txt"
redis_load rdb-tail
redis_version=$(rcli info server | awk -F: '/^redis_version/ {print $2}' | tr -d '\r')
stop_redis

echo "== sesscache recovery of $LOAD_N sessions" >&2
log_command "go run ./cmd/sessbench recover -sessions $LOAD_N -data $VALUE -tail $TAIL -repeat $REPEAT -json"
(cd .. && "$tmp/sessbench" recover -sessions "$LOAD_N" -data "$VALUE" -tail "$TAIL" -repeat "$REPEAT" -json) >"$raw/recover.json"

load_after=$(cut -d' ' -f1-3 /proc/loadavg)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain -- .. 2>/dev/null)" ]; then commit="$commit (work tree modified)"; fi
cpu_model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || true)
cat >"$raw/machine.txt" <<EOF
CPU: ${cpu_model:-$(uname -m)}
cores: $(nproc)
Go: $(go version)
Redis: ${redis_version}
OS: $(uname -sr)
sesscache commit: $commit
started: $started
finished: $(date -u '+%Y-%m-%d %H:%M:%S UTC')
load average (1, 5, 15 min) before: $load_before
load average (1, 5, 15 min) after: $load_after
settings: DURATION=$DURATION CLIENTS=$CLIENTS VALUE=$VALUE LOAD_N=$LOAD_N TAIL=$TAIL REPEAT=$REPEAT ROUNDS=$ROUNDS
EOF

mkdir -p results
"$tmp/redisreport" "$raw" >"$tmp/redis.md"
mv "$tmp/redis.md" results/redis.md
echo "wrote bench/results/redis.md" >&2
