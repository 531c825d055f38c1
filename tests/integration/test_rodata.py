#!/usr/bin/env python3
"""Read-only data counts as much as code (issue 11 item 1): real programs read their read-only
data (.rodata, fonts, locale and ICU data) on every action. One file is mapped three ways by
three processes: as code (r-x), as read-only data (r--) and writable (rw-p); a second file only
writable and shared (rw-s). Checked in the daemon's smaps (VmFlags lo, offsets, Rss), not in
what it says: with read_only_data = yes (the default) the used pages of the code and data
mappings are locked and none of the writable ones; with no, only code; never a writable
mapping; --dry-run and the status file show each file's kind."""
import json
import os
import subprocess

from lib import (MiB, PAGE, PRELOCKD, Daemon, Mapper, cleanup, done, eq, locked_mappings,
                 make_file, ok, workdir)

SIZE = 8 * MiB
NPAGES = SIZE // PAGE


def page_range(first, last):
    return set(range(int(NPAGES * first / 100), int(NPAGES * last / 100)))


def locked_pages(pid, st):
    """File pages of st's inode that the daemon holds locked and resident (by smaps offsets;
    a locked VMA of the daemon is populated whole, so Rss == Size)."""
    dev = (os.major(st.st_dev), os.minor(st.st_dev))
    out = set()
    for m in locked_mappings(pid):
        if m["inode"] == st.st_ino and m["dev"] == dev and m["rss"] == m["size"]:
            first = m["offset"] // PAGE
            out |= set(range(first, first + m["size"] // PAGE))
    return out


d = workdir()
dm = None
mappers = []
try:
    lib = make_file(os.path.join(d, "libmixed.so"), SIZE, seed=1)
    shared = make_file(os.path.join(d, "shared.db"), MiB, seed=2)
    lst, sst = os.stat(lib), os.stat(shared)
    code, data, writable = page_range(0, 10), page_range(50, 60), page_range(80, 90)
    mappers += [Mapper(lib, 0, 25, 0, 10, prot="rx"), Mapper(lib, 50, 75, 50, 60, prot="r"),
                Mapper(lib, 80, 90, prot="rwp"), Mapper(shared, prot="rws")]
    base = f"interval = 0\n[lock]\ninclude = ^{d}/\nkeep = 0\n"

    # --- the default: code and read-only data ----------------------------------------------
    dm = Daemon(d, base + "what = resident\n")
    ok(dm.wait_ready(), "default: READY=1", dm.log())
    got = locked_pages(dm.pid, lst)
    ok(code <= got, f"default: the {len(code)} used code pages are locked", sorted(code - got)[:8])
    ok(data <= got, f"default: the {len(data)} used read-only data pages are locked",
       sorted(data - got)[:8])
    eq(len(got & writable), 0, "default: no page of the writable private mapping is locked")
    # Gap filling and fault-around add a few pages at the edges, never whole ranges.
    ok(len(got) <= len(code) + len(data) + 2 * 64, f"default: {len(got)} pages locked, about "
       f"the {len(code) + len(data)} used", len(got))
    eq(locked_pages(dm.pid, sst), set(), "default: nothing of the file only mapped writable")
    st = dm.status_json()
    kinds = {e["path"]: e.get("kind") for e in st["locked"]}
    eq(kinds.get(lib), "code+data", "default: the status file says code+data")
    ok(shared not in kinds, "default: the status file does not list the writable-only file")
    dm.stop()
    dm = None
    os.unlink(os.path.join(d, "state"))

    r = subprocess.run([PRELOCKD, "-c", os.path.join(d, "prelockd.conf"), "--dry-run", "--json"],
                       capture_output=True, text=True, timeout=60)
    plan = {f["path"]: f for f in json.loads(r.stdout)["files"]} if r.returncode == 0 else {}
    eq(plan.get(lib, {}).get("kind"), "code+data", "--dry-run --json: kind code+data")
    ok(shared not in plan, "--dry-run --json: the writable-only file is no candidate")
    r = subprocess.run([PRELOCKD, "-c", os.path.join(d, "prelockd.conf"), "--dry-run"],
                       capture_output=True, text=True, timeout=60)
    rows = [x for x in r.stdout.splitlines() if x.endswith(lib)]
    ok(len(rows) == 1 and " code+data " in rows[0], "--dry-run table: the KIND column", r.stdout)

    # --- code only ----------------------------------------------------------------------------
    dm = Daemon(d, base + "what = resident\nread_only_data = no\n")
    ok(dm.wait_ready(), "code only: READY=1", dm.log())
    got = locked_pages(dm.pid, lst)
    ok(code <= got, "code only: the used code pages are locked")
    eq(len(got & data), 0, "code only: no read-only data page is locked")
    eq(len(got & writable), 0, "code only: no writable page is locked")
    eq({e["path"]: e.get("kind") for e in dm.status_json()["locked"]}.get(lib), "code",
       "code only: the status file says code")
    dm.stop()
    dm = None
    os.unlink(os.path.join(d, "state"))

    # --- mapped: the mapped ranges of code and data, never the writable one --------------------
    dm = Daemon(d, base + "what = mapped\n")
    ok(dm.wait_ready(), "mapped: READY=1", dm.log())
    got = locked_pages(dm.pid, lst)
    ok(page_range(0, 25) <= got and page_range(50, 75) <= got,
       "mapped: both mapped ranges are locked whole")
    eq(len(got & writable), 0, "mapped: no page of the writable mapping")
    eq(locked_pages(dm.pid, sst), set(), "mapped: nothing of the writable-only file")
    dm.stop()
    dm = None
    ok(all(m.proc.poll() is None for m in mappers), "the mapping processes lived through it")
finally:
    cleanup(d, dm, mappers)
done()
