#!/usr/bin/env python3
"""Resident memory of the mipsel build under qemu-user, idle and with 20
open TLS connections (the figures in docs/tomato.md).

    tests/tomato/rss.py dist/camtls-VERSION-mipsel-unknown-linux-musl

qemu-mipsel-static is started with the guest's memory at a fixed host address
(-B), and only the resident pages of that range are counted: the guest's
touched code, data, heap and stacks, without qemu's own memory. A real kernel
counts the same pages, so this is close to what `ps` shows on the router.
"""
import http.server
import os
import re
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

BASE = 0x100000000000


def guest_rss_kb(pid):
    total, start = 0, None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            m = re.match(r"^([0-9a-f]+)-[0-9a-f]+ ", line)
            if m:
                start = int(m.group(1), 16)
            elif line.startswith("Rss:") and BASE <= start < BASE + (1 << 32):
                total += int(line.split()[1])
    return total


class Page(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = b"x" * 2000
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main():
    binary = sys.argv[1]
    work = tempfile.mkdtemp()
    cert, key = os.path.join(work, "c.pem"), os.path.join(work, "k.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
                    "/CN=router", "-keyout", key, "-out", cert],
                   check=True, stderr=subprocess.DEVNULL)
    backend = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=backend.serve_forever, daemon=True).start()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proxy = subprocess.Popen(
        ["qemu-mipsel-static", "-r", "2.6.22.19", "-B", hex(BASE), binary, "--route",
         f"127.0.0.1:{port}=127.0.0.1:{backend.server_address[1]}",
         "--cert", cert, "--key", key], stderr=subprocess.DEVNULL)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE

    def connect(request):
        for _ in range(100):
            try:
                s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)))
                break
            except OSError:
                time.sleep(0.2)
        if request:
            s.sendall(b"GET / HTTP/1.1\r\nHost: camera\r\n\r\n")
            got = b""
            while not got.endswith(b"x" * 2000):
                got += s.recv(65536)
        return s

    try:
        connect(True).close()  # pages in the code a connection uses
        time.sleep(1)
        idle = guest_rss_kb(proxy.pid)
        held = [connect(False) for _ in range(20)]
        time.sleep(1)
        handshaken = guest_rss_kb(proxy.pid)
        for s in held:
            s.close()
        time.sleep(1)
        held = [connect(True) for _ in range(20)]
        time.sleep(1)
        requested = guest_rss_kb(proxy.pid)
        print(f"idle: {idle} kB")
        print(f"20 TLS connections, handshake done: {handshaken} kB")
        print(f"20 TLS connections, one proxied request each, kept open: {requested} kB")
    finally:
        proxy.terminate()
        proxy.wait()
        backend.shutdown()


if __name__ == "__main__":
    main()
