#!/bin/bash
# Redis in Cloister (user networking, port PORT on the host) with IDLE
# client connections held open and idle (each sent one PING), then
# `redis-benchmark -n 20000 -c 10 -t set,get`: what idle connections cost
# the busy ones (docs/PERFORMANCE.md, "Idle connections on the external
# interface"). Prints "SET: N" and "GET: N" in requests per second.
#
#   tools/profile/idle_conns.sh KERNEL.elf IDLE PORT
#
# Run from the repository root.
set -euo pipefail
kernel=$(realpath "$1"); idle=$2; port=$3
tmp=$(mktemp -d)
cargo -q build --release -p tools
. "$(dirname "$0")/redis_guest.sh"
cleanup() {
    [ -n "${holder:-}" ] && kill "$holder" 2>/dev/null || true
    stop_redis "$port"
    rm -rf "$tmp"
}
trap cleanup EXIT
start_redis target/release/cloister "$kernel" "$port" "$tmp/console.log"
# Holds IDLE connections open until killed; touches $tmp/ready once all are up.
python3 - "$port" "$idle" "$tmp/ready" <<'PY' &
import socket, sys, time
port, n, ready = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
held = []
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"PING\r\n")
    s.recv(64)
    held.append(s)
open(ready, "w").close()
time.sleep(3600)
PY
holder=$!
for _ in $(seq 1 600); do [ -f "$tmp/ready" ] && break; sleep 0.5; done
[ -f "$tmp/ready" ] || { echo "the idle connections did not come up" >&2; exit 1; }
sleep 2
redis-benchmark -p "$port" -n 20000 -c 10 -t set,get -q 2>&1 | tr '\r' '\n' \
    | grep -E '^(SET|GET): [0-9.]+ requests per second' | sed 's/ requests per second.*//'
