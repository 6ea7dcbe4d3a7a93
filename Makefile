# smhfs — set-up is two commands: `make run` and `make test` (as root on Debian).
# Each target installs only what is missing, so re-running is cheap.

SHELL := /bin/bash
NODE_DEPS_STAMP := node_modules/.package-lock.json
LIBRARY ?= $(HOME)/.local/share/smhfs/default
MOUNTPOINT ?= $(CURDIR)/mnt
# libfuse2: fuse-native (the fallback binding). fuse3: fusermount3 for the libfuse 3 binding
# (on Debian 12 it replaces `fuse` and keeps a `fusermount` link). libfuse3-dev, pkg-config,
# build-essential, python3: node-gyp builds our addon (src/fuse/ll) and fuse-native from source.
APT_PACKAGES := libfuse2 fuse3 libfuse3-dev pkg-config build-essential python3
BENCH_PACKAGES := bindfs fio rclone s3fs
LL_ADDON := src/fuse/ll/build/Release/smhfs_ll.node
BENCH_ARGS ?=

.PHONY: all deps system-deps build run test bench clean addon

all: build

# Debian packages the mount needs (see APT_PACKAGES), installed when missing.
system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "smhfs: need root to apt-get install$$missing (or install them yourself)"; exit 1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

$(NODE_DEPS_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

deps: system-deps $(NODE_DEPS_STAMP)

# Our libfuse 3 low-level addon. `npm ci` builds it too (postinstall, never failing the install:
# without libfuse3 smhfs runs with --binding fuse-native); here a failed build is an error.
$(LL_ADDON): src/fuse/ll/smhfs_ll.c src/fuse/ll/binding.gyp src/fuse/ll/build.mjs | deps
	node src/fuse/ll/build.mjs --strict

addon: $(LL_ADDON)

build: deps $(LL_ADDON)
	rm -rf dist
	npx tsc -p tsconfig.json
	@chmod +x dist/src/cli/main.js

run: build
	@mkdir -p "$(MOUNTPOINT)"
	@echo "Mounting library $(LIBRARY) at $(MOUNTPOINT). Stop with Ctrl-C (or: node dist/src/cli/main.js unmount $(MOUNTPOINT))."
	node dist/src/cli/main.js mount "$(MOUNTPOINT)" --library "$(LIBRARY)"

test: build
	npx tap

bench-deps: deps
	@missing=""; for p in $(BENCH_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; fi

bench: build bench-deps
	node dist/bench/run.js $(BENCH_ARGS)

clean:
	rm -rf dist src/fuse/ll/build
