#!/bin/bash
# Boots KERNEL with Nginx or Redis under QEMU with the tb_count plugin and
# runs a fixed workload from the host, so that tb_profile.py can count the
# guest's instructions per request (docs/PERFORMANCE.md, "Counting
# instructions per request"). N=0 boots and stops (the BASE run).
#
#   workload.sh KERNEL.elf OUT nginx N     # N sequential curl GETs of a 1 MiB file
#   workload.sh KERNEL.elf OUT nginx-4k N  # N GETs of a 4 KiB file on one kept-alive connection
#   workload.sh KERNEL.elf OUT redis N     # redis-benchmark -n N -c 10 -t set,get,incr,lpush,lpop
#   workload.sh KERNEL.elf OUT redis-p16 N # the same, each client pipelining 16 requests (-P 16)
#   workload.sh KERNEL.elf OUT file N      # busybox dd: a 64 MiB file in /tmp, then N reads of it
#
# With AUDIT=1 in the environment the guest keeps its audit log
# (`cloister run --audit`, into a temporary file).
# Run from the repository root; builds the plugin into target/ on first use.
set -euo pipefail
kernel=$(realpath "$1"); out=$(realpath -m "$2"); what=$3; n=$4
root=$(pwd)
plugin=$root/target/libtbcount.so
[ -f "$plugin" ] || gcc -O2 -shared -fPIC -o "$plugin" tools/profile/tb_count.c
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '#!/bin/sh\nexec qemu-system-x86_64 -plugin %s,out=%s "$@"\n' "$plugin" "$out" > "$tmp/qemu"
chmod +x "$tmp/qemu"
port=$((20000 + RANDOM % 10000))
audit=()
[ -n "${AUDIT:-}" ] && audit=(--audit "$tmp/audit.bin")
cargo -q build -p tools   # before the timed wait below
# Waits (up to 2 minutes) for the server to answer `ready`.
wait_ready() {
    for _ in $(seq 1 400); do ready && return 0; sleep 0.3; done
    echo "the server did not come up; console:" >&2; cat "$tmp/console.log" >&2; exit 1
}
case $what in
nginx | nginx-4k)
    size=1048576; [ "$what" = nginx-4k ] && size=4096
    cat > "$tmp/nginx.conf" <<EOF
user root; daemon off; master_process off; worker_processes 1;
error_log stderr; pid /tmp/nginx.pid;
events {}
http {
    default_type application/octet-stream; access_log off; sendfile on;
    client_body_temp_path /tmp/nb; proxy_temp_path /tmp/np; fastcgi_temp_path /tmp/nf;
    uwsgi_temp_path /tmp/nu; scgi_temp_path /tmp/ns;
    server { listen 8080; root /srv; }
}
EOF
    head -c "$size" /dev/urandom > "$tmp/big.bin"
    CLOISTER_QEMU=$tmp/qemu cargo -q cloister run --no-learn --kernel "$kernel" "${audit[@]}" --publish "$port:8080" \
        --file "$tmp/nginx.conf:/etc/nginx/nginx.conf" --file "$tmp/big.bin:/srv/big.bin" \
        -- /usr/sbin/nginx -c /etc/nginx/nginx.conf -e stderr > "$tmp/console.log" 2>&1 &
    ready() { curl -sf -o /dev/null "http://127.0.0.1:$port/big.bin"; }
    wait_ready
    if [ "$what" = nginx-4k ] && [ "$n" -gt 0 ]; then
        # One curl, N URLs: the connection is kept alive, as wrk's are.
        got=$(curl -sf -o /dev/null -w '%{size_download}\n' "http://127.0.0.1:$port/big.bin?[1-$n]" | sort -u)
        [ "$got" = "$size" ] || { echo "short transfers: $got" >&2; exit 1; }
    else
        for _ in $(seq 1 "$n"); do
            got=$(curl -sf -o /dev/null -w '%{size_download}' "http://127.0.0.1:$port/big.bin")
            [ "$got" = "$size" ] || { echo "short transfer: $got bytes" >&2; exit 1; }
        done
    fi
    pkill -TERM -f "qemu-system-x86_64 -plugin $plugin,out=$out" || true
    ;;
redis | redis-p16)
    pipeline=1; [ "$what" = redis-p16 ] && pipeline=16
    CLOISTER_QEMU=$tmp/qemu cargo -q cloister run --no-learn --kernel "$kernel" "${audit[@]}" --publish "$port:6379" \
        -- /usr/bin/redis-server --save '' --appendonly no --protected-mode no > "$tmp/console.log" 2>&1 &
    ready() { redis-cli -p "$port" ping > /dev/null 2>&1; }
    wait_ready
    [ "$n" -gt 0 ] && redis-benchmark -p "$port" -q -n "$n" -c 10 -P "$pipeline" -t set,get,incr,lpush,lpop | tr '\r' '\n' | grep 'requests per second'
    redis-cli -p "$port" shutdown nosave > /dev/null 2>&1 || true
    ;;
file)
    # No server: one busybox shell writes the file (1 MiB blocks from
    # /dev/zero) and reads it N times into /dev/null; N=0 only writes it.
    script='dd if=/dev/zero of=/tmp/f bs=1M count=64 2>/dev/null'
    for _ in $(seq 1 "$n"); do script="$script; dd if=/tmp/f of=/dev/null bs=1M 2>/dev/null"; done
    CLOISTER_QEMU=$tmp/qemu cargo -q cloister run --no-learn --mem 1G --kernel "$kernel" "${audit[@]}" \
        -- /bin/busybox sh -c "$script" > "$tmp/console.log" 2>&1 &
    ;;
*) echo "workload.sh: use nginx, nginx-4k, redis, redis-p16 or file" >&2; exit 2 ;;
esac
wait
test -s "$out" || { echo "no profile written to $out" >&2; exit 1; }
