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
                clang-format valgrind default-jdk-headless libjna-java

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

.PHONY: all deps venv lib ctest lint format test pytest demo bench install wheel clean

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

# ---- lint -------------------------------------------------------------------

CLANG_FORMAT_FILES = $(wildcard include/*.h include/doublecrypt/*.h csrc/*.h csrc/*/*.h csrc/*/*.c \
                       tests/c/*.c tests/c/*.h tests/c/programs/*.c tests/abi/*.c bench/c/*.c)

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

pytest: venv lib
	$(PY) -m pytest -q

# `wheel` first, so tests/test_wheel.py reuses that wheel instead of building one
test: venv lint lib ctest wheel pytest

demo: venv
	$(VENV)/bin/doublecrypt demo

bench: venv lib
	$(PY) -m pytest bench -q --benchmark-columns=mean,ops --benchmark-sort=name
	$(PY) bench/codec_report.py
	$(PY) bench/fs_report.py

clean:
	rm -rf $(BUILD) dist pycore/doublecrypt/_native*.so *.egg-info pycore/*.egg-info
