#!/usr/bin/env bash
# The feed Makefile (openwrt-package/camtls/Makefile) expanded as the SDK
# would, with OpenWrt's real lang/rust/rust-package.mk and rust-values.mk
# from the parts kit, and `make dist-source`.
#
# usage: tests/openwrt/feed.sh
#   OPENWRT_PARTS_KIT  the parts kit (default ../shared/openwrt-parts)
#
# Stand-ins: the SDK's rules.mk and package.mk, which are not in the kit. This
# test's rules.mk sets what rust-values.mk reads for one target (mipsel_24kc:
# ARCH, REAL_GNU_TARGET_NAME, CONFIG_USE_MUSL...) and the INSTALL_* commands
# as OpenWrt defines them; its package.mk gives the package's build and
# install directories and, for BuildPackage, targets that print what the
# package declared and run its install recipe.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
kit=$(cd "${OPENWRT_PARTS_KIT:-$repo/../shared/openwrt-parts}" && pwd) || exit 1
rust=$kit/sources/openwrt-files/packages/lang/rust
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/Cargo.toml" | head -n 1)

pass=0
fail=0
check() {
	local name=$1
	shift
	if "$@"; then
		echo "ok   $name"
		pass=$((pass + 1))
	else
		echo "FAIL $name"
		fail=$((fail + 1))
	fi
}
same() { [ "$1" = "$2" ] || { echo "     got:  $1" && echo "     want: $2" && false; }; }
has() { [[ $1 == *"$2"* ]] || { echo "     no \"$2\" in: $1" && false; }; }

work=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT

check "shellcheck tests/openwrt/feed.sh" shellcheck -x "$here/feed.sh"

# --- make dist-source ----------------------------------------------------------
make -s -C "$repo" dist-source DIST="$work/d1" >/dev/null 2>&1
check "dist-source: exits 0" test $? = 0
make -s -C "$repo" dist-source DIST="$work/d2" >/dev/null 2>&1
tarball=camtls-$version.tar.gz
check "dist-source: camtls-VERSION.tar.gz, the same bytes twice" cmp -s "$work/d1/$tarball" "$work/d2/$tarball"
check "dist-source: the .sha256 is the tarball's" \
	sh -c "cd '$work/d1' && sha256sum -c --status '$tarball.sha256'"
members=$(tar -tzf "$work/d1/$tarball" 2>/dev/null)
check "dist-source: everything under camtls-VERSION/" \
	same "$(grep -vc "^camtls-$version/" <<<"$members")" 0
check "dist-source: the files cargo builds from" same \
	"$(grep -cxF -e "camtls-$version/Cargo.toml" -e "camtls-$version/Cargo.lock" -e "camtls-$version/src/main.rs" <<<"$members")" 3
check "dist-source: the committed tree at HEAD" same \
	"$(cut -d/ -f2- <<<"$members" | grep -v '/$' | grep -v '^$' | sort)" \
	"$(git -C "$repo" ls-tree -r --name-only HEAD | sort)"

# --- the feed Makefile, expanded ---------------------------------------------------
# A packages feed, laid out as the SDK has it: lang/rust from OpenWrt's packages
# feed and this package at net/camtls.
top=$work/sdk
feed=$top/feeds/packages
mkdir -p "$top/include" "$feed/lang" "$feed/net" "$top/staging/usr/lib" "$top/dl"
cp -r "$rust" "$feed/lang/rust"
cp -r "$repo/openwrt-package/camtls" "$feed/net/camtls"
cat >"$top/rules.mk" <<'EOF'
# stand-in for the SDK's rules.mk, for one mipsel_24kc target
INCLUDE_DIR:=$(TOPDIR)/include
STAGING_DIR:=$(TOPDIR)/staging
DL_DIR:=$(TOPDIR)/dl
ARCH:=mipsel
HOST_ARCH:=x86_64
HOST_OS:=Linux
GNU_HOST_NAME:=x86_64-pc-linux-gnu
REAL_GNU_TARGET_NAME:=mipsel-openwrt-linux-musl
CONFIG_USE_MUSL:=y
TARGET_CC_NOCACHE:=mipsel-openwrt-linux-musl-gcc
HOSTCC_NOCACHE:=gcc
TARGET_LINKER:=bfd
TARGET_CFLAGS:=-Os -pipe
PKG_JOBS:=-j1
toupper=$(shell echo '$(1)' | tr a-z A-Z)
qstrip=$(strip $(subst ",,$(1)))
INSTALL_DIR:=install -d -m0755
INSTALL_BIN:=install -m0755
INSTALL_DATA:=install -m0644
INSTALL_CONF:=install -m0600
CP:=cp -fpR
EOF
cat >"$top/include/package.mk" <<'EOF'
# stand-in for the SDK's package.mk: prints what the package declares and runs
# its install recipe into DEST. Package/NAME's fields (DEPENDS, URL, USERID...)
# are assignments in its define block: evaluated first, as package.mk does.
PKG_BUILD_DIR:=$(TOPDIR)/build/$(PKG_NAME)-$(PKG_VERSION)
PKG_INSTALL_DIR:=$(PKG_BUILD_DIR)/ipkg-install
define BuildPackage
$(eval $(Package/$(1)))
show:
	@printf '%s=%s\n' $(foreach v,PKG_NAME PKG_VERSION PKG_RELEASE PKG_SOURCE PKG_SOURCE_URL PKG_HASH PKG_MAINTAINER PKG_LICENSE PKG_LICENSE_FILES PKG_BUILD_DEPENDS URL USERID RUSTC_TARGET_ARCH,'$(v)' '$($(v))')
	@printf 'DEPENDS=%s\n' '$(strip $(DEPENDS))'
	@printf 'CARGO_PKG_VARS=%s\n' "$(subst ",,$(CARGO_PKG_VARS))"
	@printf 'CONFFILES=%s\n' '$(strip $(Package/$(1)/conffiles))'
install:
	$(call Package/$(1)/install,$(DEST))
endef
EOF

mk() { make --no-print-directory -C "$feed/net/camtls" TOPDIR="$top" CAMTLS_SRC="$repo" "$@"; }
mk show >"$work/show" 2>"$work/show.err"
check "feed Makefile: expands with OpenWrt's rust-package.mk and rust-values.mk" test $? = 0 -a ! -s "$work/show.err"
[ ! -s "$work/show.err" ] || sed 's/^/     /' "$work/show.err"
val() { sed -n "s/^$1=//p" "$work/show"; }
check "feed Makefile: PKG_NAME camtls" same "$(val PKG_NAME)" camtls
check "feed Makefile: PKG_VERSION is a literal" \
	grep -qx 'PKG_VERSION:=[0-9][0-9.]*' "$repo/openwrt-package/camtls/Makefile"
check "feed Makefile: PKG_VERSION is Cargo.toml's" same "$(val PKG_VERSION)" "$version"
check "feed Makefile: PKG_RELEASE is a number" grep -qx '[0-9][0-9]*' <<<"$(val PKG_RELEASE)"
check "feed Makefile: PKG_LICENSE" same "$(val PKG_LICENSE)" "MIT OR Apache-2.0"
check "feed Makefile: builds with rust/host" same "$(val PKG_BUILD_DEPENDS)" rust/host
check "feed Makefile: includes rust-package.mk from the packages feed" \
	grep -q '^include .*/lang/rust/rust-package.mk$' "$repo/openwrt-package/camtls/Makefile"
check "feed Makefile: DEPENDS has rust's architectures and libopenssl" \
	same "$(val DEPENDS)" "@(aarch64||arm||i386||loongarch64||mips||mips64||mips64el||mipsel||powerpc||powerpc64||riscv64||x86_64) +libopenssl"
check "feed Makefile: a camtls user and group" same "$(val USERID)" camtls:camtls
check "feed Makefile: mipsel_24kc builds for mipsel-unknown-linux-musl" \
	same "$(val RUSTC_TARGET_ARCH)" mipsel-unknown-linux-musl
cargo_vars=$(val CARGO_PKG_VARS)
check "feed Makefile: cargo gets OpenWrt's libopenssl from staging" \
	has "$cargo_vars" "OPENSSL_LIB_DIR=$top/staging/usr/lib OPENSSL_INCLUDE_DIR=$top/staging/usr/include"
check "feed Makefile: rust-values.mk's panic=unwind and overflow checks (docs/security.md)" \
	has "$cargo_vars" "CARGO_PROFILE_RELEASE_PANIC=unwind"
check "feed Makefile: conffiles" same "$(val CONFFILES)" /etc/config/camtls

# The install recipe, on a stand-in for what `cargo install` left.
inst=$top/build/camtls-$version/ipkg-install
mkdir -p "$inst/bin"
printf '#!/bin/sh\n' >"$inst/bin/camtls"
mk install DEST="$work/dest" >"$work/install.log" 2>&1
check "feed Makefile: install recipe runs" test $? = 0
check "feed Makefile: installs the binary, init script and config, with modes" same \
	"$(cd "$work/dest" 2>/dev/null && find . -type f -printf '%P %m\n' | sort | tr '\n' ';')" \
	"etc/config/camtls 600;etc/init.d/camtls 755;usr/sbin/camtls 755;"
check "feed Makefile: the init script is the package's" \
	cmp -s "$work/dest/etc/init.d/camtls" "$repo/openwrt-package/camtls/files/camtls.init"
check "feed Makefile: the config is the package's" \
	cmp -s "$work/dest/etc/config/camtls" "$repo/openwrt-package/camtls/files/camtls.config"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
