"""Category 4: reserved opcodes (RFC 6455 5.2). Non-control opcodes 0x3-0x7 and control
opcodes 0xB-0xF fail the connection with 1002, after the echo of a valid message sent before
them; a ping sent after them is never answered."""

import pytest

import wsraw
from wsraw import OP_PING, OP_TEXT

NON_CONTROL = [0x3, 0x4, 0x5, 0x6, 0x7]
CONTROL = [0xB, 0xC, 0xD, 0xE, 0xF]


def cases(group, opcodes):
    return [pytest.param(op, id="4.%d.%d-opcode-%#x" % (group, i, op))
            for i, op in enumerate(opcodes, 1)]


@pytest.mark.parametrize("opcode", cases(1, NON_CONTROL) + cases(2, CONTROL))
def test_4_reserved_opcode_after_valid_message(ws, opcode):
    """4.1.x (0x3-0x7), 4.2.x (0xB-0xF): valid text, a frame with the reserved opcode and a
    payload, and a ping in one write: the echo, then close 1002, no pong."""
    ws.send(wsraw.frame(OP_TEXT, "valid first") + wsraw.frame(opcode, b"reserved payload")
            + wsraw.frame(OP_PING, "not answered"))
    ws.expect_echo(OP_TEXT, "valid first")
    ws.expect_close(1002)


@pytest.mark.parametrize("opcode", cases(3, NON_CONTROL + CONTROL))
def test_4_3_reserved_opcode_empty_frame(ws, opcode):
    """4.3.x: an empty frame with a reserved opcode as the first frame: close 1002."""
    ws.send_frame(opcode)
    ws.expect_close(1002)


@pytest.mark.parametrize("opcode", cases(4, NON_CONTROL))
def test_4_4_reserved_non_control_opcode_without_fin(ws, opcode):
    """4.4.x: a reserved non-control opcode without FIN (a would-be fragmented message)
    followed by a continuation: close 1002, no echo."""
    ws.send(wsraw.frame(opcode, b"part one", fin=False) + wsraw.frame(0x0, b"part two"))
    ws.expect_close(1002)
