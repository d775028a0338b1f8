"""Category 1: framing. Text and binary messages of every length-encoding boundary echo
unchanged; a frame the client does not mask or whose 64-bit length has its top bit set is a
protocol error."""

import pytest

import wsraw
from wsraw import OP_BINARY, OP_TEXT

SIZES = [0, 125, 126, 127, 128, 65535, 65536]
BIG = 16 * 1024 * 1024
BIG_TIMEOUT = 30.0


def payload_for(opcode, size, seed=1):
    return wsraw.utf8_text(size, seed) if opcode == OP_TEXT else wsraw.random_bytes(size, seed)


CASES = []
for group, op in ((1, OP_TEXT), (2, OP_BINARY)):
    for i, size in enumerate(SIZES, 1):
        CASES.append(pytest.param(op, size, id="1.%d.%d-%s-%d" % (
            group, i, wsraw.OP_NAMES[op], size)))


@pytest.mark.parametrize("opcode,size", CASES)
def test_1_x_message_of_length(ws, opcode, size):
    """1.1.1-1.1.7, 1.2.1-1.2.7: one frame of the given length echoes byte for byte."""
    payload = payload_for(opcode, size)
    ws.send_frame(opcode, payload)
    ws.expect_echo(opcode, payload)


@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["1.1.8-text", "1.2.8-binary"])
def test_1_x_8_frame_written_in_chops(ws, opcode):
    """1.1.8, 1.2.8: a 65536-byte frame written in 997-byte chops echoes."""
    payload = payload_for(opcode, 65536, seed=2)
    ws.send_chopped(wsraw.frame(opcode, payload), 997)
    ws.expect_echo(opcode, payload)


@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["1.1.9-text", "1.2.9-binary"])
def test_1_x_9_sixteen_mib_single_frame(ws, opcode):
    """1.1.9, 1.2.9: a 16 MiB message (exactly max_message_size) in one frame echoes; the
    client writes it while reading, so a server that echoes early cannot dead-lock."""
    payload = payload_for(opcode, BIG, seed=3)
    ws.send_background(wsraw.frame(opcode, payload))
    ws.expect_echo(opcode, payload, timeout=BIG_TIMEOUT)
    assert ws.join_senders() == [None]


@pytest.mark.parametrize("opcode,payload", [(OP_TEXT, "hello"), (OP_BINARY, b"\x00\x01")],
                         ids=["1.3.1-text", "1.3.2-binary"])
def test_1_3_unmasked_client_frame_is_rejected(ws, opcode, payload):
    """1.3.1, 1.3.2: a client frame without mask is a protocol error (RFC 6455 5.1): close
    1002, no echo."""
    ws.send(wsraw.frame(opcode, payload, mask=False))
    ws.expect_close(1002)


def test_1_3_3_length_with_top_bit_set(ws):
    """1.3.3: a 64-bit length with the most significant bit set (RFC 6455 5.2) fails the
    connection: close 1002 (or 1009, it being over every limit), no echo."""
    ws.send(b"\x82\xff" + b"\x80\x00\x00\x00\x00\x00\x00\x05" + b"\x00\x00\x00\x00" + b"abcde")
    ws.expect_close((1002, 1009))


def test_1_3_4_zero_mask_key(ws):
    """1.3.4: a mask key of four zero bytes is a valid mask: the message echoes."""
    ws.send(wsraw.frame(OP_TEXT, "zero key", key=b"\x00\x00\x00\x00"))
    ws.expect_echo(OP_TEXT, "zero key")
