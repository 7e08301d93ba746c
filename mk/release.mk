# Static router binaries, built without Docker (docs/building.md).
#
#   make release        dist/camtls-VERSION-TRIPLE for every RELEASE_TARGETS
#                       entry, and dist/SHA256SUMS
#   make DIST_BIN       one of them, e.g. make dist/camtls-0.1.0-x86_64-unknown-linux-musl
#   make test-shipped   every release binary through the integration suites,
#                       x86_64 natively, the others under qemu-user
#                       (tests/emulated/run.sh says which suites where)
#
# Each binary is checked as it is built (tests/emulated/run.sh --quick):
# static, within the size budget, --version, and tests/tls_algorithms.rs, a
# handshake for everything the TLS policy offers and resumed sessions. A
# binary that fails is deleted, so nothing unchecked reaches dist/.

# zig is the C compiler, linker and musl for every target; llvm-objcopy strips
# what the linker keeps; Configure needs perl.
APT_PACKAGES += qemu-user-static llvm binutils perl make util-linux
PIP_PACKAGES += ziglang==0.17.1 cargo-zigbuild==0.24.0
TEST_TARGETS += test-shipped

# OpenSSL builds and the cargo target directory of the cross builds. Outside
# the clone, so a fresh clone on the same machine (CI) rebuilds only what its
# changes touch.
export CAMTLS_CACHE ?= $(HOME)/.cache/camtls
# Largest a static binary may be: 2.5 MB as flash sizes are counted
# (2.5 MiB). Measured sizes and what they are spent on: docs/building.md.
export SIZE_BUDGET := 2621440

DIST_BINS := $(foreach t,$(RELEASE_TARGETS),$(call dist_bin,$(t)))
EMULATED_BINS := $(foreach t,$(EMULATED_TARGETS),$(call dist_bin,$(t)))

.PHONY: release cross-deps test-shipped test-emulated

# No prebuilt std exists for most router targets: nightly builds it from
# rust-src (-Z build-std).
cross-deps: deps
	@rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
	@rustup component list --toolchain nightly --installed | grep -q '^rust-src' || \
	  rustup component add rust-src --toolchain nightly

# What a passed check is remembered by: the binary's bytes and the check's
# own files. A rebuild with the same bytes is not checked again.
RELEASE_CHECK_FILES := tests/emulated/run.sh tests/tls_algorithms.rs tests/support/mod.rs

# One rule per binary, so that other rules can ask for just one. cargo decides
# what is stale; the file is rewritten only when its bytes change.
$(DIST_BINS): $(call dist_bin,%): cross-deps
	mk/cross-build.sh $* $@
	@stamp=$(CAMTLS_CACHE)/checked/$$(cat $@ $(RELEASE_CHECK_FILES) | sha256sum | cut -c1-32); \
	if [ ! -f $$stamp ]; then \
	  tests/emulated/run.sh --quick $@ || { rm -f $@; echo "$@ failed its release check: removed" >&2; exit 1; }; \
	  mkdir -p $(CAMTLS_CACHE)/checked && touch $$stamp; \
	fi

release: $(DIST_BINS)
	cd $(DIST) && sha256sum $(notdir $(DIST_BINS)) >SHA256SUMS
	@cat $(DIST)/SHA256SUMS

test-shipped: deps $(DIST_BINS)
	tests/emulated/run.sh $(DIST_BINS)

# The emulated router binaries only, for a quicker loop on MIPS and ARM.
test-emulated: deps $(EMULATED_BINS)
	tests/emulated/run.sh $(EMULATED_BINS)
