#!/usr/bin/env python3
"""Attack, issue 12 case 8: the status JSON, written with file names that are not UTF-8, and read
back by `prelockd --status`.

A user names the files their processes map as they like: bytes, not text. Files named with
invalid UTF-8 (a stray \\xff\\xfe, a cut two-byte sequence, an encoded surrogate, a '%' next to a
bad byte) and, for contrast, valid names with 'é' and '%41' are mapped and locked:

(a) the status file is valid UTF-8 and valid JSON (Python's strict decoder); every file the
    kernel shows locked (smaps, by inode) is listed; a valid name is listed as it is, without
    the marker; an invalid one has "path_escaped": true and a "path" that percent-decodes (%XX)
    to its exact bytes (README "Status file");
(b) `--dry-run --json` likewise;
(c) `--status` prints valid UTF-8, one line per file, the invalid names %XX-escaped;
(d) the reader is a JSON reader: the same status re-serialised compactly (no spaces) and with
    every non-ASCII character \\u-escaped is read with the same numbers and names;
(e) damaged status files (a bad \\u escape at the very end, cut short, a NUL in a name, deep
    nesting, not an object) make `--status` fail cleanly (exit 0 or 1, no signal), printing
    only valid UTF-8;
(f) a FIFO as the status file: `--status` does not wait for a writer (exits within 5 s).

Observed on main (b0bfd14): (a) the status file holds the raw bytes (UnicodeDecodeError at
the first \\xff), no marker; (b) the same; (c) raw bytes on stdout; (d) "not a prelockd
status file" for the compact form (the hand-written reader wants '": ' with a space);
(e) passed without a sanitizer (the over-read past a bad escape is seen by the fuzzer under
ASan); (f) --status blocked in open() until killed at 5 s.
Fixed in the commit that made this file executable."""
import json
import os
import subprocess
import time

import re

from lib import SLOW, MiB, Daemon, Mapper, cleanup, done, eq, make_file, ok, run, workdir

d = workdir()
dm = None
mappers = []

BAD = [b"lib\xff\xfe.so", b"lib\xc3\x28.so", b"lib\xed\xa0\x80.so", b"lib%\xff.so"]
GOOD = [b"libcaf\xc3\xa9.so", b"lib%41.so"]


def pct_decode(s):
    """What escape_path() undoes: %XX to the byte XX; everything else as UTF-8."""
    out = bytearray()
    b = s.encode("utf-8")
    i = 0
    while i < len(b):
        if b[i] == ord("%") and i + 2 < len(b):
            out.append(int(b[i + 1:i + 3], 16))
            i += 3
        else:
            out.append(b[i])
            i += 1
    return bytes(out)


def locked_by_inode(pid, st):
    """Rss of the daemon's locked mappings of st's inode (lib.locked_by_inode reads smaps as
    strict UTF-8, which these names are not)."""
    dev = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}"
    rss = 0
    cur = False
    with open(f"/proc/{pid}/smaps", errors="surrogateescape") as f:
        for line in f:
            m = re.match(r"^[0-9a-f]+-[0-9a-f]+ \S+ [0-9a-f]+ (\S+) (\d+)", line)
            if m:
                cur = m.group(1) == dev and int(m.group(2)) == st.st_ino
                cur_rss = 0
            elif line.startswith("Rss:"):
                cur_rss = int(line.split()[1]) * 1024
            elif line.startswith("VmFlags:") and cur and " lo" in line:
                rss += cur_rss
    return rss


def utf8(data):
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def check_entries(label, entries, key_bytes):
    """entries: the JSON list of files; key_bytes: {name bytes: wanted bytes or None}."""
    by_name = {}
    for e in entries:
        p = e.get("path", "")
        name = pct_decode(p) if e.get("path_escaped") is True else p.encode("utf-8")
        by_name[name] = e
    for name, want in key_bytes.items():
        full = os.fsencode(d) + b"/" + name
        e = by_name.get(full)
        ok(e is not None, f"{label}: {full!r} is listed (decoded by the documented rule)",
           sorted(by_name)[:10])
        if e is None:
            continue
        if name in GOOD:
            ok(not e.get("path_escaped") and e["path"].encode("utf-8") == full,
               f"{label}: the valid name {full!r} is listed as it is, unmarked", e)
        else:
            eq(e.get("path_escaped"), True, f"{label}: {full!r} is marked path_escaped")
        if want is not None:
            got = e.get("bytes", e.get("lock_bytes"))
            eq(got, want, f"{label}: {full!r}: bytes as the kernel shows locked")


try:
    names = BAD + GOOD
    sts = {}
    for i, n in enumerate(names):
        path = os.fsencode(d) + b"/" + n
        make_file(path, MiB, seed=i + 1)
        sts[n] = os.stat(path)
        mappers.append(Mapper(os.fsdecode(path)))
    conf = f"interval = 0\n[lock]\ninclude = ^{d}/\nwhat = whole\nkeep = 0\n"
    dm = Daemon(d, conf)
    ok(dm.wait_ready(60 * SLOW), "READY=1", dm.log())
    locked = {n: locked_by_inode(dm.pid, sts[n]) for n in names}
    eq(sorted(locked.values()), [MiB] * len(names), "the kernel shows every file locked, 1 MiB each")

    # --- (a) the status file ------------------------------------------------------------------
    with open(dm.status_file, "rb") as f:
        raw = f.read()
    ok(utf8(raw), "(a) the status file is valid UTF-8", repr(raw[:400]))
    try:
        st = json.loads(raw.decode("utf-8"))
    except ValueError as e:
        st = None
        ok(False, "(a) the status file is valid JSON", str(e))
    if st is not None:
        ok(True, "(a) the status file is valid JSON")
        check_entries("(a) status", st["locked"], locked)

    # --- (b) --dry-run --json -----------------------------------------------------------------
    r = subprocess.run([os.environ.get("PRELOCKD_RELEASE", "prelockd"), "-c", dm.conf,
                        "--dry-run", "--json"], capture_output=True, timeout=60 * SLOW)
    ok(r.returncode == 0 and utf8(r.stdout), "(b) --dry-run --json prints valid UTF-8",
       repr(r.stdout[:400]) + repr(r.stderr[-400:]))
    try:
        plan = json.loads(r.stdout.decode("utf-8"))
        check_entries("(b) --dry-run --json", plan["files"], {n: None for n in names})
    except ValueError as e:
        ok(False, "(b) --dry-run --json is valid JSON", str(e))

    # --- (c) --status -------------------------------------------------------------------------
    r = subprocess.run([os.environ.get("PRELOCKD_RELEASE", "prelockd"), "-c", dm.conf,
                        "--status"], capture_output=True, timeout=20 * SLOW)
    ok(r.returncode == 0 and utf8(r.stdout), "(c) --status prints valid UTF-8",
       repr(r.stdout[:600]) + repr(r.stderr[-400:]))
    text = r.stdout.decode("utf-8", "replace")
    for n in BAD:
        want = "".join(c if 0x20 < ord(c) < 0x7f and c not in "%\\" else f"%{ord(c):02X}"
                       for c in n.decode("latin-1"))
        ok(any(line.endswith(f"{d}/{want}") for line in text.splitlines()),
           f"(c) --status shows {n!r} as {want}", text)
    ok(any(line.endswith(f"{d}/libcafé.so") for line in text.splitlines()),
       "(c) --status shows the valid name with é as it is", text)
    eq(len([x for x in text.splitlines() if x.rstrip().endswith(".so")]), len(names),
       "(c) --status: one line per file")
    eq(dm.stop(), 0, "SIGTERM exits 0")
    dm_conf = dm.conf
    dm = None

    # --- (d) the same status, other JSON spellings ----------------------------------------------
    alt = os.path.join(d, "status-alt")
    altconf = os.path.join(d, "alt.conf")
    with open(altconf, "w") as f:
        f.write(f"[daemon]\nstatus_file = {alt}\n")
    if st is None:  # main: make a valid document of the same numbers to read back
        st = {"version": 1, "pid": 1, "pass": 1, "files": 1, "locked_bytes": MiB,
              "budget_bytes": 2 * MiB, "processes": 1,
              "locked": [{"path": f"{d}/libcafé.so", "bytes": MiB, "size": MiB, "ranges": 1,
                          "processes": 1, "critical": False}]}
    for label, text in (("compact", json.dumps(st, separators=(",", ":"))),
                        ("\\u-escaped", json.dumps(st, ensure_ascii=True, indent=2))):
        with open(alt, "w") as f:
            f.write(text)
        r = run(["-c", altconf, "--status"], timeout=20 * SLOW)
        head = r.stdout.splitlines()[0] if r.stdout else ""
        ok(r.returncode == 0 and f"{st['files']} files" in head and f"pass {st['pass']}" in head,
           f"(d) {label} JSON: --status reads the same numbers", r.stdout[:300] + r.stderr)
        ok(f"{d}/libcafé.so" in r.stdout, f"(d) {label} JSON: names decoded", r.stdout[:800])

    # --- (e) damaged status files -------------------------------------------------------------
    good = json.dumps(st)
    damaged = {
        "bad escape at the end": b'{"files": 1, "locked_bytes": 1, "locked": [{"path": "/x\\u00',
        "bad escape, short": b'{"files": 1, "locked_bytes": 1, "locked": [{"path": "\\u1"',
        "cut short": good.encode()[: len(good) // 2],
        "NUL in a name": good.replace("libcaf", "lib\\u0000caf").encode(),
        "deep nesting": b'{"files": 1, "locked_bytes": 1, "locked": ' + b"[" * 100000,
        "not an object": b'[1, 2, 3]',
        "numbers too big": b'{"files": 99999999999999999999999, "locked_bytes": -5, "locked": []}',
        "raw bytes": b'{"files": 1, "locked_bytes": 1, "locked": [{"path": "/\xff\xfe", '
                     b'"bytes": 1}]}',
    }
    for label, data in damaged.items():
        with open(alt, "wb") as f:
            f.write(data)
        r = subprocess.run([os.environ.get("PRELOCKD_RELEASE", "prelockd"), "-c", altconf,
                            "--status"], capture_output=True, timeout=20 * SLOW)
        ok(r.returncode in (0, 1) and utf8(r.stdout),
           f"(e) {label}: --status exits {r.returncode} (0 or 1, no crash), valid UTF-8 out",
           repr(r.stdout[:300]) + repr(r.stderr[-300:]))

    # --- (f) a FIFO as the status file --------------------------------------------------------
    os.unlink(alt)
    os.mkfifo(alt, 0o600)
    t0 = time.monotonic()
    try:
        r = subprocess.run([os.environ.get("PRELOCKD_RELEASE", "prelockd"), "-c", altconf,
                            "--status"], capture_output=True, timeout=5 * SLOW)
        rc = r.returncode
    except subprocess.TimeoutExpired:
        rc = None
    ok(rc not in (None, 0), f"(f) a FIFO as the status file: --status fails at once (exit {rc}, "
                            f"{time.monotonic() - t0:.1f} s)")
finally:
    cleanup(d, dm, mappers)
done()
