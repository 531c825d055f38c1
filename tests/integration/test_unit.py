#!/usr/bin/env python3
"""The unit that `make install` generates, checked by systemd-analyze: `verify` finds nothing to
say about it (its ExecStart binary and its Documentation= man pages included), and
`security --offline=yes` rates its exposure at most 1.0, the number recorded in the template's
header. The unit is installed with every path under a temporary directory (PREFIX, SYSCONFDIR,
UNITDIR), so that its ExecStart names a binary that exists and nothing touches the system."""
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import ROOT, done, eq, ok, workdir  # noqa: E402

BIN = os.environ.get("PRELOCKD_RELEASE", os.path.join(ROOT, "prelockd"))
MAX_EXPOSURE = 1.0
CLEAN_ENV = ("PREFIX", "SBINDIR", "MANDIR", "SYSCONFDIR", "UNITDIR", "DESTDIR", "BIN", "BUILD",
             "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")


def analyze(args, manpath=None):
    env = {k: v for k, v in os.environ.items() if k != "MANPATH"}
    env["SYSTEMD_PAGER"] = ""
    env["SYSTEMD_LOG_COLOR"] = "0"
    if manpath is not None:
        env["MANPATH"] = manpath
    p = subprocess.run(["systemd-analyze"] + args, env=env, capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


def about(out, unit):
    """The lines of systemd-analyze output about our unit: verify also loads the host's units and
    may complain about those (memlockd.service's StandardOutput=syslog, for one)."""
    name = os.path.basename(unit)
    return [l for l in out.splitlines() if l.startswith(name + ":") or unit in l]


def exposure(out):
    """The number of the last line: "→ Overall exposure level for prelockd.service: 0.7 SAFE 😀"."""
    lines = [l for l in out.splitlines() if l.strip()]
    m = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", lines[-1]) if lines else None
    return float(m.group(1)) if m else None


if shutil.which("systemd-analyze") is None:
    ok(False, "systemd-analyze is installed (package systemd)")
    done()

work = workdir("prelockd-unit-")
try:
    prefix = os.path.join(work, "usr")
    mandir = os.path.join(prefix, "share", "man")
    sysconfdir = os.path.join(work, "etc")
    unitdir = os.path.join(work, "units")
    env = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV}
    p = subprocess.run(["make", "--no-print-directory", "-C", ROOT, "install", f"BIN={BIN}", "-o", BIN,
                        f"BUILD={os.path.join(work, 'build')}", "DESTDIR=", f"PREFIX={prefix}",
                        f"SYSCONFDIR={sysconfdir}", f"UNITDIR={unitdir}"],
                       env=env, capture_output=True, text=True)
    ok(p.returncode == 0, "make install with every path in a temporary directory exits 0", p.stdout + p.stderr)
    unit = os.path.join(unitdir, "prelockd.service")
    with open(unit) as f:
        text = f.read()
    eq([l for l in text.splitlines() if l.startswith("ExecStart=")],
       [f"ExecStart={prefix}/sbin/prelockd -c {sysconfdir}/prelockd.conf"], "the unit starts the installed binary")

    # verify: the man pages named in Documentation= are looked up with man(1), on MANPATH.
    if shutil.which("man"):
        rc, out = analyze(["verify", unit], manpath=mandir)
        ok(rc == 0 and not about(out, unit), "systemd-analyze verify: no message about the unit, exit 0",
           f"exit status {rc}\n" + out)
        # The two checks it makes that a stand-in could fake: they do fail when they should.
        empty = os.path.join(work, "no-man")
        os.mkdir(empty)
        rc, out = analyze(["verify", unit], manpath=empty)
        ok(rc != 0 and any("prelockd(8)" in l for l in about(out, unit)),
           "verify without the man pages on MANPATH fails, naming man:prelockd(8)", out)
    else:
        rc, out = analyze(["verify", "--man=no", unit])
        ok(rc == 0 and not about(out, unit), "systemd-analyze verify --man=no (man(1) is not installed)",
           f"exit status {rc}\n" + out)
        ok(True, "verify without the man pages # SKIP man(1) is not installed (package man-db)")
    broken = os.path.join(work, "broken", "prelockd.service")
    os.makedirs(os.path.dirname(broken))
    with open(broken, "w") as f:
        f.write(text.replace(f"ExecStart={prefix}/sbin/prelockd", f"ExecStart={work}/nonexistent/prelockd"))
    rc, out = analyze(["verify", "--man=no", broken])
    ok(rc != 0 and any("nonexistent/prelockd" in l for l in about(out, broken)),
       "verify of a copy whose ExecStart names no file fails", out)

    # security: the overall exposure, the last line of the table.
    rc, out = analyze(["security", "--offline=yes", unit])
    eq(rc, 0, "systemd-analyze security --offline=yes exits 0")
    score = exposure(out)
    ok(score is not None, "security: the last line gives the overall exposure", out[-500:])
    if score is not None:
        ok(score <= MAX_EXPOSURE, f"security: overall exposure {score} <= {MAX_EXPOSURE}", out)
        with open(os.path.join(ROOT, "prelockd.service")) as f:
            m = re.search(r"overall exposure level (\d+(?:\.\d+)?)", f.read())
        recorded = float(m.group(1)) if m else None
        eq(score, recorded, "security: the exposure recorded in prelockd.service's header")
    # --threshold takes the exposure in tenths: 10 fails on anything above 1.0.
    rc, out = analyze(["security", "--offline=yes", "--threshold=10", unit])
    eq(rc, 0, "security --threshold=10 (exposure 1.0) passes")
finally:
    shutil.rmtree(work, ignore_errors=True)
done()
