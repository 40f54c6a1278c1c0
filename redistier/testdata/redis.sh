#!/usr/bin/env bash
# redis.sh starts the Redis servers that redistier's tests, benchmarks and
# load tool run against, all on 127.0.0.1, in a temporary directory: one
# standalone server and a Cluster of 3 masters with 1 replica each. It
# installs nothing: redis-server and redis-cli must be on PATH (Debian:
# apt-get install -y redis-server).
#
#   redis.sh start [-p PID]   start both; print the addresses as shell
#                             assignments (eval them):
#                               REDISTIER_STANDALONE=127.0.0.1:P
#                               REDISTIER_CLUSTER=127.0.0.1:P1,...,127.0.0.1:P6
#                               REDISTIER_DIR=/tmp/redistier.XXXX
#                             With -p, the servers are also stopped when
#                             process PID ends (the test binary's TestMain
#                             passes its own PID, so nothing outlives a
#                             test run that panics or times out).
#   redis.sh stop DIR         stop every server started in DIR, remove DIR
#   redis.sh run CMD [ARG...] start, export the variables, run CMD, stop
#                             (trap EXIT: stopped however CMD ends)
#   redis.sh kill DIR PORT    SIGKILL the server on PORT (a crash)
#   redis.sh restart DIR PORT start the server on PORT again with the same
#                             arguments and data directory (append-only
#                             file reloaded), and wait until it answers
#
# Servers run with --save "" --appendonly yes (appendfsync everysec), and
# the cluster with cluster-node-timeout 5000 ms, so that a failover takes
# several seconds and a loaded 2-core machine does not trigger one. Ports are chosen free at random in 10000-21999 unless
# REDISTIER_PORT_BASE is set (7 consecutive ports from it; the cluster also
# uses each port + 10000 for its bus).
set -euo pipefail

die() { echo "redis.sh: $*" >&2; exit 1; }

need_tools() {
  command -v redis-server >/dev/null || die "redis-server is not on PATH (apt-get install -y redis-server)"
  command -v redis-cli >/dev/null || die "redis-cli is not on PATH (apt-get install -y redis-server)"
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

pick_base() {
  if [ -n "${REDISTIER_PORT_BASE:-}" ]; then
    echo "$REDISTIER_PORT_BASE"
    return
  fi
  local try base ok p
  for try in $(seq 1 50); do
    base=$((10000 + RANDOM % 12000))
    ok=1
    for p in $(seq "$base" $((base + 6))); do
      if port_busy "$p" || port_busy $((p + 10000)); then ok=0; break; fi
    done
    if [ "$ok" = 1 ]; then echo "$base"; return; fi
  done
  die "found no 7 free ports"
}

# start_node DIR PORT [extra args...]: start one server, record its
# arguments and PID, wait until it answers PING.
start_node() {
  local dir=$1 port=$2
  shift 2
  if port_busy "$port"; then die "port $port is in use"; fi
  local ndir=$dir/$port
  mkdir -p "$ndir"
  : >"$ndir/args"
  if [ $# -gt 0 ]; then printf '%s\n' "$@" >"$ndir/args"; fi
  launch "$dir" "$port"
}

launch() {
  local dir=$1 port=$2 ndir=$1/$2
  local -a extra=()
  mapfile -t extra <"$ndir/args"
  redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly yes \
    --dir "$ndir" --logfile "$ndir/log" --daemonize no "${extra[@]}" \
    </dev/null >/dev/null 2>&1 &
  echo $! >"$ndir/pid"
  wait_ping "$port" || { cat "$ndir/log" >&2 2>/dev/null; die "redis-server on port $port did not start"; }
}

wait_ping() {
  local i
  for i in $(seq 1 200); do
    if [ "$(redis-cli -p "$1" ping 2>/dev/null)" = PONG ]; then return 0; fi
    sleep 0.05
  done
  return 1
}

cluster_ok() {
  local p
  for p in "$@"; do
    local info
    info=$(redis-cli -p "$p" cluster info 2>/dev/null) || return 1
    grep -q '^cluster_state:ok' <<<"$info" || return 1
    grep -q '^cluster_slots_ok:16384' <<<"$info" || return 1
    grep -q "^cluster_known_nodes:$#" <<<"$info" || return 1
  done
}

replicas_synced() {
  local p
  for p in "$@"; do
    if redis-cli -p "$p" info replication 2>/dev/null | grep -q '^role:slave'; then
      redis-cli -p "$p" info replication | grep -q '^master_link_status:up' || return 1
    fi
  done
}

stop_dir() {
  local dir=$1 pidf pid
  [ -d "$dir" ] || return 0
  for pidf in "$dir"/*/pid; do
    [ -f "$pidf" ] || continue
    pid=$(cat "$pidf")
    kill -9 "$pid" 2>/dev/null || true
  done
  if [ -f "$dir/watchdog.pid" ]; then
    kill "$(cat "$dir/watchdog.pid")" 2>/dev/null || true
  fi
  case "$dir" in
    /tmp/redistier.*) rm -rf "$dir" ;;
  esac
}

start_all() {
  local parent=${1:-}
  need_tools
  local dir base sp i
  dir=$(mktemp -d /tmp/redistier.XXXXXX)
  base=$(pick_base)
  sp=$base
  # Whatever fails from here (die exits) stops what was started.
  trap 'stop_dir "$dir"' EXIT
  start_node "$dir" "$sp"
  local -a cports=() addrs=()
  for i in 1 2 3 4 5 6; do
    local p=$((base + i))
    start_node "$dir" "$p" --cluster-enabled yes --cluster-config-file "nodes-$p.conf" \
      --cluster-node-timeout 5000
    cports+=("$p")
    addrs+=("127.0.0.1:$p")
  done
  redis-cli --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes >"$dir/create.log" 2>&1 ||
    die "redis-cli --cluster create failed: $(tail -5 "$dir/create.log")"
  for i in $(seq 1 600); do
    if cluster_ok "${cports[@]}" && replicas_synced "${cports[@]}"; then break; fi
    [ "$i" = 600 ] && die "cluster did not reach cluster_state:ok"
    sleep 0.1
  done
  if [ -n "$parent" ]; then
    # Stop everything when the parent process ends, however it ends.
    (
      trap '' HUP
      while kill -0 "$parent" 2>/dev/null && [ -d "$dir" ]; do sleep 1; done
      stop_dir "$dir"
    ) </dev/null >/dev/null 2>&1 &
    echo $! >"$dir/watchdog.pid"
  fi
  trap - EXIT
  local joined
  joined=$(IFS=,; echo "${addrs[*]}")
  echo "REDISTIER_STANDALONE=127.0.0.1:$sp"
  echo "REDISTIER_CLUSTER=$joined"
  echo "REDISTIER_DIR=$dir"
}

cmd=${1:-}
[ -n "$cmd" ] || die "usage: redis.sh start [-p PID] | stop DIR | run CMD... | kill DIR PORT | restart DIR PORT"
shift
case "$cmd" in
  start)
    parent=""
    if [ "${1:-}" = -p ]; then parent=${2:?PID}; fi
    start_all "$parent"
    ;;
  stop)
    stop_dir "${1:?DIR}"
    ;;
  run)
    [ $# -gt 0 ] || die "run needs a command"
    vars=$(start_all "")
    eval "$vars"
    export REDISTIER_STANDALONE REDISTIER_CLUSTER REDISTIER_DIR
    trap 'stop_dir "$REDISTIER_DIR"' EXIT
    "$@"
    ;;
  kill)
    dir=${1:?DIR}; port=${2:?PORT}
    kill -9 "$(cat "$dir/$port/pid")" 2>/dev/null || true
    ;;
  restart)
    dir=${1:?DIR}; port=${2:?PORT}
    need_tools
    launch "$dir" "$port"
    ;;
  *)
    die "unknown command $cmd"
    ;;
esac
