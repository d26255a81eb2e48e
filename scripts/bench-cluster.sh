#!/usr/bin/env bash
# Several hubbub nodes on one Redis, measured with `hubbub bench` against
# one node alone in the same run (docs/cluster.md, "Measured"). Starts its
# own redis-server on REDIS_PORT (the machine's Redis is not touched) and
# writes reports to bench/results/cluster-YYYY-MM-DD/.
#
#   scripts/bench-cluster.sh [SCENARIO...]
#     fanout:      1 node alone, then 2 nodes on Redis: 1,000 subscribers
#                  split over the nodes, 50 publishes/s through both; CPU of
#                  the nodes and Redis summed
#     saturation:  1 node alone, then 2 nodes on Redis, 1,000 subscribers:
#                  a rate sweep (RATES publishes/s), p99 and CPU per rate
#     connections: 4 nodes on Redis holding N4 idle connections (default
#                  76,000), RSS per connection
#     sockudo:     2 Sockudo nodes with ADAPTER_DRIVER=redis, the fanout and
#                  saturation runs above (needs bench/peers/install.sh sockudo)
#     nats:        the fanout run on 2 nodes on NATS with JetStream, then on
#                  2 nodes on NATS with a Redis store (nats_store = "redis");
#                  CPU of the nodes, NATS and Redis summed (NATS at NATS_URL,
#                  default nats://127.0.0.1:4222, its pid found by pgrep)
#   env: DURATION (s, default 10) REPS (default 3) WARMUP (default 3)
#        RATES (default 100,200,400,700,1000)
#        REDIS_PORT (default 6390) N4 (default 76000)
#
# Needs `cargo build --release -p hubbub -p hubbub-bench` first. Ports 9200+.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
HUBBUB="${BENCH_HUBBUB_BIN:-$ROOT/target/release/hubbub}"
CACHE="${BENCH_PEERS_DIR:-$HOME/.cache/hubbub-peers}"
DURATION="${DURATION:-10}"; REPS="${REPS:-3}"; WARMUP="${WARMUP:-3}"
RATES="${RATES:-100,200,400,700,1000}"
REDIS_PORT="${REDIS_PORT:-6390}"; N4="${N4:-76000}"
OUT="bench/results/cluster-$(date -u +%Y-%m-%d)"; mkdir -p "$OUT"
[ -x "$HUBBUB" ] || { echo "build first: cargo build --release -p hubbub -p hubbub-bench" >&2; exit 2; }
ulimit -n 1048576 2>/dev/null || ulimit -n 65536 2>/dev/null || true
scenarios=("$@"); [ ${#scenarios[@]} -eq 0 ] && scenarios=(fanout saturation connections sockudo)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; }
trap cleanup EXIT

wait_port() { for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.05; done; return 1; }

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no >"$OUT/redis.log" 2>&1 &
REDIS=$!; PIDS+=("$REDIS"); wait_port "$REDIS_PORT"

# One key prefix for the whole run: nodes with different prefixes would be
# different clusters.
PREFIX="bench$RANDOM"

NATS_URL="${NATS_URL:-nats://127.0.0.1:4222}"

# node PORT [redis|nats|relay]: a hub on PORT, on the memory engine, on our
# Redis, on NATS with JetStream, or on NATS with our Redis as the store.
node() {
  local args=(serve --listen "127.0.0.1:$1")
  local redis=(--set "engine.redis_url=redis://127.0.0.1:$REDIS_PORT" --set "engine.prefix=$PREFIX")
  case "${2:-}" in
    redis) args+=(--set engine.kind=redis "${redis[@]}");;
    nats) args+=(--set engine.kind=nats --set "engine.nats_url=$NATS_URL" --set "engine.prefix=$PREFIX");;
    relay) args+=(--set engine.kind=nats --set "engine.nats_url=$NATS_URL" --set engine.nats_store=redis "${redis[@]}");;
  esac
  "$HUBBUB" "${args[@]}" >"$OUT/node-$1.log" 2>&1 &
  local pid=$!; PIDS+=("$pid"); wait_port "$1"; echo "$pid"
}
stop() { for p in "$@"; do kill -INT "$p" 2>/dev/null; done; sleep 1; for p in "$@"; do kill "$p" 2>/dev/null; done; }

bench() { # NAME ARGS...
  local name=$1; shift
  echo "$HUBBUB bench $*" > "$OUT/$name.cmd"
  echo "== $name: $*" >&2
  "$HUBBUB" bench "$@" -d "$DURATION" --repetitions "$REPS" --warmup "$WARMUP" --out "$OUT/$name.json" >"$OUT/$name.txt" 2>"$OUT/$name.err"
  cat "$OUT/$name.txt" >&2
}

for sc in "${scenarios[@]}"; do
  case "$sc" in
    fanout)
      one=$(node 9201)
      bench one-node-fanout fanout -s 1000 -r 50 -p 100 --url ws://127.0.0.1:9201/ws --server-pid "$one"
      stop "$one"
      a=$(node 9211 redis); b=$(node 9212 redis)
      bench two-nodes-fanout fanout -s 1000 -r 50 -p 100 --url ws://127.0.0.1:9211/ws,ws://127.0.0.1:9212/ws --server-pid "$a,$b,$REDIS"
      stop "$a" "$b";;
    saturation)
      one=$(node 9221)
      bench one-node-saturation sweep -s 1000 -p 100 --rates "$RATES" --keep-going --drain 2 --url ws://127.0.0.1:9221/ws --server-pid "$one"
      stop "$one"
      a=$(node 9231 redis); b=$(node 9232 redis)
      bench two-nodes-saturation sweep -s 1000 -p 100 --rates "$RATES" --keep-going --drain 2 --url ws://127.0.0.1:9231/ws,ws://127.0.0.1:9232/ws --server-pid "$a,$b,$REDIS"
      stop "$a" "$b";;
    connections)
      pids=(); urls=()
      for i in 1 2 3 4; do pids+=("$(node $((9240 + i)) redis)"); urls+=("ws://127.0.0.1:$((9240 + i))/ws"); done
      src=$(seq -s, -f "127.0.1.%g" 1 16)
      echo "$HUBBUB bench connections -n $N4 --url $(IFS=,; echo "${urls[*]}") --workers 16 --source-addrs $src --server-pid $(IFS=,; echo "${pids[*]}")" > "$OUT/four-nodes-connections.cmd"
      "$HUBBUB" bench connections -n "$N4" --url "$(IFS=,; echo "${urls[*]}")" --workers 16 --source-addrs "$src" \
        --server-pid "$(IFS=,; echo "${pids[*]}")" --hold 5 --out "$OUT/four-nodes-connections.json" \
        >"$OUT/four-nodes-connections.txt" 2>"$OUT/four-nodes-connections.err"
      cat "$OUT/four-nodes-connections.txt" >&2
      stop "${pids[@]}";;
    sockudo)
      # Sockudo's Redis adapter needs its `redis` feature: bench/peers/install.sh sockudo-redis
      [ -x "$CACHE/sockudo-redis/bin/sockudo" ] || { echo "sockudo with redis not installed: bench/peers/install.sh sockudo-redis" >&2; continue; }
      spids=()
      for port in 9251 9252; do
        ADAPTER_DRIVER=redis CACHE_DRIVER=redis REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0" METRICS_ENABLED=false \
          SOCKUDO_BIN="$CACHE/sockudo-redis/bin/sockudo" bench/peers/start.sh sockudo "$port" >"$OUT/sockudo-$port.log" 2>&1 &
        spids+=("$!"); PIDS+=("$!"); wait_port "$port"
      done
      urls="ws://127.0.0.1:9251/app/bench-key?protocol=7&client=hubbub-bench&version=1,ws://127.0.0.1:9252/app/bench-key?protocol=7&client=hubbub-bench&version=1"
      pusher=(--protocol pusher --api-url http://127.0.0.1:9251 --api-url http://127.0.0.1:9252)
      bench sockudo-two-nodes-fanout fanout -s 1000 -r 50 -p 100 --url "$urls" "${pusher[@]}" --server-pid "${spids[0]},${spids[1]},$REDIS"
      bench sockudo-two-nodes-saturation sweep -s 1000 -p 100 --rates "$RATES" --keep-going --drain 2 --url "$urls" "${pusher[@]}" --server-pid "${spids[0]},${spids[1]},$REDIS"
      stop "${spids[@]}";;
    nats)
      natspid=$(pgrep -o nats-server || true)
      extra=${natspid:+,$natspid}
      a=$(node 9261 nats); b=$(node 9262 nats)
      bench nats-two-nodes-fanout fanout -s 1000 -r 50 -p 100 --url ws://127.0.0.1:9261/ws,ws://127.0.0.1:9262/ws --server-pid "$a,$b$extra"
      stop "$a" "$b"
      a=$(node 9271 relay); b=$(node 9272 relay)
      bench relay-two-nodes-fanout fanout -s 1000 -r 50 -p 100 --url ws://127.0.0.1:9271/ws,ws://127.0.0.1:9272/ws --server-pid "$a,$b,$REDIS$extra"
      stop "$a" "$b";;
    *) echo "unknown scenario $sc" >&2;;
  esac
done
echo "reports in $OUT" >&2
