# Tomato / FreshTomato: the one file a user copies to the router, and its tests.
#
#   make tomato        dist/camtls-VERSION-tomato.sh: install.sh with the ARM
#                      (soft-float) and the mipsel binaries and the
#                      Init/Firewall/Shutdown scripts inside
#   make test-tomato   tests/tomato/run.sh: the scripts under busybox ash in a
#                      Tomato-shaped root with real iptables in a network
#                      namespace, the installer's choice of binary for MIPS
#                      and ARM routers and its places on a small or full
#                      JFFS; the x86_64 static build's end-to-end,
#                      process and proxy suites on the 2.6.22 and 2.6.36
#                      kernel floors, and the mipsel build's under qemu
#
# FreshTomato ARM (BCM4708/4709, 2.6.36) takes the armv7 soft-float binary,
# FreshTomato MIPS (BCM4706/4716/4718, 2.6.22, little-endian) the mipsel one;
# install.sh picks by `uname -m` and byte order. No big-endian MIPS Tomato
# exists. Override TOMATO_TARGETS to bundle others.

APT_PACKAGES += busybox iptables iproute2 util-linux shellcheck gcc libc6-dev \
  linux-libc-dev openssl curl gzip tar qemu-user-static
TEST_TARGETS += test-tomato

TOMATO_TARGETS ?= armv7-unknown-linux-musleabi mipsel-unknown-linux-musl
TOMATO_BUNDLE := $(DIST)/camtls-$(VERSION)-tomato.sh
TOMATO_SCRIPTS := $(addprefix tomato-scripts/,install.sh mkbundle.sh camtls.init camtls.fire camtls.shut)
TOMATO_TEST_BIN := $(call dist_bin,x86_64-unknown-linux-musl)
TOMATO_TEST_MIPSEL := $(call dist_bin,mipsel-unknown-linux-musl)

.PHONY: tomato test-tomato

tomato: $(TOMATO_BUNDLE)

$(TOMATO_BUNDLE): $(foreach t,$(TOMATO_TARGETS),$(call dist_bin,$(t))) $(TOMATO_SCRIPTS)
	tomato-scripts/mkbundle.sh $@ $(foreach t,$(TOMATO_TARGETS),$(t)=$(call dist_bin,$(t)))

test-tomato: deps $(TOMATO_TEST_BIN) $(TOMATO_TEST_MIPSEL)
	tests/tomato/run.sh $(TOMATO_TEST_BIN) $(TOMATO_TEST_MIPSEL)
