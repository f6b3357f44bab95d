#!/usr/bin/env python3
"""Instruction profiles of a guest kernel from tb_count.c's output.

Two runs of the same workload per kernel -- one that only boots and stops
(BASE), one that also serves N requests (RUN) -- give the instructions per
request by difference, per kernel function (symbols from `nm` of the kernel
ELF; user-space code is one row, "user"). With a second kernel, the two
profiles side by side and their difference:

    tb_profile.py --per N NEW.elf NEW_BASE.out NEW_RUN.out [OLD.elf OLD_BASE.out OLD_RUN.out]
    tb_profile.py --per N --group ...     # by crate/module instead of by function

See docs/PERFORMANCE.md, "Counting instructions per request".
"""

import argparse
import bisect
import collections
import re
import subprocess

# The kernel runs in the upper half; anything below is user code.
KERNEL_BASE = 0xFFFF800000000000


def symbols(elf):
    """Sorted start addresses and names of the ELF's functions."""
    out = subprocess.run(["nm", "-n", "-C", elf], capture_output=True, text=True, check=True).stdout
    addrs, names = [], []
    for line in out.splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[1] in "tTwW":
            addrs.append(int(parts[0], 16))
            names.append(re.sub(r"::h[0-9a-f]{16}$", "", parts[2]))
    return addrs, names


def instructions(elf, base, run):
    """Instructions per function executed in `run` but not in `base`."""
    addrs, names = symbols(elf)
    count = collections.Counter()
    for path, sign in ((run, 1), (base, -1)):
        with open(path) as f:
            for line in f:
                pc, insns, execs = line.split()
                pc = int(pc, 16)
                i = bisect.bisect_right(addrs, pc) - 1
                name = names[i] if pc >= KERNEL_BASE and i >= 0 else "user"
                count[name] += sign * int(insns) * int(execs)
    return count


def group_of(name):
    """The crate or kernel module a function belongs to."""
    bare = name.lstrip("<")
    for crate in ("smoltcp", "virtio_drivers", "allocator", "alloc", "core"):
        if bare.startswith(crate + "::"):
            return crate
    if bare.startswith("libos::"):
        return "::".join(bare.split("::")[:2])
    if bare.startswith("kernel::"):
        return "::".join(bare.split("::")[:2])
    return name if name in ("user", "memcpy", "memset", "memmove") else "other"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--per", type=float, default=1.0, help="divide by this (requests, MiB, ...)")
    p.add_argument("--group", action="store_true", help="by crate/module instead of by function")
    p.add_argument("--rows", type=int, default=40)
    p.add_argument("runs", nargs="+", help="ELF BASE.out RUN.out, once or twice")
    a = p.parse_args()
    if len(a.runs) not in (3, 6):
        p.error("give ELF BASE.out RUN.out for one kernel, or for two")
    profiles = [instructions(*a.runs[i:i + 3]) for i in range(0, len(a.runs), 3)]
    if a.group:
        grouped = []
        for prof in profiles:
            g = collections.Counter()
            for name, n in prof.items():
                g[group_of(name)] += n
            grouped.append(g)
        profiles = grouped
    new = profiles[0]
    old = profiles[1] if len(profiles) == 2 else collections.Counter()
    print("total per unit: %.0f" % (sum(new.values()) / a.per), end="")
    if len(profiles) == 2:
        print(" against %.0f (ratio %.3f)" % (sum(old.values()) / a.per, sum(new.values()) / sum(old.values())))
    else:
        print()
    rows = sorted(set(new) | set(old), key=lambda k: -abs(new[k] - old[k]) if old else -new[k])
    for name in rows[: a.rows]:
        if len(profiles) == 2:
            print("%10.0f %10.0f %+10.0f  %s" % (new[name] / a.per, old[name] / a.per, (new[name] - old[name]) / a.per, name[:110]))
        else:
            print("%10.0f  %s" % (new[name] / a.per, name[:110]))


if __name__ == "__main__":
    main()
