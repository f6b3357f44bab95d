# Redis persistence through fork: BGSAVE writes dump.rdb (checked with
# redis-check-rdb, loaded by a second server), BGREWRITEAOF with
# appendonly on writes an AOF (checked with redis-check-aof, loaded by a
# third server).
cd /tmp
cli() { /usr/bin/redis-cli "$@"; }
wait_for() { until cli -p "$1" INFO persistence | grep -q "$2"; do sleep 1; done; }
/usr/bin/redis-server --port 6379 --dir /tmp --save "" --logfile /tmp/redis1.log &
until cli ping >/dev/null 2>&1; do sleep 1; done
for i in $(seq 1 200); do echo "SET key$i value$i"; done | cli > /dev/null
echo "dbsize before: $(cli DBSIZE)"
echo "bgsave: $(cli BGSAVE)"
wait_for 6379 'rdb_bgsave_in_progress:0'
cli INFO persistence | grep -E 'rdb_last_bgsave_status|rdb_changes_since_last_save' | tr -d '\r'
/usr/bin/redis-check-rdb /tmp/dump.rdb > /tmp/check-rdb.txt 2>&1
echo "redis-check-rdb: $? $(grep -o 'RDB looks OK' /tmp/check-rdb.txt)"
echo "appendonly: $(cli CONFIG SET appendonly yes)"
wait_for 6379 'aof_rewrite_in_progress:0'
cli SET after rewrite-one > /dev/null
echo "bgrewriteaof: $(cli BGREWRITEAOF)"
wait_for 6379 'aof_rewrite_in_progress:0'
cli SET last after-rewrite-two > /dev/null
cli INFO persistence | grep -E 'aof_enabled|aof_last_bgrewrite_status' | tr -d '\r'
echo "shutdown: $(cli SHUTDOWN NOSAVE)"
/usr/bin/redis-check-aof /tmp/appendonlydir/appendonly.aof.manifest > /tmp/check-aof.txt 2>&1
echo "redis-check-aof: $? $(grep -o 'is valid' /tmp/check-aof.txt | head -1)"
/usr/bin/redis-server --port 6380 --dir /tmp --save "" --logfile /tmp/redis2.log &
until cli -p 6380 ping >/dev/null 2>&1; do sleep 1; done
echo "from dump.rdb: $(cli -p 6380 DBSIZE) keys, key77=$(cli -p 6380 GET key77)"
cli -p 6380 SHUTDOWN NOSAVE
/usr/bin/redis-server --port 6381 --dir /tmp --save "" --appendonly yes --logfile /tmp/redis3.log &
until cli -p 6381 ping >/dev/null 2>&1; do sleep 1; done
echo "from the AOF: $(cli -p 6381 DBSIZE) keys, key200=$(cli -p 6381 GET key200) last=$(cli -p 6381 GET last)"
cli -p 6381 SHUTDOWN NOSAVE
wait
echo "all servers exited"
