#!/usr/bin/env python3
"""Attack, issue 12 case 7: the files the daemon writes and reads back (status and state).

Run by hand as root with umask 022, by the rules of SPEC ("Both files are 0600 whatever the
umask"), and with hostile things planted where it writes and reads:

(a) umask 022: the status file and the saved state are mode 0600 (stat() of each);
(b) the status file's temporary name (`status.tmp.PID` on main) planted as a hard link to
    another file: that file's content and inode are untouched by the next pass (a temporary
    file must be created with O_EXCL, never opened over something that exists), and the status
    file is still rewritten;
(c) a FIFO planted at that temporary name: the next pass finishes (on main the daemon blocks in
    open(O_WRONLY) of the FIFO forever);
(d) the state's temporary name planted as a hard link: untouched by the save at SIGTERM;
(e) state_file names a FIFO: the daemon reaches READY=1 (on main it blocks at start, in
    open(O_RDONLY) of the FIFO, forever) and exits 0 at SIGTERM;
(f) state_file is a 256 MiB file (sparse): the daemon does not read all of it into its locked
    memory: its peak resident size (VmHWM) stays below 64 MiB, and it warns (state files are
    capped at 16 MiB).

Observed on main (b0bfd14): (a) status 0644, state 0644; (b) the victim was overwritten with the
status JSON; (c) no STATUS= within 10 s, the daemon stuck in open(); (d) the victim became the
state; (e) no READY=1 within 10 s; (f) VmHWM 258 MiB.
Fixed in the commit that made this file executable."""
import os
import re
import stat
import threading
import time

from lib import SANITIZER, SLOW, MiB, Daemon, Mapper, cleanup, done, eq, make_file, ok, workdir

d = workdir()
dm = None
mappers = []


def mode_of(path):
    try:
        return oct(stat.S_IMODE(os.stat(path).st_mode))
    except OSError as e:
        return str(e)


def hwm(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def unblock_fifo(path, stop):
    """Opens the FIFO for reading and writing now and then (without blocking), so that a daemon
    stuck in open() of it gets out (and the test can end)."""
    while not stop.is_set():
        try:
            fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
            time.sleep(0.05)
            os.close(fd)
        except OSError:
            pass
        stop.wait(0.2)


try:
    lib = make_file(os.path.join(d, "libw.so"), MiB, seed=7)
    mappers.append(Mapper(lib))
    conf = f"interval = 0\n[lock]\ninclude = ^{d}/\nwhat = whole\nkeep = 0\n"

    # --- (a) umask 022 ------------------------------------------------------------------------
    old = os.umask(0o022)
    try:
        dm = Daemon(d, conf)
    finally:
        os.umask(old)
    ok(dm.wait_ready(30 * SLOW), "(a) READY=1", dm.log())
    eq(mode_of(dm.status_file), "0o600", "(a) umask 022: the status file is 0600")

    # --- (b) a hard link at the status file's temporary name ----------------------------------
    victim = os.path.join(d, "victim")
    with open(victim, "w") as f:
        f.write("precious\n")
    vst = os.stat(victim)
    before = dm.status_pass()
    os.link(victim, f"{dm.status_file}.tmp.{dm.pid}")
    ok(dm.rescan(30 * SLOW), "(b) rescan with a hard link planted at status.tmp.PID")
    with open(victim) as f:
        eq(f.read(), "precious\n", "(b) the planted link's file keeps its content")
    ok(os.stat(victim).st_nlink >= 1 and os.stat(victim).st_ino == vst.st_ino,
       "(b) the victim is still there")
    ok(dm.status_pass() > before, f"(b) the status file was rewritten all the same "
                                  f"(pass {before} -> {dm.status_pass()})")
    ok(os.stat(dm.status_file).st_ino != vst.st_ino, "(b) the status file is not the victim's inode")
    for x in (f"{dm.status_file}.tmp.{dm.pid}",):
        if os.path.lexists(x):
            os.unlink(x)

    # --- (c) a FIFO at the status file's temporary name ---------------------------------------
    fifo = f"{dm.status_file}.tmp.{dm.pid}"
    os.mkfifo(fifo, 0o600)
    before = dm.status_pass()
    t0 = time.monotonic()
    answered = dm.rescan(10 * SLOW)
    ok(answered and dm.status_pass() > before,
       f"(c) a FIFO at status.tmp.PID: the pass ends and the status file is rewritten "
       f"({time.monotonic() - t0:.1f} s)")
    stop = threading.Event()
    th = threading.Thread(target=unblock_fifo, args=(fifo, stop), daemon=True)
    th.start()  # lets a stuck daemon go, for the rest of the test
    if not answered:
        dm.notify.wait_for(lambda m: m.startswith("STATUS=") and "/" not in m, 10 * SLOW,
                           dm.notify.count() - 1)
    time.sleep(0.5)
    stop.set()
    th.join()
    if os.path.lexists(fifo):
        os.unlink(fifo)
    # A stuck daemon that got out wrote its status into the pipe and renamed the FIFO over
    # the status file: that is the failure, already counted above.

    # --- (d) a hard link at the state's temporary name; the state's mode ----------------------
    victim2 = os.path.join(d, "victim2")
    with open(victim2, "w") as f:
        f.write("precious too\n")
    os.link(victim2, f"{dm.state_file}.tmp.{dm.pid}")
    eq(dm.stop(30 * SLOW), 0, "(d) SIGTERM exits 0 (the state is saved)")
    with open(victim2) as f:
        eq(f.read(), "precious too\n", "(d) the link planted at state.tmp.PID keeps its content")
    eq(mode_of(dm.state_file), "0o600", "(a) umask 022: the saved state is 0600")
    ok(os.path.isfile(dm.state_file) and open(dm.state_file).read().startswith("prelockd-state"),
       "(d) the state was saved all the same")
    for x in os.listdir(d):
        if ".tmp" in x:
            os.unlink(os.path.join(d, x))
    dm = None

    # --- (e) state_file is a FIFO -------------------------------------------------------------
    sfifo = os.path.join(d, "state-fifo")
    os.mkfifo(sfifo, 0o600)
    dm = Daemon(d, f"[daemon]\nstate_file = {sfifo}\n" + conf)
    t0 = time.monotonic()
    ready = dm.wait_ready(10 * SLOW)
    ok(ready, f"(e) state_file names a FIFO: READY=1 ({time.monotonic() - t0:.1f} s)", dm.log())
    stop = threading.Event()
    th = threading.Thread(target=unblock_fifo, args=(sfifo, stop), daemon=True)
    if not ready:
        th.start()
        dm.wait_ready(10 * SLOW)
    ok(re.search(r"state file .*state-fifo.* not a regular file", dm.log()),
       "(e) a warning says the state file is not a regular file", dm.log())
    eq(dm.stop(), 0, "(e) SIGTERM exits 0")
    stop.set()
    if th.is_alive():
        th.join()
    dm = None

    # --- (f) a 256 MiB state file -------------------------------------------------------------
    big = os.path.join(d, "state-big")
    with open(big, "wb") as f:
        f.write(b"prelockd-state 1\n")
        f.truncate(256 * MiB)
    dm = Daemon(d, f"[daemon]\nstate_file = {big}\n" + conf)
    ok(dm.wait_ready(60 * SLOW), "(f) a 256 MiB state file: READY=1", dm.log())
    peak = hwm(dm.pid)
    if SANITIZER:  # shadow memory and quarantines: the peak says nothing of the state file here
        ok(True, f"(f) peak resident size # SKIP under {SANITIZER} (VmHWM {peak / MiB:.1f} MiB)")
    else:
        ok(peak < 64 * MiB, f"(f) peak resident size (VmHWM) {peak / MiB:.1f} MiB (< 64 MiB: the "
                            f"state file's size is capped before it is read)")
    ok(re.search(r"state file .*state-big.* bigger than", dm.log()),
       "(f) a warning says the state file is too big", dm.log())
    eq(dm.stop(), 0, "(f) SIGTERM exits 0")
    dm = None
finally:
    cleanup(d, dm, mappers)
done()
