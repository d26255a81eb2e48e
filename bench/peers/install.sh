#!/usr/bin/env bash
# Installs the peer servers the bench compares hubbub with, into a cache
# directory OUTSIDE the repository (none of their code goes into the repo):
#   $BENCH_PEERS_DIR (default $HOME/.cache/hubbub-peers)
#     node/        npm packages ws and socket.io, as pinned by node/package-lock.json
#     python/      a virtualenv with websockets
#     sockudo/     `cargo install sockudo` at $SOCKUDO_VERSION (default 5.2.0, the
#                  version docs/performance.md measured; slow: ~10+ minutes on
#                  2 cores the first time, well under a second once installed)
# Usage: bench/peers/install.sh [node] [python] [sockudo] [sockudo-redis]
#   (default: node python sockudo)
set -euo pipefail
CACHE="${BENCH_PEERS_DIR:-$HOME/.cache/hubbub-peers}"
mkdir -p "$CACHE"
want=("$@"); [ ${#want[@]} -eq 0 ] && want=(node python sockudo)
for w in "${want[@]}"; do
  case "$w" in
    node)
      # Pinned: package.json and package-lock.json beside this script.
      here="$(cd "$(dirname "$0")" && pwd)/node"
      mkdir -p "$CACHE/node"
      if ! cmp -s "$here/package-lock.json" "$CACHE/node/package-lock.json" ||
         [ ! -d "$CACHE/node/node_modules/socket.io" ]; then
        cp "$here/package.json" "$here/package-lock.json" "$CACHE/node/"
        (cd "$CACHE/node" && npm ci --no-audit --no-fund >/dev/null)
      fi
      echo "node peers: $(cd "$CACHE/node" && node -e 'console.log("ws", require("ws/package.json").version, "socket.io", require("socket.io/package.json").version)')";;
    python)
      [ -x "$CACHE/python/bin/python" ] || python3 -m venv "$CACHE/python"
      "$CACHE/python/bin/pip" install -q 'websockets>=13'
      echo "python peer: websockets $("$CACHE/python/bin/python" -c 'import websockets; print(websockets.__version__)')";;
    sockudo)
      command -v protoc >/dev/null || { echo "sockudo needs protoc: apt-get install -y protobuf-compiler" >&2; exit 1; }
      cargo install sockudo --version "${SOCKUDO_VERSION:-5.2.0}" --locked --root "$CACHE/sockudo"
      echo "sockudo: $("$CACHE/sockudo/bin/sockudo" --version 2>/dev/null || echo installed)";;
    sockudo-redis)
      # With its Redis adapter and cache, for scripts/bench-cluster.sh sockudo.
      command -v protoc >/dev/null || { echo "sockudo needs protoc: apt-get install -y protobuf-compiler" >&2; exit 1; }
      cargo install sockudo --version "${SOCKUDO_VERSION:-5.2.0}" --locked --features redis --root "$CACHE/sockudo-redis"
      echo "sockudo-redis: $("$CACHE/sockudo-redis/bin/sockudo" --version 2>/dev/null || echo installed)";;
    *) echo "unknown peer $w" >&2; exit 2;;
  esac
done
