#!/bin/sh
# Packs a static camtls binary with the OpenWrt init script and config into
# OUTDIR/camtls_VERSION-rRELEASE_ARCH.apk for OpenWrt 25.12 and later, whose
# package manager is apk-tools v3, without the OpenWrt SDK.
#
# usage: build-apk.sh APK BINARY OPENWRT_ARCH VERSION RELEASE OUTDIR
#   APK  apk-tools v3's apk (mk/openwrt-parts.sh builds it)
#
# As OpenWrt's include/package-pack.mk does it: `apk mkpkg` of the files plus
# lib/apk/packages/camtls.list (every file, sorted, taken before the
# conffiles are added), camtls.conffiles and camtls.conffiles_static (path
# and sha256 of each conffile as shipped, which sysupgrade reads); the
# scripts post-install, post-upgrade (the same with PKG_UPGRADE=1) and
# pre-deinstall are the .ipk's postinst and prerm. Owners are root, mtimes are
# SOURCE_DATE_EPOCH (default: the last commit).
#   APK_SIGN_KEY  an EC (prime256v1) private key in PEM: the package is signed
#                 with it, for a feed of one's own (docs/openwrt.md)
set -eu

[ $# = 6 ] || {
	echo "usage: $0 APK BINARY OPENWRT_ARCH VERSION RELEASE OUTDIR" >&2
	exit 2
}
apk=$1 bin=$2 arch=$3 version=$4 release=$5 outdir=$6
here=$(cd "$(dirname "$0")" && pwd)
files=$here/../camtls/files
scripts=$here/../ipk

[ -x "$apk" ] || {
	echo "$0: no apk at $apk" >&2
	exit 1
}
[ -f "$bin" ] || {
	echo "$0: no binary at $bin" >&2
	exit 1
}
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
	SOURCE_DATE_EPOCH=$(git -C "$here" log -1 --format=%ct 2>/dev/null || echo 0)
fi
export SOURCE_DATE_EPOCH

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
umask 022

idir=$work/idir
install -d "$idir/usr/sbin" "$idir/etc/init.d" "$idir/etc/config" "$idir/lib/apk/packages"
install -m 0755 "$bin" "$idir/usr/sbin/camtls"
install -m 0755 "$files/camtls.init" "$idir/etc/init.d/camtls"
install -m 0600 "$files/camtls.config" "$idir/etc/config/camtls"
meta=$idir/lib/apk/packages
(cd "$idir" && find . -type f -o -type l) | sed 's/^\.//' | LC_ALL=C sort >"$work/list"
install -m 0644 "$work/list" "$meta/camtls.list"
echo /etc/config/camtls >"$meta/camtls.conffiles"
echo "/etc/config/camtls $(sha256sum "$idir/etc/config/camtls" | cut -d' ' -f1)" >"$meta/camtls.conffiles_static"
chmod 0644 "$meta/camtls.conffiles" "$meta/camtls.conffiles_static"
find "$idir" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

cp "$scripts/postinst" "$work/post-install"
{
	echo '#!/bin/sh'
	echo 'export PKG_UPGRADE=1'
	sed '1{/^#!/d}' "$scripts/postinst"
} >"$work/post-upgrade"
cp "$scripts/prerm" "$work/pre-deinstall"

# mkpkg names each file's owner from the passwd and group under --root: this
# one maps the caller to root, as fakeroot does for OpenWrt's build.
mkdir -p "$work/ids/etc"
echo "root:x:$(id -u):$(id -g):root:/root:/bin/sh" >"$work/ids/etc/passwd"
echo "root:x:$(id -g):" >"$work/ids/etc/group"

mkdir -p "$outdir"
out=$outdir/camtls_$version-r${release}_$arch.apk
"$apk" --root "$work/ids" mkpkg \
	--info name:camtls --info "version:$version-r$release" --info "arch:$arch" \
	--info "description:HTTPS in front of plain-HTTP IP cameras: a small TLS-terminating reverse proxy (static build; configured in /etc/config/camtls)" \
	--info "license:MIT OR Apache-2.0" --info origin:camtls \
	--info "maintainer:camtls developers" \
	--script "post-install:$work/post-install" --script "post-upgrade:$work/post-upgrade" \
	--script "pre-deinstall:$work/pre-deinstall" \
	${APK_SIGN_KEY:+--sign-key "$APK_SIGN_KEY"} --files "$idir" --output "$out"
echo "$out"
