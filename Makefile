# camtls: the two entry points are `make run` (a proxy in front of the sample
# camera on https://127.0.0.1:8443) and `make test` (every test). Each make
# target installs what it needs first, idempotently, so both work on a fresh
# Debian 12 machine with Rust installed.
#
# Concerns with larger build or test machinery live in mk/*.mk; each fragment
# adds to APT_PACKAGES, PIP_PACKAGES and TEST_TARGETS.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

CARGO ?= cargo
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
HOST_BIN := target/release/camtls

# Router binaries (mk/release.mk builds them): dist/camtls-$(VERSION)-TRIPLE.
# The emulated ones are built and tested under qemu-user by `make test`.
DIST := dist
RELEASE_TARGETS := mips-unknown-linux-musl mipsel-unknown-linux-musl \
  armv7-unknown-linux-musleabihf armv7-unknown-linux-musleabi \
  aarch64-unknown-linux-musl x86_64-unknown-linux-musl
EMULATED_TARGETS := mipsel-unknown-linux-musl mips-unknown-linux-musl \
  armv7-unknown-linux-musleabihf
dist_bin = $(DIST)/camtls-$(VERSION)-$(1)

# What the host build and tests use: OpenSSL headers for openssl-sys, and the
# real clients the tests talk through.
APT_PACKAGES := pkg-config libssl-dev openssl curl python3 ca-certificates
PIP_PACKAGES :=
RUSTUP_COMPONENTS := clippy rustfmt
TEST_TARGETS := test-lint test-rust

include $(sort $(wildcard mk/*.mk))

.PHONY: help deps build run test test-lint test-rust test-host clean

help:
	@echo "make run    camtls on https://127.0.0.1:8443 in front of the sample camera"
	@echo "make test   every test (lint, unit, end-to-end, emulated router builds, scripts)"
	@echo "make build  the host binary, $(HOST_BIN)"

# Installs only what is missing, so a second run costs a few dpkg queries.
deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  [ "$$(id -u)" = 0 ] || { echo "run as root, or install:$$missing" >&2; exit 1; }; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	@for c in $(RUSTUP_COMPONENTS); do \
	  rustup component list --installed 2>/dev/null | grep -q "^$$c" || rustup component add $$c; \
	done
	@if [ -n "$(strip $(PIP_PACKAGES))" ]; then \
	  for p in $(PIP_PACKAGES); do \
	    python3 -m pip show -q $${p%%[=<>]*} >/dev/null 2>&1 || python3 -m pip install -q $$p; \
	  done; \
	fi

build: deps
	$(CARGO) build --release

run: build
	@mkdir -p run
	@[ -f run/cert.pem ] || $(HOST_BIN) gen-cert --cert run/cert.pem --key run/key.pem --name localhost --name 127.0.0.1
	@python3 tests/sample-camera/camera.py --listen 127.0.0.1:8080 & cam=$$!; \
	trap 'kill $$cam 2>/dev/null' EXIT INT TERM; \
	echo "sample camera on http://127.0.0.1:8080 (plain HTTP, as a camera speaks)"; \
	echo "open https://127.0.0.1:8443/  certificate SHA-256 $$($(HOST_BIN) fingerprint run/cert.pem)"; \
	echo "Ctrl-C stops both"; \
	$(HOST_BIN) --route 127.0.0.1:8443=127.0.0.1:8080 --cert run/cert.pem --key run/key.pem

test: $(TEST_TARGETS)

test-lint: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

# Unit tests. The integration suites run against the shipped binaries in
# test-shipped (mk/release.mk); test-host runs them against the host build,
# for a quick edit-compile loop.
test-rust: deps
	$(CARGO) test --lib --bins

test-host: deps
	$(CARGO) test

clean:
	$(CARGO) clean
	rm -rf run dist
