# make bench: camtls against nginx and stunnel on this machine (issue 7):
# CPU, latency, throughput and memory, with the single-core limits from
# `openssl speed`; writes docs/performance.md. Not part of `make test`: it
# takes minutes and its figures depend on the machine.
#
# It measures the static x86_64 release binary when `make release` has built
# it, the host build otherwise, and says which in the report.
BENCH_APT_PACKAGES := nginx stunnel4 wrk curl openssl util-linux
BENCH_ROUNDS ?= 3
BENCH_SECONDS ?= 5
BENCH_CAMTLS := $(call dist_bin,x86_64-unknown-linux-musl) $(HOST_BIN)

.PHONY: bench
bench: build
	@$(MAKE) --no-print-directory deps APT_PACKAGES="$(BENCH_APT_PACKAGES)"
	python3 tests/bench/bench.py $(addprefix --camtls ,$(BENCH_CAMTLS)) \
	  --dist $(DIST) --rounds $(BENCH_ROUNDS) --seconds $(BENCH_SECONDS) \
	  --out docs/performance.md
