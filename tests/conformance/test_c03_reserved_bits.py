"""Category 3: reserved bits (RFC 6455 5.2). With no extension negotiated, a frame with
RSV1, RSV2 or RSV3 set fails the connection with 1002. When it follows a valid message, the
valid message is echoed first; a ping written after the bad frame is never answered."""

import time

import pytest

import wsraw
from wsraw import OP_BINARY, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, RSV1, RSV2, RSV3

BAD = [
    (OP_TEXT, RSV1, "text-rsv1"),
    (OP_TEXT, RSV2, "text-rsv2"),
    (OP_TEXT, RSV3, "text-rsv3"),
    (OP_TEXT, RSV1 | RSV2 | RSV3, "text-rsv123"),
    (OP_BINARY, RSV1, "binary-rsv1"),
    (OP_BINARY, RSV2, "binary-rsv2"),
    (OP_BINARY, RSV3, "binary-rsv3"),
    (OP_BINARY, RSV2 | RSV3, "binary-rsv23"),
    (OP_PING, RSV1, "ping-rsv1"),
    (OP_PING, RSV2, "ping-rsv2"),
    (OP_PING, RSV3, "ping-rsv3"),
    (OP_PONG, RSV2, "pong-rsv2"),
    (OP_CLOSE, RSV1, "close-rsv1"),
]


def bad_frame(opcode, rsv):
    payload = wsraw.close_payload(1000) if opcode == OP_CLOSE else b"Hello, world!"
    return wsraw.frame(opcode, payload, rsv=rsv)


def params(group):
    return [pytest.param(op, rsv, id="3.%d.%d-%s" % (group, i, name))
            for i, (op, rsv, name) in enumerate(BAD, 1)]


@pytest.mark.parametrize("opcode,rsv", params(1))
def test_3_1_reserved_bits_alone(ws, opcode, rsv):
    """3.1.x: the frame with reserved bits alone: close 1002, nothing else."""
    ws.send(bad_frame(opcode, rsv))
    ws.expect_close(1002)


@pytest.mark.parametrize("opcode,rsv", params(2))
def test_3_2_reserved_bits_after_valid_message(ws, opcode, rsv):
    """3.2.x: valid text, the bad frame and a ping in one write: the echo, then close 1002;
    the ping is never answered."""
    ws.send(wsraw.frame(OP_TEXT, "valid first") + bad_frame(opcode, rsv)
            + wsraw.frame(OP_PING, "not answered"))
    ws.expect_echo(OP_TEXT, "valid first")
    ws.expect_close(1002)


@pytest.mark.parametrize("opcode,rsv", params(3))
def test_3_3_reserved_bits_frame_wise_writes(ws, opcode, rsv):
    """3.3.x: the same three frames, each in its own write 10 ms apart."""
    for data in (wsraw.frame(OP_TEXT, "valid first"), bad_frame(opcode, rsv),
                 wsraw.frame(OP_PING, "not answered")):
        try:
            ws.send(data)
        except OSError:
            break  # the server may already have closed
        time.sleep(0.01)
    ws.expect_echo(OP_TEXT, "valid first")
    ws.expect_close(1002)
