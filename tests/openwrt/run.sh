#!/usr/bin/env bash
# The OpenWrt package: shellcheck, the init script run for real under busybox
# ash on sample configurations, and every .ipk given unpacked and checked.
#
# usage: tests/openwrt/run.sh [IPK...]
#   CAMTLS_BIN  a camtls binary that runs here (the init script calls its
#               --check, gen-cert and fingerprint); default target/release/camtls
#   VERSION     the version the packages must carry
#
# procd, ubus, uci and logd do not exist off a router: tests/openwrt/rc.common
# stands in for them and records what the init script told them. Everything
# else is real: busybox's ash and applets, the camtls binary, openssl for the
# test certificates, qemu-user for the packaged router binaries.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
pkg=$repo/openwrt-package
init=$pkg/camtls/files/camtls.init
bin=$(realpath "${CAMTLS_BIN:-$repo/target/release/camtls}")
version=${VERSION:-$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/Cargo.toml" | head -n 1)}

pass=0
fail=0
ok() {
	echo "ok   ${prefix:-}$1"
	pass=$((pass + 1))
}
bad() {
	echo "FAIL ${prefix:-}$1"
	fail=$((fail + 1))
}
# check NAME COMMAND...: one line per check.
check() {
	local name=$1
	shift
	if "$@"; then ok "$name"; else bad "$name"; fi
}
has_line() { grep -qxF -- "$2" "$1"; }
lacks_line() { ! grep -qxF -- "$2" "$1"; }
has_text() { grep -qF -- "$2" "$1"; }
lacks_text() { ! grep -qF -- "$2" "$1"; }
same() { [ "$1" = "$2" ] || { echo "     got:  $1" && echo "     want: $2" && false; }; }
mode_owner() { stat -c '%a %u:%g' "$1"; }

work=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT

# OpenWrt's userland is busybox: the scripts run with its applets alone.
bb=$work/busybox-bin
mkdir -p "$bb"
busybox --install -s "$bb"
ln -sf "$(command -v busybox)" "$bb/busybox"

# --- shellcheck ------------------------------------------------------------
for f in "$init" "$pkg/ipk/postinst" "$pkg/ipk/prerm" "$pkg/ipk/build-ipk.sh" \
	"$here/rc.common" "$here/run.sh"; do
	check "shellcheck ${f#"$repo"/}" shellcheck -x "$f"
done

# --- the init script -------------------------------------------------------
[ -x "$bin" ] || {
	echo "no camtls binary at $bin (set CAMTLS_BIN)"
	exit 1
}
nobody_ids=$(id -u nobody):$(id -g nobody)
# Installed under its name on the router, which procd knows the service by.
mkdir -p "$work/init.d"
cp "$init" "$work/init.d/camtls"

# A case is a directory: config/camtls (and config/network), acme/, and the
# record of calls. ACTION runs the init script in it; the record is kept in
# calls.ACTION.N so that each step can be read on its own.
new_case() {
	c=$work/$suite-case-$1
	mkdir -p "$c/config" "$c/acme"
	cat >"$c/overrides" <<-EOF
		PROG='$bin'
		ACME_DIR='$c/acme'
		CERT_DIR='$c/etc-camtls'
		RUN_DIR='$c/run'
	EOF
	printf "config interface 'lan'\n\toption ipaddr '192.168.1.1'\n" >"$c/config/network"
	n=0
}
run_init() {
	n=$((n + 1))
	calls=$c/calls.$1.$n
	: >"$calls"
	env -i PATH="$bb" UCI_DIR="$c/config" CALLS="$calls" OVERRIDES="$c/overrides" \
		busybox ash "$here/rc.common" "$work/init.d/camtls" "$1" 2>"$c/stderr.$n"
}
acme_cert() { # DOMAIN: an ECDSA certificate and key as acme.sh leaves them
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
		-subj "/CN=$1" -keyout "$c/acme/$1.key" -out "$c/acme/$1.fullchain.crt" 2>/dev/null
	chmod 600 "$c/acme/$1.key"
}
cmdline() { # the expected command line, as the record joins it
	local IFS='|'
	echo "param command|$bin|$*"
}
triggers_ok() {
	has_line "$calls" "reload_trigger camtls" &&
		has_line "$calls" "raw_trigger acme.issue|5000|/etc/init.d/camtls|reload" &&
		has_line "$calls" "raw_trigger acme.renew|5000|/etc/init.d/camtls|reload"
}

# The cases, run once with the host binary and once with a router binary
# under qemu (the init script calls the binary for --check and gen-cert).
init_cases() {
	# 1. Several cameras from acme.sh's certificate, one route disabled, one not
	#    opened in the firewall; run as an unprivileged user.
	new_case several
	acme_cert cams.example.net
	cat >"$c/config/camtls" <<'EOF'
config camtls 'main'
	option user 'nobody'
	option log_level 'info'
	option firewall_zone 'wan'
	option max_connections '32'
	option max_per_address '8'
	option shutdown_grace '3'

config route 'door'
	option listen '8443'
	option backend '192.168.1.20:80'
	option open_firewall '1'

config route 'garage'
	option listen '[::]:8444'
	option backend 'garage-cam.lan:8080'
	option open_firewall '1'

config route 'attic'
	option enabled '0'
	option listen '8445'
	option backend '192.168.1.21:80'
	option open_firewall '1'

config route 'yard'
	option listen '192.168.1.1:8446'
	option backend '[fd00::22]:80'
	option open_firewall '0'
EOF
	run_init start
	check "several: start succeeds" test $? = 0
	check "several: one instance named camtls" \
		same "$(grep -c '^instance ' "$calls") $(grep '^instance ' "$calls")" "1 instance camtls"
	check "several: command line from UCI, disabled route left out" has_line "$calls" "$(cmdline \
		--log-level info --max-connections 32 --max-per-address 8 --shutdown-grace 3 --user nobody \
		--cert "$c/run/cert.pem" --key "$c/run/key.pem" \
		--route 8443=192.168.1.20:80 --route '[::]:8444=garage-cam.lan:8080' \
		--route '192.168.1.1:8446=[fd00::22]:80')"
	check "several: firewall opens 8443 and 8444 in wan, not the disabled or closed routes" \
		has_line "$calls" "data firewall[ { type=rule src=wan proto=tcp dest_port=8443 target=ACCEPT } { type=rule src=wan proto=tcp dest_port=8444 family=ipv6 target=ACCEPT } ]"
	procd_params() {
		has_line "$calls" "param respawn|3600|5|5" && has_line "$calls" "param stderr|1" &&
			has_line "$calls" "param term_timeout|5"
	}
	check "several: respawn, logs to logread, stop waits past the grace time" procd_params
	check "several: reload on config change and on acme.issue/acme.renew" triggers_ok
	check "several: firewall told to reload once ports are opened" has_line "$calls" "config_changed firewall"
	check "several: key copied for the user, 0600" same "$(mode_owner "$c/run/key.pem")" "600 $nobody_ids"
	check "several: key copy is acme.sh's key" cmp -s "$c/run/key.pem" "$c/acme/cams.example.net.key"
	check "several: certificate copy is acme.sh's fullchain" cmp -s "$c/run/cert.pem" "$c/acme/cams.example.net.fullchain.crt"
	check "several: run dir root-owned, group of the user, 0750" \
		same "$(mode_owner "$c/run")" "750 0:${nobody_ids#*:}"
	check "several: nothing logged as an error" lacks_text "$calls" "log daemon.err"

	# 2. Reloads: a renewed certificate with the same configuration is a SIGHUP
	#    to the running process; a changed configuration is a new command line.
	acme_cert cams.example.net
	run_init reload
	check "reload: renewed key copied before the signal" cmp -s "$c/run/key.pem" "$c/acme/cams.example.net.key"
	check "reload: same command line sends SIGHUP" has_line "$calls" "signal camtls|camtls|HUP"
	check "reload: firewall unchanged, not reloaded" lacks_line "$calls" "config_changed firewall"
	sed -i "/option backend '192.168.1.20:80'/{n;s/'1'/'0'/}" "$c/config/camtls"
	run_init reload
	check "reload: open_firewall off closes 8443, 8444 stays open" \
		has_line "$calls" "data firewall[ { type=rule src=wan proto=tcp dest_port=8444 family=ipv6 target=ACCEPT } ]"
	check "reload: firewall reloaded for the change" has_line "$calls" "config_changed firewall"
	sed -i "s/garage-cam.lan:8080/garage-cam.lan:8081/" "$c/config/camtls"
	run_init reload
	new_line_no_signal() {
		lacks_text "$calls" "signal " && has_text "$calls" "|--route|[::]:8444=garage-cam.lan:8081|"
	}
	check "reload: changed route gives procd a new command line, no SIGHUP" new_line_no_signal
	sed -i "s/option user 'nobody'/option user 'root'/" "$c/config/camtls"
	run_init reload
	as_root_now() {
		lacks_text "$calls" "|--user|" && has_text "$calls" "|--key|$c/acme/" && test ! -e "$c/run/key.pem"
	}
	check "reload as root: no --user, no key copy left in RAM" as_root_now
	run_init stop
	check "stop: firewall reloaded to close the port" has_line "$calls" "config_changed firewall"
	check "stop: key copy removed" test ! -e "$c/run/key.pem"

	# 2b. Logins, allowed ranges and the device's login, per route: appended
	#     to the route as camtls's route options (--check reads the files).
	new_case guarded
	acme_cert cams.example.net
	echo pass | "$bin" hash-password --user viewer >"$c/users"
	echo admin:camera >"$c/door.pass"
	chmod 600 "$c/users" "$c/door.pass"
	cat >"$c/config/camtls" <<EOF
config camtls 'main'
	option user 'root'

config route 'door'
	option listen '8443'
	option backend '192.168.1.20:80'
	option auth_file '$c/users'
	list allow '192.168.1.0/24'
	list allow '2001:db8::/32'
	option backend_auth_file '$c/door.pass'

config route 'bad'
	option listen '8444'
	option backend '192.168.1.21:80'
	list allow '10.0.0.0/8,evil'
EOF
	run_init start
	check "guarded: route options from UCI, in order" has_text "$calls" \
		"8443=192.168.1.20:80,auth=$c/users,allow=192.168.1.0/24,allow=2001:db8::/32,backend-auth-file=$c/door.pass"
	check "guarded: an option with a comma skips its route, named" has_text "$calls" \
		"route 'bad': option value '10.0.0.0/8,evil' is not a plain path or address range; route skipped"
	check "guarded: the bad route is not served" lacks_text "$calls" "8444=192.168.1.21:80"

	# 3. Bad values: the route is skipped with a message naming it, the others run.
	new_case badlisten
	acme_cert cams.example.net
	cat >"$c/config/camtls" <<'EOF'
config camtls 'main'
	option user 'nobody'

config route 'typo'
	option listen 'http'
	option backend '192.168.1.20:80'
	option open_firewall '1'

config route 'short'
	option listen '1.2.3:8447'
	option backend '192.168.1.23:80'

config route 'noport'
	option listen '8448'
	option backend '192.168.1.24'

config route 'good'
	option listen '8449'
	option backend '192.168.1.25:80'
	option open_firewall '1'
EOF
	run_init start
	check "bad listen: logged with the section and value" has_line "$calls" \
		"log daemon.err camtls: route 'typo': listen 'http' is not PORT, IPv4:PORT or [IPv6]:PORT; route skipped"
	check "bad listen: malformed IPv4 address logged" has_text "$calls" "route 'short': listen '1.2.3:8447'"
	check "bad backend: logged" has_text "$calls" "route 'noport': backend '192.168.1.24' is not HOST:PORT"
	check "bad listen: the valid route still served" has_line "$calls" "$(cmdline --log-level info --user nobody \
		--cert "$c/run/cert.pem" --key "$c/run/key.pem" --route 8449=192.168.1.25:80)"
	check "bad listen: no firewall rule for the skipped route" \
		has_line "$calls" "data firewall[ { type=rule src=wan proto=tcp dest_port=8449 target=ACCEPT } ]"
	check "bad listen: shown to a person starting it by hand" has_text "$c/stderr.$n" "route 'typo'"

	sed -i "/option listen '8449'/d" "$c/config/camtls"
	run_init start
	check "no valid route: start fails" test $? != 0
	check "no valid route: no instance, so no respawn loop" lacks_text "$calls" "instance "
	check "no valid route: says why" has_text "$calls" "not started: no enabled, valid route"

	# The binary's own check: two routes on one port.
	new_case duplicate
	acme_cert cams.example.net
	cat >"$c/config/camtls" <<'EOF'
config camtls 'main'
	option user 'nobody'

config route 'a'
	option listen '8443'
	option backend '192.168.1.20:80'

config route 'b'
	option listen '8443'
	option backend '192.168.1.21:80'
EOF
	run_init start
	check "refused by --check: no instance" lacks_text "$calls" "instance "
	check "refused by --check: the binary's reason is logged once" \
		same "$(grep -c 'not started, the configuration was refused: .*same port' "$calls")" 1

	new_case nocert
	cat >"$c/config/camtls" <<'EOF'
config camtls 'main'
	option user 'root'
	option cert '/nonexistent/cert.pem'
	option key '/nonexistent/key.pem'

config route 'a'
	option listen '8443'
	option backend '192.168.1.20:80'
EOF
	run_init start
	check "missing certificate: no instance" lacks_text "$calls" "instance "
	check "missing certificate: one message naming the file" \
		same "$(grep -c 'not started, the configuration was refused: .*/nonexistent/cert.pem' "$calls")" 1
	new_case nocert_user
	sed "s/'root'/'nobody'/" "$work/$suite-case-nocert/config/camtls" >"$c/config/camtls"
	run_init start
	check "missing certificate, unprivileged: the file is named" \
		has_line "$calls" "log daemon.err camtls: cannot read the certificate /nonexistent/cert.pem"

	new_case badlimit
	acme_cert cams.example.net
	printf "config camtls 'main'\n\toption idle_timeout '1m'\nconfig route 'a'\n\toption listen '8443'\n\toption backend 'cam:80'\n" >"$c/config/camtls"
	run_init start
	bad_limit() {
		lacks_text "$calls" "instance " && has_text "$calls" "main.idle_timeout '1m' is not a whole number"
	}
	check "bad limit: refused with the option named" bad_limit
	sed -i "s/option idle_timeout '1m'/option max_per_address 'eight'/" "$c/config/camtls"
	run_init start
	bad_per_address() {
		lacks_text "$calls" "instance " && has_text "$calls" "main.max_per_address 'eight' is not a whole number"
	}
	check "bad max_per_address: refused with the option named" bad_per_address
	sed -i "s/option max_per_address 'eight'/option max_per_address '0'/" "$c/config/camtls"
	run_init start
	zero_per_address() {
		lacks_text "$calls" "instance " &&
			same "$(grep -c 'not started, the configuration was refused: .*--max-per-address must be at least 1' "$calls")" 1
	}
	check "max_per_address 0: refused by --check, the binary's reason logged once" zero_per_address

	# 4. No certificate anywhere: a self-signed one is made once, for the
	#    router's name and LAN address.
	new_case selfsigned
	cat >"$c/config/camtls" <<'EOF'
config camtls 'main'
	option user 'nobody'
	list cert_name 'cams.example.org'

config route 'a'
	option listen '8443'
	option backend '192.168.1.20:80'
EOF
	run_init start
	check "self-signed: certificate and key made" test -s "$c/etc-camtls/camtls.crt" -a -s "$c/etc-camtls/camtls.key"
	check "self-signed: key is 0600" same "$(stat -c %a "$c/etc-camtls/camtls.key" 2>/dev/null)" 600
	names_ok() {
		local sans
		sans=$(openssl x509 -in "$c/etc-camtls/camtls.crt" -noout -ext subjectAltName 2>/dev/null)
		[[ $sans == *"DNS:$(cat /proc/sys/kernel/hostname)"* && $sans == *"IP Address:192.168.1.1"* &&
			$sans == *"DNS:cams.example.org"* ]]
	}
	check "self-signed: names hostname, LAN address and cert_name" names_ok
	check "self-signed: served through the user's copy" has_line "$calls" "$(cmdline --log-level info --user nobody \
		--cert "$c/run/cert.pem" --key "$c/run/key.pem" --route 8443=192.168.1.20:80)"
	check "self-signed: fingerprint logged for the browser warning" has_text "$calls" "SHA-256"
	cp "$c/etc-camtls/camtls.crt" "$work/first.crt"
	run_init start
	check "self-signed: kept across restarts" cmp -s "$c/etc-camtls/camtls.crt" "$work/first.crt"

	# acme_domain named but not issued yet: self-signed until acme.renew.
	sed -i "s/list cert_name .*/option acme_domain 'cams.example.net'/" "$c/config/camtls"
	run_init start
	waiting_for_acme() {
		has_text "$calls" "no acme.sh certificate for cams.example.net" &&
			cmp -s "$c/run/cert.pem" "$c/etc-camtls/camtls.crt"
	}
	check "acme_domain not issued yet: warns, serves the self-signed one" waiting_for_acme
	acme_cert cams.example.net
	run_init reload
	check "acme_domain issued: reload serves it" cmp -s "$c/run/cert.pem" "$c/acme/cams.example.net.fullchain.crt"

	# 5. The service user is missing, or root is asked for: the original files,
	#    no --user.
	new_case asroot
	acme_cert cams.example.net
	cat "$c/acme/cams.example.net.fullchain.crt" "$c/acme/cams.example.net.key" >"$c/both.pem"
	cat >"$c/config/camtls" <<EOF
config camtls 'main'
	option user 'no-such-user'

config route 'a'
	option listen '8443'
	option backend '192.168.1.20:80'
EOF
	run_init start
	check "missing user: warns and runs as root" has_text "$calls" "user 'no-such-user' does not exist; running as root"
	check "missing user: acme.sh's files used in place" has_line "$calls" "$(cmdline --log-level info \
		--cert "$c/acme/cams.example.net.fullchain.crt" --key "$c/acme/cams.example.net.key" --route 8443=192.168.1.20:80)"
	sed -i "s/option user .*/option user 'root'\n\toption cert '${c//\//\\/}\/both.pem'/" "$c/config/camtls"
	run_init start
	check "cert with the key inside: no --key" has_line "$calls" "$(cmdline --log-level info \
		--cert "$c/both.pem" --route 8443=192.168.1.20:80)"
	run_init stop
	check "stop with no port opened: firewall left alone" lacks_line "$calls" "config_changed firewall"

	# 6. Switched off, and the configuration as shipped (no route enabled yet).
	new_case off
	printf "config camtls 'main'\n\toption enabled '0'\nconfig route 'a'\n\toption listen '8443'\n\toption backend 'cam:80'\n" >"$c/config/camtls"
	run_init start
	rc=$?
	switched_off() {
		[ "$rc" = 0 ] && lacks_text "$calls" "instance " && has_text "$calls" "main.enabled is 0"
	}
	check "main.enabled 0: not started, said so, start does not fail" switched_off
	new_case shipped
	cp "$pkg/camtls/files/camtls.config" "$c/config/camtls"
	run_init start
	nothing_served() {
		lacks_text "$calls" "instance " && has_text "$calls" "no enabled, valid route"
	}
	check "shipped config: nothing served until a route is enabled" nothing_served
	check "shipped config: triggers registered anyway" triggers_ok
}

suite=host
init_cases

# --- the .ipk files ----------------------------------------------------------
qemu_for() {
	case "$1" in
	mips_*) echo qemu-mips-static ;;
	mipsel_*) echo qemu-mipsel-static ;;
	arm_*) echo qemu-arm-static ;;
	aarch64_*) echo qemu-aarch64-static ;;
	x86_64) echo env ;;
	esac
}
# Minimal OpenWrt account files, for the install scripts to add to.
fake_root() {
	local r=$1
	mkdir -p "$r/etc"
	printf 'root:x:0:0:root:/root:/bin/ash\ndaemon:*:1:1:daemon:/var:/bin/false\nnetwork:*:101:101:network:/var:/bin/false\nnobody:*:65534:65534:nobody:/var:/bin/false\n' >"$r/etc/passwd"
	printf 'root:x:0:\ndaemon:x:1:\nnetwork:!:101:\nnogroup:x:65534:\n' >"$r/etc/group"
	printf 'root:::0:99999:7:::\n' >"$r/etc/shadow"
	cp "$here/rc.common" "$r/etc/rc.common"
}

for ipk in "$@"; do
	base=$(basename "$ipk" .ipk)
	arch=${base#camtls_"$version"_}
	u=$work/$base
	mkdir -p "$u/outer" "$u/control" "$u/data"
	check "$base: named camtls_${version}_ARCH.ipk" test "$base" = "camtls_${version}_$arch"
	check "$base: outer archive is gzip" gzip -t "$ipk"
	check "$base: outer tar has ustar magic (opkg reads nothing else)" \
		same "$(gzip -dc "$ipk" | head -c 262 | tail -c 5)" ustar
	check "$base: members are debian-binary, data, control" \
		same "$(tar -tzf "$ipk" | tr '\n' ' ')" "./debian-binary ./data.tar.gz ./control.tar.gz "
	busybox tar -xzf "$ipk" -C "$u/outer"
	busybox tar -xzf "$u/outer/control.tar.gz" -C "$u/control"
	busybox tar -xzf "$u/outer/data.tar.gz" -C "$u/data"
	check "$base: debian-binary is 2.0" same "$(cat "$u/outer/debian-binary")" 2.0
	field() { sed -n "s/^$1: *//p" "$u/control/control"; }
	check "$base: control Package, Version, Architecture" \
		same "$(field Package) $(field Version) $(field Architecture)" "camtls $version $arch"
	check "$base: control Installed-Size is the unpacked size" \
		same "$(field Installed-Size)" "$(find "$u/data" -type f -exec cat {} + | wc -c)"
	check "$base: control has Description, License, Maintainer, Section" \
		test -n "$(field Description)" -a -n "$(field License)" -a -n "$(field Maintainer)" -a -n "$(field Section)"
	check "$base: conffiles keeps /etc/config/camtls across upgrades" \
		same "$(cat "$u/control/conffiles")" /etc/config/camtls
	check "$base: control members and modes" same "$(tar -tvzf "$u/outer/control.tar.gz" |
		awk '{print $1, $2, $6}' | sort | tr '\n' ';')" \
		"-rw-r--r-- 0/0 ./conffiles;-rw-r--r-- 0/0 ./control;-rwxr-xr-x 0/0 ./postinst;-rwxr-xr-x 0/0 ./prerm;drwxr-xr-x 0/0 ./;"
	check "$base: data members, modes, owners" same "$(tar -tvzf "$u/outer/data.tar.gz" |
		awk '{print $1, $2, $6}' | tr '\n' ';')" \
		"drwxr-xr-x 0/0 ./;drwxr-xr-x 0/0 ./etc/;drwxr-xr-x 0/0 ./etc/config/;-rw------- 0/0 ./etc/config/camtls;drwxr-xr-x 0/0 ./etc/init.d/;-rwxr-xr-x 0/0 ./etc/init.d/camtls;drwxr-xr-x 0/0 ./usr/;drwxr-xr-x 0/0 ./usr/sbin/;-rwxr-xr-x 0/0 ./usr/sbin/camtls;"
	check "$base: init script is the package's" cmp -s "$u/data/etc/init.d/camtls" "$init"
	check "$base: config is the package's" cmp -s "$u/data/etc/config/camtls" "$pkg/camtls/files/camtls.config"
	q=$(qemu_for "$arch")
	if [ -z "${router_bin:-}" ] && [ "$q" != env ]; then
		router_bin=$u/data/usr/sbin/camtls
		router_arch=$arch
		router_qemu=$(command -v "$q")
	fi
	check "$base: binary runs (--version under ${q:-nothing})" \
		same "$($q "$u/data/usr/sbin/camtls" --version 2>&1)" "camtls $version"
	# Same inputs, including the time stamp (the mtime field of the first tar
	# header: 12 octal digits at offset 136).
	epoch=$((8#$(gzip -dc "$ipk" | head -c 148 | tail -c 12 | tr -dc 0-7)))
	SOURCE_DATE_EPOCH=$epoch "$pkg/ipk/build-ipk.sh" "$u/data/usr/sbin/camtls" "$arch" "$version" "$u/again" >/dev/null
	check "$base: rebuilt from the same binary, byte for byte the same" cmp -s "$ipk" "$u/again/$base.ipk"

	r=$u/root
	fake_root "$r"
	cp -a "$u/data/." "$r/"
	for _ in 1 2; do
		env -i PATH="$bb" IPKG_INSTROOT="$r" busybox ash "$u/control/postinst" >/dev/null 2>&1
	done
	check "$base: postinst adds one camtls user, group and shadow entry" same \
		"$(grep -c ^camtls: "$r/etc/passwd") $(grep -c ^camtls: "$r/etc/group") $(grep -c ^camtls: "$r/etc/shadow")" "1 1 1"
	check "$base: postinst picks ids from 32768 up" \
		test "$(grep '^camtls:' "$r/etc/passwd" | cut -d: -f3)" -ge 32768
	check "$base: postinst gives the user its own group, no shell" same \
		"$(grep '^camtls:' "$r/etc/passwd" | cut -d: -f4,7)" "$(grep '^camtls:' "$r/etc/group" | cut -d: -f3):/bin/false"
	check "$base: postinst enables the service" same "$(readlink "$r/etc/rc.d/S95camtls")" ../init.d/camtls
	env -i PATH="$bb" IPKG_INSTROOT="$r" busybox ash "$u/control/prerm" >/dev/null 2>&1
	check "$base: prerm disables the service" test ! -e "$r/etc/rc.d/S95camtls"
done

# The init script again, calling the first packaged router binary: what the
# router itself runs for --check, gen-cert and fingerprint.
if [ -n "${router_bin:-}" ]; then
	bin=$work/camtls-$router_arch
	printf '#!/bin/sh\nexec %s %s "$@"\n' "$router_qemu" "$router_bin" >"$bin"
	chmod +x "$bin"
	suite=$router_arch
	prefix="$router_arch binary: "
	init_cases
fi

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
