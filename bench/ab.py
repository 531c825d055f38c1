#!/usr/bin/env python3
"""Side-by-side cost of two or more prelockd binaries on the cost benchmark's population (400
processes, 1000 generated libraries), for judging a change to the daemon: each binary is started
REPS times, in rotated order within one population, and measured as bench/cost.py measures it
(first pass CPU from its log line; quiet passes (SIGUSR1) and full passes (SIGHUP) from
/proc/PID/schedstat). Medians; noisy machines want 6 or more reps. Not part of `make bench`.
On the shipped config (read_only_data = yes) the daemon reads mappings as text whatever the
kernel offers; --code-only sets read_only_data = no, where it uses PROCMAP_QUERY, and --text with
it refuses the ioctl (tests/helpers/noquery), as kernels before 6.11 do.

    sudo python3 bench/ab.py [--mode resident] [--reps 6] [--code-only [--text]] OLD NEW...
"""
import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402
import cost as C  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mode", default="resident", choices=("resident", "mapped", "whole"))
    ap.add_argument("--reps", type=int, default=6)
    ap.add_argument("--code-only", action="store_true")
    ap.add_argument("--text", action="store_true")
    ap.add_argument("binaries", nargs="+")
    a = ap.parse_args()
    bins = [os.path.abspath(b) for b in a.binaries]
    C.generate_libs()
    res = {b: {"first": [], "quick": [], "full": []} for b in bins}
    ns = B.PidNamespace()
    try:
        pop = C.Population(ns)
        lib_re = C.lib_regex()
        for rep in range(a.reps):
            for b in bins[rep % len(bins):] + bins[:rep % len(bins)]:
                B.PRELOCKD = b
                d = B.Prelockd(os.path.join(B.DATA, "work", f"ab-{rep}"),
                               dict({"read_only_data": "no"} if a.code_only else {},
                                    include=lib_re, what=a.mode), ns=ns,
                               wrap=[C.noquery_path()] if a.text else [])
                try:
                    if d.wait_ready(120) is None:
                        raise RuntimeError(f"{b} did not get ready; see {d.log_path}")
                    B.wait_sleeping(d.pid)
                    # Pass 2 also sets up inotify watches: not counted.
                    quick = C.rescans(d, 10)[1:]
                    full = C.reloads(d, 2)
                    log = d.log_passes()
                    res[b]["first"].append(log[1]["cpu_ms"])
                    res[b]["quick"].extend(C.split_passes(quick, log)[0])
                    res[b]["full"].extend(C.split_passes(full, log)[1])
                finally:
                    d.stop()
        pop.stop()
    finally:
        ns.close()
    base = None
    print("| binary | first pass ms | quiet pass ms | full pass (SIGHUP) ms |")
    print("|---|---:|---:|---:|")
    for b in bins:
        r = res[b]
        row = [statistics.median(r[k]) if r[k] else float("nan") for k in ("first", "quick", "full")]
        if base is None:
            base = row
            cells = [f"{x:.1f}" for x in row]
        else:
            cells = [f"{x:.1f} ({x / y:.2f}×)" for x, y in zip(row, base)]
        print(f"| {b} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
