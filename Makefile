# prelockd build. Dependencies come through pkg-config: libsystemd, inih, json-c.
PREFIX ?= /usr/local
SBINDIR ?= $(PREFIX)/sbin
MANDIR ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
DESTDIR ?=
PKG_CONFIG ?= pkg-config
# Where systemd looks for units: from systemd.pc (in the systemd package on Debian 12, in
# systemd-dev from Debian 13), else /lib/systemd/system.
SYSTEMD_PC_UNITDIR = $(shell $(PKG_CONFIG) --variable=systemdsystemunitdir systemd 2>/dev/null)
UNITDIR ?= $(or $(SYSTEMD_PC_UNITDIR),/lib/systemd/system)
VERSION := 0.1.0

CC ?= cc
WARNINGS := -Wall -Wextra -Wconversion -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wformat=2 -Wno-sign-conversion -Wvla -Wpointer-arith
CFLAGS ?= -O2 -g
ifeq ($(WERROR),1)
CFLAGS += -Werror
endif
DEPS_CFLAGS := $(shell $(PKG_CONFIG) --cflags libsystemd inih json-c)
DEPS_LIBS := $(shell $(PKG_CONFIG) --libs libsystemd inih json-c)
ALL_CFLAGS = -std=gnu11 $(WARNINGS) -Iinclude -D_GNU_SOURCE \
	-DSYSCONFDIR='"$(SYSCONFDIR)"' -DPRELOCKD_VERSION='"$(VERSION)"' \
	$(DEPS_CFLAGS) $(CPPFLAGS) $(CFLAGS) $(EXTRA_CFLAGS)
LDLIBS += $(DEPS_LIBS)

BUILD ?= build
SRCS := $(wildcard src/*.c)
LIB_OBJS := $(patsubst src/%.c,$(BUILD)/%.o,$(filter-out src/main.c,$(SRCS)))
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))
HELPER_SRCS := $(wildcard tests/helpers/*.c)
HELPER_BINS := $(patsubst tests/helpers/%.c,$(BUILD)/helpers/%,$(HELPER_SRCS))

.PHONY: all check unit sanitize check-asan clean install uninstall format bench fuzz

BIN ?= prelockd

all: $(BIN)

$(BIN): $(BUILD)/main.o $(BUILD)/libprelockd.a
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The test build: after every pass it checks its byte count against what the kernel reports
# locked (smaps) and that the budget holds, and aborts otherwise.
$(BUILD)/prelockd-debug: $(SRCS) $(wildcard include/*.h)
	$(MAKE) --no-print-directory BUILD=$(BUILD)/debug BIN=$@ EXTRA_CFLAGS="$(EXTRA_CFLAGS) -DPRELOCKD_DEBUG" $@

$(BUILD)/libprelockd.a: $(LIB_OBJS)
	rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/%.o: src/%.c $(wildcard include/*.h) | $(BUILD)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c tests/unit/check.h $(BUILD)/libprelockd.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests/unit $(LDFLAGS) -o $@ $< $(BUILD)/libprelockd.a $(LDLIBS)

$(BUILD)/helpers/%: tests/helpers/%.c tests/helpers/mapfile.h tests/helpers/seccomp_exec.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $<

$(BUILD):
	mkdir -p $(BUILD)

# ==== Memory pressure helper (issue 11, item 2) ===================================================
# tests/helpers/psiwatch drives src/psi.c (and an sd-event loop for its cost mode): it links the
# module (and util.o, its decimal reader) rather than the whole library.
$(BUILD)/helpers/psiwatch: tests/helpers/psiwatch.c $(BUILD)/psi.o $(BUILD)/util.o
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)
# ==== end of memory pressure helper ================================================================

# ==== Hardening: fuzz, check-asan, check-valgrind, lint (issue 5) ================================
# Fuzz targets are tests/fuzz/fuzz_<name>.c (libFuzzer entry points over one parser each), with a
# seed corpus in tests/fuzz/corpus/<name>/ and a dictionary in tests/fuzz/<name>.dict. `make check`
# replays every committed corpus through them, built with the normal compiler and
# tests/fuzz/standalone.c as main(), so an input that once crashed a parser stays a test.
FUZZ_TARGETS := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_REPLAY_BINS := $(patsubst %,$(BUILD)/fuzz/replay-%,$(FUZZ_TARGETS))
UNIT_BINS += $(FUZZ_REPLAY_BINS)

$(BUILD)/fuzz/replay-%: tests/fuzz/fuzz_%.c tests/fuzz/standalone.c $(BUILD)/libprelockd.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -DFUZZ_CORPUS='"$(CURDIR)/tests/fuzz/corpus/$*"' $(LDFLAGS) -o $@ \
		$(filter %.c,$^) $(BUILD)/libprelockd.a $(LDLIBS)

# `make fuzz`: each target runs FUZZ_SECONDS under libFuzzer + ASan + UBSan (clang; Debian's
# clang-14 ships libFuzzer). New inputs go to build-fuzz/corpus/<name>/, crashes to
# build-fuzz/artifacts/; any crash, leak or input slower than FUZZ_TIMEOUT seconds fails the run.
# Worth keeping: `build-fuzz/fuzz-NAME -merge=1 tests/fuzz/corpus/NAME build-fuzz/corpus/NAME`.
FUZZ_SECONDS ?= 30
FUZZ_TIMEOUT ?= 10
FUZZ_CC ?= clang
FUZZ_BUILD ?= build-fuzz
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

fuzz:
	$(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) CC=$(FUZZ_CC) \
		CFLAGS="-O1 -g $(FUZZ_SAN) -fsanitize=fuzzer-no-link" LDFLAGS="$(FUZZ_SAN)" fuzz-build
	@set -e; for t in $(FUZZ_TARGETS); do \
		mkdir -p $(FUZZ_BUILD)/corpus/$$t $(FUZZ_BUILD)/artifacts; \
		echo "fuzz: $$t for $(FUZZ_SECONDS) s"; \
		if ! $(FUZZ_BUILD)/fuzz-$$t -max_total_time=$(FUZZ_SECONDS) -timeout=$(FUZZ_TIMEOUT) \
			-dict=tests/fuzz/$$t.dict -artifact_prefix=$(FUZZ_BUILD)/artifacts/$$t- \
			-print_final_stats=1 $(FUZZ_BUILD)/corpus/$$t tests/fuzz/corpus/$$t \
			>$(FUZZ_BUILD)/$$t.log 2>&1; then \
			tail -n 60 $(FUZZ_BUILD)/$$t.log; echo "fuzz: $$t FAILED (log: $(FUZZ_BUILD)/$$t.log)"; \
			exit 1; \
		fi; \
		grep -E '^#[0-9]+[[:space:]]+DONE|^stat::(number_of_executed_units|peak_rss_mb|new_units_added)' \
			$(FUZZ_BUILD)/$$t.log | sed 's/^/  /'; \
	done

fuzz-build: $(patsubst %,$(BUILD)/fuzz-%,$(FUZZ_TARGETS))

$(BUILD)/fuzz-%: tests/fuzz/fuzz_%.c $(BUILD)/libprelockd.a
	$(CC) $(ALL_CFLAGS) -fsanitize=fuzzer $(LDFLAGS) -o $@ $< $(BUILD)/libprelockd.a $(LDLIBS)

# `make check-asan`: the whole suite with ASan + UBSan in everything: unit tests, corpus replays,
# helpers, and both daemons the integration tests run (prelockd-debug and the release build). Any
# report fails: UBSan aborts (no recovery) and ASan aborts, so the program exits 1, and LSan makes
# a leak at exit exit 1 where the tests expect 0. Not every test looks at every exit status (a
# daemon stopped in cleanup, say), so ASan and LSan also write each report to
# build-asan/logs/asan.PID (log_path; mode 1777 for the runs as another user), and any file there
# fails the target after the suite. (gcc's runtime prints UBSan's reports on stderr whatever
# log_path says; they abort the program, which the test sees.) ASan's runtime turns mlock() and
# mlockall() into no-ops; tests/sanitizer/mlock-shim.c, linked in, puts the system calls back
# (why that works for prelockd: see the file).
ASAN_BUILD ?= build-asan
ASAN_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
ASAN_OPTIONS ?= strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1
UBSAN_OPTIONS ?= print_stacktrace=1
ASAN_LOGS := $(CURDIR)/$(ASAN_BUILD)/logs

$(ASAN_BUILD)/mlock-shim.o: tests/sanitizer/mlock-shim.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 $(WARNINGS) -O1 -g -c -o $@ $<

sanitize check-asan: $(ASAN_BUILD)/mlock-shim.o
	@rm -rf $(ASAN_LOGS) && mkdir -p $(ASAN_LOGS) && chmod 1777 $(ASAN_LOGS)
	@rc=0; \
	ASAN_OPTIONS='$(ASAN_OPTIONS):log_path=$(ASAN_LOGS)/asan' \
		UBSAN_OPTIONS='$(UBSAN_OPTIONS):log_path=$(ASAN_LOGS)/ubsan' PRELOCKD_SANITIZER=asan \
		$(MAKE) --no-print-directory BUILD=$(ASAN_BUILD) BIN=$(ASAN_BUILD)/prelockd \
		CFLAGS="-O1 -g $(ASAN_SAN)" LDFLAGS="$(ASAN_SAN) $(CURDIR)/$<" check || rc=$$?; \
	bad=$$(find $(ASAN_LOGS) -type f); \
	if [ -n "$$bad" ]; then echo "sanitizer reports:"; for f in $$bad; do \
		echo "== $$f"; head -n 80 $$f; done; rc=1; \
	else echo "sanitizers: no reports in $(ASAN_LOGS)"; fi; \
	exit $$rc

# `make check-valgrind`: the whole suite under valgrind memcheck: every unit test and corpus
# replay, and every integration test (all of tests/integration/test_*.py) with both daemons under
# memcheck, prelockd-debug and the release build, built -O1 -g in build-valgrind. Each run writes a
# log to build-valgrind/logs (mode 1777: test_privilege runs the daemon as another user); any error
# there (or a definite leak) fails the target, and the daemon exits 99 on errors, which the tests
# see at SIGTERM. (With --quiet, a clean run's log is empty.) About 5 minutes on 2 cores.
# VALGRIND_TESTS="a b" runs only the integration tests whose names contain a or b.
# The daemon runs 20-50 times slower: tests scale their time limits by SLOW
# (tests/integration/lib.py, PRELOCKD_SANITIZER=valgrind). mlockall() works under valgrind and
# locks valgrind's own memory too, which prelockd-debug's accounting check counts like the rest:
# it reads VmLck before and after smaps until the two agree.
# What differs from make check:
# - Memcheck does not know that the PROCMAP_QUERY ioctl writes a name through a pointer in its
#   argument. Everything runs under tests/helpers/noquery, a seccomp filter that answers that
#   ioctl ENOTTY as a kernel before 6.11 would: the daemon reads maps as text. (The ioctl path
#   runs under ASan in check-asan.)
# - test_changes leaves valgrind's own unlinked files (/tmp/valgrind_proc_*) out of the daemon's
#   descriptors; test_hostile_procs measures the heap with memcheck's leak search (vgdb) where
#   make check watches RssAnon, which under valgrind holds memcheck's queue of freed blocks;
#   test_limits (b) skips vm.max_map_count, at which valgrind itself runs out of memory.
VALGRIND ?= valgrind
VALGRIND_BUILD ?= build-valgrind
VALGRIND_TESTS ?=
# Lines a clean log may hold: valgrind 3.19 (Debian 12) does not know openat2 (syscall 437); it
# warns and answers ENOSYS, and the daemon takes its fallback, the walk one component at a time.
VALGRIND_KNOWN := ^--[0-9]+-- (WARNING: unhandled amd64-linux syscall: 437|You may be able to \
	write your own handler\.|Read the file README_MISSING_SYSCALL_OR_IOCTL\.|Nevertheless we \
	consider this a bug\.  Please report|it at http://valgrind\.org/support/bug_reports\.html\.)$$
VALGRIND_OPTS := --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
	--show-leak-kinds=definite --track-origins=yes --child-silent-after-fork=yes \
	--suppressions=$(CURDIR)/tests/valgrind.supp

check-valgrind:
	$(MAKE) --no-print-directory BUILD=$(VALGRIND_BUILD) BIN=$(VALGRIND_BUILD)/prelockd \
		CFLAGS="-O1 -g" valgrind-run

valgrind-run: $(BIN) $(BUILD)/prelockd-debug $(UNIT_BINS) $(HELPER_BINS)
	@rm -rf $(BUILD)/logs && mkdir -p $(BUILD)/logs && chmod 1777 $(BUILD)/logs
	@for b in prelockd prelockd-debug; do \
		printf '#!/bin/sh\nexec %s %s %s --log-file=%s/logs/%s.%%p.log %s "$$@"\n' \
		'$(CURDIR)/$(BUILD)/helpers/noquery' '$(VALGRIND)' '$(VALGRIND_OPTS)' \
		'$(CURDIR)/$(BUILD)' "$$b" "$(CURDIR)/$(BUILD)/$$b" >$(BUILD)/vg-$$b && \
		chmod 755 $(BUILD)/vg-$$b || exit 1; done
	@PRELOCKD_SANITIZER=valgrind PRELOCKD_NO_PROCMAP_QUERY=1 \
		PRELOCKD=$(CURDIR)/$(BUILD)/vg-prelockd-debug PRELOCKD_RELEASE=$(CURDIR)/$(BUILD)/vg-prelockd \
		BUILD=$(CURDIR)/$(BUILD) ONLY="$(VALGRIND_TESTS)" \
		UNIT_WRAPPER="$(CURDIR)/$(BUILD)/helpers/noquery $(VALGRIND) $(VALGRIND_OPTS) \
			--log-file=$(CURDIR)/$(BUILD)/logs/unit.%p.log" \
		tests/run-tests $(UNIT_BINS)
	@bad=; for f in $$(find $(BUILD)/logs -name '*.log' -size +0); do \
		grep -Evq "$(VALGRIND_KNOWN)" $$f && bad="$$bad $$f"; done; \
	if [ -n "$$bad" ]; then echo "valgrind reported errors:"; for f in $$bad; do \
		echo "== $$f"; head -n 80 $$f; done; exit 1; fi; \
	echo "valgrind: $$(ls $(BUILD)/logs | wc -l) runs, no errors"

# `make lint`: the layering check (tests/lint/layers.sh, also run by make check), then cppcheck
# and clang-tidy on the sources, helpers and fuzz targets. Every check that
# is turned off, and every suppression, says why in tests/lint/.
CPPCHECK ?= cppcheck
CLANG_TIDY ?= clang-tidy
LINT_SRCS := $(SRCS) $(HELPER_SRCS) $(wildcard tests/fuzz/*.c tests/sanitizer/*.c)
LINT_CFLAGS := -std=gnu11 -Iinclude -D_GNU_SOURCE -DPRELOCKD_DEBUG -DSYSCONFDIR='"$(SYSCONFDIR)"' \
	-DPRELOCKD_VERSION='"$(VERSION)"' $(DEPS_CFLAGS)

lint:
	tests/lint/layers.sh
	$(CPPCHECK) --quiet --error-exitcode=1 --enable=warning,style,performance,portability \
		--inline-suppr --suppress-xml=tests/lint/cppcheck-suppressions.xml --std=c11 \
		-D_GNU_SOURCE -D__linux__ -D__x86_64__ -Iinclude $(LINT_SRCS)
	$(CLANG_TIDY) --quiet --config-file=tests/lint/clang-tidy.yaml $(LINT_SRCS) -- $(LINT_CFLAGS)

clean: clean-hardening
clean-hardening:
	rm -rf $(ASAN_BUILD) $(FUZZ_BUILD) $(VALGRIND_BUILD)

.PHONY: fuzz fuzz-build check-valgrind valgrind-run lint clean-hardening
# ==== end of hardening ===========================================================================

# Unit tests run as anyone; integration tests need root and the real kernel.
check: $(BIN) $(BUILD)/prelockd-debug $(UNIT_BINS) $(HELPER_BINS)
	@tests/lint/layers.sh
	@PRELOCKD=$(CURDIR)/$(BUILD)/prelockd-debug PRELOCKD_RELEASE=$(CURDIR)/$(BIN) \
		BUILD=$(CURDIR)/$(BUILD) tests/run-tests $(UNIT_BINS)

unit: $(UNIT_BINS)
	@PRELOCKD=$(CURDIR)/prelockd BUILD=$(CURDIR)/$(BUILD) tests/run-tests --unit-only $(UNIT_BINS)

format:
	clang-format -i src/*.c include/*.h tests/unit/*.c tests/unit/*.h tests/helpers/*.c

clean:
	rm -rf build build-asan prelockd

# ==== Install: install, uninstall, the generated unit (issue 3) ==================================
# Everything lands under $(DESTDIR); the paths written into the unit leave DESTDIR out. The config
# is installed only where there is none yet, and uninstall removes it only while it is identical
# to the shipped one, so an administrator's edits survive both. Nothing is stripped or compressed
# here: for the .deb, dh_strip and dh_compress do that (debian/rules).
INSTALL ?= install
SERVICE_UNIT := $(BUILD)/prelockd.service

# prelockd.service is the unit the Debian package installs (/usr/sbin, /etc). The installed copy
# is generated from it with this run's SBINDIR and SYSCONFDIR in place of those two paths; it is
# regenerated on every run, since they may differ from one run to the next, and an ExecStart= that
# does not come out as expected is an error.
$(SERVICE_UNIT): prelockd.service | $(BUILD)
	{ echo '# Generated from prelockd.service by make: SBINDIR=$(SBINDIR) SYSCONFDIR=$(SYSCONFDIR).'; \
	  sed -e 's|/usr/sbin/prelockd|$(SBINDIR)/prelockd|g' \
	      -e 's|/etc/prelockd\.conf|$(SYSCONFDIR)/prelockd.conf|g' $<; \
	} >$@.tmp
	@if ! grep -qxF 'ExecStart=$(SBINDIR)/prelockd -c $(SYSCONFDIR)/prelockd.conf' $@.tmp; then \
		echo "$@: no ExecStart=$(SBINDIR)/prelockd -c $(SYSCONFDIR)/prelockd.conf" >&2; \
		rm -f $@.tmp; exit 1; fi
	mv $@.tmp $@

install: $(BIN) $(SERVICE_UNIT)
	$(INSTALL) -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(SYSCONFDIR) $(DESTDIR)$(UNITDIR) \
		$(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5
	$(INSTALL) -m 0755 $(BIN) $(DESTDIR)$(SBINDIR)/prelockd
	$(INSTALL) -m 0644 $(SERVICE_UNIT) $(DESTDIR)$(UNITDIR)/prelockd.service
	$(INSTALL) -m 0644 man/prelockd.8 $(DESTDIR)$(MANDIR)/man8/prelockd.8
	$(INSTALL) -m 0644 man/prelockd.conf.5 $(DESTDIR)$(MANDIR)/man5/prelockd.conf.5
	@conf='$(DESTDIR)$(SYSCONFDIR)/prelockd.conf'; \
	if [ -e "$$conf" ] || [ -L "$$conf" ]; then \
		echo "$$conf exists: kept as it is (the shipped default is prelockd.conf)"; \
	else \
		echo "$(INSTALL) -m 0644 prelockd.conf $$conf"; \
		$(INSTALL) -m 0644 prelockd.conf "$$conf"; \
	fi

uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/prelockd $(DESTDIR)$(UNITDIR)/prelockd.service \
		$(DESTDIR)$(MANDIR)/man8/prelockd.8 $(DESTDIR)$(MANDIR)/man5/prelockd.conf.5
	@conf='$(DESTDIR)$(SYSCONFDIR)/prelockd.conf'; \
	if [ -L "$$conf" ]; then \
		echo "$$conf is a symbolic link: kept"; \
	elif [ ! -e "$$conf" ]; then \
		:; \
	elif cmp -s prelockd.conf "$$conf"; then \
		echo "rm -f $$conf"; rm -f "$$conf"; \
	else \
		echo "$$conf differs from the shipped prelockd.conf: kept"; \
	fi

.PHONY: install uninstall $(SERVICE_UNIT)
# ==== end of install =============================================================================

# --- benchmarks (bench/: `make bench`, as root) --------------------------------------------------
# Efficacy under memory pressure and cost on a large population, against vmtouch and memlockd.
# Needs root, vmtouch, memlockd and gnuplot (it checks, and installs nothing); takes about 10 min.
# Writes bench/results/ and docs/bench-latency*.png. BENCH_ARGS="--quick" for a short trial run
# (its results go to /var/tmp/prelockd-bench/results-quick). The cost benchmark also reads
# mappings as text, under tests/helpers/noquery (PROCMAP_QUERY refused, as on kernels before 6.11).
PYTHON ?= python3
BENCH_HELPERS := $(addprefix $(BUILD)/bench/,standin hog population readmaps)
BENCH_ARGS ?=

bench: $(BIN) $(BENCH_HELPERS) $(BUILD)/helpers/noquery
	PRELOCKD=$(CURDIR)/$(BIN) BENCH_HELPERS=$(CURDIR)/$(BUILD)/bench $(PYTHON) bench/run.py $(BENCH_ARGS)

$(BUILD)/bench/%: bench/%.c bench/benchutil.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< -ldl
# --- end of benchmarks ---------------------------------------------------------------------------

# ==== check-service: the .deb under systemd as PID 1 (issue 13) ==================================
# Boots Debian 12 in a systemd-nspawn container (root filesystem by debootstrap from apt's own
# archive, cached in PRELOCKD_CI_CACHE, default /var/cache/prelockd-ci), installs the .deb that
# dpkg-buildpackage builds from a copy of this tree, and checks the service from inside. Root;
# packages systemd-container, debootstrap, debhelper, dpkg-dev. Ends with "N passed, N failed".
# About 3 minutes with the cache (a minute of it watching the watchdog); a cold cache adds the
# debootstrap, 1.5 minutes on an idle machine. Works in $(BUILD)/service; needs no host systemd.
check-service: $(BUILD)/helpers/mapper
	@BUILD=$(CURDIR)/$(BUILD) $(PYTHON) tests/service/check-service

.PHONY: check-service
# ==== end of check-service ========================================================================
