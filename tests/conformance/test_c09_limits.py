"""Category 9: limits. With max_message_size 16m, messages of exactly 16 MiB echo whether
sent as one frame (cases 1.1.9 and 1.2.9) or in 64 KiB fragments; many small messages
pipelined in one write all echo in order; a frame header announcing more than the limit is
refused with 1009 at once, before any payload is sent; a fragmented message growing past the
limit is refused with 1009."""

import pytest

import wsraw
from wsraw import OP_BINARY, OP_CONT, OP_PING, OP_PONG, OP_TEXT, frame

MIB = 1024 * 1024
LIMIT = 16 * MIB
BIG_TIMEOUT = 30.0


@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["9.1.1-text", "9.1.2-binary"])
def test_9_1_sixteen_mib_in_64k_fragments(ws, opcode):
    """9.1.1, 9.1.2: a 16 MiB message in 256 fragments of 64 KiB echoes whole."""
    payload = (wsraw.utf8_text(LIMIT, 91) if opcode == OP_TEXT
               else wsraw.random_bytes(LIMIT, 92))
    ws.send_background(wsraw.fragments(opcode, payload, 64 * 1024))
    ws.expect_echo(opcode, payload, timeout=BIG_TIMEOUT)
    assert ws.join_senders() == [None]


@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["9.2.1-text", "9.2.2-binary"])
def test_9_2_thousand_small_messages_pipelined(ws, opcode):
    """9.2.1, 9.2.2: 1000 messages of 16 bytes in a single write echo, all, in order."""
    payloads = [("msg %05d payload" % i)[:16].encode() for i in range(1000)]
    ws.send(b"".join(frame(opcode, p) for p in payloads))
    for p in payloads:
        ws.expect_echo(opcode, p)


def test_9_2_3_pipelined_messages_and_pings(ws):
    """9.2.3: 500 texts with a ping after every tenth, one write: 500 echoes in order and 50
    pongs in order."""
    data, expected = b"", []
    for i in range(500):
        data += frame(OP_TEXT, "m%d" % i)
        expected.append((OP_TEXT, "m%d" % i))
        if i % 10 == 9:
            data += frame(OP_PING, "p%d" % i)
            expected.append((OP_PONG, "p%d" % i))
    ws.send(data)
    ws.expect_sequence(expected)


@pytest.mark.parametrize("opcode,length", [
    pytest.param(OP_BINARY, 17 * MIB, id="9.3.1-binary-17MiB"),
    pytest.param(OP_TEXT, 17 * MIB, id="9.3.2-text-17MiB"),
    pytest.param(OP_BINARY, LIMIT + 1, id="9.3.3-binary-16MiB+1"),
    pytest.param(OP_BINARY, 2 ** 62, id="9.3.4-binary-2^62"),
])
def test_9_3_declared_length_over_limit(ws, opcode, length):
    """9.3.x: a frame header announcing more than max_message_size, with no payload after it:
    close 1009 within 2 s (the server must not wait for the payload)."""
    ws.send(frame(opcode, b"", length=length))
    ws.expect_close(1009, timeout=2.0)


def test_9_3_5_fragment_header_over_limit(ws):
    """9.3.5: a 1 MiB first fragment, then a continuation header announcing 15 MiB + 1 (the
    total passes the limit by one byte) with no payload: close 1009 within 2 s."""
    ws.send_background(frame(OP_BINARY, wsraw.random_bytes(MIB, 93), fin=False)
                       + frame(OP_CONT, b"", length=15 * MIB + 1))
    ws.expect_close(1009, timeout=5.0)
    ws.join_senders()


def test_9_3_6_fragmented_total_over_limit(ws):
    """9.3.6: 64 KiB fragments adding up to 16 MiB + 64 KiB (the last one final): close 1009
    and no echo, at the latest once the fragment that passes the limit arrives."""
    chunk = wsraw.random_bytes(64 * 1024, 94)
    count = LIMIT // len(chunk) + 1
    data = b"".join(frame(OP_BINARY if i == 0 else OP_CONT, chunk, fin=i == count - 1)
                    for i in range(count))
    ws.send_background(data)
    ws.expect_close(1009, timeout=BIG_TIMEOUT)
    ws.join_senders()
