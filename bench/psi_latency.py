#!/usr/bin/env python3
"""How soon memory pressure is seen (docs/pressure.md): the pressure benchmark's shape, with
several tests/helpers/psiwatch configurations watching the same run.

One run: a 48 MiB memory cgroup (v1 or v2, as bench/benchlib.py finds it); the stand-in
(bench/standin) re-reads 16 MiB of a 64 MiB file every 20 ms in it; once the machine has been
calm (no stall system-wide) for 3 s, the watchers start, and 2-4 s later (a random phase for
their timers) the hog (bench/hog) grows 2 MiB every 100 ms in the cgroup until the OOM killer
takes it. Each watcher's first sign of pressure is reported in seconds after the hog's start.

    make BUILD=B B/helpers/psiwatch B/helpers/nopsi B/bench/standin B/bench/hog
    BUILD=B python3 bench/psi_latency.py RUNS [NAME=PSIWATCH_ARGS]...

NAME=ARGS: "nopsi" as the first word runs it under tests/helpers/nopsi. Default watchers: the
trigger, the fallback reading every 1 s and every 2 s, and "onset" (every 100 ms, 1 ms per 2 s:
when stalls are first visible at all). Root; about 25 s a run.
"""
import os
import random
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402

BUILD = os.path.abspath(os.environ.get("BUILD", "build"))
HELPERS = os.path.join(BUILD, "helpers")
BENCH = os.path.join(BUILD, "bench")
DEFAULT = ["trigger=", "poll1s=nopsi -i 1000", "poll2s=nopsi -i 2000",
           "onset=nopsi -i 100 -t 1000"]


def total():
    with open("/proc/pressure/memory") as f:
        return int(f.readline().split("total=")[1])


def wait_calm(seconds=3, limit=120):
    """Until no stall system-wide for `seconds`: other work on the machine stalls too."""
    t_end = time.monotonic() + limit
    last, since = total(), time.monotonic()
    while time.monotonic() < t_end:
        time.sleep(0.2)
        now = total()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= seconds:
            return True
    return False


def stand_in_file():
    path = "/var/tmp/prelockd-psi-standin.bin"
    size = 64 * B.MiB
    if not (os.path.exists(path) and os.path.getsize(path) == size):
        data = bytearray(os.urandom(size))
        data[::B.PAGE] = b"\xc3" * (size // B.PAGE)  # every page starts with `ret`
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, 0o755)
    return path


def command(args):
    words = args.split()
    prefix = [os.path.join(HELPERS, "nopsi")] if words[:1] == ["nopsi"] else []
    return prefix + [os.path.join(HELPERS, "psiwatch")] + words[len(prefix):]


def run(watchers, path):
    cg = B.Cgroup(f"prelockd-psi-{os.getpid()}", 48 * B.MiB)
    procs = []
    try:
        os.system("sync; echo 3 > /proc/sys/vm/drop_caches")
        procs.append(subprocess.Popen(
            [os.path.join(BENCH, "standin"), "-g", cg.procs, "-p", "20", "-d", "40", "-w", "5",
             path, "4:4,20:4,36:4,52:4"], stdout=subprocess.DEVNULL))
        time.sleep(1)
        calm = wait_calm()
        ws = {n: subprocess.Popen(command(a) + ["watch", "14000"], stdout=subprocess.PIPE,
                                  text=True) for n, a in watchers}
        procs += ws.values()
        time.sleep(2 + random.random() * 2)
        hog = subprocess.Popen([os.path.join(BENCH, "hog"), "-g", cg.procs, "-o", "1000", "2",
                                "100", "512"], stdout=subprocess.PIPE, text=True)
        procs.append(hog)
        start = int(hog.stdout.readline().split()[1])
        hog.wait()
        res = {"calm": calm, "oom": (time.monotonic_ns() - start) / 1e9}
        for n, p in ws.items():
            out, _ = p.communicate()
            first = next((ln.split() for ln in out.splitlines() if ln.startswith("pressure")), None)
            res[n] = (int(first[1]) - start) / 1e9 if first else None
        return res
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        cg.remove()


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    watchers = [a.split("=", 1) for a in (sys.argv[2:] or DEFAULT)]
    path = stand_in_file()
    rs = []
    for _ in range(runs):
        r = run(watchers, path)
        rs.append(r)
        print(" ".join(f"{k}={round(v, 2) if isinstance(v, float) else v}" for k, v in r.items()),
              flush=True)
    # A run where stalls were seen before the hog started measured someone else's pressure.
    clean = [r for r in rs if r["calm"] and all(r[n] is None or r[n] > 0 for n, _ in watchers)]
    print(f"{len(clean)} of {len(rs)} runs without stalls before the hog; seconds after its start:")
    for k in ["oom"] + [n for n, _ in watchers]:
        v = [r[k] for r in clean]
        got = [x for x in v if x is not None]
        before = sum(1 for r, x in zip(clean, v) if x is not None and x < r["oom"])
        if got:
            print(f"  {k:10} median {statistics.median(got):.2f}  min {min(got):.2f}  "
                  f"max {max(got):.2f}  seen {len(got)}/{len(v)}  before the OOM kill "
                  f"{before}/{len(v)}")


if __name__ == "__main__":
    main()
