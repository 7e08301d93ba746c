# OpenWrt: an installable .ipk for each static router binary (no SDK needed),
# and the tests of the package with OpenWrt's own tools (built once from the
# parts kit, see below): the init script run under the real rc.common, uci
# and jshn on sample configurations, its firewall data rendered by real fw4,
# every .ipk unpacked, checked, its binary run under qemu-user, and installed,
# upgraded, reinstalled and removed with real opkg. The SDK/feed build is
# openwrt-package/camtls/Makefile.
#
#   make ipk            dist/camtls_VERSION_ARCH.ipk (OpenWrt 24.10 and older,
#                       opkg) for the six release targets, each then checked by
#                       tests/openwrt/run.sh
#   make apk            dist/camtls_VERSION-rRELEASE_ARCH.apk (OpenWrt 25.12,
#                       apk-tools v3) for the same targets, made with apk mkpkg
#                       and checked the same way
#   make dist-source    dist/camtls-VERSION.tar.gz, the source release the
#                       feed Makefile's PKG_SOURCE names, and its .sha256
#   make feed           dist/openwrt-feed/camtls/, the feed package as it is
#                       submitted: openwrt-package/camtls with PKG_HASH set to
#                       that tarball's (RELEASE_URL=... for a mirror's URL)
#   make test-openwrt   the tests, packing only the emulated targets' binaries,
#                       both kinds; and make feed's package expanded with
#                       OpenWrt's rust-package.mk, fetched from a local
#                       mirror, unpacked and compiled (tests/openwrt/feed.sh)

APT_PACKAGES += busybox shellcheck qemu-user-static tar gzip
# OpenWrt's own tools, built from the parts kit (OPENWRT_PARTS_KIT) once into
# $(CAMTLS_CACHE)/openwrt-parts by mk/openwrt-parts.sh: their build
# dependencies, util-linux's flock and unshare for the router-like chroot, and
# nftables to check the ruleset fw4 renders.
APT_PACKAGES += gcc make libc6-dev cmake pkg-config meson ninja-build \
  libjson-c-dev zlib1g-dev libssl-dev util-linux nftables
CAMTLS_CACHE ?= $(HOME)/.cache/camtls
OPENWRT_PARTS_KIT ?= ../shared/openwrt-parts
OPENWRT_PARTS_SH = mk/openwrt-parts.sh $(OPENWRT_PARTS_KIT) $(CAMTLS_CACHE)/openwrt-parts
TEST_TARGETS += test-openwrt

# The architecture names opkg uses (`opkg print-architecture` on the router).
OPENWRT_ARCH_mips-unknown-linux-musl := mips_24kc
OPENWRT_ARCH_mipsel-unknown-linux-musl := mipsel_24kc
OPENWRT_ARCH_armv7-unknown-linux-musleabihf := arm_cortex-a7_neon-vfpv4
OPENWRT_ARCH_armv7-unknown-linux-musleabi := arm_cortex-a9
OPENWRT_ARCH_aarch64-unknown-linux-musl := aarch64_cortex-a53
OPENWRT_ARCH_x86_64-unknown-linux-musl := x86_64

ipk_file = $(DIST)/camtls_$(VERSION)_$(OPENWRT_ARCH_$(1)).ipk
# apk wants a release: VERSION-rRELEASE, as OpenWrt's PKG_VERSION-rPKG_RELEASE.
OPENWRT_RELEASE := 1
apk_file = $(DIST)/camtls_$(VERSION)-r$(OPENWRT_RELEASE)_$(OPENWRT_ARCH_$(1)).apk
OPENWRT_FILES := openwrt-package/ipk/build-ipk.sh openwrt-package/ipk/postinst \
  openwrt-package/ipk/prerm openwrt-package/camtls/files/camtls.init \
  openwrt-package/camtls/files/camtls.config

define openwrt_ipk_rule
$(call ipk_file,$(1)): $(call dist_bin,$(1)) $(OPENWRT_FILES)
	openwrt-package/ipk/build-ipk.sh $(call dist_bin,$(1)) $(OPENWRT_ARCH_$(1)) $(VERSION) $(DIST)
endef
$(foreach t,$(RELEASE_TARGETS),$(eval $(call openwrt_ipk_rule,$(t))))

# apk mkpkg is the parts' apk (built on first use, hence deps first).
define openwrt_apk_rule
$(call apk_file,$(1)): $(call dist_bin,$(1)) $(OPENWRT_FILES) openwrt-package/apk/build-apk.sh | deps
	prefix=$$$$($(OPENWRT_PARTS_SH)); \
	openwrt-package/apk/build-apk.sh $$$$prefix/bin/apk $(call dist_bin,$(1)) $(OPENWRT_ARCH_$(1)) $(VERSION) $(OPENWRT_RELEASE) $(DIST)
endef
$(foreach t,$(RELEASE_TARGETS),$(eval $(call openwrt_apk_rule,$(t))))

.PHONY: ipk apk test-openwrt openwrt-parts dist-source feed

# The committed tree at HEAD (not uncommitted changes), as
# camtls-VERSION/...: the same bytes for the same commit, whoever makes it.
# git archive sorts the entries and gives every one the commit's time, owner
# root (0/0); the modes are pinned (0644, 0755 for executables and
# directories) and no line endings are converted, whatever the user's git
# config says; gzip -n stores no name or time. Published as the release's
# source (docs/openwrt.md), made from the tag vVERSION.
DIST_SOURCE := $(DIST)/camtls-$(VERSION).tar.gz
dist-source:
	@mkdir -p $(DIST)
	git -c tar.umask=0022 -c core.autocrlf=false -c core.eol=lf \
	  archive --format=tar --prefix=camtls-$(VERSION)/ HEAD | gzip -9n >$(DIST_SOURCE).tmp
	mv $(DIST_SOURCE).tmp $(DIST_SOURCE)
	cd $(DIST) && sha256sum $(notdir $(DIST_SOURCE)) | tee $(notdir $(DIST_SOURCE)).sha256

# The feed package for that tarball: openwrt-package/camtls as it is in the
# checkout, with PKG_HASH the tarball's and, if RELEASE_URL is set, that
# directory as PKG_SOURCE_URL (a mirror of the release files).
FEED_DIR := $(DIST)/openwrt-feed
RELEASE_URL ?=
feed: dist-source
	@git diff --quiet HEAD -- openwrt-package/camtls || \
	  echo "feed: openwrt-package/camtls has uncommitted changes; the tarball has the committed tree" >&2
	rm -rf $(FEED_DIR)/camtls
	@mkdir -p $(FEED_DIR)
	cp -R openwrt-package/camtls $(FEED_DIR)/camtls
	hash=$$(cut -d' ' -f1 $(DIST_SOURCE).sha256); \
	sed -i "s/^PKG_HASH:=.*/PKG_HASH:=$$hash/" $(FEED_DIR)/camtls/Makefile
	$(if $(RELEASE_URL),sed -i 's|^PKG_SOURCE_URL:=.*|PKG_SOURCE_URL:=$(RELEASE_URL)|' $(FEED_DIR)/camtls/Makefile)
	@grep -E '^PKG_(SOURCE|SOURCE_URL|HASH):=' $(FEED_DIR)/camtls/Makefile

# The parts alone (the tests build them too): prints where they are.
openwrt-parts: deps
	@$(OPENWRT_PARTS_SH)

OPENWRT_IPKS := $(foreach t,$(RELEASE_TARGETS),$(call ipk_file,$(t)))
OPENWRT_APKS := $(foreach t,$(RELEASE_TARGETS),$(call apk_file,$(t)))

# Every package made is also unpacked and checked, its binary run under qemu.
ipk: release deps build $(OPENWRT_IPKS)
	prefix=$$($(OPENWRT_PARTS_SH)); \
	OWRT_PREFIX=$$prefix OPENWRT_PARTS_KIT=$(OPENWRT_PARTS_KIT) CAMTLS_BIN=$(HOST_BIN) VERSION=$(VERSION) tests/openwrt/run.sh $(OPENWRT_IPKS)

apk: release deps build $(OPENWRT_APKS)
	prefix=$$($(OPENWRT_PARTS_SH)); \
	OWRT_PREFIX=$$prefix OPENWRT_PARTS_KIT=$(OPENWRT_PARTS_KIT) CAMTLS_BIN=$(HOST_BIN) VERSION=$(VERSION) tests/openwrt/run.sh $(OPENWRT_APKS)

# The init script calls the host build (--check, gen-cert, fingerprint); the
# packages carry the emulated router builds that `make test` makes anyway
# (mk/release.mk has the rules for them; without it only the script tests run,
# and the output says so).
OPENWRT_TEST_PKGS := $(if $(wildcard mk/release.mk),$(foreach t,$(EMULATED_TARGETS),$(call ipk_file,$(t)) $(call apk_file,$(t))))

test-openwrt: deps build $(OPENWRT_TEST_PKGS)
	$(if $(OPENWRT_TEST_PKGS),,@echo "test-openwrt: no mk/release.mk, so no router binaries: .ipk and .apk checks left out")
	prefix=$$($(OPENWRT_PARTS_SH)); \
	OWRT_PREFIX=$$prefix OPENWRT_PARTS_KIT=$(OPENWRT_PARTS_KIT) CAMTLS_BIN=$(HOST_BIN) VERSION=$(VERSION) tests/openwrt/run.sh $(OPENWRT_TEST_PKGS)
	OPENWRT_PARTS_KIT=$(OPENWRT_PARTS_KIT) tests/openwrt/feed.sh
