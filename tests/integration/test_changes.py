#!/usr/bin/env python3
"""Files that change under the daemon (SPEC "Files that change under it"), checked by inode in the
daemon's smaps (VmFlags lo, Size, Rss):

(a) replaced by rename (a package upgrade): the old inode stays locked while a process maps it;
    the new file at the path is not locked until a process maps it; once the last process of the
    old inode exits, the old inode is unlocked at the very next pass although keep = 5.
(b) deleted (unlink) while mapped: the same.
(c) truncated to 0 while locked: the daemon does not die of SIGBUS; the next pass holds nothing
    of it and the kernel agrees (no locked mapping of the inode left).
(d) grown by appending, what = whole: the next pass locks the new size.

Those passes are quick ones (a full pass looks at every file anyway): what tells the daemon is
an inotify watch on each locked inode (set up from the second pass on), checked here in the
fdinfo of its inotify descriptor."""
import os
import re

from lib import (Daemon, Mapper, MiB, SANITIZER, cleanup, done, eq, locked_by_inode,
                 locked_mappings, make_file, ok, workdir)

d = workdir()
mappers = []
dm = None


def inotify_watches(pid):
    """Inodes (as (dev, ino)) watched by the process's inotify descriptors, from fdinfo."""
    out = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") != "anon_inode:inotify":
                continue
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                for line in f:
                    if line.startswith("inotify wd:"):
                        kv = dict(x.split(":", 1) for x in line.split()[1:])
                        dev = int(kv["sdev"], 16)
                        out.add((os.makedev(dev >> 20, dev & 0xfffff), int(kv["ino"], 16)))
        except OSError:
            pass
    return out


def mapper(path):
    m = Mapper(path)
    mappers.append(m)
    return m


try:
    a = make_file(os.path.join(d, "a.so"), 2 * MiB, seed=1)
    b = make_file(os.path.join(d, "b.so"), 3 * MiB, seed=2)
    c = make_file(os.path.join(d, "c.so"), 4 * MiB, seed=3)
    g = make_file(os.path.join(d, "g.so"), 2 * MiB, seed=4)
    st = {p: os.stat(p) for p in (a, b, c, g)}
    ma, mb, mc, mg = mapper(a), mapper(b), mapper(c), mapper(g)
    dm = Daemon(d, f"interval = 0\n[lock]\ninclude = ^{d}/\nwhat = whole\nkeep = 5\n")
    ok(dm.wait_ready(), "READY=1", dm.log())
    for p, size in ((a, 2 * MiB), (b, 3 * MiB), (c, 4 * MiB), (g, 2 * MiB)):
        eq(locked_by_inode(dm.pid, st[p]), (size, size), f"{os.path.basename(p)} locked at start")
    # The first pass only locks; the watches come with the second.
    ok(dm.rescan(), "a second pass")
    watched = inotify_watches(dm.pid)
    ok(all((st[p].st_dev, st[p].st_ino) in watched for p in (a, b, c, g)),
       f"after it, each locked inode has an inotify watch ({len(watched)} watches)")

    # (a) replaced by rename while mapped.
    tmp = make_file(a + ".new", 1 * MiB, seed=9)
    os.rename(tmp, a)
    a_new = os.stat(a)
    ok(a_new.st_ino != st[a].st_ino, "a.so now names a new inode")
    # (b) deleted while mapped.
    os.unlink(b)
    ok(dm.rescan(), "rescan after replacing a.so and deleting b.so")
    eq(locked_by_inode(dm.pid, st[a]), (2 * MiB, 2 * MiB),
       "(a) the replaced inode stays locked while mapped")
    eq(locked_by_inode(dm.pid, a_new), (0, 0), "(a) the new a.so is not locked: nothing maps it")
    eq(locked_by_inode(dm.pid, st[b]), (3 * MiB, 3 * MiB),
       "(b) the deleted inode stays locked while mapped")

    ma2 = mapper(a)
    ok(dm.rescan(), "rescan after a process maps the new a.so")
    eq(locked_by_inode(dm.pid, a_new), (1 * MiB, 1 * MiB), "(a) the new a.so is locked now")
    eq(locked_by_inode(dm.pid, st[a]), (2 * MiB, 2 * MiB),
       "(a) the old inode is still locked: still mapped")

    ma.stop()
    mb.stop()
    ok(dm.rescan(), "rescan after the old a.so's and b.so's processes exited")
    eq(locked_by_inode(dm.pid, st[a]), (0, 0),
       "(a) the replaced inode is unlocked at the next pass although keep = 5")
    eq(locked_by_inode(dm.pid, st[b]), (0, 0),
       "(b) the deleted inode is unlocked at the next pass although keep = 5")
    eq(locked_by_inode(dm.pid, a_new), (1 * MiB, 1 * MiB), "(a) the new a.so stays locked")
    watched = inotify_watches(dm.pid)
    ok((st[a].st_dev, st[a].st_ino) not in watched and (st[b].st_dev, st[b].st_ino) not in watched
       and (a_new.st_dev, a_new.st_ino) in watched,
       "the watches follow the locked set: the unlocked inodes are no longer watched")
    ok(not [m for m in locked_mappings(dm.pid) if m["path"].endswith(" (deleted)")],
       "no locked mapping of a deleted file is left",
       "\n".join(str(m) for m in locked_mappings(dm.pid)))
    held = os.listdir(f"/proc/{dm.pid}/fd")
    targets = [os.readlink(f"/proc/{dm.pid}/fd/{x}") for x in held if os.path.exists(f"/proc/{dm.pid}/fd/{x}")]
    if SANITIZER == "valgrind":
        # Valgrind's own descriptors are in the process too: the copies of /proc/self/cmdline
        # and auxv it serves the program, unlinked from the moment they are made.
        targets = [t for t in targets if not re.search(r"/valgrind_proc_\d+_(cmdline|auxv)_", t)]
    ok(not [t for t in targets if t.endswith(" (deleted)")],
       "no descriptor of a deleted file is held", "\n".join(targets))

    # keep still applies to a file that was merely unmapped, so the above is not keep = 0.
    ma2.stop()
    ok(dm.rescan(), "rescan after the new a.so's process exited")
    eq(locked_by_inode(dm.pid, a_new), (1 * MiB, 1 * MiB),
       "an unmapped but unchanged file is kept (keep = 5)")

    # (c) truncated to 0 while locked (its process still maps it but touches nothing).
    os.truncate(c, 0)
    ok(dm.rescan(), "(c) rescan after truncating c.so to 0")
    ok(dm.alive(), "(c) the daemon survived the truncation (no SIGBUS)", dm.log())
    eq(locked_by_inode(dm.pid, st[c]), (0, 0), "(c) the kernel shows no locked mapping of c.so")
    ent = [e for e in dm.status_json()["locked"] if e["path"] == c]
    ok(not ent or ent[0]["bytes"] == 0, "(c) the status file shows nothing locked of c.so",
       str(ent))
    ok(dm.rescan(), "(c) another rescan")
    ok(dm.alive(), "(c) the daemon is still alive")
    eq(locked_by_inode(dm.pid, st[c]), (0, 0), "(c) still nothing locked of c.so")
    # Grown back in place (same inode): locked again, at the new size.
    with open(c, "r+b") as f:
        f.write(os.urandom(1 * MiB))
        f.flush()
        os.fsync(f.fileno())
    ok(dm.rescan(), "(c) rescan after c.so grew back to 1 MiB")
    # Nothing of c.so is locked (so it has no watch) and it is 0 bytes: a still-mapped file of
    # size 0 is opened again every pass, or it would never be locked again ("cp new.so old.so"
    # over a mapped library does exactly this: O_TRUNC, then write, same inode).
    eq(locked_by_inode(dm.pid, st[c]), (1 * MiB, 1 * MiB),
       "(c) c.so, truncated and grown back, is locked at its new size")

    # (d) grows by appending, what = whole.
    with open(g, "ab") as f:
        f.write(os.urandom(MiB + 8192))
        f.flush()
        os.fsync(f.fileno())
    ok(dm.rescan(), "(d) rescan after appending 1 MiB + 8 KiB to g.so")
    want = 3 * MiB + 8192
    eq(locked_by_inode(dm.pid, st[g]), (want, want), "(d) g.so is locked at its new size")
    ent = [e for e in dm.status_json()["locked"] if e["path"] == g]
    eq([(e["bytes"], e["size"]) for e in ent], [(want, want)],
       "(d) the status file agrees on bytes and size")
    # Truncated to a partial size: whatever lies past the new end is unlocked.
    os.truncate(g, MiB + 100)
    ok(dm.rescan(), "(d) rescan after truncating g.so to 1 MiB + 100 bytes")
    want = MiB + 4096
    # The kernel unmaps the whole large folio it splits at the new end, from our mapping too: the
    # kept piece must be populated again, or its last pages are counted locked but are not
    # (Rss < Size).
    eq(locked_by_inode(dm.pid, st[g]), (want, want),
       "(d) g.so is locked, and resident, up to its new end")

    eq(dm.stop(), 0, "SIGTERM exits 0")
    log = dm.log()
    ok("accounting mismatch" not in log and "budget exceeded" not in log,
       "the debug build's accounting checks held", log)
finally:
    cleanup(d, dm, mappers)
done()
