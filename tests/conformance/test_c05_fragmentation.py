"""Category 5: fragmentation (RFC 6455 5.4). Fragmented messages are reassembled and echoed
whole; control frames may come between fragments and are handled at once; a fragmented
control frame, a continuation with no message open and a new message while one is open are
protocol errors (1002)."""

import time

import wsraw
from wsraw import OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, frame


def test_5_1_fragmented_ping(ws):
    """5.1: a ping in two fragments is a protocol error: close 1002, no pong."""
    ws.send(frame(OP_PING, "fragment1", fin=False) + frame(OP_CONT, "fragment2"))
    ws.expect_close(1002)


def test_5_2_fragmented_pong(ws):
    """5.2: a pong in two fragments is a protocol error: close 1002."""
    ws.send(frame(OP_PONG, "fragment1", fin=False) + frame(OP_CONT, "fragment2"))
    ws.expect_close(1002)


def test_5_3_text_in_two_fragments(ws):
    """5.3: text in two fragments in one write echoes as one message."""
    ws.send(frame(OP_TEXT, "fragment1", fin=False) + frame(OP_CONT, "fragment2"))
    ws.expect_echo(OP_TEXT, "fragment1fragment2")


def test_5_4_text_in_two_fragments_with_delay(ws):
    """5.4: text in two fragments written 100 ms apart echoes once complete, not before."""
    ws.send_frame(OP_TEXT, "fragment1", fin=False)
    ws.expect_silence(0.1)
    ws.send_frame(OP_CONT, "fragment2")
    ws.expect_echo(OP_TEXT, "fragment1fragment2")


def test_5_5_text_in_one_byte_fragments(ws):
    """5.5: "Hello, world!" as 13 one-byte frames echoes whole."""
    text = b"Hello, world!"
    ws.send(b"".join(frame(OP_TEXT if i == 0 else OP_CONT, text[i:i + 1],
                           fin=i == len(text) - 1) for i in range(len(text))))
    ws.expect_echo(OP_TEXT, text)


def test_5_6_binary_in_many_fragments(ws):
    """5.6: a 64 KiB binary message in 1024 frames of 64 bytes echoes whole."""
    payload = wsraw.random_bytes(65536, 56)
    ws.send(wsraw.fragments(OP_BINARY, payload, 64))
    ws.expect_echo(OP_BINARY, payload)


def test_5_7_binary_in_one_byte_fragments_written_apart(ws):
    """5.7: binary in 8 one-byte frames, each in its own write 10 ms apart."""
    payload = b"\x00\x01\x02\xfd\xfe\xff\x80\x7f"
    for i in range(len(payload)):
        ws.send_frame(OP_BINARY if i == 0 else OP_CONT, payload[i:i + 1],
                      fin=i == len(payload) - 1)
        time.sleep(0.01)
    ws.expect_echo(OP_BINARY, payload)


def test_5_8_ping_between_fragments(ws):
    """5.8: text fragment, ping, last fragment in one write: the pong comes before the echo
    (the message is not complete when the ping arrives)."""
    ws.send(frame(OP_TEXT, "fragment1", fin=False) + frame(OP_PING, "ping payload")
            + frame(OP_CONT, "fragment2"))
    ws.expect_pong("ping payload")
    ws.expect_echo(OP_TEXT, "fragment1fragment2")


def test_5_9_ping_answered_while_message_open(ws):
    """5.9: text fragment and ping written, last fragment withheld: the pong comes while the
    message is still open; then the last fragment completes the echo."""
    ws.send(frame(OP_TEXT, "fragment1", fin=False) + frame(OP_PING, "mid-message"))
    ws.expect_pong("mid-message", timeout=2.0)
    ws.send_frame(OP_CONT, "fragment2")
    ws.expect_echo(OP_TEXT, "fragment1fragment2")


def test_5_10_ping_between_fragments_frame_wise(ws):
    """5.10: fragment, ping, fragment, each in its own write 50 ms apart."""
    for data in (frame(OP_BINARY, b"\x01\x02", fin=False), frame(OP_PING, b"\x03"),
                 frame(OP_CONT, b"\x04\x05")):
        ws.send(data)
        time.sleep(0.05)
    ws.expect_pong(b"\x03")
    ws.expect_echo(OP_BINARY, b"\x01\x02\x04\x05")


def test_5_11_pong_between_fragments(ws):
    """5.11: an unsolicited pong between two fragments is ignored: only the echo comes."""
    ws.send(frame(OP_TEXT, "fragment1", fin=False) + frame(OP_PONG, "pong")
            + frame(OP_CONT, "fragment2"))
    ws.expect_echo(OP_TEXT, "fragment1fragment2")
    ws.expect_silence(0.05)


def test_5_12_pings_between_each_fragment(ws):
    """5.12: a 20-byte text in one-byte frames with a ping after each: 20 pongs in order,
    then the echo."""
    text = b"abcdefghijklmnopqrst"
    data = b""
    for i in range(len(text)):
        data += frame(OP_TEXT if i == 0 else OP_CONT, text[i:i + 1], fin=i == len(text) - 1)
        data += frame(OP_PING, b"p%d" % i)
    ws.send(data)
    got = ws.expect_sequence([(OP_PONG, b"p%d" % i) for i in range(19)] + [
        (OP_TEXT, text), (OP_PONG, b"p19")])
    assert [m.opcode for m in got[:19]] == [OP_PONG] * 19, got


def test_5_13_continuation_without_message_fin(ws):
    """5.13: a final continuation frame with no message open: close 1002, no echo."""
    ws.send_frame(OP_CONT, "orphan continuation")
    ws.expect_close(1002)


def test_5_14_continuation_without_message_nofin(ws):
    """5.14: a non-final continuation then a final one, no message open: close 1002."""
    ws.send(frame(OP_CONT, "orphan1", fin=False) + frame(OP_CONT, "orphan2"))
    ws.expect_close(1002)


def test_5_15_continuation_after_complete_message(ws):
    """5.15: a complete text, then a continuation: the echo, then close 1002."""
    ws.send(frame(OP_TEXT, "complete") + frame(OP_CONT, "too late"))
    ws.expect_echo(OP_TEXT, "complete")
    ws.expect_close(1002)


def test_5_16_new_text_while_fragmented_text_open(ws):
    """5.16: a non-final text, then a final text (a new message while one is open):
    close 1002, no echo of either."""
    ws.send(frame(OP_TEXT, "open", fin=False) + frame(OP_TEXT, "new message"))
    ws.expect_close(1002)


def test_5_17_new_binary_fragment_while_text_open(ws):
    """5.17: a non-final text, then a non-final binary: close 1002."""
    ws.send(frame(OP_TEXT, "open", fin=False) + frame(OP_BINARY, b"other", fin=False)
            + frame(OP_CONT, b"end"))
    ws.expect_close(1002)


def test_5_18_new_message_after_delay(ws):
    """5.18: a non-final binary, 100 ms later a final binary: close 1002."""
    ws.send_frame(OP_BINARY, b"open", fin=False)
    time.sleep(0.1)
    ws.send_frame(OP_BINARY, b"new")
    ws.expect_close(1002)


def test_5_19_empty_fragments(ws):
    """5.19: a text made of three empty fragments echoes as an empty text."""
    ws.send(frame(OP_TEXT, b"", fin=False) + frame(OP_CONT, b"", fin=False)
            + frame(OP_CONT, b""))
    ws.expect_echo(OP_TEXT, b"")


def test_5_20_empty_first_and_last_fragment(ws):
    """5.20: an empty first fragment, then data, then an empty final fragment."""
    ws.send(frame(OP_BINARY, b"", fin=False) + frame(OP_CONT, b"middle", fin=False)
            + frame(OP_CONT, b""))
    ws.expect_echo(OP_BINARY, b"middle")


def test_5_21_close_inside_fragmented_message(ws):
    """5.21: a non-final text then a close 1000: the server answers the close (control frames
    may come between fragments), echoing nothing, and closes TCP."""
    ws.send(frame(OP_TEXT, "never finished", fin=False)
            + frame(OP_CLOSE, wsraw.close_payload(1000)))
    ws.expect_close(1000, reply=False)


def test_5_22_two_fragmented_messages_back_to_back(ws):
    """5.22: two fragmented messages (text then binary) back to back echo in order."""
    ws.send(frame(OP_TEXT, "a1", fin=False) + frame(OP_CONT, "a2", fin=False)
            + frame(OP_CONT, "a3") + frame(OP_BINARY, b"b1", fin=False) + frame(OP_CONT, b"b2"))
    ws.expect_echo(OP_TEXT, "a1a2a3")
    ws.expect_echo(OP_BINARY, b"b1b2")
