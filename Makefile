# smhfs — set-up is two commands: `make run` and `make test` (as root on Debian).
# Each target installs only what is missing, so re-running is cheap.

SHELL := /bin/bash
NODE_DEPS_STAMP := node_modules/.package-lock.json
LIBRARY ?= $(HOME)/.local/share/smhfs/default
MOUNTPOINT ?= $(CURDIR)/mnt
APT_PACKAGES := libfuse2 fuse
BENCH_PACKAGES := bindfs fio rclone s3fs

.PHONY: all deps system-deps build run test bench clean

all: build

# Debian packages the mount needs at run time: libfuse.so.2 (fuse-native) and fusermount (unmount).
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

build: deps
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

# Options go in BENCH_ARGS, e.g. make bench BENCH_ARGS='--only remote --runs 3'.
bench: build bench-deps
	node dist/bench/run.js $(BENCH_ARGS)

clean:
	rm -rf dist
