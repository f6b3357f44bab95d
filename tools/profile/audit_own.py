#!/usr/bin/env python3
"""The audit log's own instructions per request, from tb_count.c profiles.

    audit_own.py --per N AUDITED.elf A_BASE.out A_RUN.out PLAIN.elf P_BASE.out P_RUN.out

The four profiles are `tools/profile/workload.sh` runs: with AUDIT=1
(A_*) and without (P_*), each a boot-only BASE and a RUN of N requests.
"The log's own" sums, per request, every BLAKE3 and `audit::` function of
the audited run and the run loop's (`kernel::run::thread_loop`, where the
record is inlined) difference between the audited and the plain run; it
is printed with the plain request and the ratio (docs/PERFORMANCE.md,
"Audit log").
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tb_profile import instructions  # noqa: E402


def is_audit(name):
    bare = name.lstrip("<")
    return "blake3" in name or bare.startswith("audit::") or bare.startswith("kernel::audit")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per", type=float, required=True, help="requests in the RUN profiles")
    ap.add_argument("files", nargs=6)
    a = ap.parse_args()
    aelf, a0, ar, pelf, p0, pr = a.files
    audited = instructions(aelf, a0, ar)
    plain = instructions(pelf, p0, pr)
    loop = "kernel::run::thread_loop"
    own = sum(v for n, v in audited.items() if is_audit(n)) + audited[loop] - plain[loop]
    blake3 = sum(v for n, v in audited.items() if "blake3" in n)
    plain_total = sum(plain.values())
    print(
        "the log's own %.0f (BLAKE3 %.0f), plain request %.0f, audited request %.0f, own / plain %.2f %%"
        % (own / a.per, blake3 / a.per, plain_total / a.per, sum(audited.values()) / a.per, 100 * own / plain_total)
    )


if __name__ == "__main__":
    main()
