#!/usr/bin/env bash
# Idle connection cost, end to end: build release, start a fresh hub, open N
# idle connections subscribed to one channel (hubbub bench connections), read
# the hub's RSS per connection, stop the hub. Repeats RUNS times, a new hub
# each time, and prints the median. See docs/performance.md.
#
# Environment (all optional):
#   N=19500        connections (the hub holds one descriptor per connection:
#                  with a 20,000 descriptor limit, 19,500 is about the most)
#   WORKERS=3      bench worker processes, one source address each
#   RUNS=3         runs, each against a fresh hub
#   PORT=8000      hub port on 127.0.0.1
#   HOLD=5         seconds to hold the connections before sampling
#   OUT=reports/idle-rss   where the JSON reports go
#   SERVER_ENV=""  extra environment for the hub only, e.g. "MALLOC_ARENA_MAX=2"
#   BENCH_ARGS=""  extra bench flags, e.g. "--max-in-flight 32" or "--rate 5000"
#   HUB=path       the hubbub binary to measure (default target/release/hubbub),
#                  e.g. one built from another commit
#   NO_BUILD=1     skip the build
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-19500}
WORKERS=${WORKERS:-3}
RUNS=${RUNS:-3}
PORT=${PORT:-8000}
HOLD=${HOLD:-5}
OUT=${OUT:-reports/idle-rss}
SERVER_ENV=${SERVER_ENV:-}
BENCH_ARGS=${BENCH_ARGS:-}

if [ -z "${NO_BUILD:-}" ]; then
  cargo build --release -p hubbub -p hubbub-bench --bins --examples
fi

# The hub: `hubbub serve`, or the bare example when the binary has no serve.
HUB=${HUB:-target/release/hubbub}
if "$HUB" serve --help >/dev/null 2>&1; then
  SERVER=("$HUB" serve --listen "127.0.0.1:$PORT")
else
  SERVER=(target/release/examples/hub --listen "127.0.0.1:$PORT")
fi
# The bench: `hubbub bench`, or the standalone binary until it is mounted.
if target/release/hubbub bench connections --help >/dev/null 2>&1; then
  BENCH=(target/release/hubbub bench connections)
else
  BENCH=(target/release/hubbub-bench bench connections)
fi

limit=$(ulimit -n)
if [ "$limit" != unlimited ] && [ "$limit" -lt $((N + 300)) ]; then
  echo "warning: ulimit -n is $limit; the hub needs about $((N + 300)) descriptors for N=$N" >&2
fi

mkdir -p "$OUT"
server_pid=
stop_server() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid"
    wait "$server_pid" 2>/dev/null || true
  fi
  server_pid=
}
trap stop_server EXIT

wait_listening() {
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "hub did not start listening on $PORT" >&2
  return 1
}

json_field() { # json_field FILE KEY: first numeric value of "KEY" in FILE
  sed -n "s/.*\"$2\": *\([0-9.]*\).*/\1/p" "$1" | head -n 1
}

median() { sort -g | awk '{v[NR]=$1} END {if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }

echo "hub:   ${SERVER[*]} ${SERVER_ENV:+(env $SERVER_ENV)}"
echo "bench: ${BENCH[*]} -n $N --workers $WORKERS --hold $HOLD $BENCH_ARGS"
per_conn=()
rates=()
for run in $(seq 1 "$RUNS"); do
  # shellcheck disable=SC2086
  env $SERVER_ENV "${SERVER[@]}" --set server.max_connections=30000 \
    >"$OUT/server-$run.log" 2>&1 &
  server_pid=$!
  wait_listening
  report="$OUT/run-$run.json"
  status=0
  # shellcheck disable=SC2086
  "${BENCH[@]}" --url "ws://127.0.0.1:$PORT/ws" -n "$N" --workers "$WORKERS" \
    --channel idle --hold "$HOLD" --server-pid "$server_pid" --out "$report" $BENCH_ARGS || status=$?
  stop_server
  if [ "$status" -ne 0 ]; then
    echo "run $run: bench exited with $status" >&2
    exit "$status"
  fi
  per_conn+=("$(json_field "$report" rss_per_connection_bytes)")
  rates+=("$(json_field "$report" handshakes_per_second)")
  echo "run $run: ${per_conn[-1]} B/connection, ${rates[-1]} handshakes/s"
done

pc_sorted=$(printf '%s\n' "${per_conn[@]}" | sort -g | tr '\n' ' ')
rate_sorted=$(printf '%s\n' "${rates[@]}" | sort -g | tr '\n' ' ')
echo
echo "idle connection cost ($N connections, $RUNS runs, $(nproc) CPUs, kernel $(uname -r)):"
echo "  RSS per connection: median $(printf '%s\n' "${per_conn[@]}" | median) B  (runs: $pc_sorted)"
echo "  handshakes/s:       median $(printf '%s\n' "${rates[@]}" | median)  (runs: $rate_sorted)"
echo "  reports: $OUT/run-*.json"
