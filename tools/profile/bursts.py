#!/usr/bin/env python3
"""Per redis-benchmark run, from a packet capture of the guest's card: how
many client connections carried the run's requests, and how many replies
(and requests) crossed the card per burst (issue 16 item 1; see
docs/PERFORMANCE.md, "The listen queue of QEMU's forwards" and "The
doorbell held back").

    # QEMU through a wrapper that adds a capture of the card (netdev n0):
    printf '#!/bin/sh\\nexec qemu-system-x86_64 "$@" -object filter-dump,id=fd0,netdev=n0,file=/tmp/cap.pcap,maxlen=128\\n' > /tmp/qemu-cap
    chmod +x /tmp/qemu-cap
    CLOISTER_QEMU=/tmp/qemu-cap cargo cloister run --publish 16379:6379 -- /usr/bin/redis-server --save '' --protected-mode no &
    python3 tools/profile/rounds.py 16379 6          # 6 rounds of the five tests
    redis-cli -p 16379 shutdown nosave
    tcpdump -r /tmp/cap.pcap -nn -tt > /tmp/cap.txt
    python3 tools/profile/bursts.py /tmp/cap.txt

The guest is 10.0.2.15, slirp 10.0.2.2 (user networking). A run is the
connections between two short ones (redis-benchmark's own CONFIG GET
connection before each run carries one request); a connection counts
for a run if it carried at least 5 requests. A burst is frames in one
direction less than 20 µs apart (as QEMU's capture stamps them).
"""

import collections
import re
import sys

TESTS = ["set", "get", "incr", "lpush", "lpop"]
LINE = re.compile(
    r"^(\d+\.\d+) IP 10\.0\.2\.(\d+)\.(\d+) > 10\.0\.2\.(\d+)\.(\d+): Flags \[[^\]]*\].*length (\d+)"
)
GAP_S = 20e-6


def mean_burst(times):
    """Mean number of events per burst (events less than GAP_S apart)."""
    sizes, last = [], None
    for t in times:
        if last is None or t - last > GAP_S:
            sizes.append(0)
        sizes[-1] += 1
        last = t
    return sum(sizes) / len(sizes) if sizes else 0.0


def main(path):
    frames = collections.defaultdict(list)  # client port -> (time, inbound, length)
    first = {}
    for line in open(path):
        m = LINE.match(line)
        if not m:
            continue
        t, inbound = float(m[1]), m[2] == "2"
        port = int(m[3]) if inbound else int(m[5])
        first.setdefault(port, t)
        frames[port].append((t, inbound, int(m[6])))
    runs, current = [], []
    for port in sorted(first, key=first.get):
        requests = sum(1 for _, inbound, n in frames[port] if inbound and n > 1)
        if requests < 5:
            if current:
                runs.append(current)
                current = []
            continue
        current.append(port)
    if current:
        runs.append(current)
    for i, ports in enumerate(runs):
        data = sorted(f for p in ports for f in frames[p] if f[2] > 1)
        ins = [t for t, inbound, _ in data if inbound]
        outs = [t for t, inbound, _ in data if not inbound]
        seconds = data[-1][0] - data[0][0]
        print(
            f"{TESTS[i % 5]:6} round {i // 5 + 1}: {len(ins) / seconds:7.0f} req/s, "
            f"{len(ports):2} connections, replies per burst {mean_burst(outs):5.2f}, "
            f"requests per burst {mean_burst(ins):5.2f}"
        )


if __name__ == "__main__":
    main(sys.argv[1])
