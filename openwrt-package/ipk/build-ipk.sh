#!/bin/sh
# Packs a static camtls binary with the OpenWrt init script and config into
# OUTDIR/camtls_VERSION_ARCH.ipk, without the OpenWrt SDK.
#
# usage: build-ipk.sh BINARY OPENWRT_ARCH VERSION OUTDIR
#
# The layout is what OpenWrt's own ipkg-build writes and what opkg on 18.06 to
# 24.10 reads: a gzip'd tar (not ar) holding ./debian-binary, ./data.tar.gz
# and ./control.tar.gz, in GNU tar format with "ustar" magic. Owners are
# root, mtimes are SOURCE_DATE_EPOCH (default: the last commit), entries are
# sorted, gzip stores no name or time: the same inputs give the same bytes.
set -eu

[ $# = 4 ] || {
	echo "usage: $0 BINARY OPENWRT_ARCH VERSION OUTDIR" >&2
	exit 2
}
bin=$1 arch=$2 version=$3 outdir=$4
here=$(cd "$(dirname "$0")" && pwd)
files=$here/../camtls/files

[ -f "$bin" ] || {
	echo "$0: no binary at $bin" >&2
	exit 1
}
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
	SOURCE_DATE_EPOCH=$(git -C "$here" log -1 --format=%ct 2>/dev/null || echo 0)
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
umask 022

data=$work/data
install -d "$data/usr/sbin" "$data/etc/init.d" "$data/etc/config"
install -m 0755 "$bin" "$data/usr/sbin/camtls"
install -m 0755 "$files/camtls.init" "$data/etc/init.d/camtls"
install -m 0600 "$files/camtls.config" "$data/etc/config/camtls"

control=$work/control
install -d "$control"
install -m 0755 "$here/postinst" "$here/prerm" "$control/"
echo /etc/config/camtls >"$control/conffiles"
size=$(find "$data" -type f -exec cat {} + | wc -c)
cat >"$control/control" <<EOF
Package: camtls
Version: $version
License: MIT OR Apache-2.0
Section: net
Architecture: $arch
Installed-Size: $size
Maintainer: camtls developers
Description: HTTPS in front of plain-HTTP IP cameras.
 A small TLS-terminating reverse proxy: each route serves
 https://ROUTER:PORT and forwards to a camera on the LAN.
 Static build; configured in /etc/config/camtls.
EOF
chmod 0644 "$control/control" "$control/conffiles"

pack() { # DIR OUT MEMBERS...
	dir=$1 out=$2
	shift 2
	(cd "$dir" && tar --format=gnu --numeric-owner --owner=0 --group=0 \
		--sort=name --mtime="@$SOURCE_DATE_EPOCH" -cf - "$@") | gzip -9n >"$out"
}
pack "$data" "$work/data.tar.gz" .
pack "$control" "$work/control.tar.gz" .
echo 2.0 >"$work/debian-binary"
touch -d "@$SOURCE_DATE_EPOCH" "$work/debian-binary" "$work/data.tar.gz" "$work/control.tar.gz"

mkdir -p "$outdir"
pack "$work" "$outdir/camtls_${version}_${arch}.ipk" ./debian-binary ./data.tar.gz ./control.tar.gz
echo "$outdir/camtls_${version}_${arch}.ipk"
