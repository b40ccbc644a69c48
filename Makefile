# doublecrypt - the two README commands (`make demo`, `make test`) and the
# builds behind them. Versions and the source list come from include/ and
# csrc/SOURCES through csrc/header_decls.py; nothing is restated here.

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
CFLAGS_COMMON := -std=c11 -Wall -Wextra -Werror -Iinclude -Icsrc
LIB_CFLAGS := $(CFLAGS_COMMON) -O2 -fPIC -fvisibility=hidden -DDC_BUILDING
SAN_CFLAGS := $(CFLAGS_COMMON) -O1 -g -fsanitize=address,undefined \
              -fno-omit-frame-pointer -fno-sanitize-recover=all -DDC_STATIC

SONAME := libdoublecrypt.so.$(ABI)
LIB_REAL := $(BUILD)/libdoublecrypt.so.$(VERSION)
LIB_OBJS := $(patsubst csrc/%.c,$(BUILD)/obj/%.o,$(C_SOURCES))

.PHONY: all deps venv lib ctest lint format test pytest demo bench install clean

all: lib venv

# ---- set-up: Debian packages and the virtualenv --------------------------

deps:
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:" $$missing; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

$(VENV)/.installed: pyproject.toml setup.py csrc/ffi_build.py csrc/header_decls.py \
                    csrc/SOURCES $(C_SOURCES) $(HEADERS)
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

venv: deps $(VENV)/.installed

# ---- libdoublecrypt.so -----------------------------------------------------

$(BUILD)/obj/%.o: csrc/%.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(LIB_CFLAGS) $(SODIUM_CFLAGS) -c $< -o $@

$(LIB_REAL): $(LIB_OBJS) csrc/libdoublecrypt.map
	$(CC) -shared -o $@ $(LIB_OBJS) -Wl,-soname,$(SONAME) \
	  -Wl,--version-script=csrc/libdoublecrypt.map -Wl,--no-undefined \
	  $(SODIUM_LIBS) -pthread

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

test: venv lint lib ctest pytest

demo: venv
	$(VENV)/bin/doublecrypt demo

bench: venv lib
	$(PY) -m pytest bench -q --benchmark-columns=mean,ops --benchmark-sort=name
	$(PY) bench/codec_report.py
	$(PY) bench/fs_report.py

clean:
	rm -rf $(BUILD) pycore/doublecrypt/_native*.so *.egg-info pycore/*.egg-info
