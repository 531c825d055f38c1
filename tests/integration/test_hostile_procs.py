#!/usr/bin/env python3
"""Hostile process populations (issue 5): the daemon must not crash, and its descriptors, RssAnon
and locked bytes must stay bounded, measured from /proc/PID/status, /proc/PID/fd and its smaps
while it works; the debug build asserts the budget and its byte accounting after every pass (it
aborts otherwise, which the alive checks would see).

(a) 5,000 processes (one helper forks 5,000 sleeping children that share its mapping of a file);
(b) one process with 60,000 mappings (single pages of one file, alternately r-x and r--, so no
    two merge), in `resident` and in `mapped` mode;
(c) churn: hundreds of short-lived processes a second, each mapping one of 8 files, for a minute
    (CHURN_SECONDS), while the daemon rescans every 100 ms with a budget smaller than the files.
Numbers measured are printed as TAP comments (# ...)."""
import os
import re
import shutil
import time

from hostile import (RSS_ALLOWANCE, SANITIZER, SLOW, Helper, count_processes, heap_in_use, helper,
                     read_int, usage, warnings)
from lib import (STAT_FDS_MAX, MiB, PAGE, Daemon, Mapper, done, eq, locked_by_inode, make_file, ok,
                 smaps_locked, stale_stat_fds, workdir)

NPROCS = 5000
NMAPS = 60000
CHURN_RATE = int(os.environ.get("CHURN_RATE", "300"))
CHURN_SECONDS = int(os.environ.get("CHURN_SECONDS", "60"))

d = workdir()
dm = None
helpers = []


def note(msg):
    print(f"# {msg}", flush=True)


def pass_walls(log):
    """Wall time in ms of each pass, from the daemon's "pass N: ... X ms wall" lines."""
    return [int(m.group(1)) for m in re.finditer(r"pass \d+:.* (\d+) ms wall", log)]


def pids_cgroup_room():
    """Processes the pids cgroup we are in still allows; None when unlimited or unknown."""
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                _, ctrl, path = line.rstrip("\n").split(":", 2)
                if ctrl == "pids":
                    base = f"/sys/fs/cgroup/pids{path}"
                    with open(f"{base}/pids.max") as g:
                        mx = g.read().strip()
                    if mx == "max":
                        return None
                    return int(mx) - read_int(f"{base}/pids.current", 0)
    except (OSError, ValueError):
        return None
    return None


def check_bounds(label, u, budget, nlocked):
    ok(u["other_fds"] <= 16 + nlocked,
       f"{label}: {u['other_fds']} descriptors (<= 16 + {nlocked} locked files), and "
       f"{u['stat_fds']} of /proc/PID/stat")
    ok(u["stat_fds"] <= STAT_FDS_MAX + 1,
       f"{label}: at most {STAT_FDS_MAX} /proc/PID/stat kept open, and one being read "
       f"({u['stat_fds']})")
    ok(u["RssAnon"] <= RSS_ALLOWANCE,
       f"{label}: RssAnon {u['RssAnon'] / MiB:.1f} MiB (<= {RSS_ALLOWANCE // MiB} MiB)")
    _, locked = smaps_locked(dm.pid, d + "/")
    ok(locked <= budget, f"{label}: {locked / MiB:.1f} MiB locked (<= budget {budget / MiB:.0f} MiB)")
    return locked


try:
    libs = [make_file(os.path.join(d, f"lib{i}.so"), MiB, seed=i) for i in range(8)]

    # --- (a) 5,000 processes -------------------------------------------------------------------
    pid_max = read_int("/proc/sys/kernel/pid_max", 0)
    threads_max = read_int("/proc/sys/kernel/threads-max", 0)
    room = pids_cgroup_room()
    have = count_processes()
    note(f"pid_max {pid_max}, threads-max {threads_max}, pids cgroup room {room}, {have} processes")
    if pid_max - have < NPROCS + 500 or threads_max - have < NPROCS + 500 or \
            (room is not None and room < NPROCS + 200):
        ok(True, f"5,000 processes # SKIP the limits leave no room for {NPROCS} more processes")
    else:
        t0 = time.monotonic()
        forker = Helper([helper("forker"), str(NPROCS), libs[0]])
        helpers.append(forker)
        eq(int(forker.words[0]), NPROCS, f"{NPROCS} children forked in {time.monotonic() - t0:.1f}s")
        others = [Mapper(p) for p in libs[1:6]]
        helpers.extend(others)
        budget = 3 * MiB
        dm = Daemon(d, f"interval = 0\n[lock]\ninclude = ^{d}/\nwhat = resident\nmax_total = 3M\n"
                       f"max_total_percent = 0\nkeep = 0\n")
        ok(dm.wait_ready(60 * SLOW), "5,000 processes: READY=1", dm.log())
        st = dm.status_json()
        ok(st["processes"] >= NPROCS, f"5,000 processes: the pass saw {st['processes']} processes")
        ent = {e["path"]: e for e in st["locked"]}
        ok(ent.get(libs[0], {}).get("processes", 0) >= NPROCS + 1,
           f"5,000 processes: the shared file counts {ent.get(libs[0], {}).get('processes')} "
           f"processes and is locked first", ent.get(libs[0]))
        peak = {"fds": 0, "RssAnon": 0}
        for k in range(3):
            ok(dm.rescan(60 * SLOW), f"5,000 processes: rescan {k + 1} answered")
            u = usage(dm.pid)
            for key in peak:
                peak[key] = max(peak[key], u[key])
            check_bounds(f"5,000 processes, rescan {k + 1}", u, budget, len(dm.status_json()["locked"]))
        walls = pass_walls(dm.log())
        note(f"5,000 processes: pass wall times {walls} ms; peak {peak['fds']} fds, RssAnon "
             f"{peak['RssAnon'] / MiB:.1f} MiB, VmLck {usage(dm.pid)['VmLck'] / MiB:.1f} MiB")
        forker.stop()
        ok(dm.rescan(60 * SLOW), "5,000 processes: rescan after they all exited")
        eq(locked_by_inode(dm.pid, os.stat(libs[0])), (0, 0),
           "5,000 processes: their file is unlocked (keep = 0)")
        u = usage(dm.pid)
        ok(u["RssAnon"] <= RSS_ALLOWANCE, f"5,000 processes: RssAnon after they exited "
                                          f"{u['RssAnon'] / MiB:.1f} MiB")
        ok(dm.alive(), "5,000 processes: alive", dm.log())
        eq(dm.stop(), 0, "5,000 processes: SIGTERM exits 0")
        log = dm.log()
        ok("accounting mismatch" not in log and "budget exceeded" not in log,
           "5,000 processes: the debug build's checks held", log[-2000:])
        eq(warnings(log, "unreadable process data|scan incomplete"), [],
           "5,000 processes: no pass was incomplete")
        for h in others:
            h.stop()
        dm = None
        os.unlink(os.path.join(d, "state"))

    # --- (b) one process with 60,000 mappings ------------------------------------------------------
    max_map = read_int("/proc/sys/vm/max_map_count", 0)
    if max_map < NMAPS + 100:
        ok(True, f"60,000 mappings # SKIP vm.max_map_count is {max_map}")
    else:
        code = make_file(os.path.join(d, "libmany.so"), 16 * MiB, seed=9)
        t0 = time.monotonic()
        many = Helper([helper("manymaps"), str(NMAPS), code])
        helpers.append(many)
        eq(int(many.words[0]), NMAPS, f"one process made {NMAPS} mappings in "
                                      f"{time.monotonic() - t0:.1f}s")
        with open(f"/proc/{many.pid}/maps") as f:
            nvma = sum(1 for _ in f)
        ok(nvma >= NMAPS, f"the kernel shows {nvma} VMAs for it (none merged)")
        cst = os.stat(code)
        for what in ("resident", "mapped"):
            dm = Daemon(d, f"interval = 0\n[lock]\ninclude = ^{d}/libmany\nwhat = {what}\n"
                           f"max_total = 64M\nmax_total_percent = 0\nkeep = 0\n")
            ok(dm.wait_ready(60 * SLOW), f"60,000 mappings, {what}: READY=1", dm.log())
            rss, size = locked_by_inode(dm.pid, cst)
            # Every other page is mapped executable (and read): with gaps filled, all of it but
            # the last page.
            ok(16 * MiB - 64 * PAGE <= size <= 16 * MiB and rss == size,
               f"60,000 mappings, {what}: {size / MiB:.2f} MiB of the file locked, resident")
            for k in range(2):
                ok(dm.rescan(60 * SLOW), f"60,000 mappings, {what}: rescan {k + 1}")
            # A reload forces every process to be read again.
            i, j = dm.reload(60 * SLOW)
            ok(j is not None, f"60,000 mappings, {what}: a reload (full re-read) is answered")
            u = usage(dm.pid)
            check_bounds(f"60,000 mappings, {what}", u, 64 * MiB, 1)
            ok(u["vmas"] < 1000, f"60,000 mappings, {what}: the daemon itself has {u['vmas']} VMAs")
            note(f"60,000 mappings, {what}: pass wall times {pass_walls(dm.log())} ms; "
                 f"{u['fds']} fds, RssAnon {u['RssAnon'] / MiB:.1f} MiB, "
                 f"VmLck {u['VmLck'] / MiB:.1f} MiB, {u['vmas']} VMAs")
            ok(dm.alive(), f"60,000 mappings, {what}: alive", dm.log())
            eq(dm.stop(), 0, f"60,000 mappings, {what}: SIGTERM exits 0")
            ok("accounting mismatch" not in dm.log(), f"60,000 mappings, {what}: checks held")
            dm = None
            os.unlink(os.path.join(d, "state"))
        many.stop()

    # --- (c) churn for a minute, scanning every 100 ms -----------------------------------------------
    budget = 4 * MiB
    steady = [Mapper(libs[0]), Mapper(libs[1])]
    helpers.extend(steady)
    dm = Daemon(d, f"interval = 100ms\n[lock]\ninclude = ^{d}/\nwhat = resident\nmax_total = 4M\n"
                   f"max_total_percent = 0\nkeep = 1\n")
    ok(dm.wait_ready(60 * SLOW), "churn: READY=1", dm.log())
    time.sleep(0.5)
    base = usage(dm.pid)
    pass0 = dm.status_pass()
    churn = Helper([helper("churn"), str(CHURN_RATE), str(CHURN_SECONDS)] + libs)
    helpers.append(churn)
    t0 = time.monotonic()
    samples = []
    over = []
    heap = []  # under valgrind: (t, bytes) of the daemon's heap, every 2 s
    heap_err = None
    while churn.proc.poll() is None and time.monotonic() - t0 < CHURN_SECONDS + 30:
        if not dm.alive():
            break
        try:
            u = usage(dm.pid)
            _, locked = smaps_locked(dm.pid, d + "/")
        except OSError:
            break
        u["locked"] = locked
        u["t"] = time.monotonic() - t0
        samples.append(u)
        if locked > budget:
            over.append((round(u["t"], 1), locked))
        if SANITIZER == "valgrind" and (not heap or u["t"] - heap[-1][0] >= 2):
            b, heap_err = heap_in_use(dm.pid)
            if b is not None:
                heap.append((u["t"], b))
        time.sleep(0.25)
    line = churn.proc.stdout.readline()
    churn.proc.wait()
    elapsed = time.monotonic() - t0
    started = int(line.split()[1]) if line.startswith("done") else 0
    passes = dm.status_pass() - pass0
    walls = sorted(pass_walls(dm.log()))
    note(f"churn: {started} processes in {elapsed:.1f}s ({started / elapsed:.0f}/s), "
         f"{passes} passes (wall ms: median {walls[len(walls) // 2] if walls else '-'}, "
         f"max {walls[-1] if walls else '-'}), {len(samples)} samples")
    ok(started >= 0.9 * CHURN_RATE * CHURN_SECONDS and started / elapsed >= 100,
       f"churn: {started} processes started, {started / elapsed:.0f} a second")
    ok(dm.alive(), "churn: the daemon is alive", dm.log()[-3000:])
    # Was a bug: with sd-event's default timer accuracy (250 ms), interval = 100ms gave a pass
    # every ~250 ms (and 500ms every ~750 ms).
    ok(passes >= 0.6 * 10 * elapsed / SLOW,
       f"churn: {passes} passes in {elapsed:.0f}s at interval = 100ms "
       f"(want >= {0.6 * 10 * elapsed / SLOW:.0f})")
    eq(over, [], f"churn: locked bytes never above the budget ({budget // MiB} MiB) in smaps")
    if samples:
        max_fds = max(s["other_fds"] for s in samples)
        max_stat = max(s["stat_fds"] for s in samples)
        max_vmlck = max(s["VmLck"] for s in samples)
        max_locked = max(s["locked"] for s in samples)
        third = max(1, len(samples) // 3)
        rss_first = max(s["RssAnon"] for s in samples[:third])
        rss_last = max(s["RssAnon"] for s in samples[-third:])
        note(f"churn: fds {base['other_fds']} before, peak {max_fds} (and of /proc/PID/stat: "
             f"{base['stat_fds']} before, peak {max_stat}); RssAnon {base['RssAnon'] / MiB:.2f} "
             f"MiB before, peak {rss_first / MiB:.2f} MiB in the first third, "
             f"{rss_last / MiB:.2f} MiB in the last; locked peak {max_locked / MiB:.2f} MiB; "
             f"VmLck peak {max_vmlck / MiB:.2f} MiB")
        ok(max_fds <= base["other_fds"] + len(libs) + 4,
           f"churn: descriptors peaked at {max_fds} (<= {base['other_fds']} + {len(libs)} files + "
           f"4), besides /proc/PID/stat")
        ok(max_stat <= STAT_FDS_MAX + 1,
           f"churn: /proc/PID/stat kept open peaked at {max_stat} (<= {STAT_FDS_MAX} + 1)")
        if SANITIZER == "asan":
            # RssAnon holds ASan's quarantine of freed blocks, which fills up over time; leaks
            # are LSan's to find, at exit (the daemon then exits 23, not 0).
            ok(True, "churn: RssAnon did not grow # SKIP under ASan (quarantine); LSan checks "
                     "leaks at exit")
        elif SANITIZER == "valgrind":
            # RssAnon holds memcheck's own memory, which grows for minutes (its queue of freed
            # blocks, --freelist-vol, fills up); the daemon's heap is measured instead, by
            # memcheck itself (hostile.heap_in_use), with the same allowance.
            hthird = max(1, len(heap) // 3)
            h_first = max((b for _, b in heap[:hthird]), default=0)
            h_last = max((b for _, b in heap[-hthird:]), default=0)
            note(f"churn: heap in use (memcheck, {len(heap)} samples): peak "
                 f"{h_first / MiB:.3f} MiB in the first third, {h_last / MiB:.3f} MiB in the last")
            ok(len(heap) >= 6 and h_last <= h_first + 1 * MiB,
               f"churn: the heap did not grow: {h_first / MiB:.3f} MiB early, "
               f"{h_last / MiB:.3f} MiB late (no leak; {len(heap)} samples from vgdb)",
               heap_err or "")
        else:
            ok(rss_last <= rss_first + 1 * MiB,
               f"churn: RssAnon did not grow: {rss_first / MiB:.2f} MiB early, "
               f"{rss_last / MiB:.2f} MiB late (no leak)")
        ok(max(s["RssAnon"] for s in samples) <= RSS_ALLOWANCE, "churn: RssAnon stayed bounded")
    # The churn's last children outlive their parent by up to 30 ms, and a pass that still saw
    # one counts as "last seen": with keep = 1 a file goes at the second pass after that one.
    time.sleep(0.2)
    ok(dm.rescan(30 * SLOW) and dm.rescan(30 * SLOW) and dm.rescan(30 * SLOW),
       "churn: three rescans after the churn")
    locked = {e["path"] for e in dm.status_json()["locked"]}
    eq(locked, {libs[0], libs[1]}, "churn: after it only the two long-lived helpers' files are locked")
    u = usage(dm.pid)
    ok(u["other_fds"] <= base["other_fds"] + 1,
       f"churn: descriptors back to {u['other_fds']} (from {base['other_fds']})")
    eq(stale_stat_fds(dm), [], "churn: no /proc/PID/stat of a process that is gone stays open")
    eq(dm.stop(), 0, "churn: SIGTERM exits 0")
    log = dm.log()
    ok("accounting mismatch" not in log and "budget exceeded" not in log,
       "churn: the debug build's budget and accounting checks held after every pass", log[-2000:])
    eq(warnings(log, "unreadable process data|scan incomplete|locking pass incomplete"), [],
       "churn: vanishing processes are normal: no pass reported incomplete")
    dm = None
finally:
    if dm:
        dm.stop()
    for h in helpers:
        h.stop()
    shutil.rmtree(d, ignore_errors=True)
done()
