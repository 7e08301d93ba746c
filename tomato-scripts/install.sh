#!/bin/sh
# shellcheck disable=SC2015 # "a && b || die" means: die if either fails
# camtls installer for FreshTomato and Tomato, run on the router as root:
#
#   sh camtls-VERSION-tomato.sh --route 8443=192.168.1.20:80   install or upgrade
#   sh camtls-VERSION-tomato.sh --uninstall                    remove everything
#
# The release file is this script with the binaries and the three Tomato
# scripts appended; it picks the binary from `uname -m` and, for MIPS, the
# byte order of the router's own programs. Run from a source
# tree, it takes the scripts beside it and the binary from --bin FILE.
#
# It installs the binary in /opt/bin when Entware is there, else in
# /jffs/bin, else in /tmp/camtls (lost at reboot); and camtls.init,
# camtls.fire and camtls.shut in /jffs/etc/config (or /opt/etc/config, or
# /etc/config), where Tomato runs them at boot, at each firewall restart and
# at shutdown. Then it starts camtls and opens its ports.

ROUTES=
PER_ADDRESS=
BIN_FILE=
UNINSTALL=
CERT=/tmp/etc/cert.pem
KEY=/tmp/etc/key.pem
TMP=/tmp/camtls-install.$$
MARK=__CAMTLS_PAYLOAD__

say() { echo "camtls: $*"; }
warn() { echo "camtls: warning: $*" >&2; }
die() {
	echo "camtls: $*" >&2
	rm -rf "$TMP"
	exit 1
}

usage() {
	cat <<EOF
usage: sh $0 [--route LISTEN=BACKEND]... [--max-per-address N] [--bin FILE]
       sh $0 --uninstall

  --route LISTEN=BACKEND  serve https://ROUTER:LISTEN from http://BACKEND,
                          e.g. --route 8443=192.168.1.20:80 (repeatable;
                          an upgrade keeps the installed routes if none given)
  --max-per-address N     at most N connections at once from one client
                          address (default 32; an upgrade keeps the
                          installed value if none given)
  --bin FILE              install this camtls binary instead of the bundled one
  --uninstall             stop camtls, remove its rules, scripts and binary
EOF
	exit 2
}

# Where Tomato looks for *.init, *.fire and *.shut, and where we may have
# put the binary; the first config dir that holds camtls.init is the
# installed one.
CONFIG_DIRS="/jffs/etc/config /opt/etc/config /etc/config"

installed_config() {
	for d in $CONFIG_DIRS; do
		[ -f "$d/camtls.init" ] && echo "$d" && return 0
	done
	return 1
}

# A setting (ROUTES=, OPTS=, BIN=) from an installed script, unquoted.
setting() {
	sed -n "s/^$2=\"\(.*\)\"\$/\1/p" "$1" | head -n 1
}

mounted() { grep -q " $1 " /proc/mounts; }
writable() { [ -d "$1" ] && [ -w "$1" ]; }

# Free kilobytes in the filesystem holding $1 (busybox df may wrap long
# device names, so count fields from the end).
free_kb() { df -k "$1" 2>/dev/null | awk 'END { print $(NF - 2) }'; }

# "2.6.36.4brcmarm" -> 2006036
kernel_code() {
	echo "$1" | awk -F. '{ printf "%d%03d%03d\n", $1, $2, $3 }'
}

# The byte order of this router's programs: byte 5 of an ELF header is 1
# for little-endian, 2 for big-endian.
endianness() {
	for f in /bin/busybox /bin/sh; do
		[ -f "$f" ] || continue
		case "$(dd if="$f" bs=1 skip=5 count=1 2>/dev/null | od -An -tu1 | tr -d ' ')" in
		1) echo little && return 0 ;;
		2) echo big && return 0 ;;
		esac
	done
	return 1
}

# TARGET for `uname -m` $1. Tomato's MIPS routers (Broadcom BCM47xx) say
# "mips" although they are little-endian, so MIPS goes by the ELF header.
target_for() {
	case "$1" in
	armv7* | armv6*) echo armv7-unknown-linux-musleabi ;;
	mips | mipsel)
		case "$(endianness)" in
		little) echo mipsel-unknown-linux-musl ;;
		big) echo mips-unknown-linux-musl ;;
		*) return 1 ;;
		esac ;;
	aarch64) echo aarch64-unknown-linux-musl ;;
	x86_64) echo x86_64-unknown-linux-musl ;;
	*) return 1 ;;
	esac
}

payload_line() {
	awk -v m="$MARK" '$0 == m { print NR + 1; exit }' "$0" 2>/dev/null
}

# Copies a file of the payload (or the source tree beside this script) to
# $TMP.
fetch() {
	n=$(payload_line)
	if [ -n "$n" ]; then
		tail -n +"$n" "$0" | gunzip -c | tar -x -f - -C "$TMP" "$1" 2>/dev/null
	elif [ -f "$(dirname "$0")/$1" ]; then
		cp "$(dirname "$0")/$1" "$TMP/$1"
	fi
	[ -f "$TMP/$1" ]
}

stopped=
stop_running() {
	if d=$(installed_config); then
		[ -x "$d/camtls.shut" ] && "$d/camtls.shut" && stopped=1
	fi
}

uninstall() {
	stop_running
	for d in $CONFIG_DIRS; do
		[ -f "$d/camtls.init" ] || continue
		b=$(setting "$d/camtls.init" BIN)
		[ -n "$b" ] && rm -f "$b" && rmdir "${b%/*}" 2>/dev/null
		rm -f "$d/camtls.init" "$d/camtls.fire" "$d/camtls.shut"
		# Only directories left empty, so other scripts there are kept.
		rmdir "$d" "${d%/*}" 2>/dev/null
		say "removed $b and $d/camtls.{init,fire,shut}"
	done
	for b in /opt/bin/camtls /jffs/bin/camtls /tmp/camtls/camtls; do
		[ -f "$b" ] && rm -f "$b" && say "removed $b"
	done
	rmdir /jffs/bin /tmp/camtls 2>/dev/null
	say "uninstalled"
}

# The words of $1 without option $2 and its value.
drop_option() {
	out=
	skip=
	for w in $1; do
		if [ -n "$skip" ]; then
			skip=
		elif [ "$w" = "$2" ]; then
			skip=1
		else
			out="${out:+$out }$w"
		fi
	done
	echo "$out"
}

# Writes a Tomato script from its template with our ROUTES, OPTS and BIN.
write_script() {
	while IFS= read -r line; do
		case "$line" in
		ROUTES=*) printf 'ROUTES="%s"\n' "$ROUTES" ;;
		OPTS=*) printf 'OPTS="%s"\n' "$OPTS" ;;
		BIN=*) printf 'BIN="%s"\n' "$DEST" ;;
		*) printf '%s\n' "$line" ;;
		esac
	done <"$TMP/$1" >"$CONFIG/$1.new" &&
		chmod 755 "$CONFIG/$1.new" ||
		undo "cannot write $CONFIG/$1"
}

# Kilobytes that files $2... in directory $1 take.
used_kb() {
	d=$1
	shift
	kb=0
	for f in "$@"; do
		[ -f "$d/$f" ] && kb=$((kb + $(wc -c <"$d/$f") / 1024))
	done
	echo $kb
}

# Kilobytes for files $2... in directory $1 (which need not exist yet): what
# its filesystem has free, and what those files take now.
room_kb() {
	m=$1
	while [ ! -d "$m" ]; do m=${m%/*}; done
	kb=$(free_kb "${m:-/}")
	echo $((${kb:-0} + $(used_kb "$@")))
}

# Stops with $*, after removing the new files written so far: what was
# installed is left as it was (and camtls, if it was stopped, started again).
undo() {
	rm -f "$DEST.new" "$CONFIG/camtls.init.new" "$CONFIG/camtls.fire.new" "$CONFIG/camtls.shut.new"
	if [ -n "$stopped" ] && d=$(installed_config); then
		"$d/camtls.fire"
		"$d/camtls.init"
	fi
	die "$*"
}

install() {
	machine=$(uname -m)
	target=$(target_for "$machine") ||
		die "no camtls build for this CPU ($machine)"
	release=$(uname -r)
	# 2.6.22 (FreshTomato MIPS) is the oldest kernel camtls is tested on;
	# Tomato's 2.4 builds have no epoll at all.
	if [ "$(kernel_code "$release")" -lt 2006022 ]; then
		die "camtls needs Linux 2.6.22 or later; this router runs $release"
	fi

	rm -rf "$TMP"
	mkdir -p "$TMP" || die "cannot create $TMP"
	if [ -n "$BIN_FILE" ]; then
		cp "$BIN_FILE" "$TMP/camtls" || die "cannot read $BIN_FILE"
	elif fetch "camtls-$target"; then
		mv "$TMP/camtls-$target" "$TMP/camtls"
	else
		die "this file has no camtls-$target inside; copy the binary and use --bin FILE"
	fi
	chmod 755 "$TMP/camtls"
	# A binary for another CPU fails to start, or the shell reads it as a
	# script: only a version line means it runs.
	version=$("$TMP/camtls" --version 2>/dev/null)
	case "$version" in
	"camtls "*) ;;
	*)
		hint=
		[ "$target" = mipsel-unknown-linux-musl ] &&
			hint=" (it needs a MIPS32 release 2 CPU, such as the 74K of BCM4706/4716/4718 routers)"
		die "the $target binary does not run on this router ($machine, $release)$hint" ;;
	esac
	for f in camtls.init camtls.fire camtls.shut; do
		fetch "$f" || die "$f is missing beside $0"
	done

	old_config=$(installed_config)
	if [ -z "$ROUTES" ] && [ -n "$old_config" ]; then
		ROUTES=$(setting "$old_config/camtls.init" ROUTES)
		say "keeping the installed routes: $ROUTES"
	fi
	if [ -z "$ROUTES" ] && [ -t 0 ]; then
		printf 'camera address and port (e.g. 192.168.1.20:80): '
		read -r cam
		printf 'port to serve HTTPS on [8443]: '
		read -r port
		case "$cam" in *:*) ;; *) cam="$cam:80" ;; esac
		ROUTES="${port:-8443}=$cam"
	fi
	[ -n "$ROUTES" ] || usage

	# More options (OPTS=): those of the installed Init script, kept across
	# an upgrade, else the template's; --max-per-address replaces its own.
	set -f
	OPTS=$(setting "$TMP/camtls.init" OPTS)
	[ -n "$old_config" ] && OPTS=$(setting "$old_config/camtls.init" OPTS)
	[ -n "$PER_ADDRESS" ] && OPTS=$(drop_option "$OPTS" --max-per-address)
	[ -n "$old_config" ] && [ -n "$OPTS" ] && say "keeping the installed options: $OPTS"
	[ -n "$PER_ADDRESS" ] && OPTS="${OPTS:+$OPTS }--max-per-address $PER_ADDRESS"

	# Check the routes with a throwaway certificate, so that a mistake shows
	# now even before HTTPS admin is on.
	set --
	for r in $ROUTES; do set -- "$@" --route "$r"; done
	# shellcheck disable=SC2086 # OPTS is a list of words
	set -- "$@" $OPTS
	set +f
	"$TMP/camtls" gen-cert --cert "$TMP/c.pem" --key "$TMP/k.pem" >/dev/null 2>&1 &&
		"$TMP/camtls" --check --cert "$TMP/c.pem" --key "$TMP/k.pem" "$@" ||
		die "the routes or options were not accepted: $ROUTES${OPTS:+ $OPTS}"

	# Room: the binary, the scripts if they share its filesystem, and a
	# margin for the filesystem's own blocks (JFFS2 needs some to
	# reclaim space). The binary being replaced in a place counts as room.
	bin_kb=$(($(wc -c <"$TMP/camtls") / 1024 + 1))
	scripts_kb=$(($(cat "$TMP/camtls.init" "$TMP/camtls.fire" "$TMP/camtls.shut" | wc -c) / 1024 + 1))
	margin=64
	old_bin=$([ -n "$old_config" ] && setting "$old_config/camtls.init" BIN)
	entware=
	[ -x /opt/bin/opkg ] && entware=1
	DEST=
	for dir in ${entware:+/opt/bin} /jffs/bin /tmp/camtls; do
		case "$dir" in
		/jffs/*) mounted /jffs && writable /jffs || continue ;;
		/opt/*) writable /opt || continue ;;
		esac
		want=$((bin_kb + margin))
		[ "$dir" = /jffs/bin ] && want=$((want + scripts_kb))
		have=$(room_kb "$dir" camtls)
		[ "$dir" = /jffs/bin ] && have=$((have + $(used_kb /jffs/etc/config camtls.init camtls.fire camtls.shut)))
		if [ "$have" -ge "$want" ]; then
			DEST=$dir/camtls
			break
		fi
		warn "${dir%/*} has $have kB free for camtls, it needs $want kB"
	done
	[ -n "$DEST" ] || die "no room for camtls ($((bin_kb + margin)) kB) anywhere; nothing was changed"
	# An installed camtls that survives reboots is not replaced by one in RAM.
	case "$DEST:$old_bin" in
	/tmp/*:/jffs/* | /tmp/*:/opt/*)
		die "not upgraded: ${old_bin%/*} has no room for this camtls, and in RAM it" \
			"would be lost at reboot; the installed camtls is left as it was. Make" \
			"room there (or use Entware), then run this again" ;;
	esac

	if [ "${DEST#/tmp/}" != "$DEST" ]; then
		# RAM only: no script in JFFS or on the USB drive would wait, boot
		# after boot, for a binary that is gone.
		CONFIG=/etc/config
	elif mounted /jffs && writable /jffs &&
		[ "$(room_kb /jffs/etc/config camtls.init camtls.fire camtls.shut)" -ge $((scripts_kb + 16)) ]; then
		CONFIG=/jffs/etc/config
	else
		mounted /jffs && writable /jffs && warn "/jffs has no room for the scripts ($scripts_kb kB)"
		CONFIG=/opt/etc/config
	fi

	# Written beside the old files first: until all are there, nothing
	# installed is changed, and a failure leaves it as it was.
	mkdir -p "$CONFIG" "${DEST%/*}" 2>/dev/null || die "cannot create $CONFIG or ${DEST%/*}"
	for f in camtls.init camtls.fire camtls.shut; do
		write_script "$f"
	done
	# The new binary beside the old one if both fit; else the old one goes
	# first (the upgrade's room counted it), once camtls is stopped.
	fits=
	[ "$(free_kb "${DEST%/*}")" -ge $((bin_kb + margin)) ] && fits=1
	if [ -n "$fits" ]; then
		cp "$TMP/camtls" "$DEST.new" || undo "cannot write $DEST"
	fi
	stop_running
	if [ -z "$fits" ]; then
		rm -f "$DEST"
		cp "$TMP/camtls" "$DEST.new" || undo "cannot write $DEST (the old binary was removed to make room: run this again once there is room, or --uninstall)"
	fi
	mv "$DEST.new" "$DEST" || undo "cannot write $DEST"
	for f in camtls.init camtls.fire camtls.shut; do
		mv "$CONFIG/$f.new" "$CONFIG/$f" || die "cannot write $CONFIG/$f"
	done
	# Scripts from an older install elsewhere would run twice.
	if [ -n "$old_config" ] && [ "$old_config" != "$CONFIG" ]; then
		rm -f "$old_config/camtls.init" "$old_config/camtls.fire" "$old_config/camtls.shut"
		rmdir "$old_config" "${old_config%/*}" 2>/dev/null
	fi
	if [ -n "$old_bin" ] && [ "$old_bin" != "$DEST" ]; then
		rm -f "$old_bin"
		rmdir "${old_bin%/*}" 2>/dev/null
	fi
	rm -rf "$TMP"
	say "installed $version as $DEST, scripts in $CONFIG"
	case "$DEST" in
	/tmp/*)
		if mounted /jffs; then
			warn "$DEST and $CONFIG are in RAM and are lost at reboot: JFFS has too" \
				"little room for camtls (see above). Make room in /jffs, or use Entware" \
				"on a USB drive, then run this again"
		else
			warn "$DEST and $CONFIG are in RAM and are lost at reboot: enable JFFS" \
				"(Administration > JFFS) or Entware, then run this again"
		fi ;;
	esac
	# Tomato runs Init and the first Firewall before it mounts USB drives.
	[ "$CONFIG" = /opt/etc/config ] &&
		warn "without room in JFFS the scripts are on the USB drive, which is mounted" \
			"after boot's Init and Firewall events: enable JFFS (or make room in it)" \
			"so camtls starts at boot"

	"$CONFIG/camtls.fire"
	"$CONFIG/camtls.init"

	if [ ! -s "$CERT" ] || [ ! -s "$KEY" ]; then
		warn "no $CERT yet: enable HTTPS in Administration > Admin Access" \
			"(tick \"Save to NVRAM\"); camtls starts once it appears"
	else
		say "certificate SHA-256 $("$DEST" fingerprint "$CERT")"
	fi
	if command -v nvram >/dev/null && [ "$(nvram get https_crt_save)" != 1 ]; then
		warn "the router makes a new certificate at every boot, so a pinned" \
			"fingerprint breaks: tick \"Save to NVRAM\" in Administration > Admin Access"
	fi
	set -f
	for r in $ROUTES; do
		say "route $r: https on port ${r%%=*}, forwarded to http://${r#*=}"
	done
	set +f
}

# A whole number of 1 or more, leading zeros dropped, into PER_ADDRESS.
per_address() {
	case "$1" in
	*[!0-9]* | "") PER_ADDRESS= ;;
	*) PER_ADDRESS=${1#"${1%%[1-9]*}"} ;;
	esac
	[ -n "$PER_ADDRESS" ] ||
		die "--max-per-address needs a whole number of 1 or more, not '$1'"
}

while [ $# -gt 0 ]; do
	case "$1" in
	--route) [ $# -ge 2 ] || usage; ROUTES="${ROUTES:+$ROUTES }$2"; shift ;;
	--route=*) ROUTES="${ROUTES:+$ROUTES }${1#*=}" ;;
	--max-per-address) [ $# -ge 2 ] || usage; per_address "$2"; shift ;;
	--max-per-address=*) per_address "${1#*=}" ;;
	--bin) [ $# -ge 2 ] || usage; BIN_FILE=$2; shift ;;
	--uninstall) UNINSTALL=1 ;;
	*) usage ;;
	esac
	shift
done

if [ -n "$UNINSTALL" ]; then
	uninstall
else
	install
fi
# The payload, if any, follows: never read it as shell.
exit $?
