"""Client side of the messaging protocol (PROTOCOL.md) for the integration tests.

- tokens: HS256 minted with hmac/hashlib, EdDSA signed with the openssl command line,
  and deliberately broken ones (alg none, bad signature);
- a small MessagePack codec (nil, bool, int, float, str, bin, array, map: the subset the
  envelopes use), since python3-msgpack is not installed everywhere;
- Client: a `websockets` connection that speaks envelopes in JSON or MessagePack, keeps
  the frames that are not the awaited reply in an inbox, and records each frame's type;
- RawClient: a blocking socket client that does the handshake by hand, so that a test can
  stop reading from it (slow consumer);
- which worker process owns which client connection (/proc), and the server's RSS.
"""
import asyncio
import base64
import hashlib
import hmac
import json
import os
import socket
import struct
import subprocess
import tempfile
import time

import websockets

SECRET = b"testsecret"
MSGPACK_PROTO = "wsd.v1.msgpack"
JSON_PROTO = "wsd.v1.json"


# ---- MessagePack ----------------------------------------------------------------------

class MsgpackError(ValueError):
    pass


def mp_pack(v):
    """Encodes v: None, bool, int, float, str, bytes, list/tuple, dict (str keys)."""
    out = bytearray()
    _mp_pack(v, out)
    return bytes(out)


def _mp_len(out, n, fix, fixmax, c8, c16, c32):
    if fix is not None and n <= fixmax:
        out.append(fix | n)
    elif c8 is not None and n < 1 << 8:
        out += bytes([c8, n])
    elif n < 1 << 16:
        out += bytes([c16]) + struct.pack(">H", n)
    else:
        out += bytes([c32]) + struct.pack(">I", n)


def _mp_pack(v, out):
    if v is None:
        out.append(0xC0)
    elif v is True:
        out.append(0xC3)
    elif v is False:
        out.append(0xC2)
    elif isinstance(v, int):
        if 0 <= v < 128:
            out.append(v)
        elif -32 <= v < 0:
            out.append(v & 0xFF)
        elif v >= 0:
            for code, fmt, lim in ((0xCC, ">B", 1 << 8), (0xCD, ">H", 1 << 16),
                                   (0xCE, ">I", 1 << 32), (0xCF, ">Q", 1 << 64)):
                if v < lim:
                    out += bytes([code]) + struct.pack(fmt, v)
                    return
            raise MsgpackError("int too large")
        else:
            for code, fmt, lim in ((0xD0, ">b", 1 << 7), (0xD1, ">h", 1 << 15),
                                   (0xD2, ">i", 1 << 31), (0xD3, ">q", 1 << 63)):
                if v >= -lim:
                    out += bytes([code]) + struct.pack(fmt, v)
                    return
            raise MsgpackError("int too small")
    elif isinstance(v, float):
        out += b"\xcb" + struct.pack(">d", v)
    elif isinstance(v, str):
        b = v.encode()
        _mp_len(out, len(b), 0xA0, 31, 0xD9, 0xDA, 0xDB)
        out += b
    elif isinstance(v, (bytes, bytearray)):
        _mp_len(out, len(v), None, 0, 0xC4, 0xC5, 0xC6)
        out += v
    elif isinstance(v, (list, tuple)):
        _mp_len(out, len(v), 0x90, 15, None, 0xDC, 0xDD)
        for x in v:
            _mp_pack(x, out)
    elif isinstance(v, dict):
        _mp_len(out, len(v), 0x80, 15, None, 0xDE, 0xDF)
        for k, x in v.items():
            _mp_pack(k, out)
            _mp_pack(x, out)
    else:
        raise MsgpackError("cannot pack %r" % type(v))


def mp_unpack(data):
    """Decodes one whole value; bin becomes bytes. Raises MsgpackError."""
    v, pos = _mp_unpack(memoryview(bytes(data)), 0)
    if pos != len(data):
        raise MsgpackError("trailing bytes")
    return v


def _mp_take(mv, pos, n):
    if pos + n > len(mv):
        raise MsgpackError("truncated")
    return bytes(mv[pos:pos + n]), pos + n


def _mp_unpack(mv, pos):
    b, pos = _mp_take(mv, pos, 1)
    t = b[0]
    if t < 0x80:
        return t, pos
    if t >= 0xE0:
        return t - 256, pos
    if 0x80 <= t <= 0x8F:
        return _mp_map(mv, pos, t & 0x0F)
    if 0x90 <= t <= 0x9F:
        return _mp_array(mv, pos, t & 0x0F)
    if 0xA0 <= t <= 0xBF:
        s, pos = _mp_take(mv, pos, t & 0x1F)
        return s.decode(), pos
    simple = {0xC0: None, 0xC2: False, 0xC3: True}
    if t in simple:
        return simple[t], pos
    fixed = {0xCA: ">f", 0xCB: ">d", 0xCC: ">B", 0xCD: ">H", 0xCE: ">I", 0xCF: ">Q",
             0xD0: ">b", 0xD1: ">h", 0xD2: ">i", 0xD3: ">q"}
    if t in fixed:
        fmt = fixed[t]
        raw, pos = _mp_take(mv, pos, struct.calcsize(fmt))
        return struct.unpack(fmt, raw)[0], pos
    lens = {0xC4: ">B", 0xC5: ">H", 0xC6: ">I", 0xD9: ">B", 0xDA: ">H", 0xDB: ">I",
            0xDC: ">H", 0xDD: ">I", 0xDE: ">H", 0xDF: ">I"}
    if t not in lens:
        raise MsgpackError("unsupported type byte 0x%02x" % t)
    fmt = lens[t]
    raw, pos = _mp_take(mv, pos, struct.calcsize(fmt))
    n = struct.unpack(fmt, raw)[0]
    if t in (0xC4, 0xC5, 0xC6):
        return _mp_take(mv, pos, n)
    if t in (0xD9, 0xDA, 0xDB):
        s, pos = _mp_take(mv, pos, n)
        return s.decode(), pos
    if t in (0xDC, 0xDD):
        return _mp_array(mv, pos, n)
    return _mp_map(mv, pos, n)


def _mp_array(mv, pos, n):
    out = []
    for _ in range(n):
        v, pos = _mp_unpack(mv, pos)
        out.append(v)
    return out, pos


def _mp_map(mv, pos, n):
    out = {}
    for _ in range(n):
        k, pos = _mp_unpack(mv, pos)
        v, pos = _mp_unpack(mv, pos)
        out[k] = v
    return out, pos


# ---- tokens ---------------------------------------------------------------------------

def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def _json_part(obj):
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


def hs256_token(claims, secret=SECRET, header=None):
    """A compact JWS signed with HMAC-SHA256 (header defaults to alg HS256)."""
    head = _json_part(header or {"alg": "HS256", "typ": "JWT"})
    signing = head + "." + _json_part(claims)
    sig = hmac.new(secret, signing.encode(), hashlib.sha256).digest()
    return signing + "." + b64url(sig)


def none_token(claims):
    """An unsigned token with alg none."""
    return _json_part({"alg": "none", "typ": "JWT"}) + "." + _json_part(claims) + "."


def tok(sub, **claims):
    """HS256 token for sub with the given claims (join=[...], pub=[...], exp=..., ...)."""
    c = {"sub": sub}
    c.update(claims)
    return hs256_token(c)


def full_tok(sub, **claims):
    """A token that may join and publish everywhere."""
    c = {"join": ["*"], "pub": ["*"]}
    c.update(claims)
    return tok(sub, **c)


class Ed25519Key:
    """An Ed25519 key pair made and used with the openssl command line."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="wsd-ed25519-")
        self.pem = os.path.join(self.dir, "key.pem")
        subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", self.pem],
                       check=True, capture_output=True, timeout=20)
        der = subprocess.run(["openssl", "pkey", "-in", self.pem, "-pubout", "-outform", "DER"],
                             check=True, capture_output=True, timeout=20).stdout
        self.public_b64 = base64.b64encode(der[-32:]).decode()

    def sign(self, msg):
        path = os.path.join(self.dir, "msg")
        with open(path, "wb") as f:
            f.write(msg)
        return subprocess.run(["openssl", "pkeyutl", "-sign", "-rawin", "-inkey", self.pem,
                               "-in", path], check=True, capture_output=True,
                              timeout=20).stdout

    def token(self, claims):
        signing = _json_part({"alg": "EdDSA", "typ": "JWT"}) + "." + _json_part(claims)
        return signing + "." + b64url(self.sign(signing.encode()))


# ---- the websockets client ------------------------------------------------------------

class Closed(Exception):
    """The server closed the connection; code is its close code (None: no close frame)."""

    def __init__(self, code, reason=""):
        super().__init__("connection closed: %r %s" % (code, reason))
        self.code = code
        self.reason = reason


def _closed(exc):
    rcvd = getattr(exc, "rcvd", None)
    return Closed(rcvd.code if rcvd else None, rcvd.reason if rcvd else "")


class Client:
    """One connection to ws_path. Frames are decoded by their type (text JSON, binary
    MessagePack); every decoded frame is kept as (envelope, binary, raw)."""

    def __init__(self, ws, msgpack):
        self.ws = ws
        self.msgpack = msgpack
        self.inbox = []        # frames received but not consumed yet
        self.next_id = 1
        self.welcome = None

    @classmethod
    async def connect(cls, url, token=None, msgpack=False, query_token=False,
                      subprotocols=None, path="/ws", query="", ssl=None):
        target = url + path
        headers = {}
        params = [query] if query else []
        if token is not None:
            if query_token:
                params.append("token=" + token)
            else:
                headers["Authorization"] = "Bearer " + token
        if params:
            target += "?" + "&".join(params)
        if subprotocols is None:
            subprotocols = [MSGPACK_PROTO] if msgpack else None
        ws = await websockets.connect(target, extra_headers=headers, subprotocols=subprotocols,
                                      compression=None, max_size=None, ping_interval=None,
                                      open_timeout=20, close_timeout=2, max_queue=None,
                                      **({"ssl": ssl} if ssl else {}))
        return cls(ws, msgpack)

    @classmethod
    async def login(cls, url, token=None, **kw):
        """Connects (token in the handshake, or anonymous) and reads the welcome."""
        c = await cls.connect(url, token, **kw)
        w = await c.recv()
        assert w.get("op") == "welcome", w
        c.welcome = w
        return c

    @property
    def port(self):
        return self.ws.local_address[1]

    def encode(self, env, binary=None):
        binary = self.msgpack if binary is None else binary
        return mp_pack(env) if binary else json.dumps(env)

    async def send(self, env, binary=None):
        try:
            await self.ws.send(self.encode(env, binary))
        except websockets.ConnectionClosed as e:
            raise _closed(e) from None

    async def send_raw(self, frame):
        """Sends str (text frame) or bytes (binary frame) as is."""
        try:
            await self.ws.send(frame)
        except websockets.ConnectionClosed as e:
            raise _closed(e) from None

    async def recv_frame(self, timeout=10):
        """The next frame as (envelope, binary, raw), from the inbox first."""
        if self.inbox:
            return self.inbox.pop(0)
        return await self._read(timeout)

    async def _read(self, timeout):
        try:
            raw = await asyncio.wait_for(self.ws.recv(), timeout)
        except websockets.ConnectionClosed as e:
            raise _closed(e) from None
        if isinstance(raw, str):
            return json.loads(raw), False, raw
        return mp_unpack(raw), True, raw

    async def recv(self, timeout=10):
        return (await self.recv_frame(timeout))[0]

    def new_id(self):
        i = self.next_id
        self.next_id += 1
        return i

    async def request_frame(self, env, binary=None, timeout=10):
        """Sends env (an id is added unless it has one) and returns the frame that carries
        the same id; frames in between go to the inbox."""
        if "id" not in env:
            env = dict(env, id=self.new_id())
        await self.send(env, binary)
        return await self.wait_id(env["id"], timeout)

    async def wait_id(self, rid, timeout=10):
        for i, fr in enumerate(self.inbox):
            if fr[0].get("id") == rid and fr[0].get("op") != "msg":
                return self.inbox.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            fr = await self._read(max(0.01, deadline - time.monotonic()))
            if fr[0].get("id") == rid and fr[0].get("op") != "msg":
                return fr
            self.inbox.append(fr)

    async def request(self, op, binary=None, timeout=10, **fields):
        env = {"op": op}
        env.update(fields)
        return (await self.request_frame(env, binary, timeout))[0]

    async def ok(self, op, **fields):
        """A request that must succeed; returns its reply."""
        r = await self.request(op, **fields)
        assert r.get("op") in ("reply", "welcome", "pong") and r.get("ok", True) is True, r
        return r

    async def join(self, group, **fields):
        r = await self.ok("join", group=group, **fields)
        assert r["group"] == group, r
        return r

    async def msgs(self, n, timeout=20, ch=None):
        """The next n msg envelopes (on channel ch if given; other frames are kept)."""
        out, kept = [], []
        deadline = time.monotonic() + timeout
        try:
            while self.inbox and len(out) < n:
                fr = self.inbox.pop(0)
                if fr[0].get("op") == "msg" and (ch is None or fr[0].get("ch") == ch):
                    out.append(fr[0])
                else:
                    kept.append(fr)
            while len(out) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise asyncio.TimeoutError
                fr = await self._read(left)
                if fr[0].get("op") == "msg" and (ch is None or fr[0].get("ch") == ch):
                    out.append(fr[0])
                else:
                    kept.append(fr)
        except asyncio.TimeoutError:
            raise AssertionError("got %d of %d messages in %ss: %r" %
                                 (len(out), n, timeout, out[-3:])) from None
        finally:
            self.inbox[:0] = kept
        return out

    async def drain(self, timeout=10):
        """Every frame up to the pong of a ping sent now (the pong excluded)."""
        rid = "drain-%d" % self.new_id()
        await self.send({"op": "ping", "id": rid})
        frames = list(self.inbox)
        self.inbox.clear()
        deadline = time.monotonic() + timeout
        while True:
            fr = await self._read(max(0.01, deadline - time.monotonic()))
            if fr[0].get("op") == "pong" and fr[0].get("id") == rid:
                return [f[0] for f in frames]
            frames.append(fr)

    async def closed(self, timeout=10):
        """Reads until the server closes; returns (close code, envelopes read before)."""
        got = [f[0] for f in self.inbox]
        self.inbox.clear()
        deadline = time.monotonic() + timeout
        while True:
            try:
                got.append((await self._read(max(0.01, deadline - time.monotonic())))[0])
            except Closed as e:
                return e.code, got

    async def close(self):
        await self.ws.close()


async def gather_connect(n, make, batch=32):
    """Opens n clients with make(i) in batches; returns them in order."""
    out = []
    for start in range(0, n, batch):
        out += await asyncio.gather(*[make(i) for i in range(start, min(n, start + batch))])
    return out


async def close_all(clients):
    await asyncio.gather(*[c.close() for c in clients], return_exceptions=True)


# ---- a raw client that can stop reading -----------------------------------------------

class RawClient:
    """Blocking socket client: handshake by hand, masked frames out, unmasked frames in."""

    def __init__(self, port, path, rcvbuf=None, tls=None):
        """tls: an ssl.SSLContext to speak TLS with (a tls_listen port)."""
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", port))
        if tls is not None:
            self.sock = tls.wrap_socket(self.sock, server_hostname="127.0.0.1")
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                           "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n" % (path, key)).encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            assert chunk, "closed during the handshake"
            self.buf += chunk
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head

    def send_text(self, text):
        payload = text.encode()
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            head = bytes([0x81, 0x80 | n])
        elif n < 65536:
            head = bytes([0x81, 0xFE]) + struct.pack(">H", n)
        else:
            head = bytes([0x81, 0xFF]) + struct.pack(">Q", n)
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + body)

    def _fill(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise EOFError
            self.buf += chunk

    def recv_frame(self):
        """(opcode, payload) of the next frame; EOFError at the end of the stream."""
        self._fill(2)
        op, n = self.buf[0] & 0x0F, self.buf[1] & 0x7F
        pos = 2
        if n == 126:
            self._fill(4)
            n, pos = struct.unpack(">H", self.buf[2:4])[0], 4
        elif n == 127:
            self._fill(10)
            n, pos = struct.unpack(">Q", self.buf[2:10])[0], 10
        self._fill(pos + n)
        payload, self.buf = self.buf[pos:pos + n], self.buf[pos + n:]
        return op, payload

    def recv_json(self):
        op, payload = self.recv_frame()
        assert op == 1, (op, payload[:100])
        return json.loads(payload)

    def close(self):
        self.sock.close()


# ---- the server's processes -----------------------------------------------------------

def conn_owners(wsd, port=None):
    """{client port: worker pid} for the established connections to wsd's port (or to
    another of its listening ports)."""
    port = port or wsd.port
    inode_pid = {}
    for pid in wsd.worker_pids():
        fd_dir = "/proc/%d/fd" % pid
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink(os.path.join(fd_dir, fd))
            except OSError:
                continue
            if link.startswith("socket:["):
                inode_pid[int(link[8:-1])] = pid
    owners = {}
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            lport = int(fields[1].split(":")[1], 16)
            rport = int(fields[2].split(":")[1], 16)
            inode = int(fields[9])
            if lport == port and rport != 0 and inode in inode_pid:
                owners[rport] = inode_pid[inode]
    return owners


def workers_of(wsd, clients, port=None):
    """The worker pid of each client (None when not found)."""
    owners = conn_owners(wsd, port)
    return [owners.get(c.port) for c in clients]


def rss_kib(wsd, field="VmRSS"):
    """A /proc/PID/status memory field (VmRSS, RssAnon, RssFile, RssShmem) summed over
    the master and its workers, KiB."""
    total = 0
    for pid in [wsd.proc.pid] + wsd.worker_pids():
        try:
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith(field + ":"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def run(coro, timeout=60):
    """Runs a test coroutine with a hard time limit."""
    return asyncio.run(asyncio.wait_for(coro, timeout))
