#!/usr/bin/env python3
"""Rounds of redis-benchmark against a running guest, each run with what
the host and the guest did meanwhile (issue 16 item 1: why some rounds are
slow). See docs/PERFORMANCE.md, "Stall counters".

    rounds.py PORT ROUNDS [--out RUNS.json]   # runs; one line a run, then slow vs fast
    rounds.py --from RUNS.json --audit-json F  # the same runs with the server's epoll batching,
                                               # F from `cloister audit show LOG --key-file K
                                               # --json > F` after the guest stopped

Per run (`redis-benchmark -q -n 8000 -c 10 -t TEST`, the five tests in
turn): requests per second and its ratio to the test's median, the host's
CPU time stolen by the hypervisor under it (`steal` of /proc/stat), and the
newest QEMU process's threads' time on a host CPU and waiting for one
(/proc/PID/task/*/schedstat), per second. With --audit-json (a guest run
with `--audit`, its log shown as JSON after it ended) each run's system
calls are found between bursts of `accept4` and the line adds the run's
`epoll_wait` calls and how many ready descriptors each returned on average.
A run is "slow" below 0.8x its test's median.
"""

import argparse
import glob
import json
import re
import statistics
import subprocess
import time

TESTS = ["set", "get", "incr", "lpush", "lpop"]


def host_stat():
    """(total, steal) clock ticks of all the host's CPUs."""
    f = [int(x) for x in open("/proc/stat").readline().split()[1:9]]
    return sum(f), f[7]


def qemu_times(pid):
    """(ran, waited) nanoseconds summed over the process's threads."""
    ran = waited = 0
    for path in glob.glob(f"/proc/{pid}/task/*/schedstat"):
        try:
            a, b, _ = open(path).read().split()
        except (OSError, ValueError):
            continue
        ran += int(a)
        waited += int(b)
    return ran, waited


def run_rounds(port, rounds):
    pid = int(subprocess.run(["pgrep", "-n", "qemu-system"], capture_output=True, text=True,
                             check=True).stdout.split()[0])
    runs = []
    for r in range(rounds):
        for test in TESTS:
            s0, q0, t0 = host_stat(), qemu_times(pid), time.time()
            out = subprocess.run(["redis-benchmark", "-p", str(port), "-q", "-n", "8000", "-c", "10",
                                  "-t", test], capture_output=True, text=True).stdout
            s1, q1, dt = host_stat(), qemu_times(pid), time.time() - t0
            found = re.findall(r"([\d.]+) requests per second", out.replace("\r", "\n"))
            runs.append({
                "test": test, "round": r + 1, "rps": float(found[-1]) if found else 0.0,
                "steal": 100.0 * (s1[1] - s0[1]) / max(1, s1[0] - s0[0]),
                "qemu_ran": (q1[0] - q0[0]) / 1e9 / dt, "qemu_waited": (q1[1] - q0[1]) / 1e9 / dt,
            })
    for test in TESTS:
        of_test = [x for x in runs if x["test"] == test]
        median = statistics.median(x["rps"] for x in of_test)
        for x in of_test:
            x["rel"] = x["rps"] / median if median else 0.0
    return runs


def epoll_batching(path, runs):
    """Adds each run's epoll_wait count and mean ready descriptors from the log."""
    calls = []
    for line in open(path):
        d = json.loads(line)
        if d.get("type") == "record" and d.get("kind") == "syscall":
            calls.append((d["time_ns"], d["name"], d["result"]))
    accepts = [i for i, (_, name, res) in enumerate(calls) if name == "accept4" and res >= 0]
    # A run starts with its clients' connections: a burst of accept4
    # after at least 0.3 s without one.
    starts = accepts[:1] + [b for a, b in zip(accepts, accepts[1:]) if calls[b][0] - calls[a][0] > 300e6]
    segments = [calls[s:e] for s, e in zip(starts, starts[1:] + [len(calls)])]
    segments = [s for s in segments if sum(1 for c in s if c[1] == "read") > 1000]
    if len(segments) != len(runs):
        raise SystemExit(f"found {len(segments)} runs in the log, expected {len(runs)}")
    for x, seg in zip(runs, segments):
        ready = [res for _, name, res in seg if name == "epoll_wait"]
        x["epoll_waits"] = len(ready)
        x["ready_per_wait"] = statistics.mean(ready) if ready else 0.0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("port", type=int, nargs="?")
    ap.add_argument("rounds", type=int, nargs="?")
    ap.add_argument("--out", help="save the runs as JSON")
    ap.add_argument("--from", dest="src", help="runs saved with --out, instead of running")
    ap.add_argument("--audit-json")
    a = ap.parse_args()
    if a.src:
        runs = json.load(open(a.src))
    elif a.port and a.rounds:
        runs = run_rounds(a.port, a.rounds)
    else:
        ap.error("give PORT ROUNDS, or --from RUNS.json")
    if a.out:
        json.dump(runs, open(a.out, "w"))
    if a.audit_json:
        epoll_batching(a.audit_json, runs)
    for x in runs:
        line = (f"{x['test']:6} round {x['round']}: {x['rps']:8.0f} req/s ({x['rel']:.2f}x median), "
                f"steal {x['steal']:4.1f} %, QEMU ran {x['qemu_ran']:.2f} waited {x['qemu_waited']:.2f} CPU/s")
        if "epoll_waits" in x:
            line += f", epoll_wait {x['epoll_waits']} ({x['ready_per_wait']:.2f} ready each)"
        print(line)
    for name, group in (("slow (< 0.8x)", [x for x in runs if x["rel"] < 0.8]),
                        ("the others", [x for x in runs if x["rel"] >= 0.8])):
        if group:
            print(f"{name}: {len(group)} runs, mean steal {statistics.mean(x['steal'] for x in group):.1f} %, "
                  f"QEMU ran {statistics.mean(x['qemu_ran'] for x in group):.2f} CPU/s")


if __name__ == "__main__":
    main()
