"""Category 6: UTF-8 in text messages (RFC 6455 8.1, RFC 3629). Valid text echoes, however it
is fragmented; invalid text fails the connection with 1007. The server fails fast: once a
fragment holding a byte that cannot start or continue valid UTF-8 arrives, it closes with
1007 without waiting for the rest of the message. A sequence cut off at the end of a
non-final fragment is not an error (its rest may follow); at the end of the message it is.

The samples follow the sections of Markus Kuhn's UTF-8 decoder stress test
(UTF-8-test.txt), judged by RFC 3629: code points above U+10FFFF, surrogates and overlong
forms are invalid; noncharacters are valid.
"""

import time

import pytest

import wsraw
from wsraw import OP_CONT, OP_PING, OP_TEXT, frame

# "κόσμε" as in Kuhn's file, with U+1F79 (Greek small omicron with oxia), 3 bytes.
KOSME = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"
HELLO = "Hello-µ@ßöäüàá-UTF-8!!".encode("utf-8")

# (Kuhn section, description, bytes)
VALID = [
    ("1", "kosme", KOSME),
    ("1", "hello-dollar", b"hello\x24world"),
    ("1", "hello-cent", b"hello\xc2\xa2world"),
    ("1", "hello-euro", b"hello\xe2\x82\xacworld"),
    ("1", "hello-U+24B62", b"hello\xf0\xa4\xad\xa2world"),
    ("1", "hello-umlauts", HELLO),
    ("2.1.1", "U+0000", b"\x00"),
    ("2.1.2", "U+0080", b"\xc2\x80"),
    ("2.1.3", "U+0800", b"\xe0\xa0\x80"),
    ("2.1.4", "U+10000", b"\xf0\x90\x80\x80"),
    ("2.2.1", "U+007F", b"\x7f"),
    ("2.2.2", "U+07FF", b"\xdf\xbf"),
    ("2.2.3", "U+FFFF", b"\xef\xbf\xbf"),
    ("2.2", "U+10FFFF", b"\xf4\x8f\xbf\xbf"),
    ("2.3.1", "U+D7FF", b"\xed\x9f\xbf"),
    ("2.3.2", "U+E000", b"\xee\x80\x80"),
    ("2.3.3", "U+FFFD", b"\xef\xbf\xbd"),
    ("2.3.4", "U+10FFFF", b"\xf4\x8f\xbf\xbf"),
    ("5.3.1", "U+FFFE", b"\xef\xbf\xbe"),
    ("5.3.2", "U+FDD0-U+FDEF", "".join(chr(c) for c in range(0xFDD0, 0xFDF0)).encode()),
    ("5.3.3", "plane-noncharacters",
     "".join(chr(p * 0x10000 + 0xFFFE) + chr(p * 0x10000 + 0xFFFF)
             for p in range(1, 17)).encode()),
    ("specials", "U+FFF9-U+FFFF", "".join(chr(c) for c in range(0xFFF9, 0x10000)).encode()),
    ("all", "every-2-byte", "".join(chr(c) for c in range(0x80, 0x800)).encode()),
    ("all", "3-byte-boundaries",
     "".join(chr(c) for c in (0x800, 0xFFF, 0x1000, 0xCFFF, 0xD000, 0xD7FF, 0xE000,
                              0xEFFF, 0xF000, 0xFFFF)).encode()),
    ("all", "4-byte-boundaries",
     "".join(chr(c) for c in (0x10000, 0x3FFFF, 0x40000, 0xFFFFF, 0x100000,
                              0x10FFFF)).encode()),
]
# Every prefix of "κόσμε" that ends on a character boundary is valid.
for _n in range(1, len(KOSME) + 1):
    try:
        KOSME[:_n].decode("utf-8")
        VALID.append(("1", "kosme-prefix-%d" % _n, KOSME[:_n]))
    except UnicodeDecodeError:
        pass

LAST_CONT_MISSING = [b"\xc0", b"\xe0\x80", b"\xf0\x80\x80", b"\xf8\x80\x80\x80",
                     b"\xfc\x80\x80\x80\x80", b"\xdf", b"\xef\xbf", b"\xf7\xbf\xbf",
                     b"\xfb\xbf\xbf\xbf", b"\xfd\xbf\xbf\xbf\xbf"]

INVALID = [
    ("2.1.5", "5-byte-first", b"\xf8\x88\x80\x80\x80"),
    ("2.1.6", "6-byte-first", b"\xfc\x84\x80\x80\x80\x80"),
    ("2.2.4", "U+1FFFFF", b"\xf7\xbf\xbf\xbf"),
    ("2.2.5", "5-byte-last", b"\xfb\xbf\xbf\xbf\xbf"),
    ("2.2.6", "6-byte-last", b"\xfd\xbf\xbf\xbf\xbf\xbf"),
    ("2.3.5", "U+110000", b"\xf4\x90\x80\x80"),
    ("3.1.1", "cont-80", b"\x80"),
    ("3.1.2", "cont-bf", b"\xbf"),
    ("3.1.3", "cont-2", b"\x80\xbf"),
    ("3.1.4", "cont-3", b"\x80\xbf\x80"),
    ("3.1.5", "cont-4", b"\x80\xbf\x80\xbf"),
    ("3.1.6", "cont-5", b"\x80\xbf\x80\xbf\x80"),
    ("3.1.7", "cont-6", b"\x80\xbf\x80\xbf\x80\xbf"),
    ("3.1.8", "cont-7", b"\x80\xbf\x80\xbf\x80\xbf\x80"),
    ("3.1.9", "all-64-cont", bytes(range(0x80, 0xC0))),
    ("3.2.1", "lonely-2-byte-starts", b"".join(bytes([b, 0x20]) for b in range(0xC0, 0xE0))),
    ("3.2.2", "lonely-3-byte-starts", b"".join(bytes([b, 0x20]) for b in range(0xE0, 0xF0))),
    ("3.2.3", "lonely-4-byte-starts", b"".join(bytes([b, 0x20]) for b in range(0xF0, 0xF8))),
    ("3.2.4", "lonely-5-byte-starts", b"".join(bytes([b, 0x20]) for b in range(0xF8, 0xFC))),
    ("3.2.5", "lonely-6-byte-starts", b"\xfc\x20\xfd\x20"),
] + [("3.3.%d" % i, "last-cont-missing-%s" % s.hex(), s)
     for i, s in enumerate(LAST_CONT_MISSING, 1)] + [
    ("3.4", "concatenated-incomplete", b"".join(LAST_CONT_MISSING)),
    ("3.5.1", "fe", b"\xfe"),
    ("3.5.2", "ff", b"\xff"),
    ("3.5.3", "fefeffff", b"\xfe\xfe\xff\xff"),
    ("4.1.1", "overlong-slash-2", b"\xc0\xaf"),
    ("4.1.2", "overlong-slash-3", b"\xe0\x80\xaf"),
    ("4.1.3", "overlong-slash-4", b"\xf0\x80\x80\xaf"),
    ("4.1.4", "overlong-slash-5", b"\xf8\x80\x80\x80\xaf"),
    ("4.1.5", "overlong-slash-6", b"\xfc\x80\x80\x80\x80\xaf"),
    ("4.2.1", "max-overlong-2", b"\xc1\xbf"),
    ("4.2.2", "max-overlong-3", b"\xe0\x9f\xbf"),
    ("4.2.3", "max-overlong-4", b"\xf0\x8f\xbf\xbf"),
    ("4.2.4", "max-overlong-5", b"\xf8\x87\xbf\xbf\xbf"),
    ("4.2.5", "max-overlong-6", b"\xfc\x83\xbf\xbf\xbf\xbf"),
    ("4.3.1", "overlong-nul-2", b"\xc0\x80"),
    ("4.3.2", "overlong-nul-3", b"\xe0\x80\x80"),
    ("4.3.3", "overlong-nul-4", b"\xf0\x80\x80\x80"),
    ("4.3.4", "overlong-nul-5", b"\xf8\x80\x80\x80\x80"),
    ("4.3.5", "overlong-nul-6", b"\xfc\x80\x80\x80\x80\x80"),
    ("5.1.1", "U+D800", b"\xed\xa0\x80"),
    ("5.1.2", "U+DB7F", b"\xed\xad\xbf"),
    ("5.1.3", "U+DB80", b"\xed\xae\x80"),
    ("5.1.4", "U+DBFF", b"\xed\xaf\xbf"),
    ("5.1.5", "U+DC00", b"\xed\xb0\x80"),
    ("5.1.6", "U+DF80", b"\xed\xbe\x80"),
    ("5.1.7", "U+DFFF", b"\xed\xbf\xbf"),
    ("5.2.1", "U+D800-U+DC00", b"\xed\xa0\x80\xed\xb0\x80"),
    ("5.2.2", "U+D800-U+DFFF", b"\xed\xa0\x80\xed\xbf\xbf"),
    ("5.2.3", "U+DB7F-U+DC00", b"\xed\xad\xbf\xed\xb0\x80"),
    ("5.2.4", "U+DB7F-U+DFFF", b"\xed\xad\xbf\xed\xbf\xbf"),
    ("5.2.5", "U+DB80-U+DC00", b"\xed\xae\x80\xed\xb0\x80"),
    ("5.2.6", "U+DB80-U+DFFF", b"\xed\xae\x80\xed\xbf\xbf"),
    ("5.2.7", "U+DBFF-U+DC00", b"\xed\xaf\xbf\xed\xb0\x80"),
    ("5.2.8", "U+DBFF-U+DFFF", b"\xed\xaf\xbf\xed\xbf\xbf"),
    ("mid", "kosme-edited-surrogate", KOSME + b"\xed\xa0\x80edited"),
    ("end", "truncated-euro", b"hello\xe2\x82"),
    ("end", "truncated-4-byte", b"hello\xf0\x9f\x98"),
]
for _n in range(1, len(KOSME)):
    try:
        KOSME[:_n].decode("utf-8")
    except UnicodeDecodeError:
        INVALID.append(("1", "kosme-cut-%d" % _n, KOSME[:_n]))


def _check_samples():
    """The sample lists are what they claim to be."""
    for _, _name, seq in VALID:
        seq.decode("utf-8")
    for _, name, seq in INVALID:
        for text in (seq, b"pre" + seq + b"post"):
            try:
                text.decode("utf-8")
            except UnicodeDecodeError:
                continue
            raise AssertionError("sample %s is valid UTF-8" % name)


_check_samples()


def ids(group, samples):
    return [pytest.param(seq, id="6.%d.%d-kuhn-%s-%s" % (group, i, sec, name))
            for i, (sec, name, seq) in enumerate(samples, 1)]


@pytest.mark.parametrize("payload", ids(1, VALID))
def test_6_1_valid_text_single_frame(ws, payload):
    """6.1.x: each valid sample in one text frame echoes unchanged."""
    ws.send_frame(OP_TEXT, payload)
    ws.expect_echo(OP_TEXT, payload)


@pytest.mark.parametrize("payload", ids(2, [v for v in VALID if len(v[2]) > 1]))
def test_6_2_valid_text_split_at_every_byte(ws, payload):
    """6.2.x: each multi-byte valid sample sent as two fragments, once for every split point
    (inside characters too; for samples over 64 bytes the first and last 16 points), and once
    as one-byte fragments: every message echoes."""
    cuts = range(1, len(payload))
    if len(payload) > 64:
        cuts = list(cuts[:16]) + list(cuts[-16:])
    for cut in cuts:
        ws.send(frame(OP_TEXT, payload[:cut], fin=False) + frame(OP_CONT, payload[cut:]))
        ws.expect_echo(OP_TEXT, payload)
    ws.send(wsraw.fragments(OP_TEXT, payload, 1))
    ws.expect_echo(OP_TEXT, payload)


def test_6_2_0_every_code_point(ws):
    """6.2.0: every Unicode scalar value U+0000..U+10FFFF (surrogates excepted) in one text
    message, sent as 65521-byte fragments whose cuts fall inside characters."""
    text = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    payload = text.encode("utf-8")
    ws.send_background(wsraw.fragments(OP_TEXT, payload, 65521))
    ws.expect_echo(OP_TEXT, payload, timeout=20)
    assert ws.join_senders() == [None]


@pytest.mark.parametrize("payload", ids(3, INVALID))
def test_6_3_invalid_text_single_frame(ws, payload):
    """6.3.x: each invalid sample in one text frame: close 1007, no echo."""
    ws.send_frame(OP_TEXT, payload)
    ws.expect_close(1007)


@pytest.mark.parametrize("payload", ids(4, INVALID))
def test_6_4_invalid_text_one_byte_fragments(ws, payload):
    """6.4.x: each invalid sample as one-byte fragments (the invalid byte arrives inside a
    message that is still open): close 1007, no echo."""
    ws.send(wsraw.fragments(OP_TEXT, payload, 1))
    ws.expect_close(1007)


@pytest.mark.parametrize("payload", ids(5, INVALID))
def test_6_5_invalid_text_with_valid_context(ws, payload):
    """6.5.x: valid text, then "pre" + sample + "post" in one text frame: the valid text
    echoes, then close 1007."""
    ws.send(frame(OP_TEXT, KOSME) + frame(OP_TEXT, b"pre" + payload + b"post"))
    ws.expect_echo(OP_TEXT, KOSME)
    ws.expect_close(1007)


# Fail fast: (first fragments, fragment with the error, description). The final fragment
# (a valid "end") is withheld until the close arrives or 2 s pass.
FAIL_FAST = [
    ([KOSME], b"\xf4\x90\x80\x80edited", "6.6.1-above-U+10FFFF-in-second-fragment"),
    ([KOSME], b"edit\xed\xa0\x80ed", "6.6.2-surrogate-in-second-fragment"),
    ([], KOSME + b"\xc0\xaf" + b"x", "6.6.3-overlong-in-first-fragment"),
    ([b"ab"], b"\xff", "6.6.4-impossible-byte-ff"),
    ([b"ab"], b"\x80", "6.6.5-lone-continuation"),
    ([b"ab\xf4"], b"\x90\x80\x80", "6.6.6-above-U+10FFFF-split-after-lead"),
    ([b"ab\xed"], b"\xa0\x80", "6.6.7-surrogate-split-after-lead"),
    ([b"ab\xe0"], b"\x80\x80", "6.6.8-overlong-3-split-after-lead"),
    ([b"ab\xf0"], b"\x8f\xbf\xbf", "6.6.9-overlong-4-split-after-lead"),
    ([b"ab\xe2\x82"], b"\x41", "6.6.10-truncated-then-ascii"),
    ([b"ab\xc2"], b"\xc2\x80", "6.6.11-lead-then-lead"),
    ([KOSME, b"\xce"], b"\xce\xba", "6.6.12-third-fragment"),
    ([b"a", b"b", b"c"], b"\xc1", "6.6.13-c1-after-one-byte-fragments"),
    ([b"ab"], b"\xf5\x80\x80\x80", "6.6.14-lead-f5"),
]


@pytest.mark.parametrize("first,bad", [pytest.param(f, b, id=i) for f, b, i in FAIL_FAST])
def test_6_6_fail_fast_on_invalid_fragment(ws, first, bad):
    """6.6.x: non-final fragments, the last of them holding a byte that makes the text
    invalid whatever follows, and the final fragment withheld: close 1007 within 2 s."""
    data = b""
    for i, piece in enumerate(first + [bad]):
        data += frame(OP_TEXT if i == 0 else OP_CONT, piece, fin=False)
    ws.send(data)
    ws.expect_close(1007, timeout=2.0)


def test_6_6_15_fail_fast_one_byte_at_a_time(ws):
    """6.6.15: "κόσμε" + ED A0 80 (a surrogate) as one-byte fragments written 5 ms apart,
    stopping right after the 0xA0 byte: close 1007 within 2 s."""
    payload = KOSME + b"\xed\xa0"
    for i in range(len(payload)):
        ws.send_frame(OP_TEXT if i == 0 else OP_CONT, payload[i:i + 1], fin=False)
        time.sleep(0.005)
    ws.expect_close(1007, timeout=2.0)


SPLIT_INVALID = [
    (b"ab\xf4", b"\x90\x80\x80cd", "6.7.1-above-U+10FFFF"),
    (b"ab\xed\xa0", b"\x80cd", "6.7.2-surrogate"),
    (b"ab\xe0\x80", b"\xafcd", "6.7.3-overlong"),
    (b"ab\xe2", b"cd", "6.7.4-truncated-before-boundary"),
    (b"ab\xf0\x9f\x98", b"cd", "6.7.5-truncated-4-byte-before-boundary"),
]


@pytest.mark.parametrize("one,two", [pytest.param(a, b, id=i) for a, b, i in SPLIT_INVALID])
def test_6_7_invalid_across_fragment_boundary(ws, one, two):
    """6.7.x: an invalid sequence split across two fragments sent together: close 1007."""
    ws.send(frame(OP_TEXT, one, fin=False) + frame(OP_CONT, two))
    ws.expect_close(1007)


@pytest.mark.parametrize("tail", [b"\xe2\x82", b"\xf0\x9f\x98", b"\xc3", b"\xf4\x8f\xbf"],
                         ids=["6.8.1-euro", "6.8.2-emoji", "6.8.3-c3", "6.8.4-U+10FFFF"])
def test_6_8_truncated_at_message_end(ws, tail):
    """6.8.x: a non-final fragment ending in an incomplete (but so far valid) sequence is
    not an error: the server must wait (checked for 200 ms, with a ping answered meanwhile).
    The final fragment, empty, leaves the sequence incomplete: close 1007 on FIN."""
    ws.send(frame(OP_TEXT, b"hello" + tail, fin=False) + frame(OP_PING, b"still open?"))
    ws.expect_pong(b"still open?")
    ws.expect_silence(0.2)
    ws.send_frame(OP_CONT, b"")
    ws.expect_close(1007)


def test_6_9_incomplete_sequence_completed_later(ws):
    """6.9: fragments ending inside a character, completed by the next fragment 100 ms
    later, are valid: the message echoes."""
    payload = "€𝄞😀".encode("utf-8")
    ws.send_frame(OP_TEXT, payload[:2], fin=False)
    ws.expect_silence(0.1)
    ws.send_frame(OP_CONT, payload[2:6], fin=False)
    ws.expect_silence(0.1)
    ws.send_frame(OP_CONT, payload[6:])
    ws.expect_echo(OP_TEXT, payload)


def test_6_10_binary_is_not_validated(ws):
    """6.10: invalid UTF-8 in a binary message is just bytes: it echoes."""
    payload = b"\xff\xfe\xed\xa0\x80\xc0\xaf\xf4\x90\x80\x80"
    ws.send_frame(wsraw.OP_BINARY, payload)
    ws.expect_echo(wsraw.OP_BINARY, payload)


def test_6_11_ping_payload_is_not_validated(ws):
    """6.11: invalid UTF-8 in a ping payload is just bytes: the pong carries it back."""
    payload = b"\xff\xed\xa0\x80"
    ws.send_frame(OP_PING, payload)
    ws.expect_pong(payload)
