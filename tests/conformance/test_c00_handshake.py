"""Opening handshake (RFC 6455 section 4.2) and the plain HTTP answers of the echo listener."""

import socket
import time

import pytest

import wsraw
from wsraw import OP_BINARY, OP_PING, OP_PONG, OP_TEXT, WsClient


def host_of(addr):
    return "%s:%d" % addr


def exchange(addr, request):
    return wsraw.http_exchange(addr, request)


def upgrade(addr, **kw):
    """Send a handshake built with kw; return (response head, socket, bytes after the head)."""
    sock = socket.create_connection(addr, timeout=wsraw.TIMEOUT)
    sock.sendall(wsraw.handshake_request(host_of(addr), **kw))
    resp, rest = wsraw.read_http_head(sock, b"", time.monotonic() + wsraw.TIMEOUT)
    return resp, sock, rest


def test_h_1_upgrade_answers_101_with_accept(addr):
    """H.1: a valid handshake gets 101 with Upgrade, Connection and the right
    Sec-WebSocket-Accept, no extension or subprotocol, and the connection then echoes."""
    key = wsraw.handshake_key()
    resp, sock, rest = upgrade(addr, key=key)
    ws = WsClient(sock)
    try:
        assert resp.status == 101, resp
        assert resp.get("Sec-WebSocket-Accept") == wsraw.accept_for(key), resp
        assert resp.get("Upgrade").lower() == "websocket", resp
        assert "upgrade" in [t.strip().lower() for t in resp.get("Connection").split(",")], resp
        assert resp.get("Sec-WebSocket-Extensions") is None, resp
        assert resp.get("Sec-WebSocket-Protocol") is None, resp
        assert rest == b"", "server sent %s before any client frame" % wsraw.describe(rest)
        ws.send_frame(OP_TEXT, "after handshake")
        ws.expect_echo(OP_TEXT, "after handshake")
    finally:
        ws.close()


def test_h_2_accept_of_rfc_sample_key(addr):
    """H.2: the RFC 6455 section 1.3 sample key gets s3pPLMBiTxaQ9kYGzzhZRbK+xOo=."""
    resp, sock, _ = upgrade(addr, key="dGhlIHNhbXBsZSBub25jZQ==")
    sock.close()
    assert resp.status == 101, resp
    assert resp.get("Sec-WebSocket-Accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", resp


@pytest.mark.parametrize("version", ["8", "7", "12", "14", "130", "0"],
                         ids=lambda v: "H.3-version-%s" % v)
def test_h_3_wrong_version_gets_426(addr, version):
    """H.3: Sec-WebSocket-Version other than 13 gets 426 naming version 13 (RFC 6455 4.4)."""
    resp = exchange(addr, wsraw.handshake_request(host_of(addr), version=version))
    assert resp.status == 426, resp
    versions = [v.strip() for v in (resp.get("Sec-WebSocket-Version") or "").split(",")]
    assert "13" in versions, resp


def test_h_4_missing_version(addr):
    """H.4: no Sec-WebSocket-Version at all gets 400 or 426 (with version 13), never 101."""
    resp = exchange(addr, wsraw.handshake_request(host_of(addr),
                                                  omit=("sec-websocket-version",)))
    assert resp.status in (400, 426), resp
    if resp.status == 426:
        assert "13" in (resp.get("Sec-WebSocket-Version") or ""), resp


def test_h_5_missing_key_gets_400(addr):
    """H.5: no Sec-WebSocket-Key gets 400."""
    resp = exchange(addr, wsraw.handshake_request(host_of(addr), omit=("sec-websocket-key",)))
    assert resp.status == 400, resp


BAD_KEYS = {
    "15-bytes": "AAAAAAAAAAAAAAAAAAAA",          # base64 of 15 bytes
    "17-bytes": "AAAAAAAAAAAAAAAAAAAAAAA=",      # base64 of 17 bytes
    "not-base64": "!!!!!!!!!!!!!!!!!!!!!!==",
    "empty": "",
    "unpadded": "dGhlIHNhbXBsZSBub25jZQ",
}


@pytest.mark.parametrize("name", sorted(BAD_KEYS), ids=lambda n: "H.6-key-%s" % n)
def test_h_6_bad_key_gets_400(addr, name):
    """H.6: a Sec-WebSocket-Key that is not base64 of exactly 16 bytes gets 400."""
    resp = exchange(addr, wsraw.handshake_request(host_of(addr), key=BAD_KEYS[name]))
    assert resp.status == 400, resp


def test_h_7_post_gets_405(addr):
    """H.7: POST to the echo path (with upgrade headers) gets 405."""
    resp = exchange(addr, wsraw.handshake_request(host_of(addr), method="POST",
                                                  extra=[("Content-Length", "0")]))
    assert resp.status == 405, resp


def test_h_8_plain_get_of_echo_path_gets_426(addr):
    """H.8: GET of the echo path without Upgrade/Connection headers gets 426."""
    request = ("GET /echo HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
               % host_of(addr)).encode()
    resp = exchange(addr, request)
    assert resp.status == 426, resp


@pytest.mark.parametrize("upgrading", [True, False], ids=["H.9-upgrade", "H.9-plain"])
def test_h_9_unknown_path_gets_404(addr, upgrading):
    """H.9: an unknown path gets 404, with or without upgrade headers."""
    if upgrading:
        request = wsraw.handshake_request(host_of(addr), path="/no/such/path")
    else:
        request = ("GET /no/such/path HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                   % host_of(addr)).encode()
    resp = exchange(addr, request)
    assert resp.status == 404, resp


def test_h_10_healthz(addr):
    """H.10: GET /healthz gets 200 with body "ok\\n"."""
    request = ("GET /healthz HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
               % host_of(addr)).encode()
    resp = exchange(addr, request)
    assert resp.status == 200, resp
    assert resp.body == b"ok\n", resp


def test_h_11_frames_pipelined_with_request_head(connect):
    """H.11: frames sent in the same write as the request head are processed: text, binary
    and ping come back as the two echoes (in order) and the pong."""
    pipelined = (wsraw.frame(OP_TEXT, "pipelined text") + wsraw.frame(OP_BINARY, b"\x00\x01\xff")
                 + wsraw.frame(OP_PING, b"pipelined ping"))
    ws = connect(pipelined=pipelined)
    ws.expect_sequence([(OP_TEXT, "pipelined text"), (OP_BINARY, b"\x00\x01\xff"),
                        (OP_PONG, b"pipelined ping")])


def test_h_12_header_case_and_token_lists(addr):
    """H.12: header names are case-insensitive, "WebSocket" matches, and Connection may be a
    list ("keep-alive, Upgrade", as Firefox sends)."""
    key = wsraw.handshake_key()
    request = ("GET /echo HTTP/1.1\r\nhost: %s\r\nuPgRaDe: WebSocket\r\n"
               "connection: keep-alive, Upgrade\r\nsec-websocket-key: %s\r\n"
               "SEC-WEBSOCKET-VERSION: 13\r\n\r\n" % (host_of(addr), key)).encode()
    with socket.create_connection(addr, timeout=wsraw.TIMEOUT) as sock:
        sock.sendall(request)
        resp, _ = wsraw.read_http_head(sock, b"", time.monotonic() + wsraw.TIMEOUT)
    assert resp.status == 101, resp
    assert resp.get("Sec-WebSocket-Accept") == wsraw.accept_for(key), resp


def test_h_13_unknown_extension_is_not_answered(connect):
    """H.13: an offer of an unknown extension is ignored: 101 without the extension, and
    frames then work without it."""
    ws = connect(extensions="x-wsd-unknown; foo=1, x-other")
    assert ws.response.get("Sec-WebSocket-Extensions") is None, ws.response
    ws.send_frame(OP_TEXT, "plain")
    ws.expect_echo(OP_TEXT, "plain")


def test_h_14_request_head_byte_by_byte(addr):
    """H.14: a request head written one byte at a time (1 ms apart) still upgrades."""
    key = wsraw.handshake_key()
    request = wsraw.handshake_request(host_of(addr), key=key)
    sock = socket.create_connection(addr, timeout=wsraw.TIMEOUT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    ws = WsClient(sock)
    try:
        ws.send_chopped(request, 1, 0.001)
        resp, rest = wsraw.read_http_head(sock, b"", time.monotonic() + wsraw.TIMEOUT)
        assert resp.status == 101, resp
        assert resp.get("Sec-WebSocket-Accept") == wsraw.accept_for(key), resp
        ws.buf += rest
        ws.send_frame(OP_TEXT, "slow head")
        ws.expect_echo(OP_TEXT, "slow head")
    finally:
        ws.close()
