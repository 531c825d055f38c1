#!/usr/bin/env python3
"""prelockd -t --print (SPEC "Command line", -t): every setting in effect, the defaults included,
printed as a config file that prelockd reads back to the same settings; a config with errors
prints nothing on stdout, its errors as FILE:LINE on stderr, and exits 78; --print goes with -t
only. Runs as anyone (no privilege needed); under tests/run-tests it runs as root."""
import os

from lib import ROOT, cleanup, done, eq, ok, run, workdir

d = workdir()

KEYS = {"daemon": ["interval", "new_process_check", "state_file", "status_file", "log_level"],
        "lock": ["include", "exclude", "what", "read_only_data", "max_file_size", "max_total", "max_total_percent",
                 "keep", "always", "owners", "allow_blocking_filesystems"],
        "processes": ["only_critical", "critical_names", "critical_cgroups"]}


def conf(name, text):
    p = os.path.join(d, name)
    with open(p, "w") as f:
        f.write(text)
    return p


def settings(text):
    """The printed config as [(section, key, value)], checking its shape on the way: comment
    lines first, then sections, each key once per line as 'key = value' or 'key =' (a long value:
    'key=value', or 'key =' and an indented line)."""
    out, section = [], None
    for line in text.splitlines():
        if not line or line.startswith(";"):
            continue
        if line.startswith("["):
            section = line.strip("[]")
        elif line.startswith("\t"):
            out[-1] = (out[-1][0], out[-1][1], line[1:])
        else:
            key, _, value = line.partition("=")
            out.append((section, key.strip(), value.strip()))
    return out


def print_config(path):
    return run(["-t", "--print", "-c", path], timeout=20)


try:
    # --- the defaults: an empty file, and the shipped file that sets every key to its default
    r = print_config("/dev/null")
    eq(r.returncode, 0, "-t --print on an empty file exits 0")
    eq(r.stderr, "", "and says nothing on stderr")
    lines = r.stdout.splitlines()
    ok(lines and lines[0].startswith("; prelockd: /dev/null"), "the first line is a comment naming "
       "the file", r.stdout)
    ok("configuration OK" not in r.stdout, "--print replaces 'configuration OK'", r.stdout)
    got = settings(r.stdout)
    eq([(s, k) for s, k, _ in got], [(s, k) for s in KEYS for k in KEYS[s]],
       "every key of every section, once each, in table order")
    defaults = {(s, k): v for s, k, v in got}
    for key, want in ((("daemon", "interval"), "60s"), (("daemon", "log_level"), "info"),
                      (("daemon", "new_process_check"), "1s"),
                      (("daemon", "state_file"), "/var/lib/prelockd/state"),
                      (("lock", "include"), "^/(usr|bin|sbin|lib[^/]*|opt)/"),
                      (("lock", "exclude"), ""), (("lock", "what"), "resident"),
                      (("lock", "max_file_size"), "256M"), (("lock", "max_total"), "512M"),
                      (("lock", "max_total_percent"), "5"), (("lock", "keep"), "3"),
                      (("processes", "only_critical"), "no")):
        eq(defaults.get(key), want, f"default {key[1]}")
    shipped = print_config(os.path.join(ROOT, "prelockd.conf"))
    eq(shipped.returncode, 0, "-t --print on the shipped prelockd.conf exits 0")
    eq(settings(shipped.stdout), got, "the shipped file prints exactly the defaults")

    # --- a customised config prints its values, and what it prints reads back the same ------
    custom = conf("custom.conf", "[daemon]\ninterval = 90min ; a comment\nstate_file =\n"
                                 "[lock]\ninclude = ^/usr/\n    ^/opt/x y/\nexclude =;odd\n"
                                 "max_total = 1048576\nmax_total_percent = 2.50%\n"
                                 "always = /usr/bin/bash\n"
                                 "[processes]\ncritical_names = sshd\n\tXorg\n")
    r = print_config(custom)
    eq(r.returncode, 0, "-t --print on a customised file exits 0")
    got = {}
    for s, k, v in settings(r.stdout):
        got.setdefault((s, k), []).append(v)
    eq(got.get(("daemon", "interval")), ["5400s"], "interval 90min as 5400s (h only when whole)")
    eq(got.get(("daemon", "state_file")), [""], "an emptied path prints empty")
    eq(got.get(("lock", "include")), ["^/usr/", "^/opt/x y/"], "a list: one line per item")
    eq(got.get(("lock", "exclude")), [";odd"], "an item starting with ';' is kept as written")
    eq(got.get(("lock", "max_total")), ["1M"], "sizes with their largest unit")
    eq(got.get(("lock", "max_total_percent")), ["2.5"], "percent without the '%'")
    eq(got.get(("processes", "critical_names")), ["sshd", "Xorg"], "continuation lines as items")
    eq(got.get(("lock", "what")), ["resident"], "a key the file does not set has its default")
    again = print_config(conf("printed.conf", r.stdout))
    eq(again.returncode, 0, "the printed config passes -t itself")
    eq(again.stdout.splitlines()[1:], r.stdout.splitlines()[1:],
       "and prints the same settings again (round trip)")

    # --- errors: nothing on stdout, every error on stderr, 78 ---------------------------------
    bad = conf("bad.conf", "[lock]\nkeep = x\n[lok]\nwhat = whole\n")
    r = print_config(bad)
    eq(r.returncode, 78, "-t --print on a bad config exits 78")
    eq(r.stdout, "", "and prints no settings")
    ok(f"{bad}:2: keep:" in r.stderr and f"{bad}:3: unknown section [lok]" in r.stderr,
       "every error as FILE:LINE on stderr", r.stderr)

    # --- usage -------------------------------------------------------------------------------
    for args, what in ((["--print", "-c", custom], "--print without -t"),
                       (["-n", "--print", "-c", custom], "--print with --dry-run"),
                       (["-t", "--print=yes", "-c", custom], "--print with an argument")):
        r = run(args, timeout=20)
        eq(r.returncode, 64, f"{what} exits 64")
        ok(r.stdout == "" and r.stderr.strip() != "", f"{what}: says why on stderr", r.stderr)
finally:
    cleanup(d)
done()
