#!/usr/bin/env python3
"""Side-by-side cost of two or more prelockd binaries on the cost benchmark's population (400
processes, 1000 generated libraries), for judging a change to the daemon: each binary is started
REPS times, in rotated order within one population, and measured as bench/cost.py measures it
(first pass CPU from its log line, rescans from /proc/PID/schedstat). Medians; noisy machines
want 6 or more reps. Not part of `make bench`.

    sudo python3 bench/ab.py [--mode resident] [--reps 6] OLD_BINARY NEW_BINARY...
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
                               {"include": lib_re, "what": a.mode}, ns=ns)
                try:
                    if d.wait_ready(120) is None:
                        raise RuntimeError(f"{b} did not get ready; see {d.log_path}")
                    B.wait_sleeping(d.pid)
                    per = C.rescans(d, 10)  # passes 2-11: nine quick ones, then a full one
                    res[b]["first"].append(d.log_passes()[1][0])
                    res[b]["quick"].extend(per[1:9])  # pass 2 also sets up inotify watches
                    res[b]["full"].append(per[9])
                finally:
                    d.stop()
        pop.stop()
    finally:
        ns.close()
    base = None
    print("| binary | first pass ms | quick pass ms | full pass ms | 10-pass cycle ms |")
    print("|---|---:|---:|---:|---:|")
    for b in bins:
        r = res[b]
        f, q, u = (statistics.median(r[k]) for k in ("first", "quick", "full"))
        cyc = (9 * q + u) / 10
        row = [f, q, u, cyc]
        if base is None:
            base = row
            cells = [f"{x:.1f}" for x in row]
        else:
            cells = [f"{x:.1f} ({x / y:.2f}×)" for x, y in zip(row, base)]
        print(f"| {b} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
