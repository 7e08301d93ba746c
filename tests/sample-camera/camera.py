#!/usr/bin/env python3
"""A sample IP camera: the plain-HTTP web UI that camtls is put in front of.

Python 3 standard library only. It behaves like a cheap camera's web server:
  /                      HTML page: live MJPEG, snapshot, login, WebSocket echo
  /video.mjpg            MJPEG, multipart/x-mixed-replace, HTTP/1.0 status line,
                         no length: the body ends when the connection closes
                         (?frames=N stops after N frames)
  /snapshot.jpg          one JPEG frame with Content-Length
  /chunked               a chunked response, sent in pieces
  /login                 302 to an absolute http://HOST:PORT/ of its own address
  /cgi-bin/CGIProxy.fcgi Foscam-style commands answered with small XML
  /ws                    WebSocket echo (RFC 6455)

There is no image library, so frames come from a tiny baseline JPEG encoder:
every 8x8 block is one flat colour, which needs only DC coefficients.

    python3 camera.py --listen 127.0.0.1:8080
"""

import argparse
import base64
import hashlib
import html
import os
import signal
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

WIDTH, HEIGHT = 640, 480
BLOCKS_X, BLOCKS_Y = WIDTH // 8, HEIGHT // 8
DEFAULT_FPS = 5.0
USER, PASSWORD = "admin", "admin"
BOUNDARY = "camframe"
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
# Largest WebSocket message echoed; bigger ones close with 1009 (too big).
WS_MAX_MESSAGE = 64 * 1024
# Idle keep-alive and WebSocket connections are dropped after this, so that a
# forgotten client does not hold a thread forever.
IDLE_TIMEOUT = 120

# ---------------------------------------------------------------------------
# Baseline JPEG encoder for block-flat images (ITU T.81).
#
# A block whose 64 samples are equal has only a DC coefficient, F(0,0) =
# 8 * (sample - 128). With a DC quantiser of 8 the quantised DC is exactly
# sample - 128, so flat colours survive encoding unchanged (up to the
# RGB->YCbCr rounding). Every AC run is the single EOB symbol.

# Annex K.3: the standard luminance DC and AC Huffman tables (counts of codes of
# length 1..16, then the symbols in code order). One table pair serves all
# three components, which the format allows.
DC_COUNTS = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0]
DC_SYMBOLS = list(range(12))
AC_COUNTS = [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7D]
AC_SYMBOLS = [
    0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06,
    0x13, 0x51, 0x61, 0x07, 0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xA1, 0x08,
    0x23, 0x42, 0xB1, 0xC1, 0x15, 0x52, 0xD1, 0xF0, 0x24, 0x33, 0x62, 0x72,
    0x82, 0x09, 0x0A,
]
# The rest of the table is regular: symbols (run << 4 | size) in rows.
for _first, _last in ((0x16, 0x1A), (0x25, 0x2A), (0x34, 0x3A), (0x43, 0x4A),
                      (0x53, 0x5A), (0x63, 0x6A), (0x73, 0x7A), (0x83, 0x8A),
                      (0x92, 0x9A), (0xA2, 0xAA), (0xB2, 0xBA), (0xC2, 0xCA),
                      (0xD2, 0xDA), (0xE1, 0xEA), (0xF1, 0xFA)):
    AC_SYMBOLS.extend(range(_first, _last + 1))
assert len(AC_SYMBOLS) == sum(AC_COUNTS) == 162


def huffman_codes(counts, symbols):
    """Canonical codes (Annex C): symbol -> code as a string of '0'/'1'."""
    codes, code, k = {}, 0, 0
    for length, n in enumerate(counts, start=1):
        for _ in range(n):
            codes[symbols[k]] = format(code, "0%db" % length)
            code += 1
            k += 1
        code <<= 1
    return codes


DC_CODES = huffman_codes(DC_COUNTS, DC_SYMBOLS)
EOB = huffman_codes(AC_COUNTS, AC_SYMBOLS)[0x00]


def _dc_bits(diff):
    """The bits for one DC difference followed by EOB (F.1.2.1)."""
    size = abs(diff).bit_length()
    extra = diff if diff >= 0 else diff + (1 << size) - 1
    tail = format(extra, "0%db" % size) if size else ""
    return DC_CODES[size] + tail + EOB


DC_BITS = {d: _dc_bits(d) for d in range(-255, 256)}


def _segment(marker, payload):
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def _jpeg_headers(width, height):
    app0 = _segment(0xE0, b"JFIF\0" + struct.pack(">BBBHHBB", 1, 1, 0, 1, 1, 0, 0))
    # One quantisation table, all 8: only the DC entry is ever used.
    dqt = _segment(0xDB, b"\x00" + bytes([8] * 64))
    sof = _segment(0xC0, struct.pack(">BHHB", 8, height, width, 3)
                   + bytes([1, 0x11, 0, 2, 0x11, 0, 3, 0x11, 0]))
    dht = _segment(0xC4, bytes([0x00] + DC_COUNTS + DC_SYMBOLS)
                   + bytes([0x10] + AC_COUNTS + AC_SYMBOLS))
    sos = _segment(0xDA, bytes([3, 1, 0x00, 2, 0x00, 3, 0x00, 0, 63, 0]))
    return b"\xff\xd8" + app0 + dqt + sof + dht + sos


def rgb_to_ycbcr(rgb):
    """JFIF conversion, rounded and clamped to 0..255."""
    r, g, b = rgb
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = 128 - 0.168736 * r - 0.331264 * g + 0.5 * b
    cr = 128 + 0.5 * r - 0.418688 * g - 0.081312 * b
    return tuple(min(255, max(0, int(round(v)))) for v in (y, cb, cr))


def encode_blocks(blocks):
    """A baseline JPEG of a grid of flat 8x8 blocks.

    blocks: rows of (r, g, b) tuples, one tuple per 8x8 block. The image is
    8*len(row) pixels wide and 8*len(rows) high, colour 4:4:4.
    """
    height, width = 8 * len(blocks), 8 * len(blocks[0])
    ycc_cache = {}
    pred = [0, 0, 0]
    bits = []
    for row in blocks:
        for rgb in row:
            ycc = ycc_cache.get(rgb)
            if ycc is None:
                ycc = ycc_cache[rgb] = rgb_to_ycbcr(rgb)
            for c in range(3):
                dc = ycc[c] - 128
                bits.append(DC_BITS[dc - pred[c]])
                pred[c] = dc
    stream = "".join(bits)
    stream += "1" * (-len(stream) % 8)  # pad the last byte with 1 bits (F.1.2.3)
    data = int(stream, 2).to_bytes(len(stream) // 8, "big")
    # A 0xFF byte in entropy-coded data is followed by a stuffed zero.
    data = data.replace(b"\xff", b"\xff\x00")
    return _jpeg_headers(width, height) + data + b"\xff\xd9"


# ---------------------------------------------------------------------------
# Frames: a moving bar, the time of day, a frame counter and a blinking dot,
# drawn at block resolution, like a camera's on-screen display.

FONT = {  # 3x5 glyphs, one block per dot
    "0": ("111", "101", "101", "101", "111"),
    "1": ("010", "110", "010", "010", "111"),
    "2": ("111", "001", "111", "100", "111"),
    "3": ("111", "001", "111", "001", "111"),
    "4": ("101", "101", "111", "001", "001"),
    "5": ("111", "100", "111", "001", "111"),
    "6": ("111", "100", "111", "101", "111"),
    "7": ("111", "001", "001", "001", "001"),
    "8": ("111", "101", "111", "101", "111"),
    "9": ("111", "101", "111", "001", "111"),
    ":": ("000", "010", "000", "010", "000"),
    " ": ("000", "000", "000", "000", "000"),
}
WHITE, RED, AMBER = (240, 240, 240), (220, 30, 30), (255, 160, 20)


def draw_text(blocks, x, y, text, colour=WHITE):
    for ch in text:
        for dy, line in enumerate(FONT[ch]):
            for dx, dot in enumerate(line):
                if dot == "1":
                    blocks[y + dy][x + dx] = colour
        x += 4


def frame_blocks(n, clock):
    """The block grid of frame number n; clock is seconds since the epoch."""
    blocks = [[(20, 30 + y, 60 + 2 * y)] * BLOCKS_X for y in range(BLOCKS_Y)]
    blocks = [list(row) for row in blocks]
    bar = (n * 2) % BLOCKS_X
    for row in blocks[8:BLOCKS_Y - 8]:
        for x in range(bar, min(bar + 4, BLOCKS_X)):
            row[x] = AMBER
    draw_text(blocks, 2, 1, time.strftime("%H:%M:%S", time.localtime(clock)))
    draw_text(blocks, 2, BLOCKS_Y - 6, "%06d" % (n % 1000000))
    if n % 10 < 5:  # the "recording" dot blinks once every two seconds at 5 fps
        for y in range(1, 4):
            for x in range(BLOCKS_X - 4, BLOCKS_X - 1):
                blocks[y][x] = RED
    return blocks


class FrameSource:
    """Frames on a fixed clock, each encoded once however many viewers."""

    def __init__(self, fps):
        self.interval = 1.0 / fps
        self.start = time.monotonic()
        self.lock = threading.Lock()
        self.number, self.jpeg = -1, b""

    def current_number(self):
        return int((time.monotonic() - self.start) / self.interval)

    def frame(self, number=None):
        if number is None:
            number = self.current_number()
        with self.lock:
            if number != self.number:
                self.jpeg = encode_blocks(frame_blocks(number, time.time()))
                self.number = number
            return self.number, self.jpeg

    def wait_next(self, after, stop):
        """Sleeps until frame `after`+1 is due; False if asked to stop."""
        due = self.start + (after + 1) * self.interval
        return not stop.wait(max(0.0, due - time.monotonic()))


# ---------------------------------------------------------------------------
# HTTP

INDEX_HTML = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Sample camera</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; background: #f4f4f4; }}
img {{ border: 1px solid #888; max-width: 100%; }}
#log {{ background: #fff; border: 1px solid #ccc; height: 8em; overflow: auto;
       padding: .3em; font-family: monospace; white-space: pre-wrap; }}
</style></head>
<body>
<h1>Sample camera</h1>
<p>A plain-HTTP camera at {addr}. Behind camtls this page arrives over HTTPS.</p>
<img src="/video.mjpg" width="640" height="480" alt="live video">
<p><a href="/snapshot.jpg">Snapshot</a> |
<a href="/login">Log in</a> (redirects to this camera's own http:// address) |
<a href="/chunked">Chunked response</a> |
<a href="/cgi-bin/CGIProxy.fcgi?cmd=getDevInfo&amp;usr=admin&amp;pwd=admin">Device info (CGI)</a></p>
<h2>WebSocket echo</h2>
<form id="f"><input id="msg" value="hello camera" size="30">
<button>Send</button> <span id="state">connecting</span></form>
<div id="log"></div>
<script>
const log = t => {{ const d = document.getElementById('log');
  d.textContent += t + '\\n'; d.scrollTop = d.scrollHeight; }};
const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://')
  + location.host + '/ws');
ws.onopen = () => document.getElementById('state').textContent = 'open';
ws.onclose = () => document.getElementById('state').textContent = 'closed';
ws.onmessage = e => log('< ' + e.data);
document.getElementById('f').onsubmit = e => {{ e.preventDefault();
  const m = document.getElementById('msg').value; ws.send(m); log('> ' + m); }};
</script>
</body></html>
"""


def cgi_xml(result, fields=()):
    body = "<CGI_Result>\n<result>%d</result>\n" % result
    for name, value in fields:
        body += "<%s>%s</%s>\n" % (name, html.escape(str(value)), name)
    return (body + "</CGI_Result>\n").encode()


class CameraHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "SampleCam/1.0"
    sys_version = ""
    timeout = IDLE_TIMEOUT

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("camera: %s %s\n" % (self.address_string(), fmt % args))

    # -- helpers
    def own_origin(self):
        host, port = self.server.server_address[:2]
        if ":" in host:
            host = "[%s]" % host
        return "http://%s:%d" % (host, port)

    def discard_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        while length > 0:
            chunk = self.rfile.read(min(length, 65536))
            if not chunk:
                break
            length -= len(chunk)

    def reply(self, status, ctype, body, headers=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    # -- dispatch
    def do_GET(self):
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        route = {
            "/": self.page_index,
            "/index.html": self.page_index,
            "/video.mjpg": self.page_mjpeg,
            "/snapshot.jpg": self.page_snapshot,
            "/chunked": self.page_chunked,
            "/login": self.page_login,
            "/cgi-bin/CGIProxy.fcgi": self.page_cgi,
            "/ws": self.page_websocket,
        }.get(url.path, self.page_missing)
        try:
            route(query)
        except (BrokenPipeError, ConnectionResetError, TimeoutError, socket.timeout):
            self.close_connection = True

    do_HEAD = do_GET

    def do_POST(self):
        self.discard_body()
        self.do_GET()

    def page_index(self, _query):
        body = INDEX_HTML.format(addr=html.escape(self.own_origin())).encode()
        self.reply(200, "text/html; charset=utf-8", body)

    def page_missing(self, _query):
        self.reply(404, "text/html; charset=utf-8", b"<h1>404 Not Found</h1>\n")

    def page_snapshot(self, _query):
        _, jpeg = self.server.frames.frame()
        self.reply(200, "image/jpeg", jpeg, [("Cache-Control", "no-store")])

    def page_mjpeg(self, query):
        # As many cameras do: an HTTP/1.0 status line, no length, no chunking;
        # the stream ends when the connection closes.
        self.close_connection = True
        limit = int(query.get("frames", ["0"])[0] or 0)
        self.wfile.write(
            ("HTTP/1.0 200 OK\r\nServer: %s\r\nConnection: close\r\n"
             "Cache-Control: no-cache\r\nPragma: no-cache\r\n"
             "Content-Type: multipart/x-mixed-replace; boundary=%s\r\n\r\n"
             % (self.server_version, BOUNDARY)).encode())
        if self.command == "HEAD":
            return
        frames, stop = self.server.frames, self.server.stopping
        sent = 0
        number, jpeg = frames.frame()
        while True:
            part = ("--%s\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n"
                    % (BOUNDARY, len(jpeg))).encode()
            self.wfile.write(part + jpeg + b"\r\n")
            sent += 1
            if (limit and sent >= limit) or not frames.wait_next(number, stop):
                break
            number, jpeg = frames.frame(max(number + 1, frames.current_number()))

    def page_chunked(self, _query):
        lines = [("line %d of 10 from the camera\n" % i).encode() for i in range(1, 11)]
        if self.request_version == "HTTP/1.0":
            # HTTP/1.0 has no chunked coding: end the body by closing instead.
            self.close_connection = True
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(b"".join(lines))
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if self.command == "HEAD":
            return
        for line in lines:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
            time.sleep(0.02)  # sent in pieces, so a proxy has to stream them
        self.wfile.write(b"0\r\n\r\n")

    def page_login(self, _query):
        # Cameras redirect to their own absolute address after a login, which
        # breaks behind an HTTPS proxy unless the proxy rewrites Location.
        self.reply(302, "text/html; charset=utf-8", b"<a href=\"/\">logged in</a>\n", [
            ("Location", self.own_origin() + "/"),
            ("Set-Cookie", "session=%s; Path=/; HttpOnly" % os.urandom(8).hex()),
        ])

    def page_cgi(self, query):
        def arg(name):
            return query.get(name, [""])[0]

        cmd = arg("cmd")
        if not cmd:
            body = cgi_xml(-1)
        elif (arg("usr"), arg("pwd")) != (USER, PASSWORD):
            body = cgi_xml(-2)
        elif cmd == "snapPicture2":
            self.page_snapshot(query)
            return
        elif cmd == "getDevInfo":
            body = cgi_xml(0, [("productName", "SampleCam"), ("serialNo", "SC0000000001"),
                               ("devName", "Sample camera"), ("firmwareVer", "1.0.0")])
        elif cmd == "getDevState":
            body = cgi_xml(0, [("motionDetectAlarm", 1), ("record", 0), ("sdState", 0),
                               ("frame", self.server.frames.current_number())])
        else:
            body = cgi_xml(-1)
        self.reply(200, "text/xml; charset=utf-8", body)

    # -- WebSocket (RFC 6455)
    def page_websocket(self, _query):
        key = self.headers.get("Sec-WebSocket-Key", "")
        if ("websocket" not in self.headers.get("Upgrade", "").lower()
                or "upgrade" not in self.headers.get("Connection", "").lower() or not key):
            self.reply(400, "text/plain", b"WebSocket upgrade expected\n")
            return
        if self.headers.get("Sec-WebSocket-Version") != "13":
            self.reply(426, "text/plain", b"WebSocket version 13 only\n",
                       [("Sec-WebSocket-Version", "13")])
            return
        self.close_connection = True
        self.send_response(101, "Switching Protocols")
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", websocket_accept(key))
        self.end_headers()
        message, message_op = b"", 0
        while not self.server.stopping.is_set():
            frame = read_ws_frame(self.rfile)
            if frame is None:
                return
            fin, opcode, payload = frame
            if opcode == 0x8:  # close: answer with the same code, then end
                self.wfile.write(ws_frame(0x8, payload[:2]))
                return
            if opcode == 0x9:
                self.wfile.write(ws_frame(0xA, payload))
                continue
            if opcode == 0xA:
                continue
            if opcode in (0x1, 0x2):
                message, message_op = payload, opcode
            elif opcode == 0x0:
                message += payload
            else:
                self.wfile.write(ws_frame(0x8, struct.pack(">H", 1002)))
                return
            if len(message) > WS_MAX_MESSAGE:
                self.wfile.write(ws_frame(0x8, struct.pack(">H", 1009)))
                return
            if fin:
                self.wfile.write(ws_frame(message_op, message))
                message = b""


def websocket_accept(key):
    digest = hashlib.sha1((key.strip() + WS_GUID).encode()).digest()
    return base64.b64encode(digest).decode()


def ws_frame(opcode, payload, mask=None):
    """One final frame; servers send unmasked frames, clients masked ones."""
    n = len(payload)
    mask_bit = 0x80 if mask else 0
    if n < 126:
        head = struct.pack(">BB", 0x80 | opcode, mask_bit | n)
    elif n < 65536:
        head = struct.pack(">BBH", 0x80 | opcode, mask_bit | 126, n)
    else:
        head = struct.pack(">BBQ", 0x80 | opcode, mask_bit | 127, n)
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        return head + mask + payload
    return head + payload


def _read_exact(stream, n):
    data = stream.read(n)
    return data if data is not None and len(data) == n else None


def read_ws_frame(stream):
    """(fin, opcode, unmasked payload), or None at end of stream."""
    head = _read_exact(stream, 2)
    if head is None:
        return None
    fin, opcode = head[0] & 0x80, head[0] & 0x0F
    masked, n = head[1] & 0x80, head[1] & 0x7F
    if n == 126:
        ext = _read_exact(stream, 2)
        n = struct.unpack(">H", ext)[0] if ext else None
    elif n == 127:
        ext = _read_exact(stream, 8)
        n = struct.unpack(">Q", ext)[0] if ext else None
    if n is None or n > WS_MAX_MESSAGE:
        return None
    mask = _read_exact(stream, 4) if masked else b""
    payload = _read_exact(stream, n) if n else b""
    if mask is None or payload is None:
        return None
    if masked:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bool(fin), opcode, payload


class CameraServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address, fps, verbose):
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, CameraHandler)
        self.frames = FrameSource(fps)
        self.stopping = threading.Event()
        self.verbose = verbose

    def handle_error(self, request, client_address):
        # A viewer that goes away mid-stream is normal for a camera.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError, socket.timeout)):
            return
        super().handle_error(request, client_address)


def parse_listen(text):
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError("expected HOST:PORT, got %r" % text)
    return host.strip("[]") or "127.0.0.1", int(port)


def main(argv=None):
    parser = argparse.ArgumentParser(description="A sample plain-HTTP IP camera.")
    parser.add_argument("--listen", type=parse_listen, default=("127.0.0.1", 8080),
                        help="HOST:PORT to serve on (default 127.0.0.1:8080; port 0 picks one)")
    parser.add_argument("--fps", type=float, default=DEFAULT_FPS,
                        help="MJPEG frames per second (default %(default)s)")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)

    server = CameraServer(args.listen, args.fps, args.verbose)
    done = threading.Event()

    def stop(_signum, _frame):
        done.set()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2})
    thread.start()
    host, port = server.server_address[:2]
    print("sample camera listening on http://%s:%d/"
          % ("[%s]" % host if ":" in host else host, port), flush=True)
    while not done.wait(0.5):
        pass
    server.stopping.set()  # ends MJPEG streams and WebSocket loops
    server.shutdown()
    thread.join()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
