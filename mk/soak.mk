# Soak and attack runs of the static x86_64 build, as shipped, on loopback
# only (tests/soak/soak.py; docs/security.md, "Under attack").
#
#   make test-soak     the short form, about 2 minutes (part of make test):
#                      --max-connections 64, smaller attacks, 15 s phases
#   make soak          the full form, default limits, SOAK_PHASE_SECONDS a
#                      phase (baseline 2 minutes); writes its figures into
#                      docs/security.md
#   make soak-memory   SOAK_MEMORY_SECONDS of steady load, RSS every minute,
#                      then at rest, after a minute of attack, and at rest
#                      after each of 6 one-minute floods (a leak grows with
#                      each, memory the allocator keeps does not); writes
#                      docs/security.md, and every sample to
#                      target/soak-memory.json
#
# Each fails with the targets it missed. prlimit (util-linux) starts the
# camtls that runs out of descriptors.
APT_PACKAGES += util-linux python3 openssl
TEST_TARGETS += test-soak

SOAK_BIN := $(call dist_bin,x86_64-unknown-linux-musl)
SOAK_PHASE_SECONDS ?= 180
SOAK_MEMORY_SECONDS ?= 3600
SOAK := python3 tests/soak/soak.py --camtls $(SOAK_BIN)

.PHONY: test-soak soak soak-memory

test-soak: deps $(SOAK_BIN)
	$(SOAK) --short

soak: deps $(SOAK_BIN)
	$(SOAK) --phase-seconds $(SOAK_PHASE_SECONDS) --out docs/security.md

soak-memory: deps $(SOAK_BIN)
	$(SOAK) --memory $(SOAK_MEMORY_SECONDS) --out docs/security.md --data target/soak-memory.json
