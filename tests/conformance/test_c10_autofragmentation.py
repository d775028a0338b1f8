"""Category 10: auto-fragmentation. The server may split its echo into frames as it likes;
the client reassembles (checking that the frames form one valid fragmented message: a first
frame with the data opcode, then continuations, no other data frame in between)."""

import pytest

import wsraw
from wsraw import OP_BINARY, OP_TEXT

MIB = 1024 * 1024


@pytest.mark.parametrize("opcode,frag", [
    pytest.param(OP_TEXT, None, id="10.1.1-text-one-frame"),
    pytest.param(OP_BINARY, None, id="10.1.2-binary-one-frame"),
    pytest.param(OP_TEXT, 4096, id="10.1.3-text-4KiB-fragments"),
    pytest.param(OP_BINARY, 4096, id="10.1.4-binary-4KiB-fragments"),
    pytest.param(OP_BINARY, 65535, id="10.1.5-binary-65535-fragments"),
])
def test_10_1_one_mib_message(ws, opcode, frag):
    """10.1.x: a 1 MiB message, sent whole or fragmented, comes back whole after
    reassembling however many frames the server used."""
    payload = wsraw.utf8_text(MIB, 101) if opcode == OP_TEXT else wsraw.random_bytes(MIB, 102)
    data = (wsraw.frame(opcode, payload) if frag is None
            else wsraw.fragments(opcode, payload, frag))
    ws.send_background(data)
    msg = ws.expect_echo(opcode, payload, timeout=15.0)
    assert msg.frames >= 1
    assert ws.join_senders() == [None]


def test_10_2_one_mib_compressed(connect):
    """10.2: with permessage-deflate agreed, a 1 MiB text compressed and sent in 16 KiB
    fragments comes back whole (compressed or not, fragmented or not)."""
    ws = connect(offers=[{}])
    assert ws.deflate is not None, "server declined a plain permessage-deflate offer"
    payload = wsraw.utf8_text(MIB, 103)
    ws.send_background(ws.build_message(OP_TEXT, payload, frag=16384))
    ws.expect_echo(OP_TEXT, payload, timeout=15.0)
    assert ws.join_senders() == [None]


def test_10_3_many_messages_keep_boundaries(ws):
    """10.3: twenty 100 KiB binaries in one go echo as twenty messages with the same
    boundaries, however each is fragmented."""
    payloads = [wsraw.random_bytes(100 * 1024, 110 + i) for i in range(20)]
    ws.send_background(b"".join(wsraw.frame(OP_BINARY, p) for p in payloads))
    for p in payloads:
        ws.expect_echo(OP_BINARY, p, timeout=15.0)
    assert ws.join_senders() == [None]
