# Postern - build, run and test. `make run` and `make test` install missing Debian packages first.
SHELL := /bin/bash
CC ?= cc
PKGS := libevent libevent_pthreads libevent_openssl openssl libxcrypt libunbound zlib libidn2 libsystemd libpsl
CFLAGS ?= -O2 -g
CFLAGS += -std=c17 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wformat=2 -Wno-format-truncation -pthread
LDLIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -levent_openssl -levent_pthreads -levent -lssl -lcrypto -lcrypt -lunbound -lz -lidn2 -lsystemd -lpsl) -pthread

# The version `postern --version` prints and the start-up line logs: the git commit, "-dirty" when
# the tree has changes; server.o is remade when it changes (build/version.stamp).
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo unknown)

SRCS := $(wildcard src/*.c)
LIB_SRCS := $(filter-out src/main.c,$(SRCS))
OBJS := $(SRCS:src/%.c=build/obj/%.o)
ASAN_OBJS := $(SRCS:src/%.c=build/asan/obj/%.o)
UNIT_TESTS := $(patsubst tests/unit/%.c,%,$(wildcard tests/unit/test_*.c))
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

FUZZ_TARGETS := $(patsubst fuzz/fuzz_%.c,%,$(wildcard fuzz/fuzz_*.c))
FUZZ_CC ?= clang
FUZZ_COMMON := -std=c17 -D_GNU_SOURCE -Wall -Wextra -Werror -g -O1 -pthread -Isrc -fno-sanitize-recover=all
FUZZ_CFLAGS := $(FUZZ_COMMON) -fsanitize=fuzzer,address,undefined
FUZZ_LIB_CFLAGS := $(FUZZ_COMMON) -fsanitize=fuzzer-no-link,address,undefined
FUZZ_OBJS := $(LIB_SRCS:src/%.c=build/fuzz/obj/%.o)
FUZZ_SECONDS ?= 60

.PHONY: all install run test deps test-deps bench-deps clean unit asan fuzz fuzz-build fuzz-valgrind lint memcheck bench bench-quick FORCE

all: deps build/postern

deps:
	@scripts/deps.sh

test-deps:
	@DEPS_WITH_TESTS=1 scripts/deps.sh

build/postern: $(OBJS)
	@echo "LD $@"
	@$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

build/obj/%.o: src/%.c $(wildcard src/*.h) src/reply.def | build/obj
	@echo "CC $<"
	@$(CC) $(CFLAGS) -c -o $@ $<

build/asan/postern: $(ASAN_OBJS)
	@echo "LD $@"
	@$(CC) $(CFLAGS) $(SAN_FLAGS) -o $@ $^ $(LDLIBS)

build/asan/obj/%.o: src/%.c $(wildcard src/*.h) src/reply.def | build/asan/obj
	@echo "CC (asan) $<"
	@$(CC) $(CFLAGS) -O1 $(SAN_FLAGS) -c -o $@ $<

build/obj build/asan/obj build/unit build/asan/unit:
	mkdir -p $@

build/version.stamp: FORCE | build/obj
	@echo '$(VERSION)' | cmp -s - $@ || echo '$(VERSION)' > $@

build/obj/server.o build/asan/obj/server.o: build/version.stamp
build/obj/server.o build/asan/obj/server.o: CFLAGS += -DPOSTERN_VERSION='"$(VERSION)"'

FORCE:

# Unit tests link the library objects (everything but main) with cmocka, plain and sanitized.
build/unit/%: tests/unit/%.c $(filter-out build/obj/main.o,$(OBJS)) | build/unit
	@echo "LD $@"
	@$(CC) $(CFLAGS) -Isrc -o $@ $^ $(LDLIBS) -lcmocka

build/asan/unit/%: tests/unit/%.c $(filter-out build/asan/obj/main.o,$(ASAN_OBJS)) | build/asan/unit
	@echo "LD $@"
	@$(CC) $(CFLAGS) -O1 $(SAN_FLAGS) -Isrc -o $@ $^ $(LDLIBS) -lcmocka

unit: $(UNIT_TESTS:%=build/unit/%) $(UNIT_TESTS:%=build/asan/unit/%)

asan: build/asan/postern

# libFuzzer targets (clang): every library source linked in, ASan+UBSan on. The library is
# compiled once for all targets (coverage instrumentation without libFuzzer's main: fuzzer-no-link).
build/fuzz/obj/%.o: src/%.c $(wildcard src/*.h) src/reply.def
	@mkdir -p build/fuzz/obj
	@echo "CC (fuzz) $<"
	@$(FUZZ_CC) $(FUZZ_LIB_CFLAGS) -c -o $@ $<

build/fuzz/fuzz_%: fuzz/fuzz_%.c $(FUZZ_OBJS)
	@echo "FUZZ $@"
	@$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_OBJS) $(LDLIBS)

fuzz-build: $(FUZZ_TARGETS:%=build/fuzz/fuzz_%)

# The same targets without libFuzzer or sanitizers (fuzz/replay.c as main), to replay a corpus
# under valgrind: `make fuzz-valgrind` (not part of make test; about 2 minutes).
build/replay/replay_%: fuzz/fuzz_%.c fuzz/replay.c $(LIB_SRCS) $(wildcard src/*.h) src/reply.def
	@mkdir -p build/replay
	@echo "LD $@"
	@$(CC) $(CFLAGS) -O1 -Isrc -o $@ $< fuzz/replay.c $(LIB_SRCS) $(LDLIBS)

fuzz-valgrind: test-deps $(FUZZ_TARGETS:%=build/replay/replay_%)
	@scripts/fuzz-valgrind.sh

# `make fuzz` runs each target FUZZ_SECONDS (default 60); `make test` runs each 5 s (FUZZ_SMOKE_SECONDS).
fuzz: test-deps fuzz-build
	@scripts/fuzz.sh $(FUZZ_SECONDS)

# Static analysis: cppcheck and clang-tidy (.clang-tidy); any warning fails.
# clang-tidy file by file, two at a time (the machine has two cores): a stamp per file that passed,
# remade when the file or any header changes.
TIDY_STAMPS := $(SRCS:src/%.c=build/tidy/%.ok)

lint:
	@echo "LINT cppcheck"
	@cppcheck --quiet --enable=warning,performance,portability --std=c11 -D_GNU_SOURCE \
		--error-exitcode=1 --inline-suppr -I src src
	@echo "LINT clang-tidy"
	@$(MAKE) --no-print-directory -j2 $(TIDY_STAMPS)

build/tidy/%.ok: src/%.c $(wildcard src/*.h) .clang-tidy
	@mkdir -p $(@D)
	@clang-tidy --quiet $< -- -std=c17 -D_GNU_SOURCE -Isrc 2>&1 | grep -vE '^[0-9]+ warnings? generated' ; \
		exit $${PIPESTATUS[0]}
	@touch $@

# The black-box suite with the server under valgrind memcheck (slow; not part of make test).
# Left out: 5,000 idle connections (too slow under valgrind) and the kill -9 test, whose kills 20-200
# ms into the load land before a valgrind-run server has acknowledged anything.
memcheck: test-deps build/postern
	@scripts/make-cert.sh
	@POSTERN_VALGRIND=1 /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/integration \
		--deselect tests/integration/test_hostile.py::test_5000_idle_connections_bounded_memory \
		--deselect tests/integration/test_faults.py::test_kill9_under_load_loses_no_acknowledged_message

# Benchmarks against Postfix and smtp-sink (bench/bench.py); results in bench/results/.
bench-deps:
	@DEPS_WITH_BENCH=1 scripts/deps.sh

bench: bench-deps build/postern
	@/usr/bin/python3 bench/bench.py

bench-quick: bench-deps build/postern
	@/usr/bin/python3 bench/bench.py --quick

# A system install: the binary, a configuration for /etc/postern (never over an existing one),
# and postern.service for systemd. PREFIX and DESTDIR as usual (make install DESTDIR=/tmp/stage).
PREFIX ?= /usr/local
SYSCONFDIR ?= /etc
UNITDIR ?= /lib/systemd/system
install: all
	install -D -m 755 build/postern $(DESTDIR)$(PREFIX)/sbin/postern
	install -d -m 755 $(DESTDIR)$(SYSCONFDIR)/postern
	sed -e 's|/etc/postern/|$(SYSCONFDIR)/postern/|g' etc/system/postern.conf > build/postern.conf
	for f in build/postern.conf etc/system/recipients etc/system/moved; do \
	    to=$(DESTDIR)$(SYSCONFDIR)/postern/$$(basename $$f); [ -e $$to ] || install -m 644 $$f $$to; \
	done
	sed -e 's|@SBINDIR@|$(PREFIX)/sbin|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' etc/system/postern.service.in \
	    > build/postern.service
	install -D -m 644 build/postern.service $(DESTDIR)$(UNITDIR)/postern.service
	@echo "installed; then: systemctl daemon-reload && systemctl enable --now postern"

run: all
	@scripts/make-cert.sh
	build/postern -c etc/postern.conf

test: test-deps
	@scripts/make-cert.sh
	@$(MAKE) --no-print-directory -j2 build/postern asan unit fuzz-build
	@$(MAKE) --no-print-directory lint
	@scripts/run-tests.sh

clean:
	rm -rf build
