#!/usr/bin/env bash
# RPC round trip and saturation (docs/rpc.md, "Measured"): `hubbub bench
# rpc` against a handler in the hub's process (the rpc_query_progress
# example's `query.echo`), then against `hubbub serve` whose RPC proxy
# sends `bench.*` to an HTTP backend the bench serves itself
# (--backend-listen, answering every POST with its data at once). Writes
# reports to bench/results/rpc-YYYY-MM-DD/, a .cmd file beside each.
#
#   scripts/bench-rpc.sh [SCENARIO...]
#     inproc:  query.echo in process: -c 1 --in-flight 1 (the round trip
#              alone), -c 100 --in-flight 1 (round trip under load),
#              -c 100 --in-flight 8 (saturation), then --rate RATES (open
#              loop: round trip at a given load)
#     proxy:   bench.echo through [[rpc.proxy]] to the bench's backend,
#              the same runs (RATES_PROXY)
#   env: DURATION (s, default 10) REPS (default 3) WARMUP (default 3)
#        RATES (calls/s, default 10000,30000,60000; "" for none)
#        RATES_PROXY (default 5000,10000,20000) CONNS (default 100)
#        PORT (default 9400: PORT example, PORT+1 hub, PORT+2 backend)
#        QUIET_WAIT (s, default 0): before each run, wait this long at most
#        for the machine to be under QUIET_MAX% busy (default 10)
#
# Builds nothing. Needs, first:
#   cargo build --release -p hubbub --bins --examples
#   cargo build --release -p hubbub-bench --bins
# (`hubbub bench` runs target/release/hubbub-bench beside the hubbub binary.)
#
# Both hubs get the per-connection message rate limit raised (default 100
# messages/s per connection would answer most calls `rate_limited`).
# Everything runs on this machine: the hub, the bench and its backend share
# its CPUs; each report's `host%` column says how busy the machine was, and
# a .load file beside each report what else ran.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
HUBBUB="${BENCH_HUBBUB_BIN:-$ROOT/target/release/hubbub}"
EXAMPLE="${BENCH_EXAMPLE_BIN:-$ROOT/target/release/examples/rpc_query_progress}"
DURATION="${DURATION:-10}"; REPS="${REPS:-3}"; WARMUP="${WARMUP:-3}"
RATES="${RATES-10000,30000,60000}"; RATES_PROXY="${RATES_PROXY-5000,10000,20000}"
CONNS="${CONNS:-100}"; PORT="${PORT:-9400}"
OUT="bench/results/rpc-$(date -u +%Y-%m-%d)"; mkdir -p "$OUT"
for bin in "$HUBBUB" "$(dirname "$HUBBUB")/hubbub-bench" "$EXAMPLE"; do
  [ -x "$bin" ] || { echo "missing $bin; build first: cargo build --release -p hubbub --bins --examples && cargo build --release -p hubbub-bench --bins" >&2; exit 2; }
done
ulimit -n 1048576 2>/dev/null || ulimit -n 65536 2>/dev/null || true
scenarios=("$@"); [ ${#scenarios[@]} -eq 0 ] && scenarios=(inproc proxy)
PIDS=(); SERVER_CMD=""
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; }
trap cleanup EXIT

wait_port() { for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.05; done; return 1; }
stop() { for p in "$@"; do kill -INT "$p" 2>/dev/null; done; sleep 1; for p in "$@"; do kill "$p" 2>/dev/null; done; }

# As for a bench: no per-connection message limit in the way.
export HUBBUB_CONNECTION__RATE_LIMIT_PER_SECOND=1000000
export HUBBUB_CONNECTION__RATE_LIMIT_BURST=1000000

# Busy share of all CPUs over 2 s, in percent, from /proc/stat.
busy_pct() {
  local a b
  read -r _ a1 a2 a3 a4 a5 a6 a7 a8 _ < /proc/stat; sleep 2
  read -r _ b1 b2 b3 b4 b5 b6 b7 b8 _ < /proc/stat
  a=$((a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8)); b=$((b1 + b2 + b3 + b4 + b5 + b6 + b7 + b8))
  echo $(( 100 - 100 * ((b4 + b5) - (a4 + a5)) / (b - a > 0 ? b - a : 1) ))
}
# With QUIET_WAIT=S, wait up to S seconds for the machine to be under
# QUIET_MAX% busy (default 10) before a run: on a shared machine, others'
# builds would be measured too.
quiet() {
  local waited=0 pct
  while [ "$waited" -lt "${QUIET_WAIT:-0}" ]; do
    pct=$(busy_pct); [ "$pct" -le "${QUIET_MAX:-10}" ] && return 0
    [ "$waited" -eq 0 ] && echo "waiting for a quiet machine ($pct% busy)" >&2
    sleep 8; waited=$((waited + 10))
  done
}

bench() { # NAME ARGS...
  local name=$1; shift
  quiet
  { echo "# server: $SERVER_CMD"
    echo "$HUBBUB bench rpc $* -d $DURATION --repetitions $REPS --warmup $WARMUP --out $OUT/$name.json"; } > "$OUT/$name.cmd"
  # What else runs, sampled over one second just before.
  top -b -n 2 -d 1 -o %CPU 2>/dev/null | awk '/^top -/{n++} n==2' | sed -n '1,3p;7,13p' > "$OUT/$name.load"
  echo "== $name: $*" >&2
  "$HUBBUB" bench rpc "$@" -d "$DURATION" --repetitions "$REPS" --warmup "$WARMUP" --out "$OUT/$name.json" >"$OUT/$name.txt" 2>"$OUT/$name.err"
  cat "$OUT/$name.txt" >&2
}

# runs PREFIX METHOD RATES ARGS...: round trip, saturation, rate sweep.
runs() {
  local prefix=$1 method=$2 rates=$3; shift 3
  bench "$prefix-c1-inflight1" --method "$method" -c 1 --in-flight 1 "$@"
  bench "$prefix-c$CONNS-inflight1" --method "$method" -c "$CONNS" --in-flight 1 "$@"
  bench "$prefix-c$CONNS-inflight8" --method "$method" -c "$CONNS" --in-flight 8 "$@"
  for r in ${rates//,/ }; do
    bench "$prefix-c$CONNS-rate$r" --method "$method" -c "$CONNS" --rate "$r" "$@"
  done
}

for sc in "${scenarios[@]}"; do
  case "$sc" in
    inproc)
      # 2nd argument: ms per stage of query.run (not used by query.echo).
      SERVER_CMD="HUBBUB_CONNECTION__RATE_LIMIT_PER_SECOND=1000000 HUBBUB_CONNECTION__RATE_LIMIT_BURST=1000000 $EXAMPLE 127.0.0.1:$PORT 0"
      "$EXAMPLE" "127.0.0.1:$PORT" 0 >"$OUT/example.log" 2>&1 &
      ex=$!; PIDS+=("$ex"); wait_port "$PORT" || { echo "example did not start" >&2; exit 1; }
      runs inproc query.echo "$RATES" --url "ws://127.0.0.1:$PORT/ws" --server-pid "$ex"
      stop "$ex";;
    proxy)
      hub_port=$((PORT + 1)); backend=127.0.0.1:$((PORT + 2))
      conf="$(mktemp -t hubbub-bench-rpc.XXXXXX.toml)"
      cat >"$conf" <<EOF
[server]
listen = "127.0.0.1:$hub_port"

[rpc]
timeout_ms = 10000

[[rpc.proxy]]
prefix = "bench."
url = "http://$backend/rpc"
timeout_ms = 5000
EOF
      cp "$conf" "$OUT/proxy-hub.toml"
      SERVER_CMD="HUBBUB_CONNECTION__RATE_LIMIT_PER_SECOND=1000000 HUBBUB_CONNECTION__RATE_LIMIT_BURST=1000000 $HUBBUB serve --config $OUT/proxy-hub.toml"
      "$HUBBUB" serve --config "$conf" >"$OUT/proxy-hub.log" 2>&1 &
      hub=$!; PIDS+=("$hub"); wait_port "$hub_port" || { echo "hubbub serve did not start" >&2; exit 1; }
      runs proxy bench.echo "$RATES_PROXY" --url "ws://127.0.0.1:$hub_port/ws" --server-pid "$hub" --backend-listen "$backend"
      stop "$hub"; rm -f "$conf";;
    *) echo "unknown scenario $sc" >&2;;
  esac
done
echo "reports in $OUT" >&2
