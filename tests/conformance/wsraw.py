"""Raw RFC 6455 / RFC 7692 client for the conformance suite.

Every byte on the wire is built here, so a test can send any frame, valid or not, split it
at any point and time its writes. What the server sends is parsed strictly: a server frame
that breaks RFC 6455 (masked, reserved bits or opcodes, oversized or fragmented control
frame, non-minimal length, invalid UTF-8 in a text message) fails the test.

Every blocking call has a deadline (TIMEOUT seconds unless given), so no test can hang.
"""

import base64
import hashlib
import os
import random
import socket
import struct
import threading
import time
import zlib

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA
DATA_OPCODES = (OP_TEXT, OP_BINARY)
CONTROL_OPCODES = (OP_CLOSE, OP_PING, OP_PONG)
OP_NAMES = {OP_CONT: "cont", OP_TEXT: "text", OP_BINARY: "binary", OP_CLOSE: "close",
            OP_PING: "ping", OP_PONG: "pong"}

# Reserved bits as they sit in the first header byte.
RSV1 = 0x40
RSV2 = 0x20
RSV3 = 0x10

TIMEOUT = float(os.environ.get("WSD_CONF_TIMEOUT", "5"))
MAX_MESSAGE = 16 * 1024 * 1024
DEFLATE_TAIL = b"\x00\x00\xff\xff"
# Largest message the client accepts from the server after inflating.
CLIENT_INFLATE_LIMIT = 64 * 1024 * 1024

PMD_PARAMS = ("server_no_context_takeover", "client_no_context_takeover",
              "server_max_window_bits", "client_max_window_bits")


class PeerClosed(Exception):
    """The server closed the TCP connection (EOF or reset) while the client waited."""


class RecvTimeout(AssertionError):
    """Nothing (or not enough) arrived from the server before the deadline."""


# ---------------------------------------------------------------------------------------------
# Frame building


def apply_mask(data, key):
    """XOR data with the 4-byte masking key (RFC 6455 5.3)."""
    n = len(data)
    if n == 0:
        return b""
    stream = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(stream, "little")).to_bytes(
        n, "little")


def to_bytes(payload):
    return payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)


def frame(opcode, payload=b"", fin=True, rsv=0, mask=True, key=None, length=None):
    """One frame as bytes. length overrides the declared payload length (the payload given
    is still what is appended), so a test can announce more than it sends."""
    payload = to_bytes(payload)
    b0 = (0x80 if fin else 0) | rsv | opcode
    n = len(payload) if length is None else length
    mbit = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", b0, mbit | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, n)
    if not mask:
        return head + payload
    key = os.urandom(4) if key is None else key
    return head + key + apply_mask(payload, key)


def close_payload(code=None, reason=b""):
    """Close frame body: empty when code is None, else the 2-byte code and the reason."""
    if code is None:
        return b""
    return struct.pack("!H", code) + to_bytes(reason)


def fragments(opcode, payload, size, rsv=0):
    """A message split into frames of at most size payload bytes (at least one frame)."""
    payload = to_bytes(payload)
    pieces = [payload[i:i + size] for i in range(0, len(payload), size)] or [b""]
    out = []
    for i, piece in enumerate(pieces):
        out.append(frame(opcode if i == 0 else OP_CONT, piece, fin=i == len(pieces) - 1,
                         rsv=rsv if i == 0 else 0))
    return b"".join(out)


def utf8_text(n, seed=0):
    """Exactly n bytes of valid UTF-8 mixing 1- to 4-byte characters."""
    unit = "wsd µ-ß €∑ 𝄞😀 κόσμε %d|" % seed
    raw = (unit * (n // len(unit.encode("utf-8")) + 2)).encode("utf-8")
    cut = raw[:n]
    while True:
        try:
            cut.decode("utf-8")
            break
        except UnicodeDecodeError:
            cut = cut[:-1]
    return cut + b"x" * (n - len(cut))


def random_bytes(n, seed=0):
    """n pseudo-random bytes, the same for the same seed (failures are reproducible)."""
    return random.Random(seed).randbytes(n)


def describe(data, limit=48):
    data = bytes(data)
    if len(data) <= limit:
        return "%d bytes %r" % (len(data), data)
    return "%d bytes %r..." % (len(data), data[:limit])


def first_difference(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


# ---------------------------------------------------------------------------------------------
# HTTP


def handshake_key():
    return base64.b64encode(os.urandom(16)).decode("ascii")


def accept_for(key):
    return base64.b64encode(hashlib.sha1(key.encode("ascii") + GUID).digest()).decode("ascii")


def handshake_request(host, path="/echo", key=None, version="13", extensions=None,
                      extra=(), omit=(), method="GET"):
    """The opening handshake as bytes. extensions: one header value (str) or a list of
    values sent as separate header lines. omit: header names (lower case) to leave out."""
    key = handshake_key() if key is None else key
    headers = [("Host", host), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
               ("Sec-WebSocket-Key", key), ("Sec-WebSocket-Version", version)]
    if isinstance(extensions, str):
        headers.append(("Sec-WebSocket-Extensions", extensions))
    elif extensions:
        headers.extend(("Sec-WebSocket-Extensions", value) for value in extensions)
    headers = [(k, v) for k, v in headers if k.lower() not in omit and v is not None]
    headers.extend(extra)
    lines = ["%s %s HTTP/1.1" % (method, path)] + ["%s: %s" % kv for kv in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class HttpResponse:
    def __init__(self, status, reason, headers, body=b""):
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (name, value) as received
        self.body = body

    def get_all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def get(self, name):
        values = self.get_all(name)
        return ", ".join(values) if values else None

    def __repr__(self):
        return "HttpResponse(%d %s, %r, body=%s)" % (self.status, self.reason, self.headers,
                                                     describe(self.body))


def _deadline_recv(sock, deadline, what):
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise AssertionError("timed out waiting for %s" % what)
    sock.settimeout(remaining)
    try:
        return sock.recv(1 << 20)
    except socket.timeout:
        raise AssertionError("timed out waiting for %s" % what) from None
    except ConnectionResetError:
        return b""


def read_http_head(sock, buf, deadline):
    """Read up to the end of a response head. Returns (HttpResponse without body, rest)."""
    while b"\r\n\r\n" not in buf:
        if len(buf) > 65536:
            raise AssertionError("response head over 64 KiB")
        chunk = _deadline_recv(sock, deadline, "the HTTP response head")
        if not chunk:
            raise AssertionError("server closed the connection before a complete response "
                                 "head (got %s)" % describe(buf))
        buf += chunk
    head, rest = bytes(buf).split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise AssertionError("bad status line %r" % lines[0])
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise AssertionError("bad header line %r" % line)
        headers.append((name, value.strip()))
    return HttpResponse(int(parts[1]), parts[2] if len(parts) > 2 else "", headers), rest


def _read_chunked(sock, buf, deadline):
    body = b""
    while True:
        while b"\r\n" not in buf:
            chunk = _deadline_recv(sock, deadline, "a chunk size line")
            if not chunk:
                raise AssertionError("EOF inside a chunked body")
            buf += chunk
        line, buf = buf.split(b"\r\n", 1)
        size = int(line.split(b";")[0], 16)
        while len(buf) < size + 2:
            chunk = _deadline_recv(sock, deadline, "chunk data")
            if not chunk:
                raise AssertionError("EOF inside a chunked body")
            buf += chunk
        if size == 0:
            return body
        body += buf[:size]
        buf = buf[size + 2:]


def read_http_response(sock, timeout=TIMEOUT):
    """Read a complete non-101 response: head and body (Content-Length, chunked or EOF)."""
    deadline = time.monotonic() + timeout
    resp, rest = read_http_head(sock, b"", deadline)
    length = resp.get("Content-Length")
    if "chunked" in (resp.get("Transfer-Encoding") or "").lower():
        resp.body = _read_chunked(sock, rest, deadline)
    elif length is not None:
        n = int(length)
        while len(rest) < n:
            chunk = _deadline_recv(sock, deadline, "the response body")
            if not chunk:
                raise AssertionError("EOF after %d of %d body bytes" % (len(rest), n))
            rest += chunk
        resp.body = rest[:n]
    else:
        while True:
            chunk = _deadline_recv(sock, deadline, "the end of a body without length")
            if not chunk:
                break
            rest += chunk
        resp.body = rest
    return resp


def http_exchange(addr, request, timeout=TIMEOUT):
    """Send raw request bytes on a new connection and return the parsed response."""
    with socket.create_connection(addr, timeout=timeout) as sock:
        sock.sendall(request)
        return read_http_response(sock, timeout)


# ---------------------------------------------------------------------------------------------
# permessage-deflate (RFC 7692)


def offer_string(offer):
    """Sec-WebSocket-Extensions value for one permessage-deflate offer (a dict)."""
    parts = ["permessage-deflate"]
    if offer.get("server_no_context_takeover"):
        parts.append("server_no_context_takeover")
    if offer.get("client_no_context_takeover"):
        parts.append("client_no_context_takeover")
    if offer.get("server_max_window_bits") is not None:
        parts.append("server_max_window_bits=%d" % offer["server_max_window_bits"])
    cmwb = offer.get("client_max_window_bits")
    if cmwb is True:
        parts.append("client_max_window_bits")
    elif cmwb is not None:
        parts.append("client_max_window_bits=%d" % cmwb)
    return "; ".join(parts)


def _split_unquoted(text, sep):
    out, cur, quoted, escaped = [], "", False, False
    for ch in text:
        if escaped:
            cur += ch
            escaped = False
        elif ch == "\\" and quoted:
            cur += ch
            escaped = True
        elif ch == '"':
            cur += ch
            quoted = not quoted
        elif ch == sep and not quoted:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    if quoted:
        raise AssertionError("unterminated quoted string in %r" % text)
    out.append(cur)
    return out


TCHARS = set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _token(text, what):
    if not text or any(ch not in TCHARS for ch in text):
        raise AssertionError("%s %r is not an HTTP token" % (what, text))
    return text


def parse_extensions(values):
    """Parse Sec-WebSocket-Extensions header values into [(name, [(param, value|None)])]."""
    result = []
    for value in values:
        for item in _split_unquoted(value, ","):
            if not item.strip():
                continue
            pieces = [p.strip() for p in _split_unquoted(item, ";")]
            name = _token(pieces[0], "extension name")
            params = []
            for piece in pieces[1:]:
                key, sep, val = piece.partition("=")
                key = _token(key.strip(), "extension parameter")
                if not sep:
                    params.append((key, None))
                    continue
                val = val.strip()
                if val.startswith('"'):
                    if len(val) < 2 or not val.endswith('"'):
                        raise AssertionError("bad quoted value %r" % val)
                    val = val[1:-1].replace("\\", "")
                params.append((key, _token(val, "parameter value")))
            result.append((name, params))
    return result


def _window_bits(name, value):
    if value is None:
        raise AssertionError("%s in a response must carry a value" % name)
    if not value.isdigit() or value != str(int(value)) or not 8 <= int(value) <= 15:
        raise AssertionError("%s=%s is not a window size in 8..15" % (name, value))
    return int(value)


def _answers_offer(answer, offer):
    """Why answer (parsed response params) is not a valid acceptance of offer, or None."""
    if offer.get("server_no_context_takeover") and not answer["server_no_context_takeover"]:
        return "offer had server_no_context_takeover, the response must repeat it"
    if offer.get("server_max_window_bits") is not None:
        if answer["server_max_window_bits"] is None:
            return "offer had server_max_window_bits, the response must carry it"
        if answer["server_max_window_bits"] > offer["server_max_window_bits"]:
            return "server_max_window_bits above the offered value"
    cmwb = answer["client_max_window_bits"]
    if cmwb is not None:
        offered = offer.get("client_max_window_bits")
        if offered is None:
            return "client_max_window_bits answered but not offered"
        if offered is not True and cmwb > offered:
            return "client_max_window_bits above the offered value"
    return None


def negotiate_deflate(offers, header_values):
    """Check the server's Sec-WebSocket-Extensions answer against the offers (RFC 7692 7.1).

    Returns (Deflate, index of the offer accepted) or (None, None) when the server declined.
    Raises AssertionError when the answer is not a valid acceptance of any offer."""
    exts = parse_extensions(header_values)
    if not exts:
        return None, None
    if len(exts) != 1:
        raise AssertionError("server accepted %d extensions: %r" % (len(exts), header_values))
    name, params = exts[0]
    if name != "permessage-deflate":
        raise AssertionError("server answered extension %r that was not offered" % name)
    answer = dict.fromkeys(PMD_PARAMS)
    answer["server_no_context_takeover"] = False
    answer["client_no_context_takeover"] = False
    seen = set()
    for key, value in params:
        if key not in PMD_PARAMS:
            raise AssertionError("unknown permessage-deflate parameter %r" % key)
        if key in seen:
            raise AssertionError("parameter %r repeated in the response" % key)
        seen.add(key)
        if key.endswith("context_takeover"):
            if value is not None:
                raise AssertionError("%s must not carry a value" % key)
            answer[key] = True
        else:
            answer[key] = _window_bits(key, value)
    reasons = []
    for i, offer in enumerate(offers):
        why = _answers_offer(answer, offer)
        if why is None:
            return Deflate(answer), i
        reasons.append("offer %d (%s): %s" % (i, offer_string(offer), why))
    raise AssertionError("response %r accepts no offer: %s" % (header_values, "; ".join(reasons)))


class Deflate:
    """Client side of an agreed permessage-deflate: compresses what the client sends with the
    agreed client window and context mode; inflates the server's messages with the agreed
    server window, in a fresh context per message when server_no_context_takeover was agreed
    (so a server that keeps its context anyway fails to inflate)."""

    def __init__(self, answer):
        self.server_no_context_takeover = answer["server_no_context_takeover"]
        self.client_no_context_takeover = answer["client_no_context_takeover"]
        self.server_bits = answer["server_max_window_bits"] or 15
        self.client_bits = answer["client_max_window_bits"] or 15
        self._enc = None
        self._dec = None

    def __repr__(self):
        return ("Deflate(server_nct=%s, client_nct=%s, server_bits=%d, client_bits=%d)"
                % (self.server_no_context_takeover, self.client_no_context_takeover,
                   self.server_bits, self.client_bits))

    def _encoder(self):
        if self._enc is None or self.client_no_context_takeover:
            if self.client_bits == 8:
                # zlib cannot deflate with a 256-byte window; Huffman-only output has no
                # back-references at all and so fits any window.
                self._enc = zlib.compressobj(6, zlib.DEFLATED, -9, 8, zlib.Z_HUFFMAN_ONLY)
            else:
                self._enc = zlib.compressobj(6, zlib.DEFLATED, -self.client_bits)
        return self._enc

    def compress(self, data):
        enc = self._encoder()
        out = enc.compress(to_bytes(data)) + enc.flush(zlib.Z_SYNC_FLUSH)
        assert out.endswith(DEFLATE_TAIL)
        return out[:-4]

    def decompress(self, data, limit=CLIENT_INFLATE_LIMIT):
        if self._dec is None or self.server_no_context_takeover:
            self._dec = zlib.decompressobj(-self.server_bits)
        try:
            out = self._dec.decompress(data + DEFLATE_TAIL, limit)
        except zlib.error as exc:
            raise AssertionError("cannot inflate the server's message with %r: %s"
                                 % (self, exc)) from None
        if self._dec.unconsumed_tail:
            raise AssertionError("server message inflates to more than %d bytes" % limit)
        if self._dec.eof:
            # The message ended with a BFINAL block (RFC 7692 7.2.3.3): the next message
            # starts a new stream.
            self._dec = None
        return out


def compress_raw(data, bits=15):
    """One-shot RFC 7692 compression (sync flush, tail removed) with a fresh context."""
    enc = zlib.compressobj(6, zlib.DEFLATED, -bits)
    out = enc.compress(to_bytes(data)) + enc.flush(zlib.Z_SYNC_FLUSH)
    return out[:-4]


# ---------------------------------------------------------------------------------------------
# Client


class Frame:
    __slots__ = ("fin", "rsv", "opcode", "payload")

    def __init__(self, fin, rsv, opcode, payload):
        self.fin, self.rsv, self.opcode, self.payload = fin, rsv, opcode, payload

    def __repr__(self):
        return "Frame(%s fin=%d rsv=%#x %s)" % (OP_NAMES.get(self.opcode, hex(self.opcode)),
                                               self.fin, self.rsv, describe(self.payload))


class Message:
    """A complete data message, or a pong or close frame, as received."""
    __slots__ = ("opcode", "payload", "frames", "compressed")

    def __init__(self, opcode, payload, frames=1, compressed=False):
        self.opcode, self.payload = opcode, payload
        self.frames, self.compressed = frames, compressed

    def close_code(self):
        return parse_close(self.payload)[0]

    def __repr__(self):
        if self.opcode == OP_CLOSE:
            try:
                code, reason = parse_close(self.payload)
                return "close frame (code %s, reason %r)" % (code, reason)
            except AssertionError:
                return "close frame %s" % describe(self.payload)
        return "%s %s (%d frames%s)" % (OP_NAMES.get(self.opcode, hex(self.opcode)),
                                        describe(self.payload), self.frames,
                                        ", compressed" if self.compressed else "")


def parse_close(payload):
    """(code or None, reason str) of a close frame the server sent; checks RFC 6455 5.5.1."""
    if len(payload) == 0:
        return None, ""
    if len(payload) == 1:
        raise AssertionError("server sent a 1-byte close payload")
    code = struct.unpack("!H", payload[:2])[0]
    try:
        reason = payload[2:].decode("utf-8")
    except UnicodeDecodeError:
        raise AssertionError("server close reason is not UTF-8: %r" % payload[2:]) from None
    return code, reason


class WsClient:
    """A raw WebSocket client connection (masking all its frames)."""

    def __init__(self, sock, timeout=TIMEOUT):
        self.sock = sock
        self.timeout = timeout
        self.buf = bytearray()
        self.deflate = None
        self.response = None
        self.accepted_offer = None
        self.server_pings = 0
        self._frag = None  # (opcode, [payloads], compressed) of a message being received
        self._senders = []

    # -- connection setup

    @classmethod
    def connect(cls, addr, path="/echo", extensions=None, offers=None, timeout=TIMEOUT,
                pipelined=b"", extra=(), offer_lines=False):
        """Connect and complete the opening handshake, asserting a correct 101 response.

        offers: permessage-deflate offers (dicts), sent in one header (or one header line
        each with offer_lines); the answer is validated by negotiate_deflate. extensions: a
        raw Sec-WebSocket-Extensions value (or list of lines) instead, its answer left to the
        caller. pipelined: bytes sent in the same write as the request head."""
        sock = socket.create_connection(addr, timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        ws = cls(sock, timeout)
        try:
            ws._handshake(addr, path, extensions, offers, pipelined, extra, offer_lines)
        except BaseException:
            sock.close()
            raise
        return ws

    def _handshake(self, addr, path, extensions, offers, pipelined, extra, offer_lines):
        key = handshake_key()
        if offers is not None:
            extensions = [offer_string(o) for o in offers]
            if not offer_lines:
                extensions = ", ".join(extensions)
        host = "%s:%d" % addr
        self.sock.sendall(handshake_request(host, path, key, extensions=extensions,
                                            extra=extra) + pipelined)
        deadline = time.monotonic() + self.timeout
        resp, rest = read_http_head(self.sock, b"", deadline)
        self.response = resp
        if resp.status != 101:
            raise AssertionError("handshake answered %d %s (expected 101)"
                                 % (resp.status, resp.reason))
        if resp.get("Sec-WebSocket-Accept") != accept_for(key):
            raise AssertionError("Sec-WebSocket-Accept %r, expected %r"
                                 % (resp.get("Sec-WebSocket-Accept"), accept_for(key)))
        if (resp.get("Upgrade") or "").lower() != "websocket":
            raise AssertionError("Upgrade header %r" % resp.get("Upgrade"))
        conn = [t.strip().lower() for t in (resp.get("Connection") or "").split(",")]
        if "upgrade" not in conn:
            raise AssertionError("Connection header %r" % resp.get("Connection"))
        ext_values = resp.get_all("Sec-WebSocket-Extensions")
        if offers is not None:
            self.deflate, self.accepted_offer = negotiate_deflate(offers, ext_values)
        elif extensions is None and ext_values:
            raise AssertionError("extension answered without an offer: %r" % ext_values)
        self.buf += rest

    # -- sending

    def send(self, data):
        self.sock.settimeout(self.timeout)
        self.sock.sendall(data)

    def send_frame(self, opcode, payload=b"", fin=True, rsv=0, length=None):
        self.send(frame(opcode, payload, fin=fin, rsv=rsv, length=length))

    def send_chopped(self, data, size=1, delay=0.0):
        """Write data in chunks of size bytes, sleeping delay seconds between writes."""
        for i in range(0, len(data), size):
            self.send(data[i:i + size])
            if delay:
                time.sleep(delay)

    def build_message(self, opcode, payload, compress=None, frag=None):
        """Frames of one message; compressed (RSV1 on the first frame) when compress is true or
        when it is None and deflate was agreed; fragmented in frag-byte pieces if given."""
        data = to_bytes(payload)
        if compress is None:
            compress = self.deflate is not None
        rsv = 0
        if compress:
            data = self.deflate.compress(data)
            rsv = RSV1
        if frag is None:
            return frame(opcode, data, rsv=rsv)
        return fragments(opcode, data, frag, rsv=rsv)

    def send_message(self, opcode, payload, compress=None, frag=None):
        self.send(self.build_message(opcode, payload, compress, frag))

    def send_close(self, code=None, reason=b""):
        self.send_frame(OP_CLOSE, close_payload(code, reason))

    def send_background(self, data):
        """Write data from a thread on a dup of the socket (with its own timeout) while the
        caller reads: a large echo cannot then dead-lock both sides on full buffers. Write
        errors are kept, not raised: the server may legitimately close first."""
        dup = self.sock.dup()
        dup.settimeout(max(self.timeout, 10.0))
        state = {"error": None}

        def run():
            try:
                dup.sendall(data)
            except OSError as exc:
                state["error"] = exc

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        self._senders.append((thread, dup, state))
        return state

    def join_senders(self, timeout=None):
        """Wait for background writes; assert they finished and return their errors."""
        errors = []
        for thread, dup, state in self._senders:
            thread.join(self.timeout * 3 if timeout is None else timeout)
            alive = thread.is_alive()
            if alive:
                dup.close()
                thread.join(1)
            dup.close()
            if alive:
                raise AssertionError("background write did not finish (server not reading?)")
            errors.append(state["error"])
        self._senders = []
        return errors

    # -- receiving

    def _fill(self, deadline, what):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RecvTimeout("timed out waiting for %s" % what)
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(1 << 20)
        except socket.timeout:
            raise RecvTimeout("timed out waiting for %s" % what) from None
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            raise PeerClosed("server closed the TCP connection while the client waited for "
                             "%s" % what)
        self.buf += chunk

    def _need(self, n, deadline, what):
        while len(self.buf) < n:
            self._fill(deadline, what)

    def recv_frame(self, timeout=None, what="a frame"):
        """Next frame from the server, checked against the server-side rules of RFC 6455."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        self._need(2, deadline, what)
        b0, b1 = self.buf[0], self.buf[1]
        fin, rsv, opcode = bool(b0 & 0x80), b0 & 0x70, b0 & 0x0F
        if b1 & 0x80:
            raise AssertionError("server sent a masked frame (RFC 6455 5.1)")
        n, pos = b1 & 0x7F, 2
        if n == 126:
            self._need(4, deadline, what)
            n, pos = struct.unpack("!H", self.buf[2:4])[0], 4
            if n < 126:
                raise AssertionError("server used a 16-bit length for %d bytes" % n)
        elif n == 127:
            self._need(10, deadline, what)
            n, pos = struct.unpack("!Q", self.buf[2:10])[0], 10
            if n >> 63:
                raise AssertionError("server set the MSB of a 64-bit length")
            if n < 65536:
                raise AssertionError("server used a 64-bit length for %d bytes" % n)
        if opcode not in DATA_OPCODES + CONTROL_OPCODES + (OP_CONT,):
            raise AssertionError("server sent reserved opcode %#x" % opcode)
        if opcode in CONTROL_OPCODES and (not fin or n > 125):
            raise AssertionError("server sent a fragmented or long control frame")
        if n > CLIENT_INFLATE_LIMIT:
            raise AssertionError("server frame of %d bytes" % n)
        self._need(pos + n, deadline, what)
        payload = bytes(self.buf[pos:pos + n])
        del self.buf[:pos + n]
        return Frame(fin, rsv, opcode, payload)

    def recv_message(self, timeout=None, what="a message"):
        """Next complete data message (fragments reassembled, inflated if compressed), or the
        next pong or close frame. Pings from the server are answered and skipped."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            f = self.recv_frame(max(deadline - time.monotonic(), 0.001), what)
            if f.opcode == OP_PING:
                if f.rsv:
                    raise AssertionError("server ping with reserved bits %#x" % f.rsv)
                self.server_pings += 1
                self.send_frame(OP_PONG, f.payload)
                continue
            if f.opcode in CONTROL_OPCODES:
                if f.rsv:
                    raise AssertionError("server control frame with reserved bits %#x" % f.rsv)
                return Message(f.opcode, f.payload)
            msg = self._data_frame(f)
            if msg is not None:
                return msg

    def _data_frame(self, f):
        if f.rsv & (RSV2 | RSV3):
            raise AssertionError("server frame with RSV2/RSV3 set: %r" % f)
        if self._frag is None:
            if f.opcode == OP_CONT:
                raise AssertionError("server sent a continuation frame with no message open")
            compressed = bool(f.rsv & RSV1)
            if compressed and self.deflate is None:
                raise AssertionError("server set RSV1 without permessage-deflate agreed")
            self._frag = (f.opcode, [f.payload], compressed)
        else:
            if f.opcode != OP_CONT:
                raise AssertionError("server started a new message inside a fragmented one")
            if f.rsv:
                raise AssertionError("server set RSV1 on a continuation frame")
            self._frag[1].append(f.payload)
        if not f.fin:
            return None
        opcode, parts, compressed = self._frag
        self._frag = None
        payload = b"".join(parts)
        if compressed:
            payload = self.deflate.decompress(payload)
        if opcode == OP_TEXT:
            try:
                payload.decode("utf-8")
            except UnicodeDecodeError:
                raise AssertionError("server sent a text message that is not UTF-8") from None
        return Message(opcode, payload, len(parts), compressed)

    # -- expectations

    def expect_message(self, opcode, payload, timeout=None):
        """Assert the next message is exactly (opcode, payload). Returns the Message."""
        payload = to_bytes(payload)
        kind = OP_NAMES.get(opcode, hex(opcode))
        try:
            msg = self.recv_message(timeout, "the %s echo of %s" % (kind, describe(payload)))
        except PeerClosed as exc:
            raise AssertionError(str(exc)) from None
        if msg.opcode != opcode:
            raise AssertionError("expected %s %s, got %r" % (kind, describe(payload), msg))
        if msg.payload != payload:
            raise AssertionError("expected %s %s, got %r (first difference at byte %d)" % (
                kind, describe(payload), msg, first_difference(msg.payload, payload)))
        return msg

    def expect_sequence(self, expected, timeout=None):
        """Assert the next len(expected) messages are the expected (opcode, payload) pairs,
        data messages in their order and pongs in theirs; RFC 6455 does not order a pong
        against the echo of a message that came before its ping, so that interleaving is
        free. Returns the messages as received."""
        expected = [(op, to_bytes(p)) for op, p in expected]
        got = []
        for _ in expected:
            try:
                msg = self.recv_message(timeout, "message %d of %d" % (len(got) + 1,
                                                                       len(expected)))
            except PeerClosed as exc:
                raise AssertionError("%s (after %r)" % (exc, got)) from None
            got.append(msg)
        for kind in ("data", "pong"):
            def pick(items, kind=kind):
                return [(op, p) for op, p in items if (op == OP_PONG) == (kind == "pong")]
            want = pick(expected)
            have = pick((m.opcode, m.payload) for m in got)
            if want != have:
                raise AssertionError("expected %s %s, got %r" % (
                    kind, [(OP_NAMES.get(op), describe(p)) for op, p in want], got))
        return got

    def expect_echo(self, opcode, payload, timeout=None):
        return self.expect_message(opcode, payload, timeout)

    def expect_pong(self, payload, timeout=None):
        return self.expect_message(OP_PONG, payload, timeout)

    def expect_close(self, codes, timeout=None, reply=True, eof_timeout=None):
        """Assert the next thing the server sends is a close frame whose code is in codes
        (an int or a tuple; None in it stands for an empty close payload), then that the
        server closes TCP without sending anything more. Replies with a close frame first
        unless reply is false. Returns (code, reason)."""
        codes = codes if isinstance(codes, (tuple, list, set)) else (codes,)
        want = "a close frame with code %s" % " or ".join(
            "(empty)" if c is None else str(c) for c in codes)
        try:
            msg = self.recv_message(timeout, want)
        except PeerClosed:
            raise AssertionError("server closed TCP without %s" % want) from None
        if msg.opcode != OP_CLOSE:
            raise AssertionError("expected %s, got %r" % (want, msg))
        code, reason = parse_close(msg.payload)
        if code not in codes:
            raise AssertionError("expected %s, got %r" % (want, msg))
        if reply:
            try:
                self.send_close(code)
            except OSError:
                pass
        self.expect_eof(eof_timeout)
        return code, reason

    def expect_eof(self, timeout=None):
        """Assert the server closes the TCP connection (EOF or reset), sending nothing more."""
        if self.buf:
            raise AssertionError("server sent %s after its close frame" % describe(self.buf))
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError("server did not close the TCP connection")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise AssertionError("server did not close the TCP connection within %.1fs"
                                     % (self.timeout if timeout is None else timeout)) from None
            except ConnectionResetError:
                return
            if not chunk:
                return
            raise AssertionError("server sent %s after its close frame" % describe(chunk))

    def expect_silence(self, seconds):
        """Assert the server sends nothing (pings aside) and keeps the connection open for
        the given time."""
        deadline = time.monotonic() + seconds
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                f = self.recv_frame(remaining, "silence")
            except RecvTimeout:
                break
            except PeerClosed:
                raise AssertionError("server closed TCP where it had to wait") from None
            if f.opcode == OP_PING:
                self.server_pings += 1
                self.send_frame(OP_PONG, f.payload)
                continue
            if f.opcode == OP_CLOSE:
                raise AssertionError("server sent %r where it had to wait" % Message(
                    OP_CLOSE, f.payload))
            raise AssertionError("server sent %r where it had to wait" % f)
        if self.buf:
            raise AssertionError("server sent %s where it had to wait" % describe(self.buf))

    def close(self):
        for _, dup, _ in self._senders:
            dup.close()
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
