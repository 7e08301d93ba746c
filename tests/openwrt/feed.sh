#!/usr/bin/env bash
# The feed package as `make feed` writes it (dist/openwrt-feed/camtls: the
# feed Makefile with the hash of `make dist-source`'s tarball), expanded and
# run as the SDK would, with OpenWrt's real lang/rust/rust-package.mk and
# rust-values.mk from the parts kit, from a local dl/ and a local mirror. No
# network: the stand-in download refuses any URL that is not file://.
#
# usage: tests/openwrt/feed.sh
#   OPENWRT_PARTS_KIT  the parts kit (default ../shared/openwrt-parts)
#
# Stand-ins: the SDK's rules.mk and package.mk, which are not in the kit. This
# test's rules.mk sets what rust-values.mk reads for one target (mipsel_24kc:
# ARCH, REAL_GNU_TARGET_NAME, CONFIG_USE_MUSL...; others on the command line)
# and the INSTALL_* commands as OpenWrt defines them. Its package.mk gives the
# package's build and install directories and, for BuildPackage, targets that
# print what the package declared; download, as download.pl does it (a file
# already in DL_DIR is taken as it is; otherwise each DOWNLOAD_MIRROR, then
# PKG_SOURCE_URL, and a copy whose sha256 is not PKG_HASH is deleted);
# prepare, unpack.mk's command for a .tar.gz; compile, rust-package.mk's own
# Build/Compile, first with a cargo that records its environment and
# arguments (three router targets), then with the real cargo, offline, for
# the host as the target; and install, the package's install recipe.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
kit=$(cd "${OPENWRT_PARTS_KIT:-$repo/../shared/openwrt-parts}" && pwd) || exit 1
rust=$kit/sources/openwrt-files/packages/lang/rust
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/Cargo.toml" | head -n 1)
license=$(sed -n 's/^license = "\(.*\)"/\1/p' "$repo/Cargo.toml" | head -n 1)

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
hasnt() { [[ $1 != *"$2"* ]] || { echo "     \"$2\" in: $1" && false; }; }

work=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT

check "shellcheck tests/openwrt/feed.sh" shellcheck -x "$here/feed.sh"

# --- make dist-source ----------------------------------------------------------
make -s -C "$repo" dist-source DIST="$work/d1" >/dev/null 2>&1
check "dist-source: exits 0" test $? = 0
# The second time as someone else would: a git config that sets other modes
# and line endings, and a stricter umask.
printf '[tar]\n\tumask = 0077\n[core]\n\tautocrlf = true\n' >"$work/gitconfig"
(umask 077 && GIT_CONFIG_GLOBAL=$work/gitconfig make -s -C "$repo" dist-source DIST="$work/d2" >/dev/null 2>&1)
tarball=camtls-$version.tar.gz
check "dist-source: camtls-VERSION.tar.gz, the same bytes twice (other git config and umask)" \
	cmp -s "$work/d1/$tarball" "$work/d2/$tarball"
check "dist-source: the .sha256 is the tarball's" \
	sh -c "cd '$work/d1' && sha256sum -c --status '$tarball.sha256'"
members=$(tar -tzf "$work/d1/$tarball" 2>/dev/null)
check "dist-source: everything under camtls-VERSION/" \
	same "$(grep -vc "^camtls-$version/" <<<"$members")" 0
check "dist-source: the files cargo builds from, and the license texts" same \
	"$(grep -cxF -e "camtls-$version/Cargo.toml" -e "camtls-$version/Cargo.lock" -e "camtls-$version/src/main.rs" \
		-e "camtls-$version/LICENSE-MIT" -e "camtls-$version/LICENSE-APACHE" <<<"$members")" 5
check "dist-source: the committed tree at HEAD" same \
	"$(cut -d/ -f2- <<<"$members" | grep -v '/$' | grep -v '^$' | sort)" \
	"$(git -C "$repo" ls-tree -r --name-only HEAD | sort)"
check "dist-source: owner root, modes 0644 and 0755, the commit's time" same \
	"$(tar -tvzf "$work/d1/$tarball" | awk '{print $1, $2}' | sort -u | tr '\n' ';')" \
	"-rw-r--r-- root/root;-rwxr-xr-x root/root;drwxr-xr-x root/root;"
check "dist-source: every member has the commit's time" same \
	"$(tar --full-time -tvzf "$work/d1/$tarball" | awk '{print $4, $5}' | sort -u)" \
	"$(TZ=UTC0 git -C "$repo" log -1 --date=format-local:'%Y-%m-%d %H:%M:%S' --format=%cd HEAD)"

# --- make feed -----------------------------------------------------------------------
template=$repo/openwrt-package/camtls/Makefile
hash=$(cut -d' ' -f1 "$work/d1/$tarball.sha256")
check "feed template: one PKG_HASH line, 64 hex digits, for make feed to replace" \
	same "$(grep -c '^PKG_HASH:=' "$template") $(grep -cxE 'PKG_HASH:=[0-9a-f]{64}' "$template")" "1 1"
make -s -C "$repo" feed DIST="$work/d1" >/dev/null 2>"$work/feed.err"
check "make feed: exits 0" test $? = 0
pkg=$work/d1/openwrt-feed/camtls
check "make feed: PKG_HASH is the tarball's" grep -qx "PKG_HASH:=$hash" "$pkg/Makefile"
check "make feed: the template otherwise" same \
	"$(diff "$template" "$pkg/Makefile" | grep '^[<>]' | grep -vc '^[<>] PKG_HASH:=')" 0
check "make feed: the init script and config" diff -r "$repo/openwrt-package/camtls/files" "$pkg/files"
make -s -C "$repo" feed DIST="$work/d3" RELEASE_URL=https://mirror.example.net/camtls/ >/dev/null 2>&1
check "make feed RELEASE_URL=...: that URL, the same hash" same \
	"$(grep -E '^PKG_(SOURCE_URL|HASH):=' "$work/d3/openwrt-feed/camtls/Makefile" | tr '\n' ' ')" \
	"PKG_SOURCE_URL:=https://mirror.example.net/camtls/ PKG_HASH:=$hash "

# --- the feed package, expanded and run -------------------------------------------
# A packages feed, laid out as the SDK has it: lang/rust from OpenWrt's packages
# feed and `make feed`'s package at net/camtls.
# (At a fixed place in the cache, so that the real cargo below finds its
# crates and source at the paths of the last run, and rebuilds only camtls.)
cache=${CAMTLS_CACHE:-$HOME/.cache/camtls}
top=$cache/feed-sdk
# Two runs at once (two clones sharing the cache) take turns at that place.
mkdir -p "$cache"
exec 8>"$top.lock"
flock 8
rm -rf "$top"
feed=$top/feeds/packages
mkdir -p "$top/include" "$feed/lang" "$feed/net" "$top/staging/usr/lib" "$top/dl" "$work/bin"
cp -r "$rust" "$feed/lang/rust"
cp -r "$pkg" "$feed/net/camtls"
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
# stand-in for the SDK's package.mk: prints what the package declares, fetches
# and unpacks its source as download.pl and unpack.mk do (file:// only), runs
# rust-package.mk's Build/Compile and the install recipe into DEST.
# Package/NAME's fields (DEPENDS, URL, USERID...) are assignments in its
# define block: evaluated first, as package.mk does.
PKG_BUILD_DIR:=$(TOPDIR)/build/$(PKG_NAME)-$(PKG_VERSION)
PKG_INSTALL_DIR:=$(PKG_BUILD_DIR)/ipkg-install
define BuildPackage
$(eval $(Package/$(1)))
show:
	@printf '%s=%s\n' $(foreach v,PKG_NAME PKG_VERSION PKG_RELEASE PKG_SOURCE PKG_SOURCE_URL PKG_HASH PKG_MAINTAINER PKG_LICENSE PKG_LICENSE_FILES PKG_BUILD_DEPENDS URL USERID RUSTC_TARGET_ARCH,'$(v)' '$($(v))')
	@printf 'DEPENDS=%s\n' '$(strip $(DEPENDS))'
	@printf 'CARGO_PKG_VARS=%s\n' "$(subst ",,$(CARGO_PKG_VARS))"
	@printf 'CONFFILES=%s\n' '$(strip $(Package/$(1)/conffiles))'
download:
	@mkdir -p $(DL_DIR); f=$(DL_DIR)/$(PKG_SOURCE); \
	for m in $(subst ;, ,$(DOWNLOAD_MIRROR)) $(PKG_SOURCE_URL); do \
	  [ -f $$$$f ] && break; \
	  case $$$$m in \
	  file://*) src=$$$$(find $$$${m#file://} -follow -name $(PKG_SOURCE)); [ -n "$$$$src" ] || continue; \
	    echo "Copying $(PKG_SOURCE) from $$$$src"; cp $$$$src $$$$f.dl ;; \
	  *) echo "no network here: not fetching $$$${m%/}/$(PKG_SOURCE)" >&2; continue ;; \
	  esac; \
	  if [ "$$$$(sha256sum <$$$$f.dl | cut -d' ' -f1)" = $(PKG_HASH) ]; then mv $$$$f.dl $$$$f; \
	  else echo "Hash of the downloaded file does not match - deleting download." >&2; rm -f $$$$f.dl; fi; \
	done; \
	[ -f $$$$f ] || { echo "No more mirrors to try - giving up." >&2; exit 1; }
prepare:
	rm -rf $(PKG_BUILD_DIR) && mkdir -p $(PKG_BUILD_DIR)
	gzip -dc $(DL_DIR)/$(PKG_SOURCE) | tar -C $(PKG_BUILD_DIR)/.. -xf -
compile:
	$(Build/Compile)
install:
	$(call Package/$(1)/install,$(DEST))
endef
EOF
# cargo, standing in: records what rust-package.mk's recipe ran it with.
cat >"$work/bin/cargo" <<'EOF'
#!/bin/sh
env >"$CARGO_RECORD.env"
printf '%s\n' "$@" >"$CARGO_RECORD.args"
EOF
chmod +x "$work/bin/cargo"

mk() { make --no-print-directory -C "$feed/net/camtls" TOPDIR="$top" "$@"; }
mk show >"$work/show" 2>"$work/show.err"
check "feed package: expands with OpenWrt's rust-package.mk and rust-values.mk" test $? = 0 -a ! -s "$work/show.err"
[ ! -s "$work/show.err" ] || sed 's/^/     /' "$work/show.err"
val() { sed -n "s/^$1=//p" "$work/show"; }
check "feed package: PKG_NAME camtls" same "$(val PKG_NAME)" camtls
check "feed package: PKG_VERSION is a literal" grep -qx 'PKG_VERSION:=[0-9][0-9.]*' "$template"
check "feed package: PKG_VERSION is Cargo.toml's" same "$(val PKG_VERSION)" "$version"
check "feed package: PKG_RELEASE is a number" grep -qx '[0-9][0-9]*' <<<"$(val PKG_RELEASE)"
check "feed package: PKG_SOURCE is make dist-source's tarball" same "$(val PKG_SOURCE)" "$tarball"
check "feed package: PKG_SOURCE_URL is the release's" same "$(val PKG_SOURCE_URL)" \
	"https://github.com/camtls/camtls/releases/download/v$version/"
check "feed package: PKG_HASH is the tarball's" same "$(val PKG_HASH)" "$hash"
check "feed package: PKG_MAINTAINER has an e-mail address" \
	grep -qE '^[^<>]+ <[^@<> ]+@[^@<> ]+\.[a-z]+>$' <<<"$(val PKG_MAINTAINER)"
check "feed package: PKG_LICENSE is Cargo.toml's, space-separated" same "$(val PKG_LICENSE)" "${license// OR / }"
check "feed package: PKG_LICENSE_FILES" same "$(val PKG_LICENSE_FILES)" "LICENSE-MIT LICENSE-APACHE"
check "feed package: URL" same "$(val URL)" "https://github.com/camtls/camtls"
check "feed package: builds with rust/host" same "$(val PKG_BUILD_DEPENDS)" rust/host
check "feed package: includes rust-package.mk by the packages feed's relative path" \
	grep -qx 'include \.\./\.\./lang/rust/rust-package.mk' "$template"
check "feed package: no CAMTLS_SRC, no Build/Prepare of its own" \
	same "$(grep -c 'CAMTLS_SRC\|Build/Prepare' "$template")" 0
check "feed package: DEPENDS has rust's architectures and libopenssl" \
	same "$(val DEPENDS)" "@(aarch64||arm||i386||loongarch64||mips||mips64||mips64el||mipsel||powerpc||powerpc64||riscv64||x86_64) +libopenssl"
check "feed package: a camtls user and group" same "$(val USERID)" camtls:camtls
check "feed package: mipsel_24kc builds for mipsel-unknown-linux-musl" \
	same "$(val RUSTC_TARGET_ARCH)" mipsel-unknown-linux-musl
check "feed package: conffiles" same "$(val CONFFILES)" /etc/config/camtls

# The source: nothing in dl/ and no mirror tries the release URL, which this
# test refuses; a local mirror with another file is refused by its hash; with
# the tarball it is copied into dl/; one already in dl/ is used as it is.
mk download >"$work/dl0.log" 2>&1
check "download: with no mirror, the release URL (refused here: no network)" \
	has "$(cat "$work/dl0.log")" "not fetching https://github.com/camtls/camtls/releases/download/v$version/$tarball"
mkdir -p "$work/bad" "$work/mirror"
printf 'not the release\n' | gzip -n >"$work/bad/$tarball"
mk download DOWNLOAD_MIRROR="file://$work/bad" >"$work/dl1.log" 2>&1
check "download: a mirror's file with another hash is refused" \
	sh -c "! test -e '$top/dl/$tarball' && grep -q 'does not match' '$work/dl1.log'"
cp "$work/d1/$tarball" "$work/mirror/"
mk download DOWNLOAD_MIRROR="file://$work/mirror" >"$work/dl2.log" 2>&1
check "download: from a local mirror, checked against PKG_HASH" cmp -s "$top/dl/$tarball" "$work/d1/$tarball"
mk download >"$work/dl3.log" 2>&1
check "download: a tarball already in dl/ is used, nothing fetched" \
	sh -c "[ ! -s '$work/dl3.log' ] && sha256sum '$top/dl/$tarball' | grep -q '^$hash '"

mk prepare >"$work/prepare.log" 2>&1
build=$top/build/camtls-$version
check "prepare: the tarball unpacks into PKG_BUILD_DIR" \
	test -f "$build/Cargo.toml" -a -f "$build/Cargo.lock" -a -f "$build/src/main.rs"
check "prepare: PKG_LICENSE_FILES are in the source" \
	sh -c "cd '$build' && test -f LICENSE-MIT && test -f LICENSE-APACHE"
resolves() { cargo metadata --locked --offline --format-version 1 --manifest-path "$build/Cargo.toml" >/dev/null 2>"$work/metadata.err" || { sed 's/^/     /' "$work/metadata.err" && false; }; }
check "prepare: its Cargo.lock is complete (cargo metadata --locked, offline)" resolves

# rust-package.mk's Build/Compile, for three targets: what cargo gets.
compile() { # NAME make-arguments...
	local name=$1
	shift
	PATH=$work/bin:$PATH CARGO_RECORD=$work/cargo-$name mk compile "$@" >"$work/compile-$name.log" 2>&1
}
env_of() { sed -n "s/^$2=//p" "$work/cargo-$1.env"; }
compile mipsel
check "compile: rust-package.mk's recipe runs cargo" test -f "$work/cargo-mipsel.args"
check "compile: cargo install --profile release --locked, from the unpacked tarball, into PKG_INSTALL_DIR" same \
	"$(tr '\n' ' ' <"$work/cargo-mipsel.args" 2>/dev/null)" \
	"install -v --profile release --root $build/ipkg-install --path $build/ -j1 --locked "
check "compile: cargo builds for mipsel-unknown-linux-musl" same "$(env_of mipsel CARGO_BUILD_TARGET)" mipsel-unknown-linux-musl
check "compile: cargo gets OpenWrt's libopenssl from staging, not a vendored one" same \
	"$(env_of mipsel OPENSSL_LIB_DIR) $(env_of mipsel OPENSSL_INCLUDE_DIR) $(env_of mipsel OPENSSL_NO_VENDOR)" \
	"$top/staging/usr/lib $top/staging/usr/include 1"
# The profile cargo ends up with, against Cargo.toml's [profile.release] (and
# cargo's defaults for what it leaves out): the same as `make release`'s.
profile() { # NAME: each CARGO_PROFILE_RELEASE_* cargo got, as Cargo.toml spells it
	sed -n 's/^CARGO_PROFILE_RELEASE_\([A-Z_]*\)=\(.*\)/\1 \2/p' "$work/cargo-$1.env" | while read -r k v; do
		k=$(tr 'A-Z_' 'a-z-' <<<"$k")
		case $v in true | false | [0-9]*) ;; *) v="\"$v\"" ;; esac
		echo "$k = $v"
	done | sort
}
cargo_toml_profile() { # the same keys, from Cargo.toml
	python3 - "$repo/Cargo.toml" "$@" <<'EOF'
import sys, tomllib
p = tomllib.load(open(sys.argv[1], "rb"))["profile"]["release"]
default = {"debug": False, "debug-assertions": False, "overflow-checks": False,
           "panic": "unwind", "rpath": False, "lto": False, "opt-level": 3, "codegen-units": 16}
for k in sorted(sys.argv[2:]):
    v = p.get(k, default.get(k))
    v = {0: False}.get(v, v) if k == "debug" else v
    print(f"{k} = " + (str(v).lower() if isinstance(v, bool) else f'"{v}"' if isinstance(v, str) else str(v)))
EOF
}
got=$(profile mipsel)
check "compile: the release profile is Cargo.toml's (panic=abort, no overflow checks)" same \
	"$got" "$(mapfile -t keys < <(cut -d' ' -f1 <<<"$got") && cargo_toml_profile "${keys[@]}")"
check "compile: rust-values.mk's panic=unwind comes first, the package's abort last" \
	has "$(val CARGO_PKG_VARS)" "CARGO_PROFILE_RELEASE_PANIC=unwind"
rustflags=$(env_of mipsel RUSTFLAGS)
check "compile: mipsel (32-bit): the libc crate uses musl's 64-bit time_t" has "$rustflags" "--cfg libc_unstable_musl_v1_2"
check "compile: mipsel: the reactor keeps its timerfd" hasnt "$rustflags" "timerfd"
check "compile: mipsel: rust-values.mk's flags kept" has "$rustflags" "-Ctarget-feature=-crt-static"
compile mips ARCH=mips REAL_GNU_TARGET_NAME=mips-openwrt-linux-musl TARGET_CC_NOCACHE=mips-openwrt-linux-musl-gcc
rustflags=$(env_of mips RUSTFLAGS)
check "compile: mips_24kc (big-endian) builds for mips-unknown-linux-musl" \
	same "$(env_of mips CARGO_BUILD_TARGET)" mips-unknown-linux-musl
check "compile: mips: the reactor has no timerfd (src/compat.rs)" has "$rustflags" "-Clink-arg=-Wl,--wrap=timerfd_create"
check "compile: mips: 64-bit time_t" has "$rustflags" "--cfg libc_unstable_musl_v1_2"
compile aarch64 ARCH=aarch64 CONFIG_ARCH_64BIT=y REAL_GNU_TARGET_NAME=aarch64-openwrt-linux-musl TARGET_CC_NOCACHE=aarch64-openwrt-linux-musl-gcc
rustflags=$(env_of aarch64 RUSTFLAGS)
check "compile: aarch64_cortex-a53 builds for aarch64-unknown-linux-musl" \
	same "$(env_of aarch64 CARGO_BUILD_TARGET)" aarch64-unknown-linux-musl
check "compile: aarch64 (64-bit): no time_t flag, no timerfd flag" \
	same "$(grep -o 'libc_unstable[a-z0-9_]*\|timerfd[a-z_]*' <<<"$rustflags")" ""
check "compile: aarch64: the same profile" same "$(profile aarch64)" "$got"

# rust-package.mk's Build/Compile for real, with the real cargo, offline: the
# host as the target (x86_64 glibc and Debian's OpenSSL, since the SDK's
# cross toolchain and libopenssl are not here), the crates from dl/cargo as
# the SDK keeps them (here the local cargo's registry), the target directory
# in the cache so that a rerun rebuilds only what changed.
cargo_home=${CARGO_HOME:-$HOME/.cargo}
ssl_libdir=$(pkg-config --variable=libdir openssl)
mkdir -p "$top/dl/cargo" "$work/host-staging/usr"
ln -s "$cargo_home/registry" "$top/dl/cargo/registry"
printf '[net]\noffline = true\n' >"$top/dl/cargo/config.toml"
ln -s "$ssl_libdir" "$work/host-staging/usr/lib"
ln -s /usr/include "$work/host-staging/usr/include"
CARGO_TARGET_DIR=$cache/feed-cargo mk compile ARCH=x86_64 CONFIG_ARCH_64BIT=y CONFIG_USE_MUSL= \
	REAL_GNU_TARGET_NAME=x86_64-openwrt-linux-gnu TARGET_CC_NOCACHE=gcc STAGING_DIR="$work/host-staging" \
	>"$work/compile-real.log" 2>&1
check "compile with cargo: builds and installs bin/camtls from the unpacked tarball" \
	sh -c "[ -x '$build/ipkg-install/bin/camtls' ] || { tail -n 20 '$work/compile-real.log' | sed 's/^/     /'; false; }"
rustc_camtls=$(grep -o "rustc --crate-name camtls [^\`]*" "$work/compile-real.log" | tail -n 1)
check "compile with cargo: camtls is compiled with panic=abort and opt-level z" \
	has "$rustc_camtls" "-C opt-level=z -C panic=abort"
check "compile with cargo: ... and without overflow checks" hasnt "$rustc_camtls" "overflow-checks"
real_bin=$build/ipkg-install/bin/camtls
check "compile with cargo: the binary runs" same "$("$real_bin" --version 2>&1)" "camtls $version"
"$real_bin" gen-cert --cert "$work/c.pem" --key "$work/k.pem" --days 30 >/dev/null 2>&1
check "compile with cargo: gen-cert's certificate starts about an hour ago and lasts 30 days" \
	python3 - "$work/c.pem" <<'EOF'
import subprocess, sys, time, email.utils as eu
out = subprocess.run(["openssl", "x509", "-noout", "-startdate", "-enddate", "-in", sys.argv[1]],
                     capture_output=True, text=True).stdout
d = dict(l.split("=", 1) for l in out.split("\n") if "=" in l)
start, end = (eu.parsedate_to_datetime(d[k].replace(" GMT", " +0000").replace("  ", " ")).timestamp()
              for k in ("notBefore", "notAfter"))
now = time.time()
sys.exit(0 if abs(start - (now - 3600)) < 600 and abs(end - (now + 30 * 86400)) < 600 else 1)
EOF

# The install recipe, on a stand-in for what `cargo install` left.
inst=$build/ipkg-install
mkdir -p "$inst/bin"
printf '#!/bin/sh\n' >"$inst/bin/camtls"
mk install DEST="$work/dest" >"$work/install.log" 2>&1
check "install: the recipe runs" test $? = 0
check "install: the binary, init script and config, with modes" same \
	"$(cd "$work/dest" 2>/dev/null && find . -type f -printf '%P %m\n' | sort | tr '\n' ';')" \
	"etc/config/camtls 600;etc/init.d/camtls 755;usr/sbin/camtls 755;"
check "install: the init script is the package's" \
	cmp -s "$work/dest/etc/init.d/camtls" "$repo/openwrt-package/camtls/files/camtls.init"
check "install: the config is the package's" \
	cmp -s "$work/dest/etc/config/camtls" "$repo/openwrt-package/camtls/files/camtls.config"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
