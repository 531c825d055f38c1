#!/usr/bin/env python3
"""make install / make uninstall into a DESTDIR: the exact tree (files, modes, contents), the unit's
substituted paths, a config the administrator edited surviving a second install and the
uninstall, and every variable (PREFIX, SBINDIR, MANDIR, SYSCONFDIR, UNITDIR) honoured. Nothing is
installed outside temporary directories, and nothing is compiled: make is told the binary that
`make check` built is up to date."""
import os
import re
import shutil
import stat
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import ROOT, done, eq, ok, workdir  # noqa: E402

BIN = os.environ.get("PRELOCKD_RELEASE", os.path.join(ROOT, "prelockd"))
INSTALL_VARS = ("PREFIX", "SBINDIR", "MANDIR", "SYSCONFDIR", "UNITDIR", "DESTDIR", "BIN", "BUILD")


def make(target, build, **variables):
    """make TARGET in the checkout with VAR=value arguments; returns (status, output). The
    variables of the `make check` that runs us (MAKEFLAGS carries its command line) must not leak
    in, and the umask is restrictive to show that the modes do not depend on it."""
    env = {k: v for k, v in os.environ.items()
           if k not in INSTALL_VARS and k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
    args = ["make", "--no-print-directory", "-C", ROOT, target, f"BIN={BIN}", f"BUILD={build}", "-o", BIN]
    args += [f"{k}={v}" for k, v in variables.items()]
    p = subprocess.run(args, env=env, capture_output=True, text=True, preexec_fn=lambda: os.umask(0o077))
    return p.returncode, p.stdout + p.stderr


def same(got, want, name):
    """ok() for big values: the name stays short; a failure lists what differs."""
    if got == want:
        return ok(True, name)
    if isinstance(got, dict) and isinstance(want, dict):
        detail = [f"{k}: got {got.get(k)!r}, want {want.get(k)!r}"
                  for k in sorted(set(got) | set(want)) if got.get(k) != want.get(k)]
    elif isinstance(got, list) and isinstance(want, list):
        detail = [f"missing: {x!r}" for x in want if x not in got] + \
                 [f"extra:   {x!r}" for x in got if x not in want]
        detail = detail or [f"got:  {got!r}", f"want: {want!r}"]
    else:
        detail = [f"got:  {got!r}", f"want: {want!r}"]
    return ok(False, name, "\n".join(detail))


def default_unitdir():
    """What the Makefile should pick: systemd.pc's systemdsystemunitdir, else /lib/systemd/system."""
    try:
        p = subprocess.run(["pkg-config", "--variable=systemdsystemunitdir", "systemd"],
                           capture_output=True, text=True)
        if p.returncode == 0 and p.stdout.strip():
            return p.stdout.strip()
    except FileNotFoundError:
        pass
    return "/lib/systemd/system"


def tree(top):
    """{relative path: (kind, mode)} of everything under top; kind is 'd', 'f' or 'l'."""
    out = {}
    for d, dirs, files in os.walk(top):
        for name in dirs + files:
            p = os.path.join(d, name)
            st = os.lstat(p)
            kind = "d" if stat.S_ISDIR(st.st_mode) else "l" if stat.S_ISLNK(st.st_mode) else "f"
            out[os.path.relpath(p, top)] = (kind, stat.S_IMODE(st.st_mode))
    return out


def expected_tree(paths):
    """paths: {absolute path: mode} of the installed files; adds their parent directories, 0755."""
    want = {}
    for path, mode in paths.items():
        rel = path.lstrip("/")
        want[rel] = ("f", mode)
        parent = os.path.dirname(rel)
        while parent:
            want[parent] = ("d", 0o755)
            parent = os.path.dirname(parent)
    return want


def files_only(t):
    return sorted(p for p, (kind, _) in t.items() if kind != "d")


def read(path, mode="r"):
    with open(path, mode) as f:
        return f.read()


def check_unit(text, sbindir, sysconfdir, name):
    """The installed unit is the top-level prelockd.service (written for /usr/sbin and /etc) with
    this install's paths in their place: same directives in the same order, ExecStart at the
    installed binary and config, and no other path to the binary or the config left."""
    execstart = [l for l in text.splitlines() if l.startswith("ExecStart=")]
    eq(execstart, [f"ExecStart={sbindir}/prelockd -c {sysconfdir}/prelockd.conf"], f"{name}: ExecStart")
    shipped = read(os.path.join(ROOT, "prelockd.service"))
    if sbindir != "/usr/sbin":
        ok("/usr/sbin/prelockd" not in text, f"{name}: /usr/sbin/prelockd is nowhere in the unit")
    if sysconfdir != "/etc":
        ok("/etc/prelockd.conf" not in text, f"{name}: /etc/prelockd.conf is nowhere in the unit")
    template = shipped.replace("/usr/sbin/prelockd", f"{sbindir}/prelockd")
    template = template.replace("/etc/prelockd.conf", f"{sysconfdir}/prelockd.conf")

    def directives(t):
        return [l for l in t.splitlines() if l.strip() and not l.lstrip().startswith(("#", ";"))]
    same(directives(text), directives(template), f"{name}: the unit's directives are prelockd.service's")
    if (sbindir, sysconfdir) == ("/usr/sbin", "/etc"):
        # The Debian layout: the shipped file as it is, after the line that says where it came from.
        first, _, rest = text.partition("\n")
        ok(first.startswith("# Generated from prelockd.service"), f"{name}: first line names the source",
           first)
        ok(rest == shipped, f"{name}: for /usr/sbin and /etc, the unit is prelockd.service unchanged")


# The real system, before: none of this may change.
real_paths = ["/usr/sbin/prelockd", "/usr/local/sbin/prelockd", "/etc/prelockd.conf",
              "/usr/local/etc/prelockd.conf", "/lib/systemd/system/prelockd.service",
              "/usr/lib/systemd/system/prelockd.service", "/etc/systemd/system/prelockd.service",
              os.path.join(default_unitdir(), "prelockd.service"),
              "/usr/share/man/man8/prelockd.8", "/usr/local/share/man/man8/prelockd.8",
              "/usr/share/man/man5/prelockd.conf.5", "/usr/local/share/man/man5/prelockd.conf.5"]


def snapshot():
    out = {}
    for p in real_paths:
        try:
            st = os.lstat(p)
            out[p] = (st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            out[p] = None
    return out


before = snapshot()
work = workdir("prelockd-install-")
build = os.path.join(work, "build")
try:
    shipped_conf = read(os.path.join(ROOT, "prelockd.conf"))
    binary = read(BIN, "rb")
    unitdir = default_unitdir()

    # --- 1. PREFIX=/usr SYSCONFDIR=/etc into a fresh DESTDIR: the exact tree.
    dest = os.path.join(work, "dest")
    v = dict(DESTDIR=dest, PREFIX="/usr", SYSCONFDIR="/etc")
    rc, out = make("install", build, **v)
    ok(rc == 0, "make install into a DESTDIR exits 0", out)
    files = {"/usr/sbin/prelockd": 0o755, "/etc/prelockd.conf": 0o644,
             f"{unitdir}/prelockd.service": 0o644,
             "/usr/share/man/man8/prelockd.8": 0o644, "/usr/share/man/man5/prelockd.conf.5": 0o644}
    got = tree(dest)
    want = expected_tree(files)
    same(sorted(got), sorted(want), "install: exactly the five files and their directories")
    same({p: oct(m) for p, (_, m) in got.items()}, {p: oct(m) for p, (_, m) in want.items()},
         "install: files 0755 (binary) or 0644, directories 0755, under umask 077")
    d = lambda p: os.path.join(dest, p.lstrip("/"))  # noqa: E731
    ok(read(d("/usr/sbin/prelockd"), "rb") == binary, "install: the binary is the built one")
    ok(read(d("/etc/prelockd.conf")) == shipped_conf, "install: the config is the shipped prelockd.conf")
    ok(read(d("/usr/share/man/man8/prelockd.8")) == read(os.path.join(ROOT, "man/prelockd.8")),
       "install: prelockd.8 is man/prelockd.8, uncompressed")
    ok(read(d("/usr/share/man/man5/prelockd.conf.5")) == read(os.path.join(ROOT, "man/prelockd.conf.5")),
       "install: prelockd.conf.5 is man/prelockd.conf.5, uncompressed")
    unit_path = d(f"{unitdir}/prelockd.service")
    if os.path.exists(unit_path):
        check_unit(read(unit_path), "/usr/sbin", "/etc", "install")
    ok(dest not in read(unit_path) if os.path.exists(unit_path) else False,
       "install: DESTDIR does not appear in the unit")
    eq(sorted(os.listdir(build)), ["prelockd.service"], "install: the generated unit is in BUILD, nothing else")

    # --- 2. Install again over an edited config: kept, while the other files are replaced.
    edited = shipped_conf + "; edited by test_install\n[lock]\nkeep = 5\n"
    with open(d("/etc/prelockd.conf"), "w") as f:
        f.write(edited)
    with open(d("/usr/sbin/prelockd"), "wb") as f:
        f.write(b"not the binary")
    os.unlink(d("/usr/share/man/man8/prelockd.8"))
    rc, out = make("install", build, **v)
    ok(rc == 0, "second make install exits 0", out)
    ok(read(d("/etc/prelockd.conf")) == edited, "second install: the edited config is not overwritten")
    ok(re.search(r"prelockd\.conf exists: kept", out), "second install: says that it kept the config", out)
    ok(read(d("/usr/sbin/prelockd"), "rb") == binary, "second install: the binary is replaced")
    ok(os.path.exists(d("/usr/share/man/man8/prelockd.8")), "second install: the missing man page is back")
    same(tree(dest), want, "second install: the same tree and modes")

    # --- 3. Uninstall: everything goes but the edited config.
    rc, out = make("uninstall", build, **v)
    ok(rc == 0, "make uninstall exits 0", out)
    eq(files_only(tree(dest)), ["etc/prelockd.conf"], "uninstall: only the edited config is left")
    ok(read(d("/etc/prelockd.conf")) == edited, "uninstall: the edited config is untouched")
    ok(re.search(r"prelockd\.conf differs from the shipped prelockd\.conf: kept", out),
       "uninstall: says that it kept the edited config", out)

    # A config identical to the shipped one is the package's own: uninstall removes it.
    with open(d("/etc/prelockd.conf"), "w") as f:
        f.write(shipped_conf)
    rc, out = make("uninstall", build, **v)
    ok(rc == 0, "uninstall with the shipped config exits 0", out)
    eq(files_only(tree(dest)), [], "uninstall: an unedited config is removed")
    rc, out = make("uninstall", build, **v)
    ok(rc == 0, "uninstall of nothing exits 0", out)

    # A config that is a symbolic link (to the shipped file, even) is the administrator's doing.
    rc, out = make("install", build, **v)
    ok(rc == 0, "install again after uninstall exits 0", out)
    os.unlink(d("/etc/prelockd.conf"))
    os.symlink(os.path.join(ROOT, "prelockd.conf"), d("/etc/prelockd.conf"))
    rc, out = make("uninstall", build, **v)
    ok(rc == 0, "uninstall with a symlinked config exits 0", out)
    eq(files_only(tree(dest)), ["etc/prelockd.conf"], "uninstall: a symlinked config is kept")
    os.unlink(d("/etc/prelockd.conf"))

    # --- 4. Every directory variable honoured, in install and uninstall.
    dest2 = os.path.join(work, "dest2")
    v2 = dict(DESTDIR=dest2, PREFIX="/opt/pl", SBINDIR="/opt/pl/bin", MANDIR="/opt/pl/doc/man",
              SYSCONFDIR="/opt/pl/conf", UNITDIR="/opt/pl/units")
    rc, out = make("install", build, **v2)
    ok(rc == 0, "make install with every variable set exits 0", out)
    want2 = expected_tree({"/opt/pl/bin/prelockd": 0o755, "/opt/pl/conf/prelockd.conf": 0o644,
                           "/opt/pl/units/prelockd.service": 0o644,
                           "/opt/pl/doc/man/man8/prelockd.8": 0o644,
                           "/opt/pl/doc/man/man5/prelockd.conf.5": 0o644})
    same(tree(dest2), want2, "install with SBINDIR, MANDIR, SYSCONFDIR, UNITDIR: the tree and modes")
    unit2 = os.path.join(dest2, "opt/pl/units/prelockd.service")
    if os.path.exists(unit2):
        check_unit(read(unit2), "/opt/pl/bin", "/opt/pl/conf", "custom variables")
    rc, out = make("uninstall", build, **v2)
    ok(rc == 0, "make uninstall with every variable set exits 0", out)
    eq(files_only(tree(dest2)), [], "uninstall with every variable set removes every file")

    # PREFIX alone moves the binary and the man pages, not the config (SYSCONFDIR stays /etc).
    dest3 = os.path.join(work, "dest3")
    rc, out = make("install", build, DESTDIR=dest3)
    ok(rc == 0, "make install with the default PREFIX exits 0", out)
    same(files_only(tree(dest3)),
       sorted(["etc/prelockd.conf", unitdir.lstrip("/") + "/prelockd.service",
               "usr/local/sbin/prelockd", "usr/local/share/man/man5/prelockd.conf.5",
               "usr/local/share/man/man8/prelockd.8"]),
       "defaults: PREFIX=/usr/local, SYSCONFDIR=/etc, UNITDIR from pkg-config")
    unit3 = os.path.join(dest3, unitdir.lstrip("/"), "prelockd.service")
    if os.path.exists(unit3):
        check_unit(read(unit3), "/usr/local/sbin", "/etc", "defaults")
finally:
    shutil.rmtree(work, ignore_errors=True)

same(snapshot(), before, "nothing installed or removed outside the temporary directories")

# The package's version follows the program's: debian/changelog "prelockd (0.1.0-1) ...".
with open(os.path.join(ROOT, "debian", "changelog")) as f:
    m = re.match(r"prelockd \(([^)-]+)-[^)]+\)", f.readline())
p = subprocess.run([BIN, "--version"], capture_output=True, text=True)
eq(m.group(1) if m else None, p.stdout.split()[-1] if p.stdout.split() else None,
   "debian/changelog's upstream version is prelockd --version's")
done()
