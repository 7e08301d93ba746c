#!/usr/bin/env python3
"""make bench-memory: what an idle TLS connection costs camtls in resident
memory, for one or more binaries side by side.

For each binary: start it in front of a small keep-alive backend, open and
close a few connections (so that start-up allocations are done), read the
resident memory, open N TLS connections one after another, fetch one 1 KiB
response on each and leave it open and idle, read the memory again. Each
connection's cost is the difference over N. Run for TLS 1.3 (the client's
default, ECDSA P-256) and for TLS 1.2 (ECDHE-ECDSA-AES128-GCM-SHA256).

Resident memory is split as the kernel counts it: anonymous pages (the heap,
stacks: what the process really holds) and file pages (the binary's own
code and tables, mapped from the page cache; shared, and dropped first
under memory pressure). Everything talks to 127.0.0.1 only.

    tests/bench/memory.py [--connections N] [--rounds R] BINARY...
"""
import argparse
import http.server
import os
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time

BODY = b"x" * 1024


class Backend(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *_):
        pass


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} for {pid}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch(port, context):
    tls = context.wrap_socket(socket.create_connection(("127.0.0.1", port)),
                              server_hostname="localhost")
    tls.sendall(b"GET / HTTP/1.1\r\nHost: camera\r\n\r\n")
    got = b""
    while not got.endswith(BODY):
        chunk = tls.recv(65536)
        if not chunk:
            raise RuntimeError("connection closed before the response ended")
        got += chunk
    return tls


def measure(binary, backend_port, cert, key, connections, tls12):
    port = free_port()
    proc = subprocess.Popen(
        [os.path.abspath(binary), "--route", f"127.0.0.1:{port}=127.0.0.1:{backend_port}",
         "--cert", cert, "--key", key, "--log-level", "warn",
         "--max-connections", str(connections + 16),
         "--max-per-address", str(connections + 16)])
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port)).close()
                break
            except OSError:
                time.sleep(0.05)
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        if tls12:
            context.maximum_version = ssl.TLSVersion.TLSv1_2
            context.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256")
        for _ in range(5):
            fetch(port, context).close()
        time.sleep(0.5)
        idle = {f: status_kib(proc.pid, f) for f in ("VmRSS", "RssAnon", "RssFile")}
        open_connections = [fetch(port, context) for _ in range(connections)]
        suite = open_connections[0].version() + " " + open_connections[0].cipher()[0]
        time.sleep(1)
        busy = {f: status_kib(proc.pid, f) for f in ("VmRSS", "RssAnon", "RssFile")}
        for c in open_connections:
            c.close()
        return {
            "suite": suite,
            "idle": idle,
            "per_connection": (busy["VmRSS"] - idle["VmRSS"]) / connections,
            "anon_per_connection": (busy["RssAnon"] - idle["RssAnon"]) / connections,
        }
    finally:
        proc.terminate()
        proc.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("binaries", nargs="+")
    ap.add_argument("--connections", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    backend = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Backend)
    threading.Thread(target=backend.serve_forever, daemon=True).start()
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
                        "-out", cert, "-subj", "/CN=localhost", "-days", "30"],
                       check=True, capture_output=True)
        print(f"{args.connections} idle keep-alive TLS connections, median of "
              f"{args.rounds} round(s); KiB")
        print()
        print("| binary | bytes | TLS | RSS idle | of it anon | of it file "
              "| RSS per connection | anon per connection |")
        print("|---|---:|---|---:|---:|---:|---:|---:|")
        for binary in args.binaries:
            for tls12 in (False, True):
                runs = [measure(binary, backend.server_address[1], cert, key,
                                args.connections, tls12) for _ in range(args.rounds)]
                med = lambda f: statistics.median(f(r) for r in runs)
                print(f"| {binary} | {os.path.getsize(binary)} | {runs[0]['suite']} "
                      f"| {med(lambda r: r['idle']['VmRSS']):.0f} "
                      f"| {med(lambda r: r['idle']['RssAnon']):.0f} "
                      f"| {med(lambda r: r['idle']['RssFile']):.0f} "
                      f"| {med(lambda r: r['per_connection']):.1f} "
                      f"| {med(lambda r: r['anon_per_connection']):.1f} |")
                sys.stdout.flush()


if __name__ == "__main__":
    main()
