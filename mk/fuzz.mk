# Fuzzing (issue 15: one request must never take camtls down): libFuzzer
# through cargo-fuzz on nightly, on every parser that network input or the
# command line reaches. src/fuzzing.rs holds the properties each target
# checks; fuzz/ the targets, their seeds and the inputs they once crashed on.
#
#   make test-fuzz   every target for FUZZ_TEST_SECONDS (30) each; in make test
#   make fuzz        every target for FUZZ_SECONDS (600) each
#   make fuzz FUZZ_TARGETS="locations targets" FUZZ_SECONDS=3600
#
# Both fail on a crash, a hang or a broken property and name the input in
# fuzz/artifacts/TARGET/; mk/fuzz.sh says what to do with it.
APT_PACKAGES += g++
TEST_TARGETS += test-fuzz

CARGO_FUZZ_VERSION := 0.13.2
FUZZ_TEST_SECONDS ?= 30
FUZZ_SECONDS ?= 600
# Empty: every target in fuzz/Cargo.toml.
FUZZ_TARGETS ?=
# Outside the clone (next to mk/release.mk's cache), so a fresh clone on the
# same machine (CI) rebuilds only what its changes touch.
FUZZ_TARGET_DIR ?= $(or $(CAMTLS_CACHE),$(HOME)/.cache/camtls)/fuzz-target

.PHONY: fuzz-deps fuzz test-fuzz

# nightly (libFuzzer's instrumentation and the sanitizer are unstable flags)
# and the pinned cargo-fuzz, each installed only when missing.
fuzz-deps: deps
	@rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
	@[ "$$(cargo fuzz --version 2>/dev/null)" = "cargo-fuzz $(CARGO_FUZZ_VERSION)" ] || \
	  $(CARGO) install --locked cargo-fuzz --version $(CARGO_FUZZ_VERSION)

# The fuzz crate is outside the main workspace, so test-lint does not see it.
test-fuzz: fuzz-deps
	cd fuzz && $(CARGO) fmt -- --check
	cd fuzz && $(CARGO) clippy --all-targets --target-dir $(FUZZ_TARGET_DIR)/clippy -- -D warnings
	FUZZ_TARGET_DIR=$(FUZZ_TARGET_DIR) mk/fuzz.sh $(FUZZ_TEST_SECONDS) $(FUZZ_TARGETS)

fuzz: fuzz-deps
	FUZZ_TARGET_DIR=$(FUZZ_TARGET_DIR) mk/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)
