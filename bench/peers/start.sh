#!/usr/bin/env bash
# Starts one server on loopback in the foreground (exec, so its pid is this
# script's): `bench/peers/start.sh NAME PORT`.
#   hubbub             target/release/hubbub serve (WebSocket and API on PORT)
#   raw                hubbub bench raw-server (RAW_ARGS for --writev-batch ...)
#   node-ws            Node `ws` hand-written hub (API on PORT)
#   python-websockets  Python `websockets` hub (API on PORT+1)
#   socketio           Socket.IO 4 hub (bench with --protocol socketio)
#   sockudo            Sockudo (bench with --protocol pusher; app bench-app/bench-key/
#                      bench-secret, rate limits off)
# (Not HUBBUB_*: hubbub reads every HUBBUB_* variable as configuration.)
# Peers come from $BENCH_PEERS_DIR (default $HOME/.cache/hubbub-peers), see install.sh.
set -euo pipefail
NAME="${1:?usage: start.sh NAME PORT}"; PORT="${2:?usage: start.sh NAME PORT}"
HERE="$(cd "$(dirname "$0")" && pwd)"; ROOT="$(cd "$HERE/../.." && pwd)"
CACHE="${BENCH_PEERS_DIR:-$HOME/.cache/hubbub-peers}"
HUBBUB="${BENCH_HUBBUB_BIN:-$ROOT/target/release/hubbub}"
ulimit -n 1048576 2>/dev/null || ulimit -n 65536 2>/dev/null || true
case "$NAME" in
  hubbub) exec "$HUBBUB" serve --listen "127.0.0.1:$PORT" ${BENCH_SERVE_ARGS:-};;
  raw) exec "$HUBBUB" bench raw-server --listen "127.0.0.1:$PORT" ${RAW_ARGS:-};;
  node-ws) NODE_PATH="$CACHE/node/node_modules" exec node "$HERE/node-ws.js" "$PORT";;
  socketio) NODE_PATH="$CACHE/node/node_modules" exec node "$HERE/socketio.js" "$PORT";;
  python-websockets) exec "$CACHE/python/bin/python" "$HERE/python_websockets.py" "$PORT";;
  sockudo)
    export PORT HOST=127.0.0.1 SOCKUDO_DEFAULT_APP_ID=bench-app SOCKUDO_DEFAULT_APP_KEY=bench-key \
      SOCKUDO_DEFAULT_APP_SECRET=bench-secret SOCKUDO_DEFAULT_APP_ENABLED=true \
      RATE_LIMITER_ENABLED=false SOCKUDO_DEFAULT_APP_MAX_CONNECTIONS=1000000 \
      SOCKUDO_DEFAULT_APP_MAX_BACKEND_EVENTS_PER_SECOND=1000000000
    exec "${SOCKUDO_BIN:-$CACHE/sockudo/bin/sockudo}";;
  *) echo "unknown server $NAME" >&2; exit 2;;
esac
