"""Category 7: the closing handshake (RFC 6455 5.5.1, 7.1, 7.4). The server answers a client
close frame with a close frame carrying the same status code (an empty close gets an empty
close or 1000), then closes TCP. Codes that may not appear on the wire, a 1-byte close
payload and a control payload over 125 bytes are protocol errors (1002); a reason that is
not UTF-8 is 1007. Nothing the client sends after its close frame is processed."""

import time

import pytest

from wsraw import OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_TEXT, close_payload, frame

VALID_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999]
INVALID_CODES = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]


def test_7_1_1_close_1000(ws):
    """7.1.1: close 1000 gets close 1000, then the server closes TCP (recv returns EOF)."""
    ws.send_close(1000)
    ws.expect_close(1000, reply=False)


def test_7_1_2_close_without_payload(ws):
    """7.1.2: an empty close gets an empty close or close 1000, then TCP close."""
    ws.send_close()
    ws.expect_close((None, 1000), reply=False)


def test_7_1_3_ping_after_close_not_answered(ws):
    """7.1.3: close 1000 then a ping in one write: the close is answered, the ping is not."""
    ws.send(frame(OP_CLOSE, close_payload(1000)) + frame(OP_PING, "after close"))
    ws.expect_close(1000, reply=False)


def test_7_1_4_text_after_close_ignored(ws):
    """7.1.4: close 1000 then a text and a binary in one write: no echo, just the close."""
    ws.send(frame(OP_CLOSE, close_payload(1000)) + frame(OP_TEXT, "after close")
            + frame(OP_BINARY, b"after close"))
    ws.expect_close(1000, reply=False)


def test_7_1_5_fragment_close_fragment(ws):
    """7.1.5: a non-final fragment, a close, the final fragment: only the close answer."""
    ws.send(frame(OP_TEXT, "fragment1", fin=False) + frame(OP_CLOSE, close_payload(1000))
            + frame(OP_CONT, "fragment2"))
    ws.expect_close(1000, reply=False)


def test_7_1_6_message_then_close(ws):
    """7.1.6: a text then a close in one write: the echo, then close 1000."""
    ws.send(frame(OP_TEXT, "before close") + frame(OP_CLOSE, close_payload(1000)))
    ws.expect_echo(OP_TEXT, "before close")
    ws.expect_close(1000, reply=False)


def test_7_1_7_data_after_close_later(ws):
    """7.1.7: close 1000, then 50 ms later a text (written unless the server already reset):
    the close answer, no echo, then TCP close."""
    ws.send_close(1000)
    time.sleep(0.05)
    try:
        ws.send_frame(OP_TEXT, "too late")
    except OSError:
        pass
    ws.expect_close(1000, reply=False)


@pytest.mark.parametrize("code", VALID_CODES, ids=lambda c: "7.7.%d" % c)
def test_7_7_valid_code_echoed(ws, code):
    """7.7.<code>: a close with a valid code gets a close with the same code, then TCP close."""
    ws.send_close(code)
    ws.expect_close(code, reply=False)


@pytest.mark.parametrize("code", INVALID_CODES, ids=lambda c: "7.9.%d" % c)
def test_7_9_invalid_code_rejected(ws, code):
    """7.9.<code>: a close with a code that may not be sent (reserved, unassigned below
    3000, or out of range) is a protocol error: close 1002, then TCP close."""
    ws.send_close(code)
    ws.expect_close(1002, reply=False)


def test_7_3_1_one_byte_payload(ws):
    """7.3.1: a close payload of one byte is a protocol error: close 1002."""
    ws.send_frame(OP_CLOSE, b"\x03")
    ws.expect_close(1002, reply=False)


def test_7_3_2_reason_of_123_bytes(ws):
    """7.3.2: close 1000 with a 123-byte reason (125-byte payload) gets close 1000."""
    ws.send_close(1000, "r" * 123)
    ws.expect_close(1000, reply=False)


def test_7_3_3_reason_of_124_bytes(ws):
    """7.3.3: a 124-byte reason makes a 126-byte control payload: close 1002."""
    ws.send_close(1000, "r" * 124)
    ws.expect_close(1002, reply=False)


def test_7_3_4_multibyte_utf8_reason(ws):
    """7.3.4: close 1000 with a valid multi-byte UTF-8 reason gets close 1000."""
    ws.send_close(1000, "κόσμε 𝄞 €")
    ws.expect_close(1000, reply=False)


@pytest.mark.parametrize("reason", [b"\xff", b"bad \xed\xa0\x80 reason", b"cut \xe2\x82",
                                    b"\xc0\xaf"],
                         ids=["7.5.1-ff", "7.5.2-surrogate", "7.5.3-truncated", "7.5.4-overlong"])
def test_7_5_invalid_utf8_reason(ws, reason):
    """7.5.x: a close reason that is not valid UTF-8: close 1007."""
    ws.send_close(1000, reason)
    ws.expect_close(1007, reply=False)


def test_7_13_1_server_reason_is_utf8_and_short(ws):
    """7.13.1: the server's close frame after an error is at most 125 bytes with a UTF-8
    reason (checked by the client's frame parser) and a 1002 code."""
    ws.send_frame(OP_PING, b"x" * 200)
    code, reason = ws.expect_close(1002)
    assert len(reason.encode("utf-8")) <= 123


def test_7_13_2_close_written_byte_by_byte(ws):
    """7.13.2: a close frame written one byte at a time (2 ms apart) is answered."""
    ws.send_chopped(frame(OP_CLOSE, close_payload(1001, "bye")), 1, 0.002)
    ws.expect_close(1001, reply=False)
