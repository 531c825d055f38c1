#!/usr/bin/env python3
"""The service manager's view: the exact sd_notify sequence through start, SIGUSR1, SIGHUP with a
good and a broken config, and SIGTERM, plus watchdog pings, from a fake service manager."""
import os
import re
import shutil
import signal
import time

from lib import MiB, Daemon, Mapper, done, eq, make_file, ok, workdir

WATCHDOG_USEC = 400000


def significant(msgs):
    """Messages without watchdog pings, progress reports and MONOTONIC_USEC values."""
    out = []
    for m in msgs:
        if m == "WATCHDOG=1" or re.match(r"STATUS=(scanning processes|locking files) \d+/\d+$", m):
            continue
        out.append(re.sub(r"=\d+$", "=N", m) if m.startswith("MONOTONIC_USEC=") else m)
    return out


d = workdir()
try:
    path = make_file(os.path.join(d, "lib.so"), 2 * MiB)
    conf = f"interval = 0\n[lock]\ninclude = ^{d}/\nwhat = whole\n"
    with Mapper(path):
        dm = Daemon(d, conf, env={"WATCHDOG_USEC": str(WATCHDOG_USEC)},
                    prefix=["sh", "-c", 'WATCHDOG_PID=$$ exec "$0" "$@"'])
        try:
            ok(dm.wait_ready(), "READY=1 at start", dm.log())
            n0 = dm.notify.count()
            time.sleep(1.0)
            pings = [m for m in dm.notify.messages[n0:] if m == "WATCHDOG=1"]
            ok(len(pings) >= 2, f"watchdog pings while idle: {len(pings)} in 1 s "
               f"(WATCHDOG_USEC={WATCHDOG_USEC})")

            ok(dm.rescan(), "SIGUSR1 answered with STATUS=")

            n1 = dm.notify.count()
            dm.write_config(conf.replace("what = whole", "what = mapped"))
            dm.proc.send_signal(signal.SIGHUP)
            ok(dm.notify.wait_for(lambda m: m == "READY=1", 30, n1) is not None,
               "READY=1 after a good reload")
            time.sleep(0.2)

            n2 = dm.notify.count()
            dm.write_config(conf + "bogus_key = 1\n")
            dm.proc.send_signal(signal.SIGHUP)
            ok(dm.notify.wait_for(lambda m: m == "READY=1", 30, n2) is not None,
               "READY=1 after a rejected reload too")
            time.sleep(0.2)
            ok(dm.proc.poll() is None, "still running after a broken config")
            ok(re.search(r"prelockd\.conf:\d+: unknown key 'bogus_key'", dm.log()) is not None,
               "the rejected reload says why, with FILE:LINE", dm.log())
            n3 = dm.notify.count()
        finally:
            rc = dm.stop()
        eq(rc, 0, "SIGTERM exits 0")

        seq = significant(dm.notify.messages)
        status = lambda m: re.match(r"STATUS=\d+ files, [\d.]+ \S+ locked of [\d.]+ \S+ budget, "
                                    r"next scan on SIGUSR1/SIGHUP$", m) is not None
        kinds = ["STATUS" if status(m) else m for m in seq]
        want = ["READY=1", "STATUS",                             # start: first pass done
                "STATUS",                                        # SIGUSR1
                "RELOADING=1", "MONOTONIC_USEC=N", "READY=1", "STATUS",  # good reload
                "RELOADING=1", "MONOTONIC_USEC=N", "READY=1", "STATUS",            # rejected
                "STOPPING=1"]
        eq(kinds, want, "the notify sequence")
        bad = [m for m in seq if m.startswith("STATUS=") and not status(m)]
        eq(bad, [], "every STATUS= line has files, MiB locked, budget and next scan")
        first = next((m for m in seq if status(m)), "")
        ok(first.startswith("STATUS=1 files, 2.0 MiB locked"), f"first STATUS counts the file: {first}")

    # A long first pass reports progress and keeps the watchdog fed before READY=1. Passes here
    # take milliseconds, so the test build is asked to report at every item, and the watchdog
    # is set to 2 ms.
    files = [make_file(os.path.join(d, f"libp{i}.so"), MiB, seed=i) for i in range(30)]
    mappers = [Mapper(f) for f in files]
    try:
        dm = Daemon(d, conf, env={"WATCHDOG_USEC": "2000", "PRELOCKD_DEBUG_PROGRESS_USEC": "0"},
                    prefix=["sh", "-c", 'WATCHDOG_PID=$$ exec "$0" "$@"'])
        try:
            ok(dm.wait_ready(), "READY=1 after a first pass with progress reports", dm.log())
        finally:
            dm.stop()
        msgs = dm.notify.messages
        ready = msgs.index("READY=1") if "READY=1" in msgs else len(msgs)
        before = msgs[:ready]
        scan = [m for m in before if re.match(r"STATUS=scanning processes \d+/\d+$", m)]
        lock = [m for m in before if re.match(r"STATUS=locking files \d+/\d+$", m)]
        ok(len(scan) >= 10, f"{len(scan)} 'scanning processes N/M' reports before READY=1")
        total = int(lock[-1].split("/")[1]) if lock else 0
        ok(len(lock) >= 30 and total >= 30,
           f"{len(lock)} 'locking files N/M' reports, of {total} candidates: {lock[-2:]}")
        nums = [int(m.split()[-1].split("/")[0]) for m in lock]
        eq(nums, sorted(nums), "the locking reports count upwards")
        pings = [m for m in before if m == "WATCHDOG=1"]
        ok(len(pings) >= 1, f"{len(pings)} watchdog pings during the first pass, before READY=1")
        after = [m for m in msgs[ready:] if re.match(r"STATUS=(scanning|locking)", m)]
        eq(after, [], "no progress reports once ready")
    finally:
        for m in mappers:
            m.stop()

    # The next scan in STATUS=: in seconds, or in milliseconds below one second ("in 0s" would
    # read as a timer that never fires).
    for interval, want in (("2s", "next scan in 2s"), ("250ms", "next scan in 250ms")):
        dm = Daemon(d, conf.replace("interval = 0", f"interval = {interval}"))
        try:
            ok(dm.wait_ready(), f"interval = {interval}: READY=1", dm.log())
            st = [m for m in dm.notify.messages if m.startswith("STATUS=") and "next scan" in m]
            ok(st and st[0].endswith(want), f"interval = {interval}: STATUS= says '{want}'",
               str(st[:1]))
        finally:
            dm.stop()
finally:
    shutil.rmtree(d, ignore_errors=True)
done()
