# rrun workspace. On a fresh Debian 12 machine, as root:
#   make demo   # install what is needed, build, run a busybox container
#   make test   # the same set-up, then lint and every test (root tests too)
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := build

PREFIX ?= /usr/local
CARGO ?= cargo
APT_PACKAGES := busybox-static runc crun hyperfine iproute2 nftables procps gcc pkg-config
RRUN := $(CURDIR)/target/release/rrun

.PHONY: deps build install fmt lint test test-unit demo bench clean

## deps: install the Debian packages the build, tests, demo and bench need (idempotent)
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
	@command -v $(CARGO) >/dev/null || { echo "cargo not found: install Rust (rustup) first" >&2; exit 1; }

build:
	$(CARGO) build --release --workspace --locked

install: build
	install -D -m 0755 $(RRUN) $(DESTDIR)$(PREFIX)/bin/rrun

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
	RRUN_BIN=$(RRUN) $(CARGO) test --workspace --locked -- --include-ignored

demo: deps build
	RRUN=$(RRUN) scripts/demo.sh

bench: deps build
	RRUN=$(RRUN) scripts/bench.sh

clean:
	$(CARGO) clean
