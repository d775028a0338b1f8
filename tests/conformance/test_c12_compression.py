"""Category 12: permessage-deflate (RFC 7692) with the plain offer. Compressed messages of
16 B to 256 KiB, several in a row, echo exactly (the client inflates the answers with the
agreed window and context mode); compression rules are enforced: RSV1 only on the first
frame of a data message and only when the extension was agreed (else 1002), a message that
inflates past max_message_size is refused with 1009, data that does not inflate fails the
connection, inflated text must be UTF-8 (1007)."""

import random

import pytest

import wsraw
from wsraw import OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, RSV1, frame

SIZES = [16, 64, 256, 1024, 4096, 8192, 16384, 32768, 65536, 131072, 262144]
MESSAGES = 10
MIB = 1024 * 1024

WORDS = ("the quick brown fox jumps over a lazy dog while seven wizards box and quiz "
         "κόσμε über naïve façade 東京 𝄞 ünïcödé").split()


def compressible_text(size, seed):
    return wsraw.utf8_text(size, seed)


def word_text(size, seed):
    rnd = random.Random(seed)
    out = " ".join(rnd.choice(WORDS) for _ in range(size // 3 + 4)).encode("utf-8")
    cut = out[:size]
    while True:
        try:
            cut.decode("utf-8")
            return cut + b"." * (size - len(cut))
        except UnicodeDecodeError:
            cut = cut[:-1]


def compressible_binary(size, seed):
    unit = bytes((seed * 7 + i * 13) & 0xFF for i in range(97)) + b"\x00" * 31
    return (unit * (size // len(unit) + 1))[:size]


KINDS = [
    (1, OP_TEXT, compressible_text, None, "text-repetitive"),
    (2, OP_BINARY, wsraw.random_bytes, None, "binary-random"),
    (3, OP_TEXT, word_text, None, "text-words"),
    (4, OP_BINARY, compressible_binary, None, "binary-repetitive"),
    (5, OP_TEXT, word_text, 1024, "text-words-1KiB-fragments"),
]


def open_deflate(connect, **offer):
    ws = connect(offers=[offer])
    assert ws.deflate is not None, "server declined the offer %r" % wsraw.offer_string(offer)
    return ws


CASES = [pytest.param(op, gen, frag, size, id="12.%d.%d-%s-%d" % (g, i, name, size))
         for g, op, gen, frag, name in KINDS for i, size in enumerate(SIZES, 1)]


@pytest.mark.parametrize("opcode,gen,frag,size", CASES)
def test_12_compressed_messages(connect, opcode, gen, frag, size):
    """12.<kind>.<n>: ten compressed messages of the size, each different, written at once
    (context takeover on both sides), echo exactly and in order."""
    ws = open_deflate(connect)
    payloads = [gen(size, size + i) for i in range(MESSAGES)]
    ws.send_background(b"".join(ws.build_message(opcode, p, frag=frag) for p in payloads))
    for p in payloads:
        ws.expect_echo(opcode, p, timeout=15.0)
    assert ws.join_senders() == [None]


@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["12.6.1-text", "12.6.2-binary"])
def test_12_6_empty_compressed_message(connect, opcode):
    """12.6.x: an empty message compressed (payload 0x00) echoes as an empty message."""
    ws = open_deflate(connect)
    ws.send_message(opcode, b"")
    ws.expect_echo(opcode, b"")


def test_12_6_3_uncompressed_messages_on_deflate_connection(connect):
    """12.6.3: with deflate agreed the client may still send messages uncompressed (RSV1
    clear); compressed and plain messages interleaved all echo."""
    ws = open_deflate(connect)
    data = b""
    payloads = [word_text(2000, i) for i in range(6)]
    for i, p in enumerate(payloads):
        data += ws.build_message(OP_TEXT, p, compress=i % 2 == 0)
    ws.send(data)
    for p in payloads:
        ws.expect_echo(OP_TEXT, p)


def test_12_6_4_ping_inside_compressed_fragmented_message(connect):
    """12.6.4: a compressed text in 3 fragments with a ping after the first: pong first (the
    message is still open), then the echo."""
    ws = open_deflate(connect)
    payload = word_text(5000, 7)
    body = ws.deflate.compress(payload)
    third = len(body) // 3
    ws.send(frame(OP_TEXT, body[:third], fin=False, rsv=RSV1) + frame(OP_PING, "mid")
            + frame(OP_CONT, body[third:2 * third], fin=False) + frame(OP_CONT, body[2 * third:]))
    ws.expect_pong("mid")
    ws.expect_echo(OP_TEXT, payload)


def zeros_bomb(size):
    return wsraw.compress_raw(b"\x00" * size, 15)


@pytest.mark.parametrize("opcode,size,frag", [
    pytest.param(OP_BINARY, 20 * MIB, None, id="12.7.1-binary-20MiB-one-frame"),
    pytest.param(OP_TEXT, 20 * MIB, None, id="12.7.2-text-20MiB-one-frame"),
    pytest.param(OP_BINARY, 20 * MIB, 4096, id="12.7.3-binary-20MiB-4KiB-fragments"),
    pytest.param(OP_BINARY, 16 * MIB + 1, None, id="12.7.4-binary-16MiB+1"),
])
def test_12_7_decompression_bomb(connect, opcode, size, frag):
    """12.7.x: a compressed message of about 20 KiB that inflates to more than
    max_message_size (zeros; text zeros are valid UTF-8): close 1009, no echo."""
    ws = open_deflate(connect)
    body = zeros_bomb(size)
    assert len(body) < 64 * 1024
    if frag is None:
        ws.send(frame(opcode, body, rsv=RSV1))
    else:
        ws.send(wsraw.fragments(opcode, body, frag, rsv=RSV1))
    ws.expect_close(1009)


def test_12_8_1_rsv1_on_continuation_of_compressed_message(connect):
    """12.8.1: a compressed message whose continuation frame also has RSV1: close 1002."""
    ws = open_deflate(connect)
    body = ws.deflate.compress(word_text(3000, 8))
    half = len(body) // 2
    ws.send(frame(OP_TEXT, body[:half], fin=False, rsv=RSV1)
            + frame(OP_CONT, body[half:], rsv=RSV1))
    ws.expect_close(1002)


def test_12_8_2_rsv1_on_continuation_of_plain_message(connect):
    """12.8.2: an uncompressed first fragment, then a continuation with RSV1: close 1002."""
    ws = open_deflate(connect)
    ws.send(frame(OP_TEXT, "plain start", fin=False) + frame(OP_CONT, "rsv1 end", rsv=RSV1))
    ws.expect_close(1002)


@pytest.mark.parametrize("opcode,payload", [
    pytest.param(OP_PING, b"ping", id="12.8.3-ping"),
    pytest.param(OP_PONG, b"pong", id="12.8.4-pong"),
    pytest.param(OP_CLOSE, wsraw.close_payload(1000), id="12.8.5-close"),
])
def test_12_8_rsv1_on_control_frame(connect, opcode, payload):
    """12.8.3-12.8.5: RSV1 on a control frame, with deflate agreed: close 1002."""
    ws = open_deflate(connect)
    ws.send(frame(OP_TEXT, "first") + frame(opcode, payload, rsv=RSV1))
    ws.expect_echo(OP_TEXT, "first")
    ws.expect_close(1002)


@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["12.9.1-text", "12.9.2-binary"])
def test_12_9_rsv1_without_negotiation(ws, opcode):
    """12.9.x: a properly compressed message with RSV1 on a connection where no extension
    was agreed: close 1002, no echo."""
    ws.send(frame(opcode, wsraw.compress_raw(b"compressed but not agreed"), rsv=RSV1))
    ws.expect_close(1002)


def test_12_10_1_corrupt_deflate_data(connect):
    """12.10.1: RSV1 with bytes that are not a deflate stream (reserved block type): the
    connection fails with 1002 or 1007, no echo."""
    ws = open_deflate(connect)
    ws.send(frame(OP_BINARY, b"\xff\xff\xff\xff\xff", rsv=RSV1))
    ws.expect_close((1002, 1007))


def test_12_10_2_inflated_text_not_utf8(connect):
    """12.10.2: a compressed text whose inflated bytes are not UTF-8: close 1007."""
    ws = open_deflate(connect)
    ws.send(frame(OP_TEXT, ws.deflate.compress(b"valid then \xed\xa0\x80 surrogate"), rsv=RSV1))
    ws.expect_close(1007)


def test_12_10_3_inflated_fragmented_text_not_utf8(connect):
    """12.10.3: the same in a fragmented compressed message: close 1007."""
    ws = open_deflate(connect)
    body = ws.deflate.compress(word_text(4000, 9) + b"\xff" + word_text(4000, 10))
    ws.send(wsraw.fragments(OP_TEXT, body, 500, rsv=RSV1))
    ws.expect_close(1007)
