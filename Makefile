# mediafs - plain Makefile; every library through pkg-config.
#   make            build mediafs
#   make check      install test deps, build, run every test (fuzz, unit,
#                   integration, mounted), and a chosen subset of the
#                   mounted tests again with the ASan+UBSan build
#   make check-asan the same with every mounted test in the ASan+UBSan pass
#   make demo       mount a local S3 server and copy an image tree in
#   make bench      benchmarks (docs/BENCHMARKS.md)
#   make fuzz       libFuzzer targets (clang), FUZZ_TIME seconds each
#                   (default 60; docs/FUZZING.md)
#   make soak       the reference-model tester with fresh seeds (SOAK_SECONDS,
#                   default 600; SOAK_SLOW=1 slow mode, SOAK_HOG=N CPU hogs;
#                   docs/MODEL.md)
#   make SAN=1      sanitizer build into build-san/

VERSION := 0.1.0
PREFIX ?= /usr/local
DESTDIR ?=
BUILD ?= build
ifeq ($(SAN),1)
BUILD := build-san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
endif

PKGS := fuse3 libcurl openssl sqlite3 libxml-2.0 libmagic jansson vips zlib libpq
CC ?= cc
WARN := -Wall -Wextra -Wshadow -Wmissing-declarations -Wwrite-strings -Werror
CFLAGS ?= -O2 -g
CFLAGS += -std=c11 -D_GNU_SOURCE -DMFS_VERSION=\"$(VERSION)\" $(WARN) \
	  -Iinclude $(shell pkg-config --cflags $(PKGS)) $(SANFLAGS) -pthread
LDLIBS += $(shell pkg-config --libs $(PKGS)) -pthread
LDFLAGS += $(SANFLAGS)

LIB_SRC := $(wildcard src/common/*.c src/net/*.c src/backend/*.c \
		      src/meta/*.c src/core/*.c src/fuse/*.c) \
	   $(filter-out src/cli/main.c,$(wildcard src/cli/*.c))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ := $(BUILD)/src/cli/main.o
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

all: $(BUILD)/mediafs $(BUILD)/mediactl mediafs

mediafs: $(BUILD)/mediafs $(BUILD)/mediactl
	@[ "$(BUILD)" = build ] && ln -sf $(BUILD)/mediafs mediafs && \
		ln -sf $(BUILD)/mediactl mediactl || true

$(BUILD)/libmediafs.a: $(LIB_OBJ)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

$(BUILD)/mediafs: $(BUILD)/src/daemon/main.o $(BUILD)/src/daemon/ctl.o $(BUILD)/libmediafs.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/mediactl: $(CLI_OBJ) $(BUILD)/libmediafs.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c tests/unit/unit.h tests/unit/scripted.h $(BUILD)/libmediafs.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Itests/unit $(LDFLAGS) -o $@ $< $(BUILD)/libmediafs.a $(LDLIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(BUILD)/src/daemon/main.d \
	$(BUILD)/src/daemon/ctl.d

unit: $(UNIT_BIN)

$(BUILD)/rawput: tests/bench/rawput.c $(BUILD)/libmediafs.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libmediafs.a $(LDLIBS)

$(BUILD)/hookbench: tests/bench/hookbench.c $(BUILD)/libmediafs.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libmediafs.a $(LDLIBS)

# libFuzzer targets (tests/fuzz/fuzz_*.c) and the library built for them
# with clang, ASan and UBSan (whose float-cast checks gcc lacks) into
# build-fuzz/. No -Werror: clang warns where gcc does not.
FUZZ_DIR := build-fuzz
FUZZ_SAN := -fsanitize=address,undefined,float-cast-overflow \
	    -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS := -O1 -g -std=c11 -D_GNU_SOURCE -DMFS_VERSION=\"$(VERSION)\" \
	       -Wall -Iinclude $(shell pkg-config --cflags $(PKGS)) -pthread \
	       $(FUZZ_SAN)
# The targets fuzz parsers of the layers below the cache (common, net,
# backend), which include and call nothing above them (docs/ARCHITECTURE.md):
# their library is those 21 files, not all 53 of LIB_SRC (a third of the
# source; the build's CPU time in make check fell by about two thirds).
FUZZ_LIB_SRC := $(wildcard src/common/*.c src/net/*.c src/backend/*.c)
FUZZ_LIB_OBJ := $(FUZZ_LIB_SRC:%.c=$(FUZZ_DIR)/%.o)
FUZZ_BIN := $(patsubst tests/fuzz/%.c,$(FUZZ_DIR)/%,\
	    $(wildcard tests/fuzz/fuzz_*.c))

$(FUZZ_DIR)/%.o: %.c
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c -o $@ $<

$(FUZZ_DIR)/libmediafs.a: $(FUZZ_LIB_OBJ)
	$(AR) rcs $@ $^

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(FUZZ_DIR)/libmediafs.a
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer -MMD -MP -o $@ $< \
		$(FUZZ_DIR)/libmediafs.a $(LDLIBS)

-include $(FUZZ_LIB_OBJ:.o=.d) $(FUZZ_BIN:=.d)

fuzz-build: $(FUZZ_BIN)

fuzz: deps
	tests/fuzz/run.sh $${FUZZ_TIME:-60}

deps:
	scripts/install-deps.sh

# tests/run-all.sh runs the fuzz step (seed corpora, then 3 s of fuzzing
# per target), the unit tests and both mounted passes, and counts them all
check: deps
	tests/run-all.sh

check-asan: deps
	SAN_ALL=1 tests/run-all.sh

demo: deps all
	scripts/demo.sh

bench: deps all $(BUILD)/rawput $(BUILD)/hookbench $(BUILD)/mediactl
	scripts/bench.sh
	scripts/bench-read.sh
	scripts/bench-fm.sh
	scripts/bench-hooks.sh
	scripts/bench-plan.sh
	scripts/bench-rewrite.sh
	scripts/bench-http.sh
	scripts/bench-imagekit.sh
	scripts/bench-sync-close.sh
	scripts/bench-fleet.sh

soak: deps all
	MODEL_SLOW=$(SOAK_SLOW) MODEL_HOG=$(SOAK_HOG) nice -n 10 \
		tests/model/soak.sh $(or $(SOAK_SECONDS),600) $(or $(SOAK_MODE),safe)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 \
		$(DESTDIR)$(PREFIX)/share/man/man5
	install -m 755 $(BUILD)/mediafs $(DESTDIR)$(PREFIX)/bin/mediafs
	install -m 755 $(BUILD)/mediactl $(DESTDIR)$(PREFIX)/bin/mediactl
	install -m 644 man/mediactl.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	install -m 644 man/mediafs.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	install -m 644 man/mediafs.conf.5 $(DESTDIR)$(PREFIX)/share/man/man5/

# A Debian package from a copy of the tree (packaging/debian becomes
# debian/): build/deb/mediafs_$(VERSION)_<arch>.deb
deb:
	rm -rf build/deb && mkdir -p build/deb/mediafs-$(VERSION)
	tar --exclude=./build --exclude=./build-san --exclude=./build-fuzz \
		--exclude=./tests/tmp \
		--exclude=./.git --exclude=./mediafs --exclude=./mediactl -cf - . | \
		tar -xf - -C build/deb/mediafs-$(VERSION)
	cp -r packaging/debian build/deb/mediafs-$(VERSION)/debian
	cd build/deb/mediafs-$(VERSION) && dpkg-buildpackage -us -uc -b -j2 >../build.log 2>&1 || \
		{ tail -30 ../build.log; exit 1; }
	@ls build/deb/*.deb

format:
	clang-format -i $$(find src include tests/unit -name '*.[ch]')

clean:
	rm -rf build build-san build-fuzz mediafs mediactl

.PHONY: all unit deps check check-asan demo bench soak install deb format clean fuzz fuzz-build
