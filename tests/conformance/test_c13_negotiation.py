"""Category 13: permessage-deflate negotiation (RFC 7692 section 7.1) over every combination
of the offer parameters, then compressed traffic under what was agreed.

For each offer the server's Sec-WebSocket-Extensions answer must be a valid acceptance:
one permessage-deflate, known parameters only, none twice, window sizes 8..15 with values,
server_no_context_takeover repeated when offered, server_max_window_bits present and not
above the offer when offered, client_max_window_bits only when offered and not above the
offered value. Declining is acceptable only for offers with server_max_window_bits=8
(which zlib cannot honour). Then a run of compressed messages (16 B to 256 KiB, repeated
ones to exercise context takeover) must echo: the client deflates with the agreed client
window and resets its context per message when client_no_context_takeover was agreed; it
inflates with the agreed server window, in a fresh context per message when
server_no_context_takeover was agreed (so a server that takes over context anyway, or uses
a larger window than agreed, fails to inflate).
"""

import itertools

import pytest

import wsraw
from wsraw import OP_BINARY, OP_TEXT

SMWB = [None] + list(range(9, 16))
CMWB = [None, True] + list(range(9, 16))


def short(offer):
    parts = []
    if offer.get("server_no_context_takeover"):
        parts.append("snct")
    if offer.get("client_no_context_takeover"):
        parts.append("cnct")
    smwb = offer.get("server_max_window_bits")
    parts.append("s%s" % ("-" if smwb is None else smwb))
    cmwb = offer.get("client_max_window_bits")
    parts.append("c%s" % ("-" if cmwb is None else "v" if cmwb is True else cmwb))
    return "-".join(parts)


def offer_of(snct, cnct, smwb, cmwb):
    offer = {}
    if snct:
        offer["server_no_context_takeover"] = True
    if cnct:
        offer["client_no_context_takeover"] = True
    if smwb is not None:
        offer["server_max_window_bits"] = smwb
    if cmwb is not None:
        offer["client_max_window_bits"] = cmwb
    return offer


GRID = []
for group, (snct, cnct) in enumerate(itertools.product((False, True), repeat=2), 1):
    for i, (smwb, cmwb) in enumerate(itertools.product(SMWB, CMWB), 1):
        offer = offer_of(snct, cnct, smwb, cmwb)
        GRID.append(pytest.param(offer, id="13.%d.%d-%s" % (group, i, short(offer))))


def traffic():
    """(opcode, payload) run: sizes 16 B..256 KiB, repeats (context takeover), binary."""
    words = wsraw.utf8_text(262144, 131)
    return [
        (OP_TEXT, words[:16]),
        (OP_TEXT, words[:1024]),
        (OP_TEXT, words[:1024]),
        (OP_BINARY, wsraw.random_bytes(4096, 132)),
        (OP_TEXT, wsraw.utf8_text(65536, 133)),
        (OP_TEXT, words),
        (OP_TEXT, words),
        (OP_BINARY, words[:16]),
    ]


TRAFFIC = traffic()


def exchange(ws, messages=TRAFFIC):
    ws.send_background(b"".join(ws.build_message(op, p) for op, p in messages))
    for op, p in messages:
        ws.expect_echo(op, p, timeout=15.0)
    assert ws.join_senders() == [None]


@pytest.mark.parametrize("offer", GRID)
def test_13_offer_combination(connect, offer):
    """13.<g>.<n>: one offer with the combination named in the id (snct/cnct: no context
    takeover for server/client; s<N>/c<N>: server/client_max_window_bits, "v" without value,
    "-" absent): a valid acceptance, then the compressed run echoes."""
    ws = connect(offers=[offer])
    assert ws.deflate is not None, "server declined %r" % wsraw.offer_string(offer)
    exchange(ws)


EIGHT = [
    {"server_max_window_bits": 8},
    {"server_max_window_bits": 8, "client_max_window_bits": 8},
    {"server_max_window_bits": 8, "server_no_context_takeover": True},
    {"server_max_window_bits": 8, "client_max_window_bits": True,
     "client_no_context_takeover": True},
]


@pytest.mark.parametrize("offer", [pytest.param(o, id="13.5.%d-%s" % (i, short(o)))
                                   for i, o in enumerate(EIGHT, 1)])
def test_13_5_server_window_8(connect, offer):
    """13.5.x: an offer with server_max_window_bits=8 may be declined (no extension, plain
    messages then echo) or accepted as RFC 7692 allows (then compressed messages echo)."""
    ws = connect(offers=[offer])
    exchange(ws, TRAFFIC[:4])


@pytest.mark.parametrize("offer", [pytest.param(o, id="13.6.%d-client-8-%s" % (i, short(o)))
                                   for i, o in enumerate([
                                       {"client_max_window_bits": 8},
                                       {"client_max_window_bits": 8,
                                        "client_no_context_takeover": True}], 1)])
def test_13_6_client_window_8(connect, offer):
    """13.6.x: client_max_window_bits=8 offered: the server must accept (it only limits what
    the client sends); the client then compresses within a 256-byte window."""
    ws = connect(offers=[offer])
    assert ws.deflate is not None, "server declined %r" % wsraw.offer_string(offer)
    exchange(ws, TRAFFIC[:5])


MULTI = [
    ([{"server_max_window_bits": 8}, {}], "8-then-plain"),
    ([{"server_max_window_bits": 8, "client_max_window_bits": 8},
      {"server_no_context_takeover": True, "client_max_window_bits": True}], "8-then-snct"),
    ([{"server_no_context_takeover": True, "client_no_context_takeover": True,
       "server_max_window_bits": 9, "client_max_window_bits": 9},
      {"server_max_window_bits": 15}, {}], "three-offers"),
    ([{"client_max_window_bits": 10}, {"server_max_window_bits": 11}], "cmwb-then-smwb"),
]


@pytest.mark.parametrize("offers,lines", [
    pytest.param(o, lines, id="13.7.%d-%s-%s" % (i, name, "lines" if lines else "list"))
    for i, ((o, name), lines) in enumerate(itertools.product(MULTI, (False, True)), 1)])
def test_13_7_several_offers(connect, offers, lines):
    """13.7.x: several offers, in one header or one header line each: the answer accepts
    exactly one of them validly (every list has an offer without window 8, so declining is
    not acceptable), then the compressed run echoes."""
    ws = connect(offers=offers, offer_lines=lines)
    assert ws.deflate is not None, "server declined all of %r" % offers
    exchange(ws, TRAFFIC[:5])


BAD_OFFERS = [
    ("permessage-deflate; foo=1", "unknown-param"),
    ("permessage-deflate; server_max_window_bits=7", "smwb-7"),
    ("permessage-deflate; server_max_window_bits=16", "smwb-16"),
    ("permessage-deflate; server_max_window_bits", "smwb-no-value"),
    ("permessage-deflate; client_max_window_bits=7", "cmwb-7"),
    ("permessage-deflate; client_max_window_bits=016", "cmwb-leading-zero"),
    ("permessage-deflate; server_no_context_takeover=1", "snct-with-value"),
    ("permessage-deflate; server_no_context_takeover; server_no_context_takeover",
     "snct-twice"),
    ("permessage-deflate; client_max_window_bits=10; client_max_window_bits=11", "cmwb-twice"),
]


@pytest.mark.parametrize("value", [pytest.param(v, id="13.8.%d-%s" % (i, name))
                                   for i, (v, name) in enumerate(BAD_OFFERS, 1)])
def test_13_8_invalid_offer_declined(connect, value):
    """13.8.x: an offer with an unknown parameter, an out-of-range or malformed value or a
    repeated parameter must be declined (RFC 7692 5.1): 101 without the extension, and
    plain messages then echo."""
    ws = connect(extensions=value)
    assert ws.response.get("Sec-WebSocket-Extensions") is None, ws.response
    ws.send_message(OP_TEXT, "plain after declined offer")
    ws.expect_echo(OP_TEXT, "plain after declined offer")


@pytest.mark.parametrize("value", [pytest.param(v, id="13.9.%d-%s" % (i, name))
                                   for i, (v, name) in enumerate(BAD_OFFERS[:3], 1)])
def test_13_9_invalid_offer_then_valid(connect, value):
    """13.9.x: an invalid offer followed by a plain one: the plain one is accepted."""
    ws = connect(extensions=value + ", permessage-deflate")
    values = ws.response.get_all("Sec-WebSocket-Extensions")
    ws.deflate, _ = wsraw.negotiate_deflate([{}], values)
    assert ws.deflate is not None, "server declined the valid second offer: %r" % ws.response
    exchange(ws, TRAFFIC[:3])
