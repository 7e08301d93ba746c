# The system call census of the Tomato binaries (tests/census/run.sh): the
# mipsel and the armv7 soft-float build each run the end-to-end suite under
# qemu-user -strace on their router's kernel floor (MIPS o32 at 2.6.22, ARM
# EABI at 2.6.36), and every call and flag they make is checked against that
# architecture's syscall table (tests/census/*.txt) or a known, tested
# fallback (tests/census/fallbacks.txt).
#
#   make test-census     about a minute

APT_PACKAGES += qemu-user-static gcc libc6-dev python3 shellcheck
TEST_TARGETS += test-census

CENSUS_BINS := $(call dist_bin,mipsel-unknown-linux-musl) $(call dist_bin,mips-unknown-linux-musl) \
  $(call dist_bin,armv7-unknown-linux-musleabi)

.PHONY: test-census

test-census: deps $(CENSUS_BINS)
	tests/census/run.sh $(CENSUS_BINS)
