# Static router binaries, built without Docker (docs/building.md).
#
#   make release        dist/camtls-VERSION-TRIPLE for every RELEASE_TARGETS
#                       entry, each checked (static, size budget, --version
#                       under qemu-user), and dist/SHA256SUMS
#   make DIST_BIN       one of them, e.g. make dist/camtls-0.1.0-x86_64-unknown-linux-musl
#   make test-emulated  the EMULATED_TARGETS built and run through the e2e and
#                       cli suites under qemu-user

# zig is the C compiler, linker and musl for every target; llvm-objcopy strips
# what the linker keeps; Configure needs perl.
APT_PACKAGES += qemu-user-static llvm binutils perl make util-linux
PIP_PACKAGES += ziglang==0.17.1 cargo-zigbuild==0.24.0
TEST_TARGETS += test-emulated

# OpenSSL builds and the cargo target directory of the cross builds. Outside
# the clone, so a fresh clone on the same machine (CI) rebuilds only what its
# changes touch.
export CAMTLS_CACHE ?= $(HOME)/.cache/camtls
# Largest a static binary may be: 2.5 MB as flash sizes are counted
# (2.5 MiB). Measured sizes and what they are spent on: docs/building.md.
export SIZE_BUDGET := 2621440

DIST_BINS := $(foreach t,$(RELEASE_TARGETS),$(call dist_bin,$(t)))
EMULATED_BINS := $(foreach t,$(EMULATED_TARGETS),$(call dist_bin,$(t)))

.PHONY: release cross-deps test-emulated

# No prebuilt std exists for most router targets: nightly builds it from
# rust-src (-Z build-std).
cross-deps: deps
	@rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
	@rustup component list --toolchain nightly --installed | grep -q '^rust-src' || \
	  rustup component add rust-src --toolchain nightly

# One rule per binary, so that other rules can ask for just one. cargo decides
# what is stale; the file is rewritten only when its bytes change.
$(DIST_BINS): $(call dist_bin,%): cross-deps
	mk/cross-build.sh $* $@

release: $(DIST_BINS)
	tests/emulated/run.sh --quick $(DIST_BINS)
	cd $(DIST) && sha256sum $(notdir $(DIST_BINS)) >SHA256SUMS
	@cat $(DIST)/SHA256SUMS

test-emulated: $(EMULATED_BINS)
	tests/emulated/run.sh $(EMULATED_BINS)
