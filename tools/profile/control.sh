#!/bin/bash
# Can a fixed guest workload run next to a Redis round tell a slow host
# from a slow guest? One Cloister Redis serves ROUNDS runs of
# `redis-benchmark -n 40000 -c 10 -t get`; before and after each run a
# fresh Cloister guest runs the bench's `syscall_bench` (a pure getpid
# loop, no I/O) as a control. Prints each run's rate and the controls'
# speed as ratios to their medians, and their correlation
# (docs/PERFORMANCE.md, "Where the remaining spread comes from").
#
#   tools/profile/control.sh KERNEL.elf ROUNDS PORT
#
# Run from the repository root, after a `cloister bench linux` run has
# built target/cloister-bench/inputs/syscall_bench.
set -euo pipefail
kernel=$(realpath "$1"); rounds=$2; port=$3
bench=target/cloister-bench/inputs/syscall_bench
[ -x "$bench" ] || { echo "no $bench: run 'cargo cloister bench linux --figures syscall --rounds 2' once" >&2; exit 1; }
cargo -q build --release -p tools
cloister=target/release/cloister
tmp=$(mktemp -d)
control() {
    "$cloister" run --no-learn --kernel "$kernel" -- "$bench" 2>&1 |
        sed -n 's/^getpid ns_per_op=\([0-9.]*\) .*/\1/p' | head -1
}
. "$(dirname "$0")/redis_guest.sh"
cleanup() {
    stop_redis "$port"
    rm -rf "$tmp"
}
trap cleanup EXIT
start_redis "$cloister" "$kernel" "$port" "$tmp/console.log"
for _ in $(seq 1 "$rounds"); do
    before=$(control)
    rate=$(redis-benchmark -p "$port" -q -n 40000 -c 10 -t get --csv | tail -1 | cut -d, -f2 | tr -d '"')
    after=$(control)
    echo "$before $rate $after"
done > "$tmp/runs.txt"
python3 - "$tmp/runs.txt" <<'PY'
import statistics as st, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
speed = [2 / (a + b) for a, _, b in rows]   # control speed: 1 / mean ns per getpid
rate = [r for _, r, _ in rows]
ms, mr = st.median(speed), st.median(rate)
for (a, r, b), s in zip(rows, speed):
    print(f"redis {r / mr:.2f}x median   control {s / ms:.2f}x median  (getpid {a:.0f} and {b:.0f} ns)")
print(f"correlation of control speed and Redis rate: {st.correlation(speed, rate):.2f}")
PY
