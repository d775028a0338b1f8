"""Core server against Python `websockets`: echo, fragmentation, compression, ping/pong,
close codes, many connections spread over the workers, start-up failures."""
import asyncio
import os
import signal
import socket
import subprocess
import threading
import time

import pytest
import websockets

from wsdproc import ROOT, WSD_BIN, Wsd, free_port, metrics

MiB = 1024 * 1024


@pytest.fixture(scope="module", params=[2, 4], ids=["2workers", "4workers"])
def wsd(request):
    with Wsd(workers=request.param) as w:
        yield w


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


@pytest.mark.parametrize("compression", [None, "deflate"], ids=["plain", "deflate"])
@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 1 * MiB, 16 * MiB - 64 * 1024])
def test_echo_text_and_binary(wsd, compression, size):
    async def go():
        async with websockets.connect(wsd.url + "/echo", max_size=None,
                                      compression=compression) as ws:
            text = ("é" * (size // 2)) + ("a" * (size % 2))
            await ws.send(text)
            assert await ws.recv() == text
            data = os.urandom(size)
            await ws.send(data)
            assert await ws.recv() == data
    run(go())


def test_compression_is_negotiated(wsd):
    async def go():
        async with websockets.connect(wsd.url + "/echo", compression="deflate") as ws:
            ext = ws.response_headers.get("Sec-WebSocket-Extensions", "")
            assert ext.startswith("permessage-deflate")
        async with websockets.connect(wsd.url + "/echo", compression=None) as ws:
            assert "Sec-WebSocket-Extensions" not in ws.response_headers
    run(go())


def test_fragmented_send_is_reassembled(wsd):
    async def go():
        async with websockets.connect(wsd.url + "/echo", max_size=None) as ws:
            parts = ["frag-%d-" % i * 100 for i in range(50)]
            await ws.send(iter(parts))
            assert await ws.recv() == "".join(parts)
            bparts = [os.urandom(1000) for _ in range(20)]
            await ws.send(iter(bparts))
            assert await ws.recv() == b"".join(bparts)
    run(go())


def test_ping_is_answered_with_same_payload(wsd):
    async def go():
        async with websockets.connect(wsd.url + "/echo") as ws:
            waiter = await ws.ping(b"hello-ping")
            await asyncio.wait_for(waiter, 5)
            assert ws.latency >= 0
    run(go())


@pytest.mark.parametrize("code", [1000, 1001, 3000, 4999])
def test_close_code_is_echoed(wsd, code):
    async def go():
        ws = await websockets.connect(wsd.url + "/echo")
        await ws.close(code=code, reason="bye")
        assert ws.close_code == code
    run(go())


def test_many_pipelined_messages_keep_order(wsd):
    async def go():
        async with websockets.connect(wsd.url + "/echo") as ws:
            for i in range(2000):
                await ws.send("m%d" % i)
            for i in range(2000):
                assert await ws.recv() == "m%d" % i
    run(go())


def test_thousand_connections_registered_over_all_workers(wsd):
    nworkers = len(wsd.worker_pids())

    async def go():
        conns = []
        for _ in range(10):
            batch = await asyncio.gather(*[
                websockets.connect(wsd.url + "/echo", compression=None) for _ in range(100)])
            conns.extend(batch)
        m = metrics(wsd.port)
        per_worker = {k: v for k, v in m.items() if k.startswith("wsd_connections{")}
        assert sum(per_worker.values()) == 1000, per_worker
        busy = [v for v in per_worker.values() if v > 0]
        assert len(busy) == nworkers, per_worker
        # every connection works
        await asyncio.gather(*[c.send("x%d" % i) for i, c in enumerate(conns)])
        got = await asyncio.gather(*[c.recv() for c in conns])
        assert got == ["x%d" % i for i in range(1000)]
        await asyncio.gather(*[c.close() for c in conns])
        for _ in range(50):
            m = metrics(wsd.port)
            if sum(v for k, v in m.items() if k.startswith("wsd_connections{")) == 0:
                break
            await asyncio.sleep(0.1)
        assert sum(v for k, v in m.items() if k.startswith("wsd_connections{")) == 0
    run(go())


def test_healthz_and_unknown_path(wsd):
    def get(path):
        with socket.create_connection(("127.0.0.1", wsd.port), timeout=5) as s:
            s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            while chunk := s.recv(4096):
                data += chunk
            return data
    assert get(b"/healthz").startswith(b"HTTP/1.1 200")
    assert get(b"/healthz").endswith(b"\r\n\r\nok\n")
    assert get(b"/nope").startswith(b"HTTP/1.1 404")
    assert get(b"/echo").startswith(b"HTTP/1.1 426")


def test_port_in_use_fails_with_one_clear_line():
    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
        s.listen()
        w = Wsd(workers=1, port=port)
        p = subprocess.run([WSD_BIN, "-c", w.conf], capture_output=True, text=True, timeout=20)
    assert p.returncode == 1
    lines = [l for l in p.stderr.splitlines() if l.startswith("wsd:")]
    assert len(lines) == 1 and "Address already in use" in lines[0], p.stderr
    assert f"127.0.0.1:{port}" in lines[0]


def test_bad_config_names_file_and_line(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("listen 127.0.0.1:1234\nhartbeat 5\n")
    p = subprocess.run([WSD_BIN, "-t", "-c", str(conf)], capture_output=True, text=True,
                       timeout=20)
    assert p.returncode == 1
    assert f"{conf}:2" in p.stderr and "hartbeat" in p.stderr


def test_config_check_accepts_sample():
    p = subprocess.run([WSD_BIN, "-t", "-c", "etc/wsd.conf"], capture_output=True, text=True,
                       timeout=20)
    assert p.returncode == 0, p.stderr


def test_unwritable_pid_file_fails(tmp_path):
    w = Wsd(workers=1, extra="pid_file /nonexistent-dir/wsd.pid")
    p = subprocess.run([WSD_BIN, "-c", w.conf], capture_output=True, text=True, timeout=20)
    assert p.returncode == 1
    assert "pid file" in p.stderr and "/nonexistent-dir/wsd.pid" in p.stderr


def raw_request(port, data, timeout=5):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            out += chunk
        return out


UPGRADE = (b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n")


def test_oversized_head_gets_431(wsd):
    big = UPGRADE + b"X-Pad: " + b"a" * 9000 + b"\r\n\r\n"
    assert raw_request(wsd.port, big).startswith(b"HTTP/1.1 431")


def test_too_many_headers_get_431(wsd):
    many = UPGRADE + b"".join(b"X-H%d: v\r\n" % i for i in range(80)) + b"\r\n"
    assert raw_request(wsd.port, many).startswith(b"HTTP/1.1 431")


def test_post_gets_405_and_old_version_426():
    with Wsd(workers=1) as w:
        assert raw_request(w.port, UPGRADE.replace(b"GET", b"POST") + b"\r\n").startswith(
            b"HTTP/1.1 405")
        r = raw_request(w.port, UPGRADE.replace(b"Version: 13", b"Version: 8") + b"\r\n")
        assert r.startswith(b"HTTP/1.1 426") and b"Sec-WebSocket-Version: 13" in r


def test_slow_request_head_is_cut_off_after_header_timeout():
    with Wsd(workers=1, extra="header_timeout 1") as w:
        with socket.create_connection(("127.0.0.1", w.port), timeout=5) as s:
            s.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\n")  # never finishes the head
            t0 = __import__("time").monotonic()
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            elapsed = __import__("time").monotonic() - t0
        assert data.startswith(b"HTTP/1.1 408"), data
        assert 0.5 < elapsed < 3.5, elapsed


def _worker_fds(w):
    return sum(len(os.listdir("/proc/%d/fd" % pid)) for pid in w.worker_pids())


def test_a_connection_is_handed_to_a_worker_once_it_speaks():
    """TCP_DEFER_ACCEPT: a silent connection holds no worker descriptor until its first
    bytes arrive (or about a second has passed); then it is served as usual."""
    with Wsd(workers=1) as w:
        before = _worker_fds(w)
        with socket.create_connection(("127.0.0.1", w.port), timeout=5) as s:
            time.sleep(0.4)
            assert _worker_fds(w) == before
            s.sendall(UPGRADE + b"\r\n")
            assert s.recv(4096).startswith(b"HTTP/1.1 101")
            assert _worker_fds(w) == before + 1
        deadline = time.monotonic() + 4
        while _worker_fds(w) != before and time.monotonic() < deadline:
            time.sleep(0.05)  # the first connection's descriptor goes
        assert _worker_fds(w) == before
        # a client that says nothing is still taken after a while
        with socket.create_connection(("127.0.0.1", w.port), timeout=5) as s:
            deadline = time.monotonic() + 4
            while _worker_fds(w) == before and time.monotonic() < deadline:
                time.sleep(0.05)
            assert _worker_fds(w) == before + 1


def test_every_http_response_forbids_content_sniffing():
    with Wsd(workers=1, extra="client_file client/wsd.js") as w:
        for req in (b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
                    b"GET /wsd.js HTTP/1.1\r\nHost: x\r\n\r\n",
                    b"GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n",
                    b"POST /ws HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
                    UPGRADE + b"Origin: x\r\nSec-WebSocket-Version: 12\r\n\r\n"):
            head = raw_request(w.port, req).split(b"\r\n\r\n")[0].lower()
            assert b"\r\nx-content-type-options: nosniff" in head, head


def test_head_gets_the_head_a_get_would_get_and_no_content():
    with Wsd(workers=1, extra="client_file client/wsd.js") as w:
        js_len = os.path.getsize(os.path.join(ROOT, "client", "wsd.js"))

        def head_and_body(method, path, extra=b""):
            r = raw_request(w.port, b"%s %s HTTP/1.1\r\nHost: x\r\n%s\r\n" %
                            (method, path, extra))
            head, _, body = r.partition(b"\r\n\r\n")
            fields = dict(line.split(b": ", 1) for line in head.split(b"\r\n")[1:])
            return head.split(b"\r\n")[0], fields, body

        for path, status in ((b"/healthz", b"200"), (b"/wsd.js", b"200"),
                             (b"/nothing", b"404"), (b"/ws", b"426")):
            g_line, g_fields, g_body = head_and_body(b"GET", path)
            h_line, h_fields, h_body = head_and_body(b"HEAD", path)
            assert g_line.split()[1] == h_line.split()[1] == status, (path, g_line, h_line)
            assert h_body == b"", (path, h_body[:80])
            assert h_fields[b"Content-Length"] == g_fields[b"Content-Length"] == \
                b"%d" % len(g_body), path
        assert int(head_and_body(b"HEAD", b"/wsd.js")[1][b"Content-Length"]) == js_len
        # HEAD never upgrades, even with every upgrade header
        line, _, body = head_and_body(b"HEAD", b"/echo", UPGRADE.split(b"\r\n", 2)[2])
        assert line.split()[1] == b"426" and body == b""
        # other methods: 405 naming both
        line, fields, _ = head_and_body(b"POST", b"/healthz", b"Content-Length: 0\r\n")
        assert line.split()[1] == b"405" and fields[b"Allow"] == b"GET, HEAD"
        line, fields, _ = head_and_body(b"DELETE", b"/ws")
        assert line.split()[1] == b"405" and fields[b"Allow"] == b"GET, HEAD"


def test_origin_outside_allowed_list_gets_403():
    with Wsd(workers=1, extra="allowed_origins https://good.example") as w:
        bad = UPGRADE + b"Origin: https://evil.example\r\n\r\n"
        assert raw_request(w.port, bad).startswith(b"HTTP/1.1 403")
        good = UPGRADE + b"Origin: https://good.example\r\n\r\n"
        assert raw_request(w.port, good, timeout=1).startswith(b"HTTP/1.1 101")


def test_subprotocol_is_selected_in_server_order(wsd):
    async def go():
        async with websockets.connect(wsd.url + "/echo",
                                      subprotocols=["x-other", "wsd.v1.msgpack"]) as ws:
            assert ws.subprotocol == "wsd.v1.msgpack"
        async with websockets.connect(wsd.url + "/echo", subprotocols=["x-other"]) as ws:
            assert ws.subprotocol is None
    run(go())


def test_pipelined_frame_after_head_is_echoed(wsd):
    frame = bytes([0x81, 0x85, 1, 2, 3, 4]) + bytes(b ^ k for b, k in zip(b"hello", b"\x01\x02\x03\x04\x01"))
    r = raw_request(wsd.port, UPGRADE + b"\r\n" + frame, timeout=1)
    head, _, rest = r.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101")
    assert rest[:7] == b"\x81\x05hello"


def test_burst_of_many_reads_is_echoed_whole_and_in_order(wsd):
    """12 MB of small frames sent right behind the request head in one go, the replies
    read only after a second: the worker stops reading while its replies wait (past
    output_queue_limit), is woken again when they are read (edge-triggered: re-armed on
    resume), and every reply comes back once, in order."""
    n, size = 60000, 200
    frames = b"".join(bytes([0x82, 0xFE, 0, size, 0, 0, 0, 0]) +  # masked, key 0
                      i.to_bytes(4, "big") + bytes(size - 4) for i in range(n))
    want = 4 + size  # 0x82 0x7E length16 payload
    with socket.create_connection(("127.0.0.1", wsd.port), timeout=20) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sender = threading.Thread(target=s.sendall, args=(UPGRADE + b"\r\n" + frames,))
        sender.start()
        time.sleep(1)
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += s.recv(65536)
        head, _, buf = buf.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101")
        got = 0
        while got < n:
            while len(buf) >= want:
                assert buf[:4] == bytes([0x82, 0x7E, 0, size]), buf[:8]
                assert int.from_bytes(buf[4:8], "big") == got
                buf = buf[want:]
                got += 1
            if got < n:
                chunk = s.recv(1 << 20)
                assert chunk, "closed after %d of %d replies" % (got, n)
                buf += chunk
        sender.join(20)
        assert not sender.is_alive()
        assert buf == b""


def test_backlog_of_megabytes_is_read_without_new_bytes_arriving():
    """The worker is stopped while 3 MB of unsolicited pongs and one text message pile up
    in its socket (whose receive buffer grew on an earlier 24 MB), then continued: it
    takes a few full read buffers per event and must come back for the rest by itself,
    since nothing is written until the last message and the last byte has arrived."""
    pong = bytes([0x8A, 0xFD, 0, 0, 0, 0]) + bytes(125)  # masked with key 0
    last = bytes([0x81, 0x84, 0, 0, 0, 0]) + b"last"
    with Wsd(workers=1) as w:
        worker = w.worker_pids()[0]
        with socket.create_connection(("127.0.0.1", w.port), timeout=20) as s:
            s.sendall(UPGRADE + b"\r\n" + pong * 190000)  # grows the server's buffer
            s.sendall(bytes([0x81, 0x84, 0, 0, 0, 0]) + b"sync")
            got = b""
            while not got.endswith(b"\x81\x04sync"):
                got += s.recv(65536)
            os.kill(worker, signal.SIGSTOP)
            sender = threading.Thread(target=s.sendall, args=(pong * 24000 + last,))
            try:
                sender.start()
                time.sleep(0.5)
            finally:
                os.kill(worker, signal.SIGCONT)
            got = b""
            while not got.endswith(b"\x81\x04last"):
                chunk = s.recv(65536)
                assert chunk, "closed before the echo"
                got += chunk
            sender.join(20)


def test_failed_connection_is_dropped_when_peer_never_answers_the_close():
    with Wsd(workers=1, extra="close_timeout 1") as w:
        with socket.create_connection(("127.0.0.1", w.port), timeout=6) as s:
            s.sendall(UPGRADE + b"\r\n")
            head = b""
            while b"\r\n\r\n" not in head:
                head += s.recv(4096)
            # a masked 2-byte text frame with invalid UTF-8 makes the server close (1007)
            s.sendall(bytes([0x81, 0x82, 0, 0, 0, 0, 0xc3, 0x28]))
            t0 = __import__("time").monotonic()
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            elapsed = __import__("time").monotonic() - t0
        assert data[0] == 0x88 and data[2:4] == b"\x03\xef", data  # close 1007 first
        assert elapsed < 3.5, elapsed
