# doublecrypt - the two README commands (`make demo`, `make test`) and the
# builds behind them. Versions and the source list come from include/ and
# csrc/SOURCES through csrc/header_decls.py, the library's compiler flags from
# csrc/buildflags.py (shared with setup.py); nothing is restated here.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BUILD := build
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

DEB_PACKAGES := python3 gcc g++ make pkg-config libsodium-dev python3-venv python3-dev \
                clang-format valgrind default-jdk-headless libjna-java \
                clang libclang-rt-14-dev redis-server fuse3 libfuse3-dev git sqlite3 rsync

HEADER_DECLS := $(PYTHON) csrc/header_decls.py
# Read with sed/grep (not Python) so they resolve before python3 is installed.
version_macro = $(shell sed -n 's/^\#define DC_$(1) \([0-9]*\)$$/\1/p' include/doublecrypt/version.h)
VERSION := $(call version_macro,VERSION_MAJOR).$(call version_macro,VERSION_MINOR).$(call version_macro,VERSION_PATCH)
ABI := $(call version_macro,ABI_VERSION)
C_SOURCES := $(addprefix csrc/,$(shell grep -v '^\#' csrc/SOURCES))
HEADERS := $(wildcard include/*.h include/doublecrypt/*.h) csrc/internal.h

SODIUM_CFLAGS = $(shell pkg-config --cflags libsodium)
SODIUM_LIBS = $(shell pkg-config --libs libsodium)
# The library's flags come from csrc/buildflags.py, which setup.py uses for the
# wheel's copy too. Each is computed on first use (after `deps` has installed
# python3), then kept.
BUILDFLAGS := $(PYTHON) csrc/buildflags.py
CFLAGS_COMMON = $(eval CFLAGS_COMMON := $$(shell $(BUILDFLAGS) common-cflags))$(CFLAGS_COMMON)
LIB_CFLAGS = $(eval LIB_CFLAGS := $$(shell $(BUILDFLAGS) lib-cflags))$(LIB_CFLAGS)
LIB_LDFLAGS = $(eval LIB_LDFLAGS := $$(shell $(BUILDFLAGS) lib-ldflags))$(LIB_LDFLAGS)
SAN_CFLAGS = $(CFLAGS_COMMON) -O1 -g -fsanitize=address,undefined \
             -fno-omit-frame-pointer -fno-sanitize-recover=all -DDC_STATIC

SONAME := libdoublecrypt.so.$(ABI)
LIB_REAL := $(BUILD)/libdoublecrypt.so.$(VERSION)
LIB_OBJS := $(patsubst csrc/%.c,$(BUILD)/obj/%.o,$(C_SOURCES))

.PHONY: all deps venv lib fuse ctest lint format test pytest demo bench install wheel clean \
        fuzz fuzz-regress fuzz-build

all: lib venv

# ---- set-up: Debian packages and the virtualenv --------------------------

deps:
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:" $$missing; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

$(VENV)/.installed: pyproject.toml setup.py csrc/ffi_build.py csrc/header_decls.py csrc/buildflags.py \
                    csrc/SOURCES $(C_SOURCES) $(HEADERS)
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

venv: deps $(VENV)/.installed

# ---- libdoublecrypt.so -----------------------------------------------------

$(BUILD)/obj/%.o: csrc/%.c $(HEADERS) csrc/buildflags.py
	@mkdir -p $(dir $@)
	$(CC) $(LIB_CFLAGS) -c $< -o $@

# -shared, soname $(SONAME), version script csrc/libdoublecrypt.map, libsodium
$(LIB_REAL): $(LIB_OBJS) csrc/libdoublecrypt.map csrc/buildflags.py
	$(CC) -o $@ $(LIB_OBJS) $(LIB_LDFLAGS)

$(BUILD)/$(SONAME) $(BUILD)/libdoublecrypt.so: $(LIB_REAL)
	ln -sf $(notdir $(LIB_REAL)) $@

# A pkg-config file for using the library straight from the build tree.
$(BUILD)/pkgconfig/doublecrypt.pc: csrc/libdoublecrypt.pc.in include/doublecrypt/version.h
	@mkdir -p $(dir $@)
	sed -e 's|@PREFIX@|$(CURDIR)|' -e 's|@INCLUDEDIR@|$(CURDIR)/include|' \
	    -e 's|@LIBDIR@|$(CURDIR)/$(BUILD)|' -e 's|@VERSION@|$(VERSION)|' $< > $@

lib: deps $(BUILD)/$(SONAME) $(BUILD)/libdoublecrypt.so $(BUILD)/pkgconfig/doublecrypt.pc

# ---- doublecrypt-fuse: the C FUSE layer (`doublecrypt mount --engine c`) ----

# A program, not engine code (so not in csrc/SOURCES): libfuse 3's high-level
# API over libdoublecrypt.so, found next to it through an $$ORIGIN rpath.
FUSE_BIN := $(BUILD)/doublecrypt-fuse
FUSE_CFLAGS = $(shell pkg-config --cflags fuse3)
FUSE_LIBS = $(shell pkg-config --libs fuse3)

$(FUSE_BIN): csrc/tools/dc_fuse.c $(HEADERS) $(BUILD)/$(SONAME) $(BUILD)/libdoublecrypt.so
	$(CC) $(CFLAGS_COMMON) -O2 $(SODIUM_CFLAGS) $(FUSE_CFLAGS) -o $@ $< \
	  -L$(BUILD) -ldoublecrypt -Wl,-rpath,'$$ORIGIN' $(SODIUM_LIBS) $(FUSE_LIBS)

fuse: lib $(FUSE_BIN)

PREFIX ?= /usr/local
install: lib
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include/doublecrypt
	install -m 644 include/doublecrypt.h include/doublecrypt_core.h include/module.modulemap \
	  $(DESTDIR)$(PREFIX)/include/
	install -m 644 include/doublecrypt/*.h $(DESTDIR)$(PREFIX)/include/doublecrypt/
	install -m 755 $(LIB_REAL) $(DESTDIR)$(PREFIX)/lib/
	ln -sf $(notdir $(LIB_REAL)) $(DESTDIR)$(PREFIX)/lib/$(SONAME)
	ln -sf $(notdir $(LIB_REAL)) $(DESTDIR)$(PREFIX)/lib/libdoublecrypt.so
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@INCLUDEDIR@|$(PREFIX)/include|' \
	    -e 's|@LIBDIR@|$(PREFIX)/lib|' -e 's|@VERSION@|$(VERSION)|' \
	    csrc/libdoublecrypt.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/doublecrypt.pc

# ---- the wheel: cffi extension + libdoublecrypt.so + headers, libsodium bundled

# `python -m build` (isolated) builds it as setup.py says; `auditwheel repair`
# copies libsodium into doublecrypt.libs/ and points every ELF file at it. The
# platform tag is the one `auditwheel show` proposes (WHEEL_PLAT=... overrides).
# $(WHEEL_STAMP) names the repaired wheel, for tests/test_wheel.py.
WHEEL_STAMP := $(BUILD)/wheel.path
WHEEL_INPUTS = pyproject.toml setup.py MANIFEST.in README.md $(wildcard csrc/*.py) csrc/SOURCES \
               csrc/libdoublecrypt.map csrc/libdoublecrypt.pc.in include/module.modulemap \
               $(wildcard csrc/*.h csrc/*/*.h csrc/*/*.c) $(HEADERS) \
               $(shell find pycore/doublecrypt -name '*.py' -o -name py.typed)

$(WHEEL_STAMP): $(WHEEL_INPUTS)
	rm -rf $(BUILD)/py $(BUILD)/wheel-raw pycore/*.egg-info
	@mkdir -p $(BUILD)
	$(PY) -m build --wheel --outdir $(BUILD)/wheel-raw . > $(BUILD)/wheel.log 2>&1 \
	  || { cat $(BUILD)/wheel.log; exit 1; }
	@mkdir -p dist && rm -f dist/doublecrypt-$(VERSION)-*.whl
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/auditwheel repair -w dist \
	  $(if $(WHEEL_PLAT),--plat $(WHEEL_PLAT)) $(BUILD)/wheel-raw/doublecrypt-$(VERSION)-*.whl
	ls dist/doublecrypt-$(VERSION)-*.whl > $@

wheel: venv $(WHEEL_STAMP)
	@cat $(WHEEL_STAMP)

# ---- C unit tests under AddressSanitizer + UndefinedBehaviorSanitizer -----

C_TESTS := $(wildcard tests/c/test_*.c)

$(BUILD)/ctest/unit: $(C_TESTS) tests/c/unit.h $(C_SOURCES) $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(SAN_CFLAGS) $(SODIUM_CFLAGS) -Itests/c -o $@ $(C_TESTS) $(C_SOURCES) \
	  $(SODIUM_LIBS) -pthread

ctest: deps $(BUILD)/ctest/unit
	ASAN_OPTIONS=detect_leaks=1 $(BUILD)/ctest/unit

# ---- threads under ThreadSanitizer (docs/RELIABILITY.md, "Threads") -------

# tests/c/threads/test_threads.c: 8 threads share one dc_fs; every engine
# source is compiled in with -fsanitize=thread, so any data race fails it.
TSAN_CFLAGS = $(CFLAGS_COMMON) -O1 -g -fsanitize=thread -fno-omit-frame-pointer -DDC_STATIC
THREAD_TESTS := $(wildcard tests/c/threads/*.c)

$(BUILD)/tsan/test_threads: $(THREAD_TESTS) $(C_SOURCES) $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(TSAN_CFLAGS) $(SODIUM_CFLAGS) -o $@ $(THREAD_TESTS) $(C_SOURCES) \
	  $(SODIUM_LIBS) -pthread

.PHONY: tsan
tsan: deps $(BUILD)/tsan/test_threads
	TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" $(BUILD)/tsan/test_threads

# Not part of `make test` (about 30 s): Python tests against a copy of the
# extension built with ASan+UBSan, the sanitizer runtimes preloaded into the
# (uninstrumented) interpreter. Leak checking is off (the interpreter's own
# allocations) and huge allocations return NULL (a bad-input row asks for
# 16 PiB and expects OutOfMemoryError).
ASAN_PY := $(BUILD)/asan-py
ASAN_PYTESTS ?= tests/test_fs_api.py tests/test_tamper.py tests/test_bad_input.py \
                tests/test_recovery.py tests/test_fs_stateful.py tests/test_passphrase.py
ASAN_PY_ENV = LD_PRELOAD="$$($(CC) -print-file-name=libasan.so) $$($(CC) -print-file-name=libubsan.so)" \
              ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1 \
              UBSAN_OPTIONS=print_stacktrace=1 PYTHONPATH=$(ASAN_PY)/pkg

$(ASAN_PY)/pkg/doublecrypt/.built: $(C_SOURCES) $(HEADERS) csrc/ffi_build.py csrc/header_decls.py \
                                   csrc/buildflags.py $(shell find pycore/doublecrypt -name '*.py')
	rm -rf $(ASAN_PY) && mkdir -p $(ASAN_PY)/pkg && cp -r csrc include $(ASAN_PY)/
	CFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all -g" \
	  LDFLAGS="-fsanitize=address,undefined" $(PY) -c "import sys; sys.path.insert(0, 'csrc'); \
	  import ffi_build; ffi_build.ffibuilder.compile(tmpdir='$(ASAN_PY)')" > $(ASAN_PY)/build.log 2>&1 \
	  || { cat $(ASAN_PY)/build.log; exit 1; }
	cp -r pycore/doublecrypt $(ASAN_PY)/pkg/ && rm -f $(ASAN_PY)/pkg/doublecrypt/_native*.so
	cp $(ASAN_PY)/doublecrypt/_native*.so $(ASAN_PY)/pkg/doublecrypt/
	touch $@

.PHONY: pytest-asan
pytest-asan: venv $(ASAN_PY)/pkg/doublecrypt/.built
	$(ASAN_PY_ENV) $(PY) -c "import doublecrypt._native as n; assert '$(ASAN_PY)' in n.__file__, n.__file__"
	$(ASAN_PY_ENV) $(PY) -m pytest -q -p no:cacheprovider $(ASAN_PYTESTS)

# ---- fuzzing: tests/fuzz, described in docs/RELIABILITY.md ("Fuzzing") ---

# One target per tests/fuzz/fuzz_*.c. `fuzz-regress` links each with
# tests/fuzz/regression_driver.c under ctest's sanitizer flags and runs it
# over its committed corpus, tests/fuzz/corpus/<target>/. `fuzz` links each
# with libFuzzer (clang) and runs it for FUZZ_SECONDS, FUZZ_JOBS at a time;
# new inputs go to $(BUILD)/fuzz/scratch/<target>, crashes to
# $(BUILD)/fuzz/artifacts.
FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_DEPS = $(HEADERS) $(wildcard csrc/*/*.h) tests/fuzz/fuzz_common.h
FUZZ_SECONDS ?= 600
FUZZ_JOBS ?= 2
FUZZ_CC ?= clang
FUZZ_CFLAGS = $(CFLAGS_COMMON) -O1 -g -fsanitize=address,undefined \
              -fno-omit-frame-pointer -fno-sanitize-recover=all -DDC_STATIC
# Longest input per target: a little over what its decoder can use.
FUZZ_MAX_LEN_fuzz_envelope_open := 8400
FUZZ_MAX_LEN_fuzz_header := 4200
FUZZ_MAX_LEN_fuzz_root_pointer := 512
FUZZ_MAX_LEN_fuzz_model := 4100
FUZZ_MAX_LEN_fuzz_mount := 16384
FUZZ_MAX_LEN_fuzz_compat_json := 8192

REGRESS_DIR := $(BUILD)/fuzz/regress
REGRESS_OBJS := $(patsubst csrc/%.c,$(REGRESS_DIR)/obj/%.o,$(C_SOURCES))
LIBFUZZER_DIR := $(BUILD)/fuzz/libfuzzer
LIBFUZZER_OBJS := $(patsubst csrc/%.c,$(LIBFUZZER_DIR)/obj/%.o,$(C_SOURCES))

# Kept between builds (make would delete them as intermediate files).
.SECONDARY: $(REGRESS_OBJS) $(LIBFUZZER_OBJS)

$(REGRESS_DIR)/obj/%.o: csrc/%.c $(FUZZ_DEPS)
	@mkdir -p $(dir $@)
	$(CC) $(SAN_CFLAGS) $(SODIUM_CFLAGS) -c $< -o $@

$(REGRESS_DIR)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/regression_driver.c $(REGRESS_OBJS) $(FUZZ_DEPS)
	$(CC) $(SAN_CFLAGS) $(SODIUM_CFLAGS) -o $@ $< tests/fuzz/regression_driver.c \
	  $(REGRESS_OBJS) $(SODIUM_LIBS) -pthread

fuzz-regress: deps $(addprefix $(REGRESS_DIR)/,$(FUZZ_TARGETS))
	@for t in $(FUZZ_TARGETS); do \
	  ASAN_OPTIONS=detect_leaks=1 $(REGRESS_DIR)/$$t tests/fuzz/corpus/$$t || exit 1; \
	done

$(LIBFUZZER_DIR)/obj/%.o: csrc/%.c $(FUZZ_DEPS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(SODIUM_CFLAGS) -c $< -o $@

$(LIBFUZZER_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $(LIBFUZZER_OBJS) $(FUZZ_DEPS)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $(SODIUM_CFLAGS) -o $@ $< \
	  $(LIBFUZZER_OBJS) $(SODIUM_LIBS) -pthread

fuzz-build: deps $(addprefix $(LIBFUZZER_DIR)/,$(FUZZ_TARGETS))

fuzz: fuzz-build
	tests/fuzz/run_fuzzers.sh $(LIBFUZZER_DIR) $(BUILD)/fuzz $(FUZZ_SECONDS) $(FUZZ_JOBS) \
	  $(foreach t,$(FUZZ_TARGETS),$(t):$(FUZZ_MAX_LEN_$(t)))

# ---- lint -------------------------------------------------------------------

CLANG_FORMAT_FILES = $(wildcard include/*.h include/doublecrypt/*.h csrc/*.h csrc/*/*.h csrc/*/*.c \
                       tests/c/*.c tests/c/*.h tests/c/programs/*.c tests/abi/*.c bench/c/*.c \
                       tests/fuzz/*.c tests/fuzz/*.h tests/c/threads/*.c)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	clang-format --dry-run -Werror $(CLANG_FORMAT_FILES)
	@$(HEADER_DECLS) map | diff -u csrc/libdoublecrypt.map - \
	  || { echo "csrc/libdoublecrypt.map is stale: python3 csrc/header_decls.py map > csrc/libdoublecrypt.map"; exit 1; }

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .
	clang-format -i $(CLANG_FORMAT_FILES)

# ---- the README's two commands ---------------------------------------------

pytest: venv lib fuse
	$(PY) -m pytest -q

# `wheel` first, so tests/test_wheel.py reuses that wheel instead of building one
test: venv lint lib ctest tsan fuzz-regress wheel pytest

# Not part of `make test`: the long runs described in docs/RELIABILITY.md
# (tests/test_crash.py: 10,000 crash points over randomized workloads).
SLOW_TESTS := tests/test_crash.py
.PHONY: test-slow
test-slow: venv lib
	DC_SLOW_TESTS=1 $(PY) -m pytest -q $(SLOW_TESTS)

demo: venv
	$(VENV)/bin/doublecrypt demo

# The peers bench/peers_report.py measures against (through their FUSE mounts).
BENCH_DEB_PACKAGES := gocryptfs cryfs fuse3 tar

.PHONY: bench-deps
bench-deps:
	@missing=$$(for p in $(BENCH_DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:" $$missing; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

bench: venv lib bench-deps
	$(PY) -m pytest bench -q --benchmark-columns=mean,ops --benchmark-sort=name
	$(PY) bench/codec_report.py
	$(PY) bench/fs_report.py
	$(PY) bench/channel_report.py
	$(PY) bench/net_report.py
	$(PY) bench/ncryptf_report.py
	$(PY) bench/peers_report.py
	$(PY) bench/objectstore_report.py

clean:
	rm -rf $(BUILD) dist pycore/doublecrypt/_native*.so *.egg-info pycore/*.egg-info
