# wsd - one non-recursive GNU Makefile. `make` builds build/wsd, build/wsctl, build/wsbench;
# `make check` installs what is missing, builds with ASan/UBSan and runs every test;
# `make run` starts wsd in the foreground with etc/wsd.conf.

PREFIX ?= /usr/local
DESTDIR ?=
CC ?= cc
CLANG ?= clang
PYTHON ?= /usr/bin/python3

ifeq ($(SAN),1)
OUT ?= build/san
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
OPT := -O1
else
OUT ?= build
SANFLAGS :=
OPT := -O2
endif

PKGS := openssl libsodium msgpack zlib lmdb hiredis
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes
CFLAGS ?= $(OPT) -g
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE $(CFLAGS) $(WARN) $(SANFLAGS) -I. $(PKG_CFLAGS) -MMD -MP
LDFLAGS_ALL := $(SANFLAGS) $(LDFLAGS)
LIBS := $(PKG_LIBS) -lpthread

LIB_SRC := $(wildcard core/*.c proto/*.c shm/*.c store/*.c)
WSD_SRC := $(wildcard master/*.c worker/*.c)
LIB_OBJ := $(LIB_SRC:%.c=$(OUT)/obj/%.o)
WSD_OBJ := $(WSD_SRC:%.c=$(OUT)/obj/%.o)
LIB_A := $(OUT)/libwsd.a

UNIT_SRC := $(wildcard tests/unit/*_test.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(OUT)/tests/%)
FUZZ_SRC := $(filter-out tests/fuzz/replay.c,$(wildcard tests/fuzz/*.c))
FUZZ_NAMES := $(FUZZ_SRC:tests/fuzz/%.c=%)
REPLAY_BIN := $(FUZZ_NAMES:%=$(OUT)/replay/%)
FUZZ_BIN := $(FUZZ_NAMES:%=build/fuzz/%)
FUZZ_SECONDS ?= 10

BINS := $(OUT)/wsd $(if $(wildcard tools/wsctl.c),$(OUT)/wsctl) \
    $(if $(wildcard tools/wsbench.c),$(OUT)/wsbench) \
    $(if $(wildcard tools/bench/tcp_echo.c),$(OUT)/bench_tcp_echo)

.SECONDARY:

.PHONY: all check check-unit check-fuzz check-integration fuzz run deps format install clean bench

all: $(BINS)

ifeq ($(V),1)
Q :=
else
Q := @
endif

$(OUT)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

$(LIB_A): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

$(OUT)/wsd: $(WSD_OBJ) $(LIB_A)
	$(CC) $(LDFLAGS_ALL) -o $@ $(WSD_OBJ) $(LIB_A) $(LIBS)

WSCTL_OBJ := $(patsubst %.c,$(OUT)/obj/%.o,$(wildcard tools/wsctl*.c))
$(OUT)/wsctl: $(WSCTL_OBJ) $(LIB_A)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LIBS)

WSBENCH_OBJ := $(patsubst %.c,$(OUT)/obj/%.o,$(wildcard tools/wsbench*.c))
$(OUT)/wsbench: $(WSBENCH_OBJ) $(LIB_A)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LIBS)

$(OUT)/bench_tcp_echo: $(OUT)/obj/tools/bench/tcp_echo.o
	$(CC) $(LDFLAGS_ALL) -o $@ $^

# Unit tests: one Criterion binary per module.
$(OUT)/tests/%: $(OUT)/obj/tests/unit/%.o $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LIBS) -lcriterion

# Corpus replay: each fuzz target linked with a plain main() that feeds every corpus file.
$(OUT)/replay/%: $(OUT)/obj/tests/fuzz/%.o $(OUT)/obj/tests/fuzz/replay.o $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LIBS)

# libFuzzer builds (clang).
build/fuzz/%: tests/fuzz/%.c $(LIB_SRC)
	@mkdir -p $(dir $@)
	$(CLANG) -std=c11 -D_GNU_SOURCE -g -O1 -I. $(PKG_CFLAGS) \
	    -fsanitize=fuzzer,address,undefined -o $@ $< $(LIB_SRC) $(LIBS)

deps:
	@tools/install-deps

check: deps
	$(MAKE) SAN=1 all check-unit check-fuzz
	$(MAKE) all
	$(MAKE) check-integration
	$(MAKE) fuzz FUZZ_SECONDS=$(FUZZ_SECONDS)

check-unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; ASAN_OPTIONS=detect_leaks=1 $$t --jobs 2; done

check-fuzz: $(REPLAY_BIN)
	@set -e; for n in $(FUZZ_NAMES); do echo "== replay $$n"; \
	    $(OUT)/replay/$$n tests/fuzz/corpus/$$n; done

check-integration:
	$(MAKE) SAN=1 all
	tools/run-integration

fuzz: $(FUZZ_BIN)
	@set -e; for n in $(FUZZ_NAMES); do echo "== fuzz $$n ($(FUZZ_SECONDS)s)"; \
	    mkdir -p build/fuzz/corpus/$$n; \
	    build/fuzz/$$n -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 \
	        -print_final_stats=0 build/fuzz/corpus/$$n tests/fuzz/corpus/$$n 2>build/fuzz/$$n.log \
	        || { tail -50 build/fuzz/$$n.log; exit 1; }; \
	    grep -E '^#[0-9]+ *DONE' build/fuzz/$$n.log || tail -2 build/fuzz/$$n.log; done

run: deps all
	$(OUT)/wsd -c etc/wsd.conf

bench: deps all
	tools/bench/run

# Formats the C files changed since the last commit (.clang-format); untouched files keep
# their hand alignment. FORMAT_FILES=... names other files.
FORMAT_FILES ?= $(shell git diff --name-only --diff-filter=AM HEAD -- '*.c' '*.h' 2>/dev/null)
format:
	@if [ -n "$(strip $(FORMAT_FILES))" ]; then clang-format -i $(FORMAT_FILES); fi

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man5 \
	    $(DESTDIR)$(PREFIX)/share/man/man7 $(DESTDIR)$(PREFIX)/share/man/man8 \
	    $(DESTDIR)$(PREFIX)/share/wsd $(DESTDIR)$(PREFIX)/etc/wsd
	install -m 755 $(OUT)/wsd $(OUT)/wsctl $(OUT)/wsbench $(DESTDIR)$(PREFIX)/bin/
	install -m 644 man/wsd.conf.5 $(DESTDIR)$(PREFIX)/share/man/man5/
	install -m 644 man/wsd-protocol.7 $(DESTDIR)$(PREFIX)/share/man/man7/
	install -m 644 man/wsd.8 man/wsctl.8 $(DESTDIR)$(PREFIX)/share/man/man8/
	install -m 644 etc/wsd.conf $(DESTDIR)$(PREFIX)/etc/wsd/wsd.conf.sample
	install -m 644 client/wsd.js $(DESTDIR)$(PREFIX)/share/wsd/

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
