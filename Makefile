# rrun workspace. On a fresh Debian 12 machine, as root:
#   make demo   # install what is needed, build, tour rbox with a busybox web server
#   make test   # the same set-up, then lint and every test (root tests too)
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := build

PREFIX ?= /usr/local
CARGO ?= cargo
# protobuf-compiler: protoc, which the k8s-cri crate's build script runs (the CRI tests' client)
APT_PACKAGES := busybox-static runc crun hyperfine iproute2 nftables procps strace gcc libc6-dev pkg-config golang-github-containers-common podman containerd tar containernetworking-plugins iptables docker-registry skopeo debootstrap protobuf-compiler
# rrun and the CNI plugins are built for the musl target: static binaries with no dynamic loader
# and no glibc start-up work (cpuid probing for cache sizes, which is slow in
# a VM). rrun starts twice per container (the CVE-2019-5736 re-exec), so that
# start-up is a tenth of `rrun run` (docs/performance.md).
ARCH := $(shell uname -m)
RRUN_TARGET ?= $(ARCH)-unknown-linux-musl
RRUN := $(CURDIR)/target/$(RRUN_TARGET)/release/rrun
# rbox run --init's PID 1, a static binary of the rrun package
RRUN_INIT := $(CURDIR)/target/$(RRUN_TARGET)/release/rbox-init
CNI_PLUGINS := loopback host-local bridge portmap
CNI_BIN_DIR := $(CURDIR)/target/$(RRUN_TARGET)/release
# rbox (the manager) is a glibc build: it starts once per user command and
# links SQLite, so the static-binary start-up argument does not apply.
RBOX := $(CURDIR)/target/release/rbox
# the containerd shim runs as long as its container, one per container, so
# its resident memory counts: a static musl build maps no shared libraries
# and musl's malloc keeps no per-thread arenas (docs/performance.md)
SHIM := $(CURDIR)/target/$(RRUN_TARGET)/release/containerd-shim-rrun-v2

.PHONY: deps build install fmt lint test test-unit demo bench soak clean

## deps: install the Debian packages the build, tests, demo and bench need (idempotent).
## Debian's Docker (docker.io: the compat tests drive a private dockerd with rrun, and
## `make bench` compares `rbox run` with `docker run`) is installed with no daemon
## started: a policy-rc.d that refuses every service start is in place during the
## install (a system dockerd would make docker0 on 172.17.0.0/16 and set the FORWARD
## policy to DROP); the tests and the bench run their own private dockerd.
deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq </dev/null; \
	  apt-get install -y -qq --no-install-recommends $$missing </dev/null; \
	fi
	@if ! dpkg-query -W -f='$${Status}' docker.io 2>/dev/null | grep -q "install ok installed"; then \
	  echo "installing: docker.io (no service started)"; \
	  made=0; [ -e /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; made=1; }; \
	  apt-get update -qq </dev/null; rc=0; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io </dev/null || rc=$$?; \
	  [ $$made = 0 ] || rm -f /usr/sbin/policy-rc.d; \
	  [ $$rc = 0 ] || exit $$rc; \
	  if pgrep -x dockerd >/dev/null; then echo "a dockerd is running after the install: stop it before make test or make bench" >&2; exit 1; fi; \
	fi
	@command -v $(CARGO) >/dev/null || { echo "cargo not found: install Rust (rustup) first" >&2; exit 1; }
	@if ! rustc --print target-libdir --target $(RRUN_TARGET) 2>/dev/null | xargs -I{} test -d {}; then \
	  command -v rustup >/dev/null || { echo "the Rust standard library for $(RRUN_TARGET) is missing and rustup is not installed" >&2; exit 1; }; \
	  rustup target add $(RRUN_TARGET); \
	fi

build:
	$(CARGO) build --release --locked -p rrun -p cni-plugins --target $(RRUN_TARGET)
	$(CARGO) build --release --locked -p rbox
	$(CARGO) build --release --locked -p containerd-shim-rrun-v2 --target $(RRUN_TARGET)

## install: copy what `make build` made (it builds nothing: `make build` as your user,
## then `make install` as root, so that no cargo runs as root and no root-owned file lands
## in target/): rrun, rbox, rbox-init and containerd-shim-rrun-v2 to $(PREFIX)/bin (rbox
## finds the others next to itself), the CNI plugins to $(PREFIX)/lib/cni (where rbox looks
## first for PREFIX=/usr/local; else set RBOX_CNI_PATH)
INSTALL_BINS := $(RRUN) $(RRUN_INIT) $(RBOX) $(SHIM) $(addprefix $(CNI_BIN_DIR)/,$(CNI_PLUGINS))
install:
	@missing=""; for f in $(INSTALL_BINS); do [ -x "$$f" ] || missing="$$missing $$f"; done; \
	if [ -n "$$missing" ]; then \
	  echo "make install: not built:$$missing" >&2; \
	  echo "make install copies what make build made: run 'make build' (as your user) first" >&2; \
	  exit 1; \
	fi
	install -D -m 0755 $(RRUN) $(DESTDIR)$(PREFIX)/bin/rrun
	install -D -m 0755 $(RRUN_INIT) $(DESTDIR)$(PREFIX)/bin/rbox-init
	install -D -m 0755 $(RBOX) $(DESTDIR)$(PREFIX)/bin/rbox
	install -D -m 0755 $(SHIM) $(DESTDIR)$(PREFIX)/bin/containerd-shim-rrun-v2
	for p in $(CNI_PLUGINS); do install -D -m 0755 $(CNI_BIN_DIR)/$$p $(DESTDIR)$(PREFIX)/lib/cni/$$p; done

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

## test-unit: tests that need no root
test-unit:
	$(CARGO) test --workspace --locked

## test: everything, root tests included (what CI runs)
test: deps build lint
	@[ "$$(id -u)" = 0 ] || { echo "make test runs real containers: run it as root" >&2; exit 1; }
	RRUN_BIN=$(RRUN) RBOX_BIN=$(RBOX) SHIM_BIN=$(SHIM) CNI_BIN_DIR=$(CNI_BIN_DIR) $(CARGO) test --workspace --locked -- --include-ignored

demo: deps build
	RRUN=$(RRUN) RBOX=$(RBOX) SHIM=$(SHIM) CNI_BIN_DIR=$(CNI_BIN_DIR) scripts/demo.sh

bench: deps build
	RRUN=$(RRUN) RBOX=$(RBOX) SHIM=$(SHIM) CNI_BIN_DIR=$(CNI_BIN_DIR) scripts/bench.sh

## soak: kill -9 of rbox, a shim or rrun at random points of run/exec/stop/rm, then count
## what rm -f of everything leaves (SOAK_CYCLES, default 300; all counts must be 0)
soak: deps build
	RRUN=$(RRUN) RBOX=$(RBOX) SHIM=$(SHIM) CNI_BIN_DIR=$(CNI_BIN_DIR) scripts/soak.sh

clean:
	$(CARGO) clean
