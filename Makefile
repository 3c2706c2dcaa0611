# Postern - build, run and test. `make run` and `make test` install missing Debian packages first.
CC ?= cc
PKGS := libevent libevent_pthreads
CFLAGS ?= -O2 -g
CFLAGS += -std=c17 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wformat=2 -Wno-format-truncation -pthread
LDLIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -levent_pthreads -levent) -pthread

SRCS := $(wildcard src/*.c)
LIB_SRCS := $(filter-out src/main.c,$(SRCS))
OBJS := $(SRCS:src/%.c=build/obj/%.o)
ASAN_OBJS := $(SRCS:src/%.c=build/asan/obj/%.o)
UNIT_TESTS := $(patsubst tests/unit/%.c,%,$(wildcard tests/unit/test_*.c))
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

.PHONY: all run test deps test-deps clean unit asan

all: deps build/postern

deps:
	@scripts/deps.sh

test-deps:
	@DEPS_WITH_TESTS=1 scripts/deps.sh

build/postern: $(OBJS)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

build/obj/%.o: src/%.c $(wildcard src/*.h) src/reply.def | build/obj
	@echo "CC $<"
	@$(CC) $(CFLAGS) -c -o $@ $<

build/asan/postern: $(ASAN_OBJS)
	$(CC) $(CFLAGS) $(SAN_FLAGS) -o $@ $^ $(LDLIBS)

build/asan/obj/%.o: src/%.c $(wildcard src/*.h) src/reply.def | build/asan/obj
	@echo "CC (asan) $<"
	@$(CC) $(CFLAGS) -O1 $(SAN_FLAGS) -c -o $@ $<

build/obj build/asan/obj build/unit build/asan/unit:
	mkdir -p $@

# Unit tests link the library objects (everything but main) with cmocka, plain and sanitized.
build/unit/%: tests/unit/%.c $(filter-out build/obj/main.o,$(OBJS)) | build/unit
	$(CC) $(CFLAGS) -Isrc -o $@ $^ $(LDLIBS) -lcmocka

build/asan/unit/%: tests/unit/%.c $(filter-out build/asan/obj/main.o,$(ASAN_OBJS)) | build/asan/unit
	$(CC) $(CFLAGS) -O1 $(SAN_FLAGS) -Isrc -o $@ $^ $(LDLIBS) -lcmocka

unit: $(UNIT_TESTS:%=build/unit/%) $(UNIT_TESTS:%=build/asan/unit/%)

asan: build/asan/postern

run: all
	build/postern -c etc/postern.conf

test: test-deps
	@$(MAKE) --no-print-directory build/postern asan unit
	@scripts/run-tests.sh

clean:
	rm -rf build
