"""Category 2: ping and pong (RFC 6455 5.5.2, 5.5.3). Every ping is answered by a pong with
the same payload; a pong nobody asked for is ignored; a control frame over 125 bytes is a
protocol error."""

import time

import wsraw
from wsraw import OP_BINARY, OP_PING, OP_PONG, OP_TEXT

BINARY_125 = bytes((i * 37 + 11) & 0xFF for i in range(125))


def test_2_1_ping_without_payload(ws):
    """2.1: a ping with an empty payload gets an empty pong."""
    ws.send_frame(OP_PING)
    ws.expect_pong(b"")


def test_2_2_ping_with_text_payload(ws):
    """2.2: a ping with a small text payload gets a pong with the same bytes."""
    ws.send_frame(OP_PING, "Hello, world!")
    ws.expect_pong("Hello, world!")


def test_2_3_ping_with_binary_payload(ws):
    """2.3: a ping with arbitrary bytes (0x00, 0xff, invalid UTF-8) gets them back."""
    payload = b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff"
    ws.send_frame(OP_PING, payload)
    ws.expect_pong(payload)


def test_2_4_ping_with_125_bytes(ws):
    """2.4: a ping of 125 bytes (the largest control payload) gets a 125-byte pong."""
    ws.send_frame(OP_PING, BINARY_125)
    ws.expect_pong(BINARY_125)


def test_2_5_ping_with_126_bytes_fails(ws):
    """2.5: a ping of 126 bytes is a protocol error: close 1002, no pong."""
    ws.send_frame(OP_PING, b"\xfe" * 126)
    ws.expect_close(1002)


def test_2_6_ping_written_byte_by_byte(ws):
    """2.6: a 125-byte ping written one byte at a time, 1 ms apart, gets its pong."""
    ws.send_chopped(wsraw.frame(OP_PING, BINARY_125), 1, 0.001)
    ws.expect_pong(BINARY_125)


def test_2_7_unsolicited_empty_pong_ignored(ws):
    """2.7: an empty pong nobody asked for is ignored: the next thing sent back is the echo
    of the text that followed it, and the connection stays open."""
    ws.send(wsraw.frame(OP_PONG) + wsraw.frame(OP_TEXT, "after pong"))
    ws.expect_echo(OP_TEXT, "after pong")
    ws.send_frame(OP_TEXT, "still open")
    ws.expect_echo(OP_TEXT, "still open")


def test_2_8_unsolicited_pong_with_payload_ignored(ws):
    """2.8: an unsolicited pong with a payload is ignored likewise."""
    ws.send(wsraw.frame(OP_PONG, "unsolicited pong payload") + wsraw.frame(OP_BINARY, b"\x01"))
    ws.expect_echo(OP_BINARY, b"\x01")


def test_2_9_unsolicited_pong_then_ping(ws):
    """2.9: an unsolicited pong followed by a ping: only the ping is answered."""
    ws.send(wsraw.frame(OP_PONG, "unsolicited") + wsraw.frame(OP_PING, "solicited"))
    ws.expect_pong("solicited")
    ws.send_frame(OP_TEXT, "end")
    ws.expect_echo(OP_TEXT, "end")


def test_2_10_ten_pings_in_one_write(ws):
    """2.10: ten pings in one write get ten pongs, each with its ping's payload, in order."""
    payloads = [("payload-%d" % i).encode() for i in range(10)]
    ws.send(b"".join(wsraw.frame(OP_PING, p) for p in payloads))
    for p in payloads:
        ws.expect_pong(p)


def test_2_11_ten_pings_in_separate_writes(ws):
    """2.11: ten pings written 10 ms apart get ten pongs in order."""
    payloads = [("ping-%d" % i).encode() * (i + 1) for i in range(10)]
    for p in payloads:
        ws.send_frame(OP_PING, p)
        time.sleep(0.01)
    for p in payloads:
        ws.expect_pong(p)


def test_2_12_ping_between_messages_in_one_write(ws):
    """2.12: text, ping, binary in one write: both echoes in order and the pong."""
    ws.send(wsraw.frame(OP_TEXT, "one") + wsraw.frame(OP_PING, "p") + wsraw.frame(OP_BINARY, b"2"))
    ws.expect_sequence([(OP_TEXT, "one"), (OP_PONG, "p"), (OP_BINARY, b"2")])
