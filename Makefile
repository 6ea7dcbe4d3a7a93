# smhfs — set-up is two commands: `make run` and `make test` (as root on Debian).
# Each target installs only what is missing, so re-running is cheap.

SHELL := /bin/bash
NODE_DEPS_STAMP := node_modules/.package-lock.json
BUILD_STAMP := dist/.build-stamp
TAP_BUILD_STAMP := node_modules/.tap-built
# Empty: the CLI's own default ($$SMHFS_LIBRARY, else $$XDG_DATA_HOME/smhfs/default, else
# ~/.local/share/smhfs/default), so `make run` and `smhfs …` always mean the same library.
LIBRARY ?=
MOUNTPOINT ?= $(CURDIR)/mnt
# libfuse2: fuse-native (the fallback binding). fuse3: fusermount3 for the libfuse 3 binding
# (on Debian 12 it replaces `fuse` and keeps a `fusermount` link). libfuse3-dev, pkg-config,
# build-essential, python3: node-gyp builds our addon (src/fuse/ll) and fuse-native from source.
APT_PACKAGES := libfuse2 fuse3 libfuse3-dev pkg-config build-essential python3
# The PostgreSQL metadata engine (SPEC §11): npm ci builds the libpq binding against libpq-dev.
APT_PACKAGES += libpq-dev
BENCH_PACKAGES := bindfs fio rclone s3fs
# The tests' own needs: bindfs is the POSIX suite's reference, python3 its syscall driver;
# postgresql is the real server the PostgreSQL tests start themselves (initdb + pg_ctl, temp dir);
# rsync and git are programs the hard-link mount tests run (rsync -aH, git clone --local).
TEST_PACKAGES := bindfs python3 postgresql rsync git
# `make install` (as root): smhfs on the PATH, mount(8) helpers, man page, bash completion.
PREFIX ?= /usr/local
SBINDIR ?= /sbin
MANDIR ?= $(PREFIX)/share/man
BASH_COMPLETION_DIR ?= $(PREFIX)/share/bash-completion/completions
NODE := $(shell command -v node)
# V8's young generation at 1 MiB instead of 16: a mount's heap stays ~20 MiB instead of ~50 (its
# buffers live outside the heap), for ~3% more CPU; what keeps a 256M cache under 350 MiB RSS.
NODE_FLAGS := --max-semi-space-size=1
CLI := $(CURDIR)/dist/src/cli/main.js
SOURCES := $(shell find src test bench -name '*.ts' 2>/dev/null) src/cli/bundle.mjs src/cli/main.cjs tsconfig.json package.json

LL_ADDON := src/fuse/ll/build/Release/smhfs_ll.node
BENCH_ARGS ?=

.PHONY: all deps system-deps test-deps build run test posix bench bench-scale bench-postgres clean install install-files uninstall addon

all: build

# Debian packages the mount needs (see APT_PACKAGES), installed when missing.
system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "smhfs: need root to apt-get install$$missing (or install them yourself)"; exit 1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

# The patches are applied (and fuse-native rebuilt) by npm's postinstall: a changed patch needs it again.
$(NODE_DEPS_STAMP): package.json package-lock.json $(wildcard patches/*.patch)
	@echo "installing dependencies (npm ci, native modules built from source), ~3 minutes the first time"
	@# JOBS: node-gyp's make runs one compiler per CPU (better-sqlite3's sqlite3.c and its C++ side
	@# together: ~85 s of CPU, most of the install; measured 175 -> 152 s on a busy 2-CPU machine).
	JOBS=max npm ci --no-audit --no-fund --loglevel=error
	@touch $@

deps: system-deps $(NODE_DEPS_STAMP)

# Our libfuse 3 low-level addon. `npm ci` builds it too (postinstall, never failing the install:
# without libfuse3 smhfs runs with --binding fuse-native); here a failed build is an error.
$(LL_ADDON): src/fuse/ll/smhfs_ll.c src/fuse/ll/crc32.c src/fuse/ll/pages.c src/fuse/ll/binding.gyp src/fuse/ll/build.mjs | deps
	node src/fuse/ll/build.mjs --strict

addon: $(LL_ADDON)

# Incremental: nothing to do when no source changed; tsc recompiles only what did.
build: deps $(LL_ADDON) $(BUILD_STAMP)

$(BUILD_STAMP): $(SOURCES) $(NODE_DEPS_STAMP)
	npx tsc -p tsconfig.json --incremental --tsBuildInfoFile dist/.tsbuildinfo
	@# the smhfs command as one bundle of our modules (src/cli/bundle.mjs says why)
	NODE_FLAGS='$(NODE_FLAGS)' node src/cli/bundle.mjs
	@chmod +x dist/src/cli/main.js
	@commit=$$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown); \
	if [ "$$commit" != unknown ] && [ -n "$$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then commit="$$commit+dirty"; fi; \
	echo "{\"commit\": \"$$commit\"}" > dist/build-info.json
	@touch $@

# As root: installs smhfs (make install) so the commands below work as printed.
run: build
	@mkdir -p "$(MOUNTPOINT)"
	@if [ "$$(id -u)" = 0 ]; then $(MAKE) --no-print-directory install >/dev/null && echo "smhfs: installed $(PREFIX)/bin/smhfs and $(SBINDIR)/mount.smhfs (make uninstall removes them)"; \
	elif ! command -v smhfs >/dev/null; then echo "smhfs: to type smhfs in another shell: sudo make install   (or: alias smhfs='$(NODE) $(CLI)')"; fi
	@# The library is made once (D2: only "smhfs init" creates one; an existing one is never re-made, and
	@# init refuses a folder holding data). `blobs show` only reads: it fails when there is no library yet.
	@$(NODE) $(CLI) $(if $(LIBRARY),--library "$(LIBRARY)") blobs show >/dev/null 2>&1 || $(NODE) $(CLI) $(if $(LIBRARY),--library "$(LIBRARY)") init
	@echo "smhfs: mounting at $(MOUNTPOINT); stop with Ctrl-C, or from another shell: smhfs unmount $(MOUNTPOINT)"
	@$(NODE) $(NODE_FLAGS) $(CLI) mount "$(MOUNTPOINT)" $(if $(LIBRARY),--library "$(LIBRARY)")

test-deps: deps
	@missing=""; for p in $(TEST_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages for the tests:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

# From scratch, as CI does: no compiled test of a deleted source survives. The whole suite runs on
# ll (the default binding), and the mount tests again on fuse-native (test/posix-smhfs runs both
# bindings itself). The fuse-native copies leave out the two files whose subject is a blob store
# under the mount, not the binding: the S3 store and the on-disk cache answer the same bytes
# whichever binding asks (mount-disk-cache alone took 2.4 min there). Both run on ll.
# One tap run holds both: each fuse-native copy is a two-line file in dist/test/fuse-native/ that
# sets the binding and imports the mount test, so the two job slots stay full to the end instead
# of idling through two tails (the second pass used to run apart, ~150 s).
MOUNT_TESTS = dist/test/mount-*.test.js
BINDING_AGNOSTIC_MOUNT_TESTS = dist/test/mount-disk-cache.test.js dist/test/mount-s3.test.js
FUSE_NATIVE_COPIES = dist/test/fuse-native
# tap rebuilds its Test class for package.json's plugin list on the first run that finds it
# stale, but that run's test files still start with the shipped list's loader hooks (typescript,
# mock: ~0.5 s of CPU more per test file, and every module load through a hooks thread).
$(TAP_BUILD_STAMP): package.json $(NODE_DEPS_STAMP)
	npx tap build >/dev/null
	@touch $@

test: deps test-deps $(TAP_BUILD_STAMP)
	rm -rf dist
	$(MAKE) --no-print-directory build
	@mkdir -p $(FUSE_NATIVE_COPIES)
	@for f in $$(ls $(MOUNT_TESTS) | grep -vxF -e $(subst $() , -e ,$(BINDING_AGNOSTIC_MOUNT_TESTS))); do \
	  b=$$(basename $$f); \
	  printf '%s\n' "// $$b on the fuse-native binding (written by make test)" \
	    "process.env.SMHFS_TEST_BINDING = 'fuse-native';" "await import('../$$b');" > $(FUSE_NATIVE_COPIES)/$$b; \
	done
	@# The output is kept too, so the end of the log (all a CI page may show) names what failed.
	SMHFS_TEST_BINDING=ll npx tap 2>&1 | tee dist/test.log; rc=$${PIPESTATUS[0]}; \
	if [ $$rc != 0 ]; then \
	  echo "make test: failures (tap exit $$rc; dist/test/fuse-native/* are the fuse-native runs); the failed assertions:"; \
	  grep -h -B1 -A3 '^ *not ok' dist/test.log | cut -c1-200 | head -120; \
	  echo "make test: failures (tap exit $$rc)"; exit 1; fi

# The whole POSIX suite (test/posix/), staged cases included, on a plain directory, bindfs and
# smhfs: counts per cause of what still fails (test/posix/staging.ts). One target:
# make posix POSIX_ARGS='--target smhfs-fuse-native --verbose'
posix: build test-deps
	node dist/test/posix/report.js $(POSIX_ARGS)

# smhfs on the PATH, /sbin/mount.smhfs and /sbin/mount.fuse.smhfs for mount(8) and fstab
# (`mount -t smhfs` / `-t fuse.smhfs`), the man page and bash completion. The scripts run this
# checkout's build with this node, by absolute path: mount(8) at boot has a minimal PATH.
# DESTDIR for packaging; PREFIX, SBINDIR, MANDIR, BASH_COMPLETION_DIR to relocate.
install: build
	@$(MAKE) --no-print-directory install-files

# The files only, from the current build (tests install into a temporary PREFIX with this).
install-files:
	@test -n "$(NODE)" || { echo "smhfs: node is not on the PATH"; exit 1; }
	@test -f "$(CLI)" || { echo "smhfs: not built yet: make build"; exit 1; }
	install -d "$(DESTDIR)$(PREFIX)/bin" "$(DESTDIR)$(MANDIR)/man1" "$(DESTDIR)$(BASH_COMPLETION_DIR)"
	printf '#!/bin/sh\nexec "%s" %s "%s" "$$@"\n' '$(NODE)' '$(NODE_FLAGS)' '$(CLI)' > "$(DESTDIR)$(PREFIX)/bin/smhfs.tmp"
	chmod 755 "$(DESTDIR)$(PREFIX)/bin/smhfs.tmp" && mv -f "$(DESTDIR)$(PREFIX)/bin/smhfs.tmp" "$(DESTDIR)$(PREFIX)/bin/smhfs"
	@if [ -n "$(SBINDIR)" ]; then \
	  install -d "$(DESTDIR)$(SBINDIR)" && \
	  printf '#!/bin/sh\n# mount(8) helper: mount -t smhfs|fuse.smhfs LIBRARY DIR -o OPTIONS\nexec "%s" %s "%s" --mount-helper "$$@"\n' '$(NODE)' '$(NODE_FLAGS)' '$(CLI)' > "$(DESTDIR)$(SBINDIR)/mount.smhfs.tmp" && \
	  chmod 755 "$(DESTDIR)$(SBINDIR)/mount.smhfs.tmp" && mv -f "$(DESTDIR)$(SBINDIR)/mount.smhfs.tmp" "$(DESTDIR)$(SBINDIR)/mount.smhfs" && \
	  ln -sf mount.smhfs "$(DESTDIR)$(SBINDIR)/mount.fuse.smhfs" && \
	  echo "install $(DESTDIR)$(SBINDIR)/mount.smhfs $(DESTDIR)$(SBINDIR)/mount.fuse.smhfs"; \
	fi
	$(NODE) $(CLI) man > "$(DESTDIR)$(MANDIR)/man1/smhfs.1"
	$(NODE) $(CLI) completion bash > "$(DESTDIR)$(BASH_COMPLETION_DIR)/smhfs"

uninstall:
	rm -f "$(DESTDIR)$(PREFIX)/bin/smhfs" "$(DESTDIR)$(MANDIR)/man1/smhfs.1" "$(DESTDIR)$(BASH_COMPLETION_DIR)/smhfs"
	@if [ -n "$(SBINDIR)" ]; then rm -f "$(DESTDIR)$(SBINDIR)/mount.smhfs" "$(DESTDIR)$(SBINDIR)/mount.fuse.smhfs"; fi

bench-deps: deps test-deps
	@missing=""; for p in $(BENCH_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; fi

# Options go in BENCH_ARGS, e.g. make bench BENCH_ARGS='--only remote --runs 3'.
bench: build bench-deps
	node dist/bench/run.js $(BENCH_ARGS)

# Does an operation's cost grow with the library? (issue 15; `make bench --scale` is not a thing
# make accepts). Options: make bench-scale BENCH_ARGS='--sizes 10000,100000 --pin both'
bench-scale: build bench-deps
	node dist/bench/run.js --scale $(BENCH_ARGS)

# What the PostgreSQL engine's round trips cost against SQLite, in one run (issue 13;
# bench/postgres.ts). Options: make bench-postgres BENCH_ARGS='--iterations 2000 --seconds 2 --pin both'
bench-postgres: build bench-deps
	node dist/bench/postgres.js $(BENCH_ARGS)

clean:
	rm -rf dist src/fuse/ll/build
