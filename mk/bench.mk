# make bench: camtls against nginx, haproxy, stunnel and hitch on this
# machine (issues 7 and 13):
# CPU, latency, throughput and memory, with the single-core limits from
# `openssl speed`; writes docs/performance.md. Not part of `make test`: it
# takes minutes and its figures depend on the machine.
#
# It measures the static x86_64 release binary (built first, mk/release.mk),
# as shipped; BENCH_STATIC=0 measures the host build instead, without the
# cross toolchain. The report names the binary.
BENCH_APT_PACKAGES := nginx haproxy stunnel4 hitch wrk curl openssl util-linux
BENCH_ROUNDS ?= 3
BENCH_SECONDS ?= 5
BENCH_STATIC ?= 1
BENCH_STATIC_BIN := $(call dist_bin,x86_64-unknown-linux-musl)
BENCH_CAMTLS := $(if $(filter 1,$(BENCH_STATIC)),$(BENCH_STATIC_BIN)) $(HOST_BIN)

.PHONY: bench
bench: build $(if $(filter 1,$(BENCH_STATIC)),$(BENCH_STATIC_BIN))
	@$(MAKE) --no-print-directory deps APT_PACKAGES="$(BENCH_APT_PACKAGES)"
	python3 tests/bench/bench.py $(addprefix --camtls ,$(BENCH_CAMTLS)) \
	  --dist $(DIST) --rounds $(BENCH_ROUNDS) --seconds $(BENCH_SECONDS) \
	  --out docs/performance.md

# make bench-profile: where camtls's time and memory go, next to nginx's:
# perf profiles and system calls per request, handshake and MiB, and camtls's
# resident memory by mapping, in target/bench-profile/summary.txt. Uses an
# unstripped release build in its own target directory.
BENCH_PROFILE_DIR := target/bench-profile

.PHONY: bench-profile
bench-profile: deps
	@$(MAKE) --no-print-directory deps APT_PACKAGES="$(BENCH_APT_PACKAGES) linux-perf strace"
	CARGO_PROFILE_RELEASE_STRIP=false CARGO_PROFILE_RELEASE_DEBUG=line-tables-only \
	  $(CARGO) build --release --target-dir target/profile
	rm -rf $(BENCH_PROFILE_DIR)
	python3 tests/bench/bench.py --camtls target/profile/release/camtls \
	  --proxies camtls,nginx --profile $(BENCH_PROFILE_DIR) --seconds $(BENCH_SECONDS)

# make bench-mips: camtls for mipsel against Debian 12's own mipsel nginx and
# stunnel4, all under qemu-user, in guest instructions per request, handshake
# and MiB (a TCG plugin counts them) and guest memory with 20 idle
# connections; writes its own block of docs/performance.md. The sysroot, the
# plugin and qemu's plugin header are made once under BENCH_MIPS_CACHE by
# tests/bench/mips-setup.sh. Not part of `make test`; about a minute a round.
BENCH_MIPS_APT_PACKAGES := qemu-user gcc libc6-dev xz-utils nginx curl openssl util-linux
BENCH_MIPS_BIN := $(call dist_bin,mipsel-unknown-linux-musl)
BENCH_MIPS_CACHE = $(CAMTLS_CACHE)/bench-mips
BENCH_MIPS_ROUNDS ?= 2

.PHONY: bench-mips
bench-mips: $(BENCH_MIPS_BIN)
	@$(MAKE) --no-print-directory deps APT_PACKAGES="$(BENCH_MIPS_APT_PACKAGES)"
	tests/bench/mips-setup.sh $(BENCH_MIPS_CACHE)
	python3 tests/bench/bench_mips.py --camtls $(BENCH_MIPS_BIN) --cache $(BENCH_MIPS_CACHE) \
	  --rounds $(BENCH_MIPS_ROUNDS) --out docs/performance.md

# make bench-memory: resident memory per idle TLS connection (TLS 1.3 and
# 1.2) and at idle, split into anonymous and file pages, of the static x86_64
# build as shipped (tests/bench/memory.py; about a minute). BENCH_MEMORY_BINS
# names other binaries to measure beside it.
BENCH_MEMORY_BINS ?=

.PHONY: bench-memory
bench-memory: deps $(BENCH_STATIC_BIN)
	python3 tests/bench/memory.py $(BENCH_STATIC_BIN) $(BENCH_MEMORY_BINS)

# make bench-opt: the cost of the size-first OpenSSL options (-Os,
# OPENSSL_SMALL_FOOTPRINT) on x86_64, aarch64 and armv7: each target's camtls
# built as shipped and speed-first (tests/bench/opt-build.sh, into
# BENCH_OPT_DIR), then binary sizes and guest instructions per handshake and
# per MiB under qemu-user with make bench-mips's counting plugin
# (tests/bench/opt_levels.py). Prints a table; docs/performance.md has the
# figures. Six OpenSSL builds the first time, minutes each.
BENCH_OPT_TARGETS ?= x86_64-unknown-linux-musl aarch64-unknown-linux-musl armv7-unknown-linux-musleabihf
BENCH_OPT_DIR = $(CAMTLS_CACHE)/bench-opt

.PHONY: bench-opt
bench-opt: cross-deps
	@$(MAKE) --no-print-directory deps APT_PACKAGES="$(BENCH_MIPS_APT_PACKAGES)"
	tests/bench/mips-setup.sh $(BENCH_MIPS_CACHE)
	for t in $(BENCH_OPT_TARGETS); do for o in size speed; do \
	  tests/bench/opt-build.sh $$t $(BENCH_OPT_DIR)/camtls-$$o-$$t $$o || exit 1; done; done
	python3 tests/bench/opt_levels.py --dir $(BENCH_OPT_DIR) --plugin $(BENCH_MIPS_CACHE)/insn.so \
	  --targets $(shell echo $(BENCH_OPT_TARGETS) | tr ' ' ,)
