#!/usr/bin/env python3
"""Hostile files (issue 5, SPEC "Safety rules"), checked in the daemon's smaps by dev+inode and in
its --dry-run plan, status file and state file:

- a 1 TiB sparse file mapped executable (one process maps all of it and reads some pages of the
  holes): never locked in any mode, the plan says "sparse", the status file does not list it;
- a dense file bigger than max_file_size: locked up to max_file_size exactly, whole and resident;
- a locked file that a writer extends to 1 TiB with ftruncate (now mostly holes): the daemon
  locks no more of it than it did (it must not lock max_file_size of hole pages);
- a name with a space and a newline (maps shows it as "\\012"): locked; the status JSON holds the
  real name, --status and the --dry-run table show it escaped on one line (%0A), --dry-run --json
  holds the real name, and the saved state lists it escaped and restores it;
- a file named "x.so (deleted)" that is not deleted: maps cannot tell it from a deleted x.so, so
  it is never locked, and nothing else is (neither x.so nor another file).
(A file not readable by the daemon's user is in test_privilege.py.)"""
import json
import os
import subprocess

from hostile import Helper, helper
from lib import (Daemon, Mapper, MiB, PAGE, cleanup, done, eq, locked_by_inode, locked_mappings,
                 make_file, ok, run, workdir)

TiB = 1 << 40
d = workdir()
mappers = []
dm = None


def plan(conf):
    r = run(["-c", conf, "--dry-run", "--json"], timeout=60)
    try:
        return {f["path"]: f for f in json.loads(r.stdout)["files"]}, r
    except ValueError:
        return {}, r


def plan_text(conf):
    return run(["-c", conf, "--dry-run"], timeout=60).stdout


try:
    # --- a 1 TiB sparse file -------------------------------------------------------------------
    sparse = os.path.join(d, "libsparse.so")
    with open(sparse, "wb") as f:
        f.write(os.urandom(64 * 1024))  # a little real data at the start
        f.truncate(TiB)
    sst = os.stat(sparse)
    eq(sst.st_size, TiB, "the sparse file is 1 TiB")
    ok(sst.st_blocks * 512 < 1 * MiB, f"it has {sst.st_blocks * 512} bytes allocated")
    # Maps all of it; reads the first 0.0001% (268 pages: data, then holes).
    mappers.append(Mapper(sparse, 0, 100, 0, 0.0001))
    with open(f"/proc/{mappers[-1].pid}/maps") as f:
        ok(any(line.rstrip().endswith(sparse) and " r-xp " in line for line in f),
           "a process maps the sparse file executable")

    # --- dense, bigger than max_file_size -------------------------------------------------------
    big = make_file(os.path.join(d, "libbig.so"), 24 * MiB, seed=2)
    bst = os.stat(big)
    mappers.append(Mapper(big))

    # --- a space and a newline -----------------------------------------------------------------
    odd = os.path.join(d, "lib odd\nname.so")
    make_file(odd, 2 * MiB, seed=3)
    ost = os.stat(odd)
    mappers.append(Mapper(odd))
    with open(f"/proc/{mappers[-1].pid}/maps") as f:
        text = f.read()
    ok("lib odd\\012name.so" in text, "maps shows the newline as \\012")

    # --- named like a deleted file ------------------------------------------------------------
    fake = make_file(os.path.join(d, "libfake.so (deleted)"), MiB, seed=4)
    fst = os.stat(fake)
    make_file(os.path.join(d, "libfake.so"), MiB, seed=5)  # what the stripped name leads to
    fst2 = os.stat(os.path.join(d, "libfake.so"))
    mappers.append(Mapper(fake))

    # --- grows sparse while locked -------------------------------------------------------------
    grow = make_file(os.path.join(d, "libgrow.so"), MiB, seed=6)
    gst = os.stat(grow)
    mappers.append(Mapper(grow))

    for what in ("whole", "resident", "mapped"):
        conf_text = (f"interval = 0\n[lock]\ninclude = ^{d}/\nwhat = {what}\nmax_file_size = 8M\n"
                     f"max_total = 64M\nmax_total_percent = 0\nkeep = 0\n")
        dm = Daemon(d, conf_text)
        ok(dm.wait_ready(), f"{what}: READY=1", dm.log())
        p, r = plan(dm.conf)
        sp = p.get(sparse, {})
        ok(sp.get("reason") == "sparse" and sp.get("selected") is False and not sp.get("lock_bytes"),
           f"{what}: --dry-run --json: the sparse file is skipped, reason sparse", sp or r.stdout)
        rows = [x for x in plan_text(dm.conf).splitlines() if x.endswith(sparse)]
        ok(len(rows) == 1 and rows[0].startswith("skip") and "sparse" in rows[0],
           f"{what}: --dry-run table: skip ... sparse", rows)
        eq(locked_by_inode(dm.pid, sst), (0, 0), f"{what}: nothing of the sparse file is locked")
        eq(locked_by_inode(dm.pid, bst), (8 * MiB, 8 * MiB),
           f"{what}: the 24 MiB file is locked up to max_file_size (8 MiB), resident")
        eq(locked_by_inode(dm.pid, ost), (2 * MiB, 2 * MiB), f"{what}: the odd name is locked")
        eq((locked_by_inode(dm.pid, fst), locked_by_inode(dm.pid, fst2)), ((0, 0), (0, 0)),
           f"{what}: 'libfake.so (deleted)' is taken for deleted: neither it nor libfake.so locked")
        st = dm.status_json()
        paths = {e["path"]: e for e in st["locked"]}
        ok(odd in paths and paths[odd]["bytes"] == 2 * MiB,
           f"{what}: the status JSON holds the real name (newline decoded)", list(paths))
        ok(sparse not in paths, f"{what}: the status file does not list the sparse file")
        ok(st["locked_bytes"] <= st["budget_bytes"], f"{what}: within the budget")
        eq(dm.stop(), 0, f"{what}: SIGTERM exits 0")
        log = dm.log()
        ok("accounting mismatch" not in log and "budget exceeded" not in log,
           f"{what}: the debug build's checks held", log)
        os.unlink(dm.state_file)

    # --- names on the way out: --status, --dry-run, state ------------------------------------
    conf_text = (f"interval = 0\n[lock]\ninclude = ^{d}/\nwhat = whole\nmax_file_size = 8M\n"
                 f"max_total = 64M\nmax_total_percent = 0\nkeep = 2\n")
    dm = Daemon(d, conf_text)
    ok(dm.wait_ready(), "READY=1", dm.log())
    r = run(["-c", dm.conf, "--status"], timeout=20)
    esc = odd.replace("\n", "%0A")
    lines = r.stdout.splitlines()
    ok(any(x.endswith(" " + esc) for x in lines), "--status shows the name escaped (%0A)", r.stdout)
    ok(not any(x.endswith("name.so") and "%0A" not in x for x in lines),
       "--status prints no bare line break inside the name", r.stdout)
    rows = [x for x in plan_text(dm.conf).splitlines() if esc in x]
    ok(len(rows) == 1 and rows[0].startswith("lock") and rows[0].endswith(" " + esc),
       "--dry-run table: one line, lock, name escaped", rows)
    p, r = plan(dm.conf)
    ok(p.get(odd, {}).get("selected") is True, "--dry-run --json holds the real name", list(p))

    # The state: escaped on one line, restored after a restart with nothing mapping it.
    eq(dm.stop(), 0, "SIGTERM exits 0")
    with open(dm.state_file) as f:
        state = f.read()
    ok(f" {esc}\n" in state and "\nname.so" not in state,
       "the state file lists the name escaped, on one line", state)
    for m in mappers:
        m.stop()
    mappers.clear()
    dm = Daemon(d, conf_text)
    ok(dm.wait_ready(), "restart: READY=1", dm.log())
    eq(locked_by_inode(dm.pid, ost), (2 * MiB, 2 * MiB),
       "restart: the odd name is restored from the state (nothing maps it)")
    eq(locked_by_inode(dm.pid, sst), (0, 0), "restart: nothing of the sparse file")
    eq(dm.stop(), 0, "restart: SIGTERM exits 0")
    os.unlink(dm.state_file)

    # --- a locked file extended to 1 TiB by ftruncate ----------------------------------------------
    mg = Mapper(grow)
    mappers.append(mg)
    dm = Daemon(d, f"interval = 0\n[lock]\ninclude = ^{d}/libgrow\nwhat = whole\n"
                   f"max_file_size = 256M\nmax_total = 512M\nmax_total_percent = 0\nkeep = 0\n")
    ok(dm.wait_ready(), "grow: READY=1", dm.log())
    eq(locked_by_inode(dm.pid, gst), (MiB, MiB), "grow: the 1 MiB file is locked")
    os.truncate(grow, TiB)
    ok(dm.rescan(), "grow: rescan after the file was extended to 1 TiB (holes)")
    rss, size = locked_by_inode(dm.pid, gst)
    # Was a bug: file_refresh() took the new size without the sparse check, and `whole` then
    # locked max_file_size of hole pages: 256 MiB of zeroes for a 1 MiB file.
    ok(size <= MiB, f"grow: no more than its 1 MiB of data is locked after it grew sparse "
                    f"(locked {size / MiB:.1f} MiB)")
    ok(dm.alive(), "grow: the daemon is alive")
    eq(dm.stop(), 0, "grow: SIGTERM exits 0")
finally:
    cleanup(d, dm, mappers)
done()
