#!/usr/bin/env python3
"""Checks the sample camera end to end: starts camera.py on 127.0.0.1, talks to
every endpoint over real sockets, and decodes its JPEG frames with djpeg
(libjpeg-turbo-progs).

    python3 tests/sample-camera/test_camera.py      # one line per check
    python3 -m unittest tests/sample-camera/test_camera.py
"""

import base64
import http.client
import importlib.util
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
CAMERA = os.path.join(HERE, "camera.py")

_spec = importlib.util.spec_from_file_location("camera", CAMERA)
camera = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(camera)


def djpeg(jpeg):
    """Decodes with libjpeg: (width, height, rgb bytes)."""
    out = subprocess.run(["djpeg", "-pnm"], input=jpeg, capture_output=True, check=True).stdout
    m = re.match(rb"P6\s+(\d+)\s+(\d+)\s+255\s", out)
    assert m, out[:20]
    w, h = int(m.group(1)), int(m.group(2))
    pixels = out[m.end():]
    assert len(pixels) == w * h * 3
    return w, h, pixels


def pixel(decoded, x, y):
    w, _, px = decoded
    i = (y * w + x) * 3
    return tuple(px[i:i + 3])


def start_camera(*extra):
    proc = subprocess.Popen([sys.executable, CAMERA, "--listen", "127.0.0.1:0", *extra],
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
    if not m:
        proc.kill()
        raise RuntimeError("camera did not start: %r" % line)
    return proc, int(m.group(1))


def read_head(sock):
    """Reads up to the blank line; returns (status line, headers dict, leftover)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise AssertionError("connection closed inside the head: %r" % data)
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return lines[0], headers, rest


class Reader:
    """Exact-length reads on a socket, starting with bytes already received."""

    def __init__(self, sock, buffered=b""):
        self.sock, self.buf = sock, buffered

    def fill(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                return False
            self.buf += chunk
        return True

    def read(self, n):
        if not self.fill(n):
            raise AssertionError("connection closed early")
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise AssertionError("connection closed early")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def at_eof(self):
        if self.buf:
            return False
        return self.sock.recv(1) == b""


def read_mjpeg_part(reader):
    boundary = reader.line()
    assert boundary == b"--" + camera.BOUNDARY.encode(), boundary
    headers = {}
    while True:
        line = reader.line()
        if not line:
            break
        name, _, value = line.decode().partition(":")
        headers[name.lower()] = value.strip()
    assert headers["content-type"] == "image/jpeg", headers
    jpeg = reader.read(int(headers["content-length"]))
    assert reader.read(2) == b"\r\n"
    return jpeg


class EncoderTest(unittest.TestCase):
    def test_flat_blocks_decode_to_their_colours(self):
        colours = [(0, 0, 0), (255, 255, 255), (255, 0, 0), (0, 255, 0), (0, 0, 255),
                   (128, 128, 128), (255, 160, 20), (20, 40, 90), (250, 250, 0)]
        grid = [[colours[(x * 3 + y * 5) % len(colours)] for x in range(7)] for y in range(5)]
        w, h, px = decoded = djpeg(camera.encode_blocks(grid))
        self.assertEqual((w, h), (56, 40))
        self.assertEqual(len(px), w * h * 3)
        for by, row in enumerate(grid):
            for bx, want in enumerate(row):
                got = pixel(decoded, bx * 8 + 4, by * 8 + 4)
                # 8-bit YCbCr round trip: a few units of error at most.
                self.assertTrue(all(abs(a - b) <= 4 for a, b in zip(got, want)),
                                "block %d,%d: want %s got %s" % (bx, by, want, got))

    def test_frames_change_and_decode(self):
        a = djpeg(camera.encode_blocks(camera.frame_blocks(1, 0)))
        b = djpeg(camera.encode_blocks(camera.frame_blocks(2, 0)))
        self.assertEqual(a[:2], (camera.WIDTH, camera.HEIGHT))
        self.assertNotEqual(a[2], b[2])
        # The bar moves two blocks a frame: block column 2 holds it in frame 1.
        self.assertEqual(pixel(a, 2 * 8 + 4, 240), pixel(a, 5 * 8 + 4, 240))
        self.assertNotEqual(pixel(a, 2 * 8 + 4, 240), pixel(b, 2 * 8 + 4, 240))

    def test_byte_stuffing(self):
        # Long runs of 1 bits in the entropy data produce 0xFF bytes, which
        # must be followed by 0x00 or the decoder sees a marker.
        grid = [[(255, 255, 255) if (x + y) % 2 else (0, 0, 0) for x in range(40)]
                for y in range(30)]
        jpeg = camera.encode_blocks(grid)
        data = jpeg[jpeg.index(b"\xff\xda"):-2]
        self.assertIn(b"\xff\x00", data)
        w, h, _ = decoded = djpeg(jpeg)
        self.assertEqual(pixel(decoded, 12, 4), (255, 255, 255))
        self.assertEqual(pixel(decoded, 4, 4), (0, 0, 0))


class CameraTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.proc, cls.port = start_camera()

    @classmethod
    def tearDownClass(cls):
        cls.proc.terminate()
        cls.proc.wait(5)
        cls.proc.stdout.close()

    def connect(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        self.addCleanup(s.close)
        return s

    def http(self):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        self.addCleanup(c.close)
        return c

    def test_index_page_over_keep_alive(self):
        c = self.http()
        for _ in range(2):  # the same connection serves both
            c.request("GET", "/")
            r = c.getresponse()
            body = r.read().decode()
            self.assertEqual(r.status, 200)
            self.assertTrue(r.getheader("Content-Type").startswith("text/html"))
            self.assertEqual(int(r.getheader("Content-Length")), len(body.encode()))
            self.assertIn("<title>Sample camera</title>", body)
            self.assertIn('<img src="/video.mjpg"', body)
            self.assertIn('href="/snapshot.jpg"', body)
            self.assertIn('href="/login"', body)
            self.assertIn("new WebSocket(", body)

    def test_snapshot_decodes(self):
        c = self.http()
        c.request("GET", "/snapshot.jpg")
        r = c.getresponse()
        jpeg = r.read()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.getheader("Content-Type"), "image/jpeg")
        self.assertEqual(int(r.getheader("Content-Length")), len(jpeg))
        w, h, _ = djpeg(jpeg)
        self.assertEqual((w, h), (640, 480))

    def test_head_has_no_body(self):
        c = self.http()
        c.request("HEAD", "/snapshot.jpg")
        r = c.getresponse()
        self.assertEqual(r.status, 200)
        self.assertGreater(int(r.getheader("Content-Length")), 1000)
        self.assertEqual(r.read(), b"")
        c.request("GET", "/")  # the connection is still in step
        self.assertEqual(c.getresponse().status, 200)

    def test_mjpeg_stream_is_read_until_close(self):
        s = self.connect()
        s.sendall(b"GET /video.mjpg?frames=3 HTTP/1.1\r\nHost: cam\r\n\r\n")
        start = time.monotonic()
        status, headers, rest = read_head(s)
        self.assertEqual(status, "HTTP/1.0 200 OK")
        self.assertEqual(headers["content-type"],
                         "multipart/x-mixed-replace; boundary=" + camera.BOUNDARY)
        self.assertNotIn("content-length", headers)
        self.assertNotIn("transfer-encoding", headers)
        reader = Reader(s, rest)
        frames = [djpeg(read_mjpeg_part(reader)) for _ in range(3)]
        elapsed = time.monotonic() - start
        self.assertTrue(reader.at_eof(), "the camera closes after ?frames=3")
        for f in frames:
            self.assertEqual(f[:2], (640, 480))
        self.assertNotEqual(frames[0][2], frames[1][2])
        self.assertNotEqual(frames[1][2], frames[2][2])
        # 5 frames/s: the first frame goes at once, the next two on the
        # following ticks, so three frames take more than one interval.
        self.assertGreater(elapsed, 0.19)
        self.assertLess(elapsed, 2.0)

    def test_mjpeg_without_limit_keeps_going(self):
        s = self.connect()
        s.sendall(b"GET /video.mjpg HTTP/1.0\r\n\r\n")
        _, _, rest = read_head(s)
        reader = Reader(s, rest)
        seen = set()
        for _ in range(6):
            seen.add(hash(read_mjpeg_part(reader)))
        self.assertEqual(len(seen), 6)

    def test_chunked(self):
        s = self.connect()
        s.sendall(b"GET /chunked HTTP/1.1\r\nHost: cam\r\n\r\n")
        status, headers, rest = read_head(s)
        self.assertEqual(status, "HTTP/1.1 200 OK")
        self.assertEqual(headers.get("transfer-encoding"), "chunked")
        self.assertNotIn("content-length", headers)
        reader, body, chunks = Reader(s, rest), b"", 0
        while True:
            size = int(reader.line(), 16)
            data = reader.read(size)
            self.assertEqual(reader.read(2), b"\r\n")
            if size == 0:
                break
            body += data
            chunks += 1
        self.assertEqual(chunks, 10)
        self.assertTrue(body.startswith(b"line 1 of 10") and body.endswith(b"line 10 of 10 from the camera\n"))
        # Keep-alive: a second request on the same socket after the last chunk.
        s.sendall(b"GET /login HTTP/1.1\r\nHost: cam\r\n\r\n")
        status, _, _ = read_head(s)
        self.assertEqual(status, "HTTP/1.1 302 Found")

    def test_chunked_to_http10_client_ends_by_close(self):
        s = self.connect()
        s.sendall(b"GET /chunked HTTP/1.0\r\n\r\n")
        _, headers, rest = read_head(s)
        self.assertNotIn("transfer-encoding", headers)
        reader = Reader(s, rest)
        while reader.fill(len(reader.buf) + 1):
            pass
        self.assertEqual(reader.buf.count(b"\n"), 10)

    def test_login_redirects_to_own_absolute_address(self):
        for method in ("GET", "POST"):
            c = self.http()
            c.request(method, "/login", body=b"usr=admin&pwd=admin" if method == "POST" else None,
                      headers={"Host": "camera.example"})
            r = c.getresponse()
            r.read()
            self.assertEqual(r.status, 302)
            self.assertEqual(r.getheader("Location"), "http://127.0.0.1:%d/" % self.port)
            self.assertRegex(r.getheader("Set-Cookie"), r"^session=[0-9a-f]{16}; Path=/")

    def cgi(self, query):
        c = self.http()
        c.request("GET", "/cgi-bin/CGIProxy.fcgi?" + query)
        r = c.getresponse()
        return r, r.read()

    def test_cgi_commands(self):
        r, body = self.cgi("cmd=getDevInfo&usr=admin&pwd=admin")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.getheader("Content-Type").startswith("text/xml"))
        self.assertIn(b"<result>0</result>", body)
        self.assertIn(b"<devName>Sample camera</devName>", body)
        _, body = self.cgi("cmd=getDevState&usr=admin&pwd=admin")
        self.assertRegex(body, rb"<result>0</result>[\s\S]*<frame>\d+</frame>")
        _, body = self.cgi("cmd=getDevInfo&usr=admin&pwd=wrong")
        self.assertEqual(body, b"<CGI_Result>\n<result>-2</result>\n</CGI_Result>\n")
        _, body = self.cgi("cmd=noSuchCommand&usr=admin&pwd=admin")
        self.assertIn(b"<result>-1</result>", body)
        r, body = self.cgi("cmd=snapPicture2&usr=admin&pwd=admin")
        self.assertEqual(r.getheader("Content-Type"), "image/jpeg")
        self.assertEqual(djpeg(body)[:2], (640, 480))

    def test_not_found(self):
        c = self.http()
        c.request("GET", "/nothing-here")
        r = c.getresponse()
        r.read()
        self.assertEqual(r.status, 404)

    def ws_connect(self):
        s = self.connect()
        key = base64.b64encode(os.urandom(16)).decode()
        s.sendall(("GET /ws HTTP/1.1\r\nHost: cam\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                   "Sec-WebSocket-Version: 13\r\n\r\n" % key).encode())
        status, headers, rest = read_head(s)
        self.assertEqual(status, "HTTP/1.1 101 Switching Protocols")
        self.assertEqual(headers["upgrade"].lower(), "websocket")
        self.assertEqual(headers["sec-websocket-accept"], camera.websocket_accept(key))
        return s, Reader(s, rest)

    def ws_recv(self, reader):
        b0, b1 = reader.read(2)
        self.assertEqual(b1 & 0x80, 0, "server frames are not masked")
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack(">H", reader.read(2))[0]
        elif n == 127:
            n = struct.unpack(">Q", reader.read(8))[0]
        return b0 & 0x0F, reader.read(n)

    def test_websocket_accept_matches_rfc6455_example(self):
        # RFC 6455 section 1.3 gives this key and its answer.
        self.assertEqual(camera.websocket_accept("dGhlIHNhbXBsZSBub25jZQ=="),
                         "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")

    def test_websocket_echo(self):
        s, reader = self.ws_connect()
        mask = b"\x01\x02\x03\x04"
        s.sendall(camera.ws_frame(0x1, "hello camera ✓".encode(), mask))
        self.assertEqual(self.ws_recv(reader), (0x1, "hello camera ✓".encode()))
        big = os.urandom(70000 // 2).hex()[:40000].encode()
        s.sendall(camera.ws_frame(0x1, big, mask))
        self.assertEqual(self.ws_recv(reader), (0x1, big))
        # A message in two fragments comes back whole.
        s.sendall(bytes([0x01, 0x80 | 3]) + mask + bytes(b ^ mask[i] for i, b in enumerate(b"abc")))
        s.sendall(bytes([0x80, 0x80 | 3]) + mask + bytes(b ^ mask[i] for i, b in enumerate(b"def")))
        self.assertEqual(self.ws_recv(reader), (0x1, b"abcdef"))
        s.sendall(camera.ws_frame(0x9, b"ping", mask))
        self.assertEqual(self.ws_recv(reader), (0xA, b"ping"))
        s.sendall(camera.ws_frame(0x8, struct.pack(">H", 1000), mask))
        self.assertEqual(self.ws_recv(reader), (0x8, struct.pack(">H", 1000)))
        self.assertTrue(reader.at_eof())

    def test_websocket_refuses_plain_get(self):
        c = self.http()
        c.request("GET", "/ws")
        r = c.getresponse()
        r.read()
        self.assertEqual(r.status, 400)

    def test_many_clients_at_once(self):
        streams = []
        for _ in range(4):
            s = self.connect()
            s.sendall(b"GET /video.mjpg HTTP/1.1\r\nHost: cam\r\n\r\n")
            streams.append(s)
        results = []

        def fetch():
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            try:
                c.request("GET", "/snapshot.jpg")
                r = c.getresponse()
                results.append((r.status, len(r.read())))
            finally:
                c.close()

        threads = [threading.Thread(target=fetch) for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(15)
        self.assertEqual(len(results), 20)
        self.assertTrue(all(status == 200 and n > 1000 for status, n in results), results)
        for s in streams:  # every stream is still delivering frames
            _, _, rest = read_head(s)
            read_mjpeg_part(Reader(s, rest))


class ShutdownTest(unittest.TestCase):
    def test_sigterm_and_sigint_exit_cleanly_with_a_stream_open(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            proc, port = start_camera()
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                s.sendall(b"GET /video.mjpg HTTP/1.1\r\nHost: cam\r\n\r\n")
                read_head(s)
                start = time.monotonic()
                proc.send_signal(sig)
                self.assertEqual(proc.wait(5), 0)
                self.assertLess(time.monotonic() - start, 3)
                s.close()
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                proc.stdout.close()


class LineResult(unittest.TextTestResult):
    """One line per check, as the project's test drivers print."""

    def addSuccess(self, test):
        super().addSuccess(test)
        self.stream.writeln("ok   %s" % test.id())

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self.stream.writeln("FAIL %s" % test.id())

    def addError(self, test, err):
        super().addError(test, err)
        self.stream.writeln("FAIL %s (error)" % test.id())


def main():
    suite = unittest.defaultTestLoader.loadTestsFromModule(sys.modules[__name__])
    runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=0, resultclass=LineResult)
    result = runner.run(suite)
    failed = len(result.failures) + len(result.errors)
    print("%d passed, %d failed" % (result.testsRun - failed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
