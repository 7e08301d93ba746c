#!/usr/bin/env python3
"""An outside audit of camtls's TLS setup with sslyze, an independent scanner.

Starts the real camtls binary ($CAMTLS_BIN) on 127.0.0.1 in front of a small
local HTTP backend, once with an ECDSA and once with an RSA certificate (both
made by `camtls gen-cert`), scans it with sslyze's Python API and fails on
anything the project's TLS policy rules out: SSL 2/3, TLS 1.0/1.1, RC4, 3DES,
NULL, EXPORT or anonymous suites, a TLS 1.2 suite without forward secrecy,
compression, insecure or client-initiated renegotiation, 0-RTT early data,
Heartbleed, CCS injection, ROBOT, no downgrade protection, and session
resumption that does not work (TLS 1.2 by sslyze, TLS 1.3 by Python's ssl,
which sslyze does not test).

    CAMTLS_BIN=target/release/camtls python tests/tls_audit/audit.py [-v]

`make test-tls-audit` installs the pinned sslyze (requirements.txt) into a
virtual environment and runs this. Prints one line per check and ends with
`N passed, M failed`.
"""

import argparse
import http.server
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

try:
    import sslyze
    from sslyze import (
        ScanCommand,
        ScanCommandAttemptStatusEnum,
        Scanner,
        ServerNetworkConfiguration,
        ServerNetworkLocation,
        ServerScanRequest,
        ServerScanStatusEnum,
        TlsResumptionSupportEnum,
    )
    from sslyze.plugins.robot.implementation import RobotScanResultEnum
except ImportError as e:
    sys.exit(f"sslyze is not installed ({e}); `make test-tls-audit` installs it")

ROOT = Path(__file__).resolve().parents[2]
BACKEND_BODY = b"camera says hello\n"
START_TIMEOUT = 10.0

CIPHER_SCANS = [
    (ScanCommand.SSL_2_0_CIPHER_SUITES, "ssl_2_0_cipher_suites", "SSL 2.0"),
    (ScanCommand.SSL_3_0_CIPHER_SUITES, "ssl_3_0_cipher_suites", "SSL 3.0"),
    (ScanCommand.TLS_1_0_CIPHER_SUITES, "tls_1_0_cipher_suites", "TLS 1.0"),
    (ScanCommand.TLS_1_1_CIPHER_SUITES, "tls_1_1_cipher_suites", "TLS 1.1"),
    (ScanCommand.TLS_1_2_CIPHER_SUITES, "tls_1_2_cipher_suites", "TLS 1.2"),
    (ScanCommand.TLS_1_3_CIPHER_SUITES, "tls_1_3_cipher_suites", "TLS 1.3"),
]
OTHER_SCANS = {
    ScanCommand.TLS_COMPRESSION: "tls_compression",
    ScanCommand.SESSION_RENEGOTIATION: "session_renegotiation",
    ScanCommand.SESSION_RESUMPTION: "session_resumption",
    ScanCommand.TLS_1_3_EARLY_DATA: "tls_1_3_early_data",
    ScanCommand.HEARTBLEED: "heartbleed",
    ScanCommand.OPENSSL_CCS_INJECTION: "openssl_ccs_injection",
    ScanCommand.ROBOT: "robot",
    ScanCommand.TLS_FALLBACK_SCSV: "tls_fallback_scsv",
}

# Suite names are matched in both naming schemes sslyze reports (IANA in
# `name`, OpenSSL in `openssl_name`).
WEAK_SUITES = [
    ("RC4", re.compile(r"RC4")),
    ("3DES", re.compile(r"3DES|DES-CBC3|_DES_|-DES-|^DES-")),
    ("NULL", re.compile(r"NULL")),
    ("EXPORT", re.compile(r"EXPORT|EXP-|EXP1024")),
    ("anonymous", re.compile(r"_anon_|^ADH-|^AECDH-|_DH_anon|_ECDH_anon")),
]


class Results:
    def __init__(self, quiet=False):
        self.passed = 0
        self.failed = 0
        self.quiet = quiet
        self.outcome = {}

    def check(self, name, ok, detail=""):
        ok = bool(ok)
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        self.outcome[name] = (ok, detail)
        if not self.quiet:
            tail = f": {detail}" if detail else ""
            print(f"{'ok  ' if ok else 'FAIL'} {name}{tail}", flush=True)
        return ok


class Backend(http.server.BaseHTTPRequestHandler):
    """The camera: plain HTTP on loopback, one fixed page."""

    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(BACKEND_BODY)))
        self.end_headers()
        self.wfile.write(BACKEND_BODY)

    def log_message(self, *args):
        pass


class Camtls:
    """The real binary on 127.0.0.1, port chosen by the kernel and read from
    its `listening on https://ADDR` line."""

    def __init__(self, binary, backend_port, cert, key):
        self.log = []
        self.proc = subprocess.Popen(
            [
                binary,
                "--route",
                f"127.0.0.1:0=127.0.0.1:{backend_port}",
                "--cert",
                str(cert),
                "--key",
                str(key),
                "--log-level",
                "info",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.port = None
        found = threading.Event()

        def read():
            for line in self.proc.stderr:
                self.log.append(line.rstrip("\n"))
                m = re.search(r"listening on https://127\.0\.0\.1:(\d+)", line)
                if m and self.port is None:
                    self.port = int(m.group(1))
                    found.set()
            found.set()

        # Kept reading for the whole run, so a chatty log never blocks camtls.
        threading.Thread(target=read, daemon=True).start()
        if not found.wait(START_TIMEOUT) or self.port is None:
            self.stop()
            raise RuntimeError("camtls did not start:\n  " + "\n  ".join(self.log))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class WeakServer:
    """`openssl s_server` set up the way the audit must reject (TLS 1.0 and
    1.1, a suite without forward secrecy, no session cache, no tickets): the
    audit's own negative control, so that a check that can never fail is
    caught."""

    def __init__(self, cert, key):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.log = []
        self.proc = subprocess.Popen(
            [
                "openssl", "s_server", "-quiet", "-www",
                "-accept", f"127.0.0.1:{self.port}",
                "-cert", str(cert), "-key", str(key),
                "-min_protocol", "TLSv1", "-max_protocol", "TLSv1.2",
                "-cipher", "AES128-SHA:ECDHE-RSA-AES128-GCM-SHA256:@SECLEVEL=0",
                "-no_cache", "-no_ticket",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("openssl s_server did not start")

    def stop(self):
        Camtls.stop(self)


def client_context(cert):
    ctx = ssl.create_default_context(cafile=str(cert))
    ctx.check_hostname = True
    return ctx


def get(ctx, port, session=None):
    """One GET / over TLS; returns (status line, body, ssl session, reused)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost", session=session) as tls:
            tls.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                chunk = tls.recv(65536)
                if not chunk:
                    break
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            # TLS 1.3 tickets arrive after the handshake: read first, then
            # take the session.
            return head.split(b"\r\n")[0], body, tls.session, tls.session_reused


def scan(port, verbose):
    request = ServerScanRequest(
        server_location=ServerNetworkLocation(hostname="localhost", port=port, ip_address="127.0.0.1"),
        network_configuration=ServerNetworkConfiguration(tls_server_name_indication="localhost"),
        scan_commands={c for c, _, _ in CIPHER_SCANS} | set(OTHER_SCANS),
    )
    scanner = Scanner()
    scanner.queue_scans([request])
    results = list(scanner.get_results())
    assert len(results) == 1
    if verbose:
        print(f"     sslyze {sslyze.__version__.__version__}: {results[0].scan_status.name}", flush=True)
    return results[0]


def attempt(result, attr):
    """The scan command's result, or None with the reason it has none."""
    a = getattr(result.scan_result, attr)
    if a.status != ScanCommandAttemptStatusEnum.COMPLETED:
        reason = a.error_reason.value if a.error_reason else a.status.value
        trace = a.error_trace.format() if a.error_trace else []
        return None, f"sslyze could not run it ({reason}) {''.join(trace)[-400:]}"
    return a.result, ""


def audit(results, label, start, cert, verbose):
    try:
        server = start()
    except RuntimeError as e:
        results.check(f"{label}: server starts", False, str(e))
        return
    try:
        port = server.port
        ctx = client_context(cert)
        try:
            status, body, _, _ = get(ctx, port)
        except (OSError, ssl.SSLError) as e:
            status, body = str(e).encode(), b""
        results.check(
            f"{label}: GET / through camtls reaches the backend",
            status.endswith(b"200 OK") and body == BACKEND_BODY,
            f"{status!r} {body[:60]!r}",
        )

        t0 = time.monotonic()
        result = scan(port, verbose)
        took = time.monotonic() - t0
        if not results.check(
            f"{label}: sslyze connects and completes the scan",
            result.scan_status == ServerScanStatusEnum.COMPLETED,
            f"{result.scan_status.value}, {took:.1f} s"
            + (f", {result.connectivity_error_trace}" if result.connectivity_error_trace else ""),
        ):
            return

        accepted = {}
        for _, attr, version in CIPHER_SCANS:
            r, why = attempt(result, attr)
            if r is None:
                results.check(f"{label}: {version} scan", False, why)
                continue
            accepted[version] = r.accepted_cipher_suites
            names = ", ".join(s.cipher_suite.name for s in r.accepted_cipher_suites)
            if version in ("SSL 2.0", "SSL 3.0", "TLS 1.0", "TLS 1.1"):
                results.check(f"{label}: {version} refused", not r.accepted_cipher_suites, names)
            else:
                results.check(f"{label}: {version} offered", bool(r.accepted_cipher_suites), names)

        suites = [s for v in accepted.values() for s in v]
        for weak, pattern in WEAK_SUITES:
            bad = [
                s.cipher_suite.name
                for s in suites
                if pattern.search(s.cipher_suite.name)
                or pattern.search(s.cipher_suite.openssl_name)
                or (weak == "anonymous" and s.cipher_suite.is_anonymous)
            ]
            results.check(f"{label}: no {weak} suite", not bad, ", ".join(bad))

        # TLS 1.3 suites are all (EC)DHE; a TLS 1.2 suite must be ECDHE or DHE
        # and must have negotiated an ephemeral key.
        no_fs = [
            s.cipher_suite.openssl_name
            for s in accepted.get("TLS 1.2", [])
            if not s.cipher_suite.openssl_name.startswith(("ECDHE-", "DHE-")) or s.ephemeral_key is None
        ]
        results.check(
            f"{label}: every TLS 1.2 suite is forward secret",
            bool(accepted.get("TLS 1.2")) and not no_fs,
            ", ".join(no_fs),
        )
        if verbose:
            for s in accepted.get("TLS 1.2", []):
                k = s.ephemeral_key
                print(f"     {s.cipher_suite.openssl_name}: {k.type_name if k else None} {k.size if k else ''}")

        r, why = attempt(result, "tls_compression")
        results.check(f"{label}: no TLS compression", r is not None and not r.supports_compression, why)

        r, why = attempt(result, "session_renegotiation")
        results.check(
            f"{label}: secure renegotiation (RFC 5746) only",
            r is not None and r.supports_secure_renegotiation,
            why,
        )
        results.check(
            f"{label}: client-initiated renegotiation refused",
            r is not None and not r.is_vulnerable_to_client_renegotiation_dos,
            why or (f"{r.client_renegotiations_success_count} renegotiations accepted" if r else ""),
        )

        r, why = attempt(result, "session_resumption")
        if r is not None:
            ids = r.session_id_resumption_result
            tickets = r.tls_ticket_resumption_result
            detail = (
                f"session IDs {ids.name} ({r.session_id_successful_resumptions_count}/"
                f"{r.session_id_attempted_resumptions_count}), tickets {tickets.name} "
                f"({r.tls_ticket_successful_resumptions_count}/{r.tls_ticket_attempted_resumptions_count})"
            )
            works = TlsResumptionSupportEnum.FULLY_SUPPORTED in (ids, tickets)
        else:
            detail, works = why, False
        results.check(f"{label}: TLS 1.2 session resumption works", works, detail)

        # sslyze tests TLS 1.2 resumption only; TLS 1.3 tickets with a real
        # client.
        ctx13 = client_context(cert)
        ctx13.minimum_version = ssl.TLSVersion.TLSv1_3
        try:
            _, _, session, _ = get(ctx13, port)
            reused = [get(ctx13, port, session)[3] for _ in range(3)]
            detail = f"reused {sum(reused)}/3"
        except (OSError, ssl.SSLError) as e:
            session, reused, detail = None, [], str(e)
        results.check(
            f"{label}: TLS 1.3 session resumption works",
            session is not None and bool(reused) and all(reused),
            detail,
        )

        r, why = attempt(result, "tls_1_3_early_data")
        results.check(
            f"{label}: no 0-RTT early data (replayable requests)",
            r is not None and not r.supports_early_data,
            why,
        )
        r, why = attempt(result, "heartbleed")
        results.check(f"{label}: not vulnerable to Heartbleed", r is not None and not r.is_vulnerable_to_heartbleed, why)
        r, why = attempt(result, "openssl_ccs_injection")
        results.check(
            f"{label}: not vulnerable to CCS injection",
            r is not None and not r.is_vulnerable_to_ccs_injection,
            why,
        )
        r, why = attempt(result, "robot")
        safe = {
            RobotScanResultEnum.NOT_VULNERABLE_NO_ORACLE,
            RobotScanResultEnum.NOT_VULNERABLE_RSA_NOT_SUPPORTED,
        }
        results.check(
            f"{label}: not vulnerable to ROBOT",
            r is not None and r.robot_result in safe,
            why or (r.robot_result.name if r else ""),
        )
        r, why = attempt(result, "tls_fallback_scsv")
        results.check(
            f"{label}: downgrade protection (TLS_FALLBACK_SCSV)",
            r is not None and r.supports_fallback_scsv,
            why,
        )
        results.check(f"{label}: server still running after the scan", server.proc.poll() is None)
    finally:
        server.stop()
        if verbose and server.log:
            print("     camtls log:\n       " + "\n       ".join(server.log[-20:]))


def self_test(results, cert, key):
    """The same audit against a server that breaks the policy must flag it."""
    weak = Results(quiet=True)
    audit(weak, "weak", lambda: WeakServer(cert, key), cert, False)
    expected = [
        "weak: TLS 1.0 refused",
        "weak: TLS 1.1 refused",
        "weak: every TLS 1.2 suite is forward secret",
        "weak: TLS 1.2 session resumption works",
        "weak: TLS 1.3 session resumption works",
    ]
    ok, _ = weak.outcome.get("weak: sslyze connects and completes the scan", (False, ""))
    results.check("self-test: sslyze scans a deliberately weak openssl s_server", ok)
    for name in expected:
        outcome = weak.outcome.get(name)
        check = name.split(": ", 1)[1]
        results.check(
            f"self-test: the audit flags a weak server on '{check}'",
            outcome is not None and not outcome[0],
            outcome[1] if outcome else "check did not run",
        )
    # And passes it where the weak server is fine.
    for name in ("weak: no RC4 suite", "weak: SSL 3.0 refused"):
        outcome = weak.outcome.get(name, (False, "check did not run"))
        results.check(f"self-test: the weak server passes '{name.split(': ', 1)[1]}'", outcome[0], outcome[1])


def default_binary():
    for b in ("target/release/camtls", "target/debug/camtls"):
        if (ROOT / b).is_file():
            return str(ROOT / b)
    return "target/release/camtls"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="print suites, keys and the camtls log")
    parser.add_argument("--no-self-test", action="store_true", help="skip the audit of a deliberately weak server")
    args = parser.parse_args()
    binary = os.environ.get("CAMTLS_BIN") or default_binary()
    if not Path(binary).is_file():
        sys.exit(f"camtls binary {binary} not found: build it, or set CAMTLS_BIN")

    results = Results()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Backend)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with tempfile.TemporaryDirectory(prefix="camtls-tls-audit-") as tmp:
            tmp = Path(tmp)
            for label, extra in (("ECDSA P-256", []), ("RSA 2048", ["--rsa"])):
                stem = "rsa" if extra else "ecdsa"
                cert, key = tmp / f"{stem}.pem", tmp / f"{stem}.key"
                made = subprocess.run(
                    [binary, "gen-cert", "--cert", str(cert), "--key", str(key), "--name", "localhost", *extra],
                    capture_output=True,
                    text=True,
                )
                if not results.check(f"{label}: camtls gen-cert", made.returncode == 0, made.stderr.strip()):
                    continue
                backend = server.server_address[1]
                audit(
                    results,
                    label,
                    lambda: Camtls(binary, backend, cert, key),
                    cert,
                    args.verbose,
                )
            if not args.no_self_test:
                self_test(results, tmp / "rsa.pem", tmp / "rsa.key")
    finally:
        server.shutdown()

    print(f"{results.passed} passed, {results.failed} failed")
    return 1 if results.failed or not results.passed else 0


if __name__ == "__main__":
    sys.exit(main())
