#!/usr/bin/env python3
"""The saved state (SPEC: "lock what the saved state lists (so a reboot is protected before the
desktop starts), then scan"), checked in the daemon's smaps:

- round trip: a daemon locks the touched part of a mapped file (resident, 20% touched) and saves
  it at SIGTERM; the state file starts with "prelockd-state 1" and lists exactly the ranges the
  kernel showed locked. The helper exits and the file's page cache is dropped; a new daemon with
  keep = 1 and no process mapping the file has the very same ranges locked, and resident, at
  READY=1. Observed: a restored file counts as last seen before the first pass, so with keep = 1
  it is still locked after the first pass and unlocked by the second.
- a state entry whose file was replaced (other inode, other size) is not restored;
- a corrupt state file (garbage with NUL bytes), a foreign one (/etc/passwd), one with the
  right header but a bad line, and a saved one cut short at a line's end (its end line gone) are
  each ignored with a warning; the daemon runs normally and
  saves a valid state at exit;
- while running, the state is written when the locked set changed, at most once a minute (each
  write is an fsync): the first pass's set at once, a change a moment later only at exit."""
import os
import re
import shutil
import subprocess

from lib import (MiB, PAGE, Daemon, Mapper, done, eq, locked_by_inode, locked_mappings,
                 make_file, ok, workdir)

SIZE = 16 * MiB
d = workdir()
m = dm = None


def ranges(pid, st):
    dev = (os.major(st.st_dev), os.minor(st.st_dev))
    return sorted((x["offset"], x["size"]) for x in locked_mappings(pid)
                  if x["inode"] == st.st_ino and x["dev"] == dev)


def parse_state(path):
    with open(path) as f:
        text = f.read()
    files = []
    for line in text.splitlines()[1:]:
        if line.startswith("F "):
            _, dev, ino, size, mtime, p = line.split(" ", 5)
            files.append({"dev": int(dev), "ino": int(ino), "size": int(size), "path": p,
                          "ranges": []})
        elif line.startswith("R ") and files:
            _, off, ln = line.split()
            files[-1]["ranges"].append((int(off), int(ln)))
    return text, files


def drop_cache(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


try:
    path = make_file(os.path.join(d, "lib.so"), SIZE)
    st = os.stat(path)
    cfg = f"interval = 0\n[lock]\ninclude = ^{d}/\nwhat = resident\nkeep = {{keep}}\n"

    # 1. Lock the touched 20% and save.
    m = Mapper(path, 0, 100, 40, 60)
    dm = Daemon(d, cfg.format(keep=3))
    ok(dm.wait_ready(), "first daemon READY", dm.log())
    saved = ranges(dm.pid, st)
    total = sum(n for _, n in saved)
    ok(SIZE // 5 <= total <= SIZE // 5 + 64 * PAGE,
       f"first daemon: {total} bytes locked, about the touched 20% ({SIZE // 5})")
    rss, size = locked_by_inode(dm.pid, st)
    eq(rss, size, "first daemon: all of it resident")
    eq(dm.stop(), 0, "first daemon: SIGTERM exits 0")
    dm = None
    m.stop()
    m = None

    text, files = parse_state(os.path.join(d, "state"))
    ok(text.startswith("prelockd-state 1\n"), "the state file starts with 'prelockd-state 1'",
       text[:200])
    mine = [f for f in files if f["path"] == path]
    eq(len(mine), 1, "the state file lists the file once")
    if mine:
        eq((mine[0]["dev"], mine[0]["ino"], mine[0]["size"]), (st.st_dev, st.st_ino, SIZE),
           "the state entry has the file's dev, inode and size")
        eq(sorted(mine[0]["ranges"]), saved, "the state ranges are what the kernel showed locked")
    ok(not [x for x in os.listdir(d) if ".tmp" in x], "no temporary file left behind",
       os.listdir(d))
    good_state = text

    # 2. Restore with no process mapping the file, its page cache dropped.
    drop_cache(path)
    r = subprocess.run(["fincore", "-b", "-n", "-o", "RES", path], capture_output=True, text=True)
    ok(r.returncode == 0 and int(r.stdout.split()[0]) < SIZE // 5,
       f"the file's page cache was dropped (fincore RES {r.stdout.strip()})", r.stderr)
    dm = Daemon(d, cfg.format(keep=1))
    ok(dm.wait_ready(), "second daemon READY (no helper running)", dm.log())
    eq(ranges(dm.pid, st), saved, "at READY the saved ranges are locked again")
    rss, size = locked_by_inode(dm.pid, st)
    eq((rss, size), (total, total), "same bytes, all resident (read back from disk)")
    ok(re.search(r"restored 1 files", dm.log()), "the log says what was restored", dm.log())
    ok(dm.rescan(), "second daemon: rescan (pass 2)")
    eq(ranges(dm.pid, st), [], "keep = 1: unlocked by the second pass (nothing maps it)")
    eq(dm.stop(), 0, "second daemon: SIGTERM exits 0")
    dm = None

    # 3. The file was replaced since the state was saved: not restored.
    with open(os.path.join(d, "state"), "w") as f:
        f.write(good_state)
    tmp = make_file(path + ".new", SIZE // 2, seed=5)
    os.rename(tmp, path)
    st2 = os.stat(path)
    dm = Daemon(d, cfg.format(keep=1))
    ok(dm.wait_ready(), "third daemon READY", dm.log())
    eq((ranges(dm.pid, st), ranges(dm.pid, st2)), ([], []),
       "a state entry whose file was replaced is not restored")
    eq(dm.stop(), 0, "third daemon: SIGTERM exits 0")
    dm = None

    # 4. Corrupt, foreign and half-valid state files.
    with open("/etc/passwd", "rb") as f:
        passwd = f.read()
    bad_states = (("garbage", bytes(range(256)) * 8 + b"\0\0\xff"),
                  ("/etc/passwd", passwd),
                  ("a bad line", b"prelockd-state 1\nF 1 2 3 4 " + path.encode() +
                   b"\nR 0 4096\nthis is not a state line\n"),
                  # A saved state cut at a line's end: every line good, the end line gone.
                  ("cut short", good_state[:good_state.rindex("end ")].encode()))
    m = Mapper(path)
    for label, content in bad_states:
        with open(os.path.join(d, "state"), "wb") as f:
            f.write(content)
        dm = Daemon(d, cfg.format(keep=1))
        ok(dm.wait_ready(), f"{label}: READY", dm.log())
        ok(dm.alive(), f"{label}: the daemon runs", dm.log())
        log = dm.log()
        ok(re.search(r"warning.*state", log, re.I) and "not a valid prelockd state file" in log,
           f"{label}: a warning names the bad state file", log)
        if label == "a bad line":
            ok(f"{d}/state:4:" in log, f"{label}: the warning has the line number (4)", log)
        eq(locked_by_inode(dm.pid, st2), (SIZE // 2, SIZE // 2),
           f"{label}: the mapped file is locked as usual")
        ok(dm.rescan(), f"{label}: rescans work")
        eq(dm.stop(), 0, f"{label}: SIGTERM exits 0")
        dm = None
        text, files = parse_state(os.path.join(d, "state"))
        ok(text.startswith("prelockd-state 1\n") and [f["path"] for f in files] == [path],
           f"{label}: a valid state replaced it at exit", text[:300])
    if m:
        m.stop()
        m = None

    # 5. At most one write a minute while running; the last word at exit.
    os.unlink(os.path.join(d, "state"))
    third = make_file(os.path.join(d, "lib3.so"), MiB, seed=3)
    m = Mapper(path)
    dm = Daemon(d, cfg.format(keep=3))
    ok(dm.wait_ready(), "rate: READY", dm.log())
    _, files = parse_state(os.path.join(d, "state"))
    eq([f["path"] for f in files], [path], "rate: the first pass's locked set is saved at once")
    m3 = Mapper(third)
    try:
        ok(dm.rescan(), "rate: rescan after a second file is mapped")
        eq(locked_by_inode(dm.pid, os.stat(third)), (MiB, MiB), "rate: the second file is locked")
        _, files = parse_state(os.path.join(d, "state"))
        eq([f["path"] for f in files], [path], "rate: the state is not written again within "
                                               "the minute")
        eq(dm.stop(), 0, "rate: SIGTERM exits 0")
        dm = None
    finally:
        m3.stop()
    _, files = parse_state(os.path.join(d, "state"))
    eq(sorted(f["path"] for f in files), sorted([path, third]), "rate: at exit the state has both")
finally:
    if dm:
        dm.stop()
    if m:
        m.stop()
    shutil.rmtree(d, ignore_errors=True)
done()
