#!/usr/bin/env python3
"""What prelockd costs an idle machine: CPU time and wakeups per hour of daemons that run side by
side, each with its own config, in a PID namespace of their own (so that the rest of a shared
machine, its forks and its processes, does not count) with PROCS sleeping processes and no churn.
CPU from /proc/PID/schedstat (nanoseconds on the CPU), wakeups from voluntary context switches,
over SECONDS after a warm-up of 20 s (by then every process is older than the 10 s the checks for
new processes keep re-reading). Memory pressure elsewhere on the machine still reaches the
daemons (the pressure file is system-wide): run it on a quiet machine. Not part of `make bench`.

    sudo python3 bench/idlecost.py [--procs 300] [--seconds 300] NAME=BINARY:KEY=VALUE,... ...

Each daemon: a name, the binary, and [daemon] keys over the shipped defaults, e.g.
    checks-1s=./prelockd:new_process_check=1s  off=./prelockd:new_process_check=0
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time


def sample(pid):
    with open(f"/proc/{pid}/schedstat") as f:
        cpu_ns = int(f.read().split()[0])
    with open(f"/proc/{pid}/status") as f:
        switches = next(int(x.split()[1]) for x in f if x.startswith("voluntary_ctxt_switches"))
    return cpu_ns, switches


def inside(a):
    sleepers = [subprocess.Popen(["sleep", "100000"]) for _ in range(a.procs)]
    tmp = tempfile.mkdtemp(prefix="prelockd-idle-")
    daemons = {}
    try:
        for spec in a.daemons:
            name, rest = spec.split("=", 1)
            binary, _, keys = rest.partition(":")
            d = os.path.join(tmp, name)
            os.mkdir(d)
            conf = os.path.join(d, "conf")
            with open(conf, "w") as f:
                f.write(f"[daemon]\nstate_file = {d}/state\nstatus_file = {d}/status\n")
                for kv in filter(None, keys.split(",")):
                    f.write(kv.replace("=", " = ", 1) + "\n")
            daemons[name] = subprocess.Popen([binary, "-c", conf], stderr=open(f"{d}/log", "w"))
        time.sleep(20)
        before = {n: sample(p.pid) for n, p in daemons.items()}
        time.sleep(a.seconds)
        after = {n: sample(p.pid) for n, p in daemons.items()}
        nprocs = sum(1 for x in os.listdir("/proc") if x.isdigit())
        scale = 3600 / a.seconds
        print(f"{nprocs} processes in the namespace, {a.seconds} s measured; per hour:")
        print(f"{'daemon':<24} {'CPU s/h':>9} {'wakeups/h':>10}")
        for n in daemons:
            cpu = (after[n][0] - before[n][0]) / 1e9 * scale
            wake = (after[n][1] - before[n][1]) * scale
            print(f"{n:<24} {cpu:9.2f} {wake:10.0f}")
    finally:
        for p in list(daemons.values()) + sleepers:
            p.kill()
            p.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--procs", type=int, default=300)
    ap.add_argument("--seconds", type=int, default=300)
    ap.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("daemons", nargs="+")
    a = ap.parse_args()
    if a.inside:
        return inside(a)
    if os.geteuid() != 0:
        sys.exit("idlecost.py needs root (a PID namespace, mlockall)")
    args = [os.path.abspath(__file__), "--inside", "--procs", str(a.procs), "--seconds",
            str(a.seconds)]
    for spec in a.daemons:  # binaries by absolute path: the namespace's cwd is the same, but be safe
        name, rest = spec.split("=", 1)
        binary, sep, keys = rest.partition(":")
        args.append(f"{name}={os.path.abspath(binary)}{sep}{keys}")
    return subprocess.call(["unshare", "--pid", "--fork", "--mount-proc", sys.executable] + args)


if __name__ == "__main__":
    sys.exit(main())
