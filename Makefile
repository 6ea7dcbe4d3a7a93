# smhfs — set-up is two commands: `make run` and `make test` (as root on Debian).
# Each target installs only what is missing, so re-running is cheap.

SHELL := /bin/bash
# The dependency tree (npm ci --ignore-scripts); npm writes this file at the end of the install.
NODE_DEPS_STAMP := node_modules/.package-lock.json
# better-sqlite3's addon, built from source (see "Dependencies" below).
SQLITE_ADDON := node_modules/better-sqlite3/build/Release/better_sqlite3.node
# The other approved install scripts and our postinstall have run.
NODE_SCRIPTS_STAMP := node_modules/.smhfs-scripts
BUILD_STAMP := dist/.build-stamp
TSC_STAMP := dist/.tsc-stamp
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
.PHONY: deps-steps test-deps-steps build-steps addon-steps test-packages

# The set-up runs as a parallel sub-make: one job per CPU (unless make was given -j already), each
# step's output printed whole when the step ends (-Otarget), so parallel steps never interleave.
# Why: better-sqlite3's compile is ~75 s, mostly sqlite3.c, one translation unit on one CPU; the
# other native builds, tap build and tsc (~45 s of CPU, ~32 s of wall after npm ci before) run on
# the other CPU meanwhile. A clean clone's first test, quiet runs: 122 and 155 s against 150 and
# 162 s (native-notes/cli.md, "Set-up": the two CPUs slow each other's compiles).
# `build`, `deps`, `test-deps`, `addon` and `test` go through it; the *-steps targets are its goals.
# (A `+` line is not buffered: what announces a long step is printed when the step starts.)
NPROC := $(shell nproc 2>/dev/null || echo 2)
SETUP_MAKE = $(MAKE) --no-print-directory $(if $(filter -j%,$(MAKEFLAGS)),,-j$(NPROC)) --output-sync=target
# node-gyp runs its own make: without ours in its environment (our jobserver's descriptors are not
# passed down, and it would fall back to -j1 with a warning); JOBS sets its -j.
GYP_ENV := env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL

all: build

# Debian packages the mount needs (see APT_PACKAGES), installed when missing.
system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "smhfs: need root to apt-get install$$missing (or install them yourself)"; exit 1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

# Dependencies: what `npm ci` does, in three steps so the slow one runs beside the others.
# 1. The tree: `npm ci --ignore-scripts` (node_modules removed, every package as the lockfile pins
#    it, integrity checked), no install script run. A changed patch re-runs it all (the patches are
#    applied by our postinstall, step 3).
# 2. better-sqlite3's install script (`prebuild-install || node-gyp rebuild`: no prebuilt download
#    here, so sqlite3.c is compiled: ~75 s, one translation unit on one CPU).
# 3. Beside it: the other packages package.json's allowScripts approves (libpq, fuse-native), then
#    our postinstall (our libfuse 3 addon, patch-package, fuse-native rebuilt with the patch).
# Steps 2 and 3 run through `npm rebuild NAME`, which applies the allowScripts policy as npm ci
# does; unlike npm ci, nothing that allowScripts does not approve runs (npm 11 runs unreviewed
# scripts, esbuild's postinstall, with a warning; esbuild works without it). Each step's product
# (the addon, the stamp) appears only when it succeeded, so a failure is retried by the next make,
# and a new tree (step 1 removes node_modules) removes them.
$(NODE_DEPS_STAMP): package.json package-lock.json $(wildcard patches/*.patch)
	@+echo "installing dependencies (npm ci, then native modules built from source beside the TypeScript build), ~2 minutes the first time"
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	@touch $@

# JOBS: node-gyp's make runs one compiler per CPU (sqlite3.c and better-sqlite3's C++ side together).
$(SQLITE_ADDON): | $(NODE_DEPS_STAMP) system-deps
	@+echo "building better-sqlite3 from source (~75 s) beside the steps below"
	@$(GYP_ENV) JOBS=max npm rebuild better-sqlite3 --no-audit --no-fund --loglevel=error >/dev/null || { \
	  echo "smhfs: building better-sqlite3 from source failed (npm's error above). It needs a C/C++ compiler," >&2; \
	  echo "smhfs: make and python3: as root, \`make system-deps\` (or apt-get install build-essential python3), then make again." >&2; \
	  exit 1; }
	@test -f $@ || { echo "smhfs: npm rebuild better-sqlite3 made no $@ (is it approved in package.json's allowScripts?)" >&2; exit 1; }
	@echo "built better-sqlite3"

$(NODE_SCRIPTS_STAMP): | $(NODE_DEPS_STAMP) system-deps
	@approved=$$(node -p "Object.entries(require('./package.json').allowScripts ?? {}).filter(([n, ok]) => ok === true && n !== 'better-sqlite3').map(([n]) => n).join(' ')"); \
	echo "npm rebuild $$approved"; \
	$(GYP_ENV) npm rebuild $$approved --no-audit --no-fund --loglevel=error >/dev/null || { \
	  echo "smhfs: the install script of one of $$approved failed (npm's error above). libpq needs libpq-dev," >&2; \
	  echo "smhfs: fuse-native libfuse2, both a C compiler: as root, \`make system-deps\`, then make again." >&2; \
	  exit 1; }
	@$(GYP_ENV) npm run postinstall --loglevel=error || { \
	  echo "smhfs: our postinstall failed (above: patch-package, or building fuse-native with its patch). It needs" >&2; \
	  echo "smhfs: libfuse2 and a C compiler: as root, \`make system-deps\`, then make again." >&2; \
	  exit 1; }
	@touch $@

deps-steps: system-deps $(NODE_DEPS_STAMP) $(SQLITE_ADDON) $(NODE_SCRIPTS_STAMP)
deps:
	@+$(SETUP_MAKE) deps-steps

# Our libfuse 3 low-level addon. Our postinstall builds it too (never failing the install: without
# libfuse3 smhfs runs with --binding fuse-native); here a failed build is an error. make looked
# at the addon before the postinstall ran (they run in parallel), so the recipe looks again: on a
# clean clone the postinstall has just built it from these sources.
$(LL_ADDON): src/fuse/ll/smhfs_ll.c src/fuse/ll/crc32.c src/fuse/ll/pages.c src/fuse/ll/binding.gyp src/fuse/ll/build.mjs | deps-steps
	@if [ -f $@ ] && [ -z "$$(find $^ -newer $@)" ]; then exit 0; fi; \
	echo "$(GYP_ENV) node src/fuse/ll/build.mjs --strict"; $(GYP_ENV) node src/fuse/ll/build.mjs --strict

addon-steps: $(LL_ADDON)
addon:
	@+$(SETUP_MAKE) addon-steps

# Incremental: nothing to do when no source changed; tsc recompiles only what did.
build-steps: deps-steps $(LL_ADDON) $(BUILD_STAMP)
build:
	@+$(SETUP_MAKE) build-steps

# tsc type-checks the tests against the Test class `tap build` generates (package.json's plugin
# list), so it runs after tap build, never beside it: tap build rewrites the .d.ts files tsc reads.
# It needs only the tree, not the native builds, so on a clean clone it runs beside sqlite3.c.
$(TSC_STAMP): $(SOURCES) $(NODE_DEPS_STAMP) $(TAP_BUILD_STAMP)
	npx tsc -p tsconfig.json --incremental --tsBuildInfoFile dist/.tsbuildinfo
	@touch $@

# The bundle waits for better-sqlite3's addon: the bundle records where it is, and the build runs
# the command once to write V8's code cache (src/cli/bundle.mjs says why).
$(BUILD_STAMP): $(TSC_STAMP) | $(SQLITE_ADDON)
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

# After system-deps: one apt-get at a time (it needs nothing else, so it runs beside npm).
test-packages: | system-deps
	@missing=""; for p in $(TEST_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages for the tests:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

test-deps-steps: deps-steps test-packages
test-deps:
	@+$(SETUP_MAKE) test-deps-steps

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

test:
	rm -rf dist
	@+$(SETUP_MAKE) build-steps test-deps-steps
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

bench-deps: test-deps
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
