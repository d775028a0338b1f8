"""TLS on tls_listen (wss://): echo and messaging through Python's ssl and Node's tls,
backpressure inside TLS records, bad input on the TLS port, session tickets shared by
the workers, certificates swapped by a reload, and `wsd -t` on bad certificate files."""
import asyncio
import json
import os
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import time

import pytest
import websockets

from wsdclient import Client, RawClient, conn_owners, full_tok
from wsdproc import ROOT, WSCTL_BIN, WSD_BIN, Wsd, make_cert, recv_all

NODE_PATH = os.path.join(ROOT, "build", "peers", "node_modules")


def run(coro, timeout=60):
    return asyncio.run(asyncio.wait_for(coro, timeout))


@pytest.fixture(scope="module")
def tw():
    w = Wsd(workers=2, tls=True, extra="header_timeout 2\njwt_hs256_secret testsecret")
    w.start()
    yield w
    w.stop()


def tls_get(w, path, ctx=None, session=None):
    """One HTTPS request on the TLS port: (status line, body, the ssl socket's session,
    whether it was resumed, the server certificate in DER)."""
    ctx = ctx or w.tls_context()
    with socket.create_connection(("127.0.0.1", w.tls_port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1", session=session) as s:
            s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = recv_all(s)
            head, _, body = data.partition(b"\r\n\r\n")
            return (head.split(b"\r\n")[0], body, s.session, s.session_reused,
                    s.getpeercert(binary_form=True))


def owners_of(w, local_ports):
    """The worker pids holding the TLS connections from these local ports."""
    owners = conn_owners(w, w.tls_port)
    return {owners.get(p) for p in local_ports}


def open_fds(w):
    return sum(len(os.listdir("/proc/%d/fd" % pid)) for pid in w.worker_pids())


def server_ends(s):
    """True when the server ends the stream (EOF or reset) within s's timeout, False when
    it leaves the connection open that long."""
    try:
        while s.recv(65536):
            pass
    except ConnectionResetError:
        pass
    except socket.timeout:
        return False
    return True


def pem_der(path):
    with open(path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


# ---- echo ------------------------------------------------------------------------------

def test_wss_echo_of_every_size_and_pipelined_messages_on_both_workers(tw):
    async def go():
        conns = [await websockets.connect(tw.wss_url + "/echo", ssl=tw.tls_context(),
                                          max_size=None, compression=None)
                 for _ in range(12)]
        try:
            ws = conns[0]
            assert ws.transport.get_extra_info("ssl_object").version() in ("TLSv1.3",
                                                                           "TLSv1.2")
            for n in (0, 1, 125, 126, 16383, 16384, 16385, 65535, 65536, 1 << 20, 8 << 20):
                m = os.urandom(n)
                await ws.send(m)
                assert await ws.recv() == m, n
                t = "é" * (n // 2)
                await ws.send(t)
                assert await ws.recv() == t, n
            # 200 messages on each connection before reading a reply: order and content.
            for c in conns:
                for i in range(200):
                    await c.send("m%d" % i)
            for c in conns:
                assert [await c.recv() for _ in range(200)] == ["m%d" % i for i in range(200)]
            return owners_of(tw, [c.local_address[1] for c in conns])
        finally:
            for c in conns:
                await c.close()
    owners = run(go())
    assert len(owners) == 2, owners  # both workers served TLS connections


def test_wss_backpressure_a_reader_that_stops_gets_every_byte_in_order(tw):
    """Replies pile up while the client reads nothing (a 4 KiB receive buffer): the server
    meets a full socket in the middle of TLS records again and again."""
    c = RawClient(tw.tls_port, "/echo", rcvbuf=4096, tls=tw.tls_context())
    try:
        big = bytes(range(256)) * 8192  # 2 MiB
        small = ["s%04d" % i for i in range(400)]
        c.sock.sendall(frame(0x2, big))
        for s in small:
            c.send_text(s)
        time.sleep(1.0)
        op, payload = c.recv_frame()
        assert op == 0x2 and payload == big
        assert [c.recv_frame()[1].decode() for _ in small] == small
        # The connection is in order afterwards: one more round trip.
        c.send_text("after")
        assert c.recv_frame() == (0x1, b"after")
    finally:
        c.close()


def frame(opcode, payload):
    """A masked client frame (FIN set)."""
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = bytes([0x80 | opcode, 0x80 | n])
    elif n < 65536:
        head = bytes([0x80 | opcode, 0xFE]) + struct.pack(">H", n)
    else:
        head = bytes([0x80 | opcode, 0xFF]) + struct.pack(">Q", n)
    masked = (int.from_bytes(payload, "big") ^
              int.from_bytes((mask * (n // 4 + 1))[:n], "big")).to_bytes(n, "big")
    return head + mask + masked


def test_wss_closing_handshakes_both_ways(tw):
    async def go():
        ws = await websockets.connect(tw.wss_url + "/echo", ssl=tw.tls_context())
        await ws.close(1000, "bye")
        assert ws.close_code == 1000
        # A message over max_message_size (16m) is closed by the server with 1009.
        ws = await websockets.connect(tw.wss_url + "/echo", ssl=tw.tls_context(),
                                      max_size=None)
        with pytest.raises(websockets.ConnectionClosed) as ei:
            await ws.send(b"x" * (17 << 20))
            await ws.recv()
        assert ei.value.rcvd.code == 1009
    run(go())


def test_node_ws_echo_suite_over_wss(tw):
    assert shutil.which("node"), "node is required"
    assert os.path.isdir(os.path.join(NODE_PATH, "ws")), "npm ws missing in build/peers"
    # Node trusts the test certificate through NODE_EXTRA_CA_CERTS and checks the name.
    env = dict(os.environ, NODE_PATH=NODE_PATH, NODE_EXTRA_CA_CERTS=tw.cert)
    p = subprocess.run(["node", os.path.join(ROOT, "tests/integration/node/echo_client.js"),
                        tw.wss_url + "/echo"], capture_output=True, text=True, env=env,
                       timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "all ok" in p.stdout


# ---- messaging -------------------------------------------------------------------------

def test_messaging_between_tls_and_plain_clients(tw):
    async def go():
        a = await Client.login(tw.wss_url, full_tok("tls-alice"), ssl=tw.tls_context())
        b = await Client.login(tw.url, full_tok("plain-bob"))
        try:
            assert a.welcome["user"] == "tls-alice"
            for c in (a, b):
                await c.join("tls:room")
            await a.ok("publish", group="tls:room", data={"from": "tls"})
            await b.ok("publish", group="tls:room", data={"from": "plain"})
            # A publisher does not get its own message: each gets the other's.
            (got_a,) = await a.msgs(1, ch="tls:room")
            (got_b,) = await b.msgs(1, ch="tls:room")
            assert got_a["data"] == {"from": "plain"} and got_a["from"] == "plain-bob"
            assert got_b["data"] == {"from": "tls"} and got_b["from"] == "tls-alice"
            r = await b.ok("send", user="tls-alice", data="direct")
            assert r["delivered"] == 1
            (m,) = await a.msgs(1, ch="@")
            assert m["data"] == "direct" and m["from"] == "plain-bob"
        finally:
            await a.close()
            await b.close()
    run(go())


def test_https_requests_on_the_tls_port(tw):
    status, body, _, _, der = tls_get(tw, b"/metrics")
    assert status == b"HTTP/1.1 200 OK", status
    assert b"wsd_connections" in body
    assert der == pem_der(tw.cert)


# ---- bad input on the TLS port ---------------------------------------------------------

def test_plain_http_on_the_tls_port_gets_a_400_in_plain_http(tw):
    with socket.create_connection(("127.0.0.1", tw.tls_port), timeout=5) as s:
        s.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
        data = recv_all(s)
    assert data.startswith(b"HTTP/1.1 400 Bad Request\r\n"), data
    assert data.endswith(b"plain HTTP request sent to a TLS port\n"), data


def test_garbage_and_stalled_handshakes_are_closed_and_the_server_goes_on(tw):
    fds = open_fds(tw)
    # Bytes that are not TLS: closed at once.
    g = socket.create_connection(("127.0.0.1", tw.tls_port), timeout=5)
    t0 = time.monotonic()
    g.sendall(b"\x16\x03\x01\x00\x10" + os.urandom(4000))
    assert server_ends(g) and time.monotonic() - t0 < 1.0
    g.close()
    # A ClientHello cut short, and a client that says nothing: closed at header_timeout.
    h = socket.create_connection(("127.0.0.1", tw.tls_port), timeout=6)
    h.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(40))
    q = socket.create_connection(("127.0.0.1", tw.tls_port), timeout=6)
    t0 = time.monotonic()
    for s in (h, q):
        assert server_ends(s)
        s.close()
    assert 1.0 < time.monotonic() - t0 < 5.0
    # Nothing left behind, and TLS is still served.
    deadline = time.monotonic() + 5
    while open_fds(tw) > fds and time.monotonic() < deadline:
        time.sleep(0.05)
    assert open_fds(tw) <= fds
    assert tls_get(tw, b"/metrics")[0] == b"HTTP/1.1 200 OK"


# ---- sessions and certificates ---------------------------------------------------------

def test_session_tickets_resume_on_every_worker(tw):
    ctx = tw.tls_context()
    _, _, session, reused, _ = tls_get(tw, b"/metrics", ctx)
    assert session is not None and not reused
    held, owners = [], set()
    try:
        for _ in range(12):
            raw = socket.create_connection(("127.0.0.1", tw.tls_port), timeout=5)
            s = ctx.wrap_socket(raw, server_hostname="127.0.0.1", session=session)
            held.append(s)
            assert s.session_reused
        time.sleep(0.2)
        owners = owners_of(tw, [s.getsockname()[1] for s in held])
    finally:
        for s in held:
            s.close()
    assert len(owners) == 2, owners


def _sleep_until(wall):
    time.sleep(max(0.0, wall - time.time()))


def test_session_ticket_keys_rotate_and_a_ticket_stops_resuming_after_two_periods():
    rot = 2  # tls_ticket_rotation: periods of 2 s counted from the Unix epoch
    w = Wsd(workers=2, tls=True, extra="tls_ticket_rotation %d" % rot)
    w.start()
    try:
        ctx = w.tls_context()
        period = int(time.time() // rot) + 1
        _sleep_until(period * rot + 0.2)  # well inside one period
        _, _, first, reused, _ = tls_get(w, b"/metrics", ctx)
        assert not reused
        assert tls_get(w, b"/metrics", ctx, first)[3]  # same period
        # next period: the previous key still opens it, and the server renews the ticket
        _sleep_until((period + 1) * rot + 0.3)
        resumed = [tls_get(w, b"/metrics", ctx, first) for _ in range(4)]
        assert all(r[3] for r in resumed)
        renewed = resumed[-1][2]
        # two periods on, the first key is gone from every process: a full handshake (the
        # client still offers the ticket: the server's lifetime hint is 3 periods)
        _sleep_until((period + 2) * rot + 0.3)
        assert [tls_get(w, b"/metrics", ctx, first)[3] for _ in range(4)] == [False] * 4
        # the ticket renewed in the period before still resumes, on either worker
        assert all(tls_get(w, b"/metrics", ctx, renewed)[3] for _ in range(4))
    finally:
        w.stop()


def test_reload_swaps_the_certificate_for_new_handshakes_only():
    w = Wsd(workers=2, tls=True)
    w.start()
    try:
        async def go():
            old = await websockets.connect(w.wss_url + "/echo", ssl=w.tls_context())
            first = w.cert
            cert2, key2 = make_cert(w.dir, "second")
            with open(w.conf) as f:
                conf = f.read()
            with open(w.conf, "w") as f:
                f.write(conf.replace(w.cert, cert2).replace(w.key, key2))
            w.signal(signal.SIGHUP)
            deadline = time.monotonic() + 5
            ders = set()
            ctx2 = ssl.create_default_context(cafile=cert2)
            while time.monotonic() < deadline:
                try:
                    ders = {tls_get(w, b"/metrics", ctx2)[4] for _ in range(6)}
                    if ders == {pem_der(cert2)}:
                        break
                except ssl.SSLError:
                    pass
                await asyncio.sleep(0.1)
            assert ders == {pem_der(cert2)}
            # The connection from before keeps its session.
            await old.send("still here")
            assert await old.recv() == "still here"
            await old.close()
            # A key that does not match: the reload is refused, the second pair stays.
            _, key3 = make_cert(w.dir, "third")
            with open(w.conf, "w") as f:
                f.write(conf.replace(first, cert2).replace(w.key, key3))
            w.signal(signal.SIGHUP)
            await asyncio.sleep(1.0)
            assert {tls_get(w, b"/metrics", ctx2)[4] for _ in range(6)} == {pem_der(cert2)}
        run(go())
        log = w.read_log()
        assert "reload refused" in log and "tls_key" in log, log[-2000:]
    finally:
        w.stop()


def test_config_check_names_the_bad_tls_file(tmp_path):
    cert, key = make_cert(str(tmp_path), "a")
    _, other_key = make_cert(str(tmp_path), "b")
    cases = [
        (f"tls_cert {tmp_path}/missing.pem\ntls_key {key}\n", "tls_cert"),
        (f"tls_cert {cert}\ntls_key {tmp_path}/missing.key\n", "tls_key"),
        (f"tls_cert {cert}\ntls_key {other_key}\n", "tls_key"),
        (f"tls_cert {key}\ntls_key {key}\n", "tls_cert"),
    ]
    for text, key_name in cases:
        conf = tmp_path / "wsd.conf"
        conf.write_text("tls_listen 127.0.0.1:1\n" + text)
        p = subprocess.run([WSD_BIN, "-t", "-c", str(conf)], capture_output=True, text=True)
        assert p.returncode == 1, (text, p.stdout, p.stderr)
        assert f"wsd: {key_name} " in p.stderr, (text, p.stderr)
    conf.write_text(f"tls_listen 127.0.0.1:1\ntls_cert {cert}\ntls_key {key}\n")
    p = subprocess.run([WSD_BIN, "-t", "-c", str(conf)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr


def test_wsctl_marks_tls_deflate_and_authenticated_connections(tw):
    async def go():
        t = await Client.login(tw.wss_url, full_tok("flag-tls"), ssl=tw.tls_context())
        p = await websockets.connect(tw.url + "/echo")  # deflate offered by default
        try:
            out = subprocess.run([WSCTL_BIN, "-s", tw.sock, "--json", "conns"],
                                 capture_output=True, text=True, timeout=10)
            assert out.returncode == 0, out.stderr
            rows = {r["remote"]: r for r in json.loads(out.stdout)["connections"]}
            assert rows["127.0.0.1:%d" % t.port]["flags"] == ["tls", "authenticated"]
            assert rows["127.0.0.1:%d" % p.local_address[1]]["flags"] == ["deflate"]
        finally:
            await t.close()
            await p.close()
    run(go())


def test_tls_1_2_clients_are_served_too(tw):
    ctx = tw.tls_context()
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2

    async def go():
        async with websockets.connect(tw.wss_url + "/echo", ssl=ctx) as ws:
            assert ws.transport.get_extra_info("ssl_object").version() == "TLSv1.2"
            for n in (5, 70000):
                await ws.send("t" * n)
                assert await ws.recv() == "t" * n
    run(go())
