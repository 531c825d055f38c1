# prelockd build. Dependencies come through pkg-config: libsystemd, inih.
PREFIX ?= /usr/local
SBINDIR ?= $(PREFIX)/sbin
MANDIR ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
DESTDIR ?=
PKG_CONFIG ?= pkg-config
VERSION := 0.1.0

CC ?= cc
WARNINGS := -Wall -Wextra -Wconversion -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wformat=2 -Wno-sign-conversion -Wvla -Wpointer-arith
CFLAGS ?= -O2 -g
ifeq ($(WERROR),1)
CFLAGS += -Werror
endif
DEPS_CFLAGS := $(shell $(PKG_CONFIG) --cflags libsystemd inih)
DEPS_LIBS := $(shell $(PKG_CONFIG) --libs libsystemd inih)
ALL_CFLAGS = -std=gnu11 $(WARNINGS) -Iinclude -D_GNU_SOURCE \
	-DSYSCONFDIR='"$(SYSCONFDIR)"' -DPRELOCKD_VERSION='"$(VERSION)"' \
	$(DEPS_CFLAGS) $(CFLAGS) $(EXTRA_CFLAGS)
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
	$(AR) rcs $@ $^

$(BUILD)/%.o: src/%.c $(wildcard include/*.h) | $(BUILD)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c tests/unit/check.h $(BUILD)/libprelockd.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests/unit $(LDFLAGS) -o $@ $< $(BUILD)/libprelockd.a $(LDLIBS)

$(BUILD)/helpers/%: tests/helpers/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $<

$(BUILD):
	mkdir -p $(BUILD)

# Unit tests run as anyone; integration tests need root and the real kernel.
check: $(BIN) $(BUILD)/prelockd-debug $(UNIT_BINS) $(HELPER_BINS)
	@PRELOCKD=$(CURDIR)/$(BUILD)/prelockd-debug PRELOCKD_RELEASE=$(CURDIR)/$(BIN) \
		BUILD=$(CURDIR)/$(BUILD) tests/run-tests $(UNIT_BINS)

unit: $(UNIT_BINS)
	@PRELOCKD=$(CURDIR)/prelockd BUILD=$(CURDIR)/$(BUILD) tests/run-tests --unit-only $(UNIT_BINS)

sanitize check-asan:
	$(MAKE) BUILD=build-asan CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer" \
		LDFLAGS="-fsanitize=address,undefined" check

format:
	clang-format -i src/*.c include/*.h tests/unit/*.c tests/unit/*.h tests/helpers/*.c

clean:
	rm -rf build build-asan prelockd
