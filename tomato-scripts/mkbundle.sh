#!/bin/sh
# Builds the one file a Tomato user copies to the router: install.sh, then a
# marker line, then a tar.gz of the binaries and the three Tomato scripts.
#
#   mkbundle.sh OUT TRIPLE=BINARY...
#   e.g. mkbundle.sh dist/camtls-0.1.0-tomato.sh \
#          armv7-unknown-linux-musleabi=dist/camtls-0.1.0-armv7-unknown-linux-musleabi
set -eu
[ $# -ge 2 ] || { echo "usage: $0 OUT TRIPLE=BINARY..." >&2; exit 2; }
here=$(dirname "$0")
out=$1
shift
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$here/camtls.init" "$here/camtls.fire" "$here/camtls.shut" "$work/"
for pair in "$@"; do
	triple=${pair%%=*}
	cp "${pair#*=}" "$work/camtls-$triple"
	chmod 755 "$work/camtls-$triple"
done
# Fixed owner and times: the same inputs give the same bundle.
(cd "$work" && LC_ALL=C tar -c -f - --owner=0 --group=0 --numeric-owner --mtime=@0 \
	camtls.init camtls.fire camtls.shut camtls-* | gzip -9n >payload.tar.gz)
mkdir -p "$(dirname "$out")"
{
	cat "$here/install.sh"
	echo __CAMTLS_PAYLOAD__
	cat "$work/payload.tar.gz"
} >"$out.tmp"
chmod 755 "$out.tmp"
mv "$out.tmp" "$out"
echo "$out: $(wc -c <"$out") bytes"
