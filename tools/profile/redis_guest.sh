# Sourced by the profile scripts (control.sh, idle_conns.sh): Debian's
# redis-server in a Cloister guest, published on a host port.
#
#   start_redis CLOISTER KERNEL.elf PORT LOG   # in the background ($server), waits for PONG
#   stop_redis PORT                            # SHUTDOWN NOSAVE, then waits for the guest

start_redis() {
    "$1" run --no-learn --kernel "$2" --publish "$3:6379" -- \
        /usr/bin/redis-server --save '' --protected-mode no > "$4" 2>&1 &
    server=$!
    for _ in $(seq 1 240); do
        redis-cli -p "$3" ping 2> /dev/null | grep -q PONG && return 0
        sleep 0.5
    done
    echo "redis did not answer on port $3 within 2 minutes (log: $4)" >&2
    return 1
}

stop_redis() {
    redis-cli -p "$1" shutdown nosave > /dev/null 2>&1 || true
    wait "${server:-}" 2> /dev/null || true
}
