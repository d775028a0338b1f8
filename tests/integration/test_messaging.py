"""The messaging protocol (PROTOCOL.md) against the real server, one connection or a few
at a time: every op and its reply fields, every error code, tokens, anonymous access,
refresh and expiry, JSON and MessagePack. Delivery across workers, load, the offline
queue and slow consumers are in test_msg_delivery.py."""
import asyncio
import base64
import itertools
import json
import os
import struct
import time

import pytest

from wsdclient import (Client, Ed25519Key, b64url, full_tok, hs256_token, mp_pack, none_token,
                       run, tok)
from wsdproc import Wsd

MAIN_CONF = ("jwt_hs256_secret testsecret\nanonymous on\npublic_groups public:*\n"
             "jwt_leeway 0\nauth_grace 1\n"
             "group hx:* history_size=3\ngroup h0:* history_size=0\n"
             "group ht:* history_ttl=1\n")
STRICT_CONF = "jwt_hs256_secret testsecret\nanonymous off\nauth_timeout 1\n"
MISC_CONF = "jwt_hs256_secret testsecret\noffline_ttl 0\ndedup_window 1\n"

_names = itertools.count(1)


def uniq(prefix):
    """A group or user name no other test uses."""
    return "%s%d-%s" % (prefix, next(_names), os.urandom(3).hex())


@pytest.fixture(scope="module")
def wsd():
    with Wsd(workers=4, extra=MAIN_CONF) as w:
        yield w


@pytest.fixture(scope="module")
def strict():
    """No anonymous access, auth_timeout 1."""
    with Wsd(workers=2, extra=STRICT_CONF) as w:
        yield w


@pytest.fixture(scope="module")
def misc():
    """offline_ttl 0 (nothing stored for offline users), dedup_window 1."""
    with Wsd(workers=2, extra=MISC_CONF) as w:
        yield w


@pytest.fixture(scope="module")
def edkey():
    return Ed25519Key()


async def error_of(c, env, binary=None, code=None):
    """Sends env and returns the error it gets (asserting its code when given)."""
    if "id" not in env:
        await c.send(env, binary)
        e = await c.recv()
    else:
        e = (await c.request_frame(env, binary))[0]
    assert e.get("op") == "error", e
    assert isinstance(e.get("message"), str), e
    if code is not None:
        assert e["code"] == code, e
    return e


async def still_open(c):
    """The connection still answers a ping."""
    r = await c.request("ping", id="alive")
    assert r == {"op": "pong", "id": "alive"}, r


# ---- welcome and the handshake token -------------------------------------------------

def test_handshake_token_gets_welcome_with_every_field(wsd):
    async def go():
        user = uniq("alice")
        a = await Client.login(wsd.url, tok(user))
        b = await Client.login(wsd.url, tok(user))
        w = a.welcome
        assert set(w) == {"op", "conn", "user", "session", "heartbeat", "resumed",
                          "personal"}, w
        assert w["user"] == user
        assert isinstance(w["conn"], int) and w["conn"] > 0
        assert isinstance(w["session"], str) and w["session"]
        assert w["heartbeat"] == 30
        assert w["resumed"] is False
        assert w["personal"]["offset"] == 0 and isinstance(w["personal"]["epoch"], str)
        assert b.welcome["conn"] != w["conn"]
        assert b.welcome["session"] != w["session"]
        await a.close()
        await b.close()
    run(go())


def test_query_token_is_accepted(wsd):
    async def go():
        user = uniq("q")
        c = await Client.login(wsd.url, tok(user), query_token=True)
        assert c.welcome["user"] == user
        await still_open(c)
        await c.close()
    run(go())


def test_sub_of_128_bytes_and_utf8_sub_are_accepted(wsd):
    async def go():
        for sub in ["u" * 128, "é" * 64, "用户"]:
            c = await Client.login(wsd.url, tok(sub))
            assert c.welcome["user"] == sub
            await c.close()
    run(go())


def _flip_signature(token):
    """The same token with one signature byte changed."""
    head, payload, sig = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)))
    raw[0] ^= 1
    return head + "." + payload + "." + b64url(bytes(raw))


def _bad_tokens(edkey):
    now = int(time.time())
    return {
        "bad_signature": _flip_signature(tok("x")),
        "wrong_secret": hs256_token({"sub": "x"}, secret=b"othersecret"),
        "expired": tok("x", exp=now - 60),
        "not_yet_valid": tok("x", nbf=now + 3600),
        "alg_none": none_token({"sub": "x"}),
        "alg_hs512_header": hs256_token({"sub": "x"}, header={"alg": "HS512", "typ": "JWT"}),
        "eddsa_without_ed25519_key": edkey.token({"sub": "x"}),
        "missing_sub": hs256_token({"join": ["*"]}),
        "empty_sub": tok(""),
        "sub_129_bytes": tok("u" * 129),
        "sub_not_string": hs256_token({"sub": 5}),
        "not_a_jwt": "abc.def",
    }


BAD_TOKEN_KINDS = ["bad_signature", "wrong_secret", "expired", "not_yet_valid", "alg_none",
                   "alg_hs512_header", "eddsa_without_ed25519_key", "missing_sub", "empty_sub",
                   "sub_129_bytes", "sub_not_string", "not_a_jwt"]


@pytest.mark.parametrize("kind", BAD_TOKEN_KINDS)
def test_bad_handshake_token_gets_unauthorized_then_close_4001(wsd, edkey, kind):
    async def go():
        c = await Client.connect(wsd.url, _bad_tokens(edkey)[kind])
        code, got = await c.closed(timeout=10)
        assert [g.get("code") for g in got] == ["unauthorized"], got
        assert got[0]["op"] == "error" and "id" not in got[0]
        assert code == 4001
    run(go())


def test_eddsa_token_is_accepted_with_an_ed25519_key_and_hs256_is_not(edkey):
    conf = "jwt_ed25519_public_key %s\nanonymous off\n" % edkey.public_b64
    with Wsd(workers=1, extra=conf) as w:
        async def go():
            c = await Client.login(w.url, edkey.token({"sub": "edu", "join": ["e:*"]}))
            assert c.welcome["user"] == "edu"
            await c.join("e:1")
            bad = await Client.connect(w.url, tok("edu"))
            code, got = await bad.closed()
            assert code == 4001 and got[0]["code"] == "unauthorized", got
            await c.close()
        run(go())


# ---- the auth op, unauthenticated connections ----------------------------------------

def test_auth_op_gets_welcome_with_the_request_id(strict):
    async def go():
        user = uniq("au")
        c = await Client.connect(strict.url)
        w = await c.request("auth", token=tok(user), id="login-1")
        assert w["op"] == "welcome" and w["id"] == "login-1", w
        assert w["user"] == user and w["resumed"] is False
        assert {"conn", "session", "heartbeat", "personal"} <= set(w)
        await still_open(c)
        await c.close()
    run(go())


@pytest.mark.parametrize("op", [
    {"op": "join", "group": "g"}, {"op": "leave", "group": "g"},
    {"op": "publish", "group": "g", "data": 1}, {"op": "send", "user": "u", "data": 1},
    {"op": "broadcast", "data": 1}, {"op": "ack", "offset": 1},
    {"op": "presence", "group": "g"}])
def test_op_before_auth_is_unauthorized_and_connection_stays(strict, op):
    async def go():
        c = await Client.connect(strict.url)
        e = await error_of(c, dict(op, id=9), code="unauthorized")
        assert e["id"] == 9
        w = await c.request("auth", token=tok(uniq("late")))
        assert w["op"] == "welcome", w
        await c.close()
    run(go())


def test_auth_timeout_gets_unauthorized_and_close_4001(strict):
    async def go():
        c = await Client.connect(strict.url)
        t0 = time.monotonic()
        code, got = await c.closed(timeout=10)
        elapsed = time.monotonic() - t0
        assert code == 4001
        assert [g.get("code") for g in got] == ["unauthorized"], got
        assert 0.8 <= elapsed <= 6, elapsed  # auth_timeout 1
    run(go())


def test_bad_token_in_first_auth_is_unauthorized_and_never_welcomed(strict):
    async def go():
        c = await Client.connect(strict.url)
        e = await error_of(c, {"op": "auth", "token": tok("x")[:-3] + "abc", "id": "t"},
                           code="unauthorized")
        assert e["id"] == "t"
        code, got = await c.closed(timeout=6)
        assert code == 4001
        assert all(g.get("op") != "welcome" for g in got), got
    run(go())


# ---- refresh and expiry ---------------------------------------------------------------

def test_refresh_replies_exp_and_replaces_permissions(wsd):
    async def go():
        user, group = uniq("carol"), uniq("r:")
        c = await Client.login(wsd.url, tok(user, join=["r:*"], pub=["r:*"]))
        other = await Client.login(wsd.url, full_tok(uniq("pub")))
        await c.join(group)
        r = await c.ok("publish", group=group, data=1)
        assert r["offset"] == 1
        exp = int(time.time()) + 3600
        r = await c.request("auth", token=tok(user, join=["r:*"], exp=exp), id="ref")
        assert r == {"op": "reply", "id": "ref", "ok": True, "exp": exp}, r
        await error_of(c, {"op": "publish", "group": group, "data": 2, "id": 2},
                       code="forbidden")
        # the group joined before stays joined
        await other.ok("publish", group=group, data="still")
        m = await c.msgs(1)
        assert m[0]["data"] == "still" and m[0]["off"] == 2
        # a token without exp: the reply has no exp
        r = await c.request("auth", token=tok(user, pub=["r:*"]), id="ref2")
        assert r == {"op": "reply", "id": "ref2", "ok": True}, r
        await c.ok("publish", group=group, data=3)
        await error_of(c, {"op": "join", "group": uniq("r:"), "id": 3}, code="forbidden")
        await c.close()
        await other.close()
    run(go())


def test_refresh_for_another_sub_is_forbidden_and_changes_nothing(wsd):
    async def go():
        user, group = uniq("dan"), uniq("f:")
        c = await Client.login(wsd.url, tok(user, pub=["f:*"]))
        e = await error_of(c, {"op": "auth", "token": tok("mallory", pub=["*"]), "id": 4},
                           code="forbidden")
        assert e["id"] == 4
        await c.ok("publish", group=group, data=1)
        await error_of(c, {"op": "publish", "group": "other", "data": 1, "id": 5},
                       code="forbidden")
        frames = await c.drain()
        assert frames == [], frames
        await c.close()
    run(go())


def test_bad_refresh_is_unauthorized_and_connection_stays(wsd):
    async def go():
        user, group = uniq("eve"), uniq("b:")
        c = await Client.login(wsd.url, tok(user, pub=["b:*"]))
        for bad in [tok(user)[:-2] + "xx", tok(user, exp=int(time.time()) - 100),
                    none_token({"sub": user, "pub": ["*"]})]:
            e = await error_of(c, {"op": "auth", "token": bad, "id": "bad"},
                               code="unauthorized")
            assert e["id"] == "bad"
        r = await c.ok("publish", group=group, data=1)  # old permissions still apply
        assert r["offset"] == 1
        await still_open(c)
        await c.close()
    run(go())


def test_expired_token_gets_token_expired_then_close_4001_after_grace(wsd):
    async def go():
        exp = int(time.time()) + 2
        c = await Client.login(wsd.url, tok(uniq("exp"), exp=exp))
        e = await c.recv(timeout=8)
        t_err = time.monotonic()
        assert e["op"] == "error" and e["code"] == "token_expired", e
        assert "id" not in e
        assert time.time() >= exp - 0.2  # jwt_leeway 0: not before exp
        code, got = await c.closed(timeout=10)
        waited = time.monotonic() - t_err
        assert code == 4001 and got == [], got
        assert 0.7 <= waited <= 6, waited  # auth_grace 1
    run(go())


def test_refresh_within_grace_keeps_the_connection_open(wsd):
    async def go():
        user = uniq("fresh")
        c = await Client.login(wsd.url, tok(user, exp=int(time.time()) + 2))
        e = await c.recv(timeout=8)
        assert e["code"] == "token_expired", e
        exp = int(time.time()) + 60
        r = await c.request("auth", token=tok(user, exp=exp), id="renew")
        assert r == {"op": "reply", "id": "renew", "ok": True, "exp": exp}, r
        await c.drain()
        frames = []
        deadline = time.monotonic() + 2.5  # well past auth_grace 1
        while time.monotonic() < deadline:
            frames += await c.drain()
            await asyncio.sleep(0.5)
        assert frames == [], frames
        await still_open(c)
        await c.close()
    run(go())


# ---- anonymous -----------------------------------------------------------------------

def test_anonymous_is_welcomed_at_once_with_empty_user(wsd):
    async def go():
        c = await Client.login(wsd.url)
        w = c.welcome
        assert w["user"] == "" and w["resumed"] is False and "id" not in w, w
        assert isinstance(w["session"], str) and w["session"] and w["conn"] > 0
        await c.close()
    run(go())


def test_anonymous_may_join_only_public_groups(wsd):
    async def go():
        c = await Client.login(wsd.url)
        r = await c.join("public:" + uniq("lobby"))
        assert r["offset"] == 0 and isinstance(r["epoch"], str)
        await error_of(c, {"op": "join", "group": uniq("private"), "id": 1}, code="forbidden")
        await error_of(c, {"op": "join", "group": "publicity", "id": 2}, code="forbidden")
        await c.close()
    run(go())


def test_anonymous_may_not_publish_or_send(wsd):
    async def go():
        c = await Client.login(wsd.url)
        group = "public:" + uniq("p")
        await c.join(group)
        await error_of(c, {"op": "publish", "group": group, "data": 1, "id": 1},
                       code="forbidden")
        await error_of(c, {"op": "send", "user": "someone", "data": 1, "id": 2},
                       code="forbidden")
        await c.close()
    run(go())


def test_auth_on_anonymous_connection_is_a_login(wsd):
    async def go():
        user, group = uniq("dave"), "public:" + uniq("l")
        c = await Client.login(wsd.url)
        await c.join(group)
        w = await c.request("auth", token=tok(user, pub=["public:*"]), id="in")
        assert w["op"] == "welcome" and w["id"] == "in" and w["user"] == user, w
        assert w["resumed"] is False and isinstance(w["session"], str)
        assert w["personal"]["offset"] == 0
        # the group joined while anonymous stays joined
        other = await Client.login(wsd.url, full_tok(uniq("o")))
        await other.ok("publish", group=group, data="hello")
        m = await c.msgs(1)
        assert m[0]["ch"] == group and m[0]["data"] == "hello"
        # and the user's permissions now apply
        r = await c.ok("publish", group=group, data="mine")
        assert r["offset"] == 2
        # a second auth is now a refresh, not a login
        r = await c.request("auth", token=tok(user), id="again")
        assert r == {"op": "reply", "id": "again", "ok": True}, r
        await c.close()
        await other.close()
    run(go())


def test_bad_token_on_anonymous_connection_keeps_it_anonymous(wsd):
    async def go():
        c = await Client.login(wsd.url)
        e = await error_of(c, {"op": "auth", "token": tok("x")[:-2] + "zz", "id": 1},
                           code="unauthorized")
        assert e["id"] == 1
        await still_open(c)
        await error_of(c, {"op": "publish", "group": "public:x", "data": 1, "id": 2},
                       code="forbidden")
        await c.join("public:" + uniq("still"))
        await c.close()
    run(go())


# ---- ops -----------------------------------------------------------------------------

def test_ping_gets_pong_with_the_same_id(wsd):
    async def go():
        c = await Client.login(wsd.url, tok(uniq("p")))
        for rid in ["abc", 0, -7, 2 ** 53, "x" * 64, "é" * 32]:
            r = await c.request("ping", id=rid)
            assert r == {"op": "pong", "id": rid}, r
        await c.send({"op": "ping"})
        assert await c.recv() == {"op": "pong"}
        await c.close()
    run(go())


def test_join_replies_group_offset_epoch_and_joining_again_is_not_an_error(wsd):
    async def go():
        group = uniq("j:")
        p = await Client.login(wsd.url, tok(uniq("pub"), pub=["j:*"]))
        for i in range(3):
            await p.ok("publish", group=group, data=i)
        c = await Client.login(wsd.url, tok(uniq("mem"), join=["j:*"]))
        r = await c.request("join", group=group, id="j1")
        assert set(r) == {"op", "id", "ok", "group", "offset", "epoch"}, r
        assert r["ok"] is True and r["id"] == "j1" and r["group"] == group
        assert r["offset"] == 3 and isinstance(r["epoch"], str) and r["epoch"]
        r2 = await c.request("join", group=group, id="j2")
        assert r2["ok"] is True and r2["offset"] == 3 and r2["epoch"] == r["epoch"], r2
        assert "recovered" not in r2
        await p.ok("publish", group=group, data="live")
        await p.ok("publish", group=group, data="live2")
        m = await c.msgs(2)
        assert [x["off"] for x in m] == [4, 5], m  # once each despite the double join
        assert await c.drain() == []
        e = await c.request("join", group=uniq("fresh:"), id=3)
        assert e["op"] == "error" and e["code"] == "forbidden", e
        await p.close()
        await c.close()
    run(go())


def test_join_with_since_recovers_and_replays_missed_messages_in_order(wsd):
    async def go():
        group = uniq("h:")
        p = await Client.login(wsd.url, full_tok(uniq("pub")))
        for i in range(1, 6):
            await p.ok("publish", group=group, data={"n": i})
        a = await Client.login(wsd.url, full_tok(uniq("a")))
        r = await a.request("join", group=group, since=2, id="s")
        assert r["recovered"] is True and r["offset"] == 5 and r["group"] == group, r
        m = await a.msgs(3)
        assert [(x["ch"], x["off"], x["data"]["n"]) for x in m] == \
            [(group, 3, 3), (group, 4, 4), (group, 5, 5)], m
        assert all(x["from"] == p.welcome["user"] for x in m)
        epoch = r["epoch"]
        b = await Client.login(wsd.url, full_tok(uniq("b")))
        r = await b.request("join", group=group, since={"offset": 0, "epoch": epoch})
        assert r["recovered"] is True, r
        assert [x["off"] for x in await b.msgs(5)] == [1, 2, 3, 4, 5]
        c = await Client.login(wsd.url, full_tok(uniq("c")))
        r = await c.request("join", group=group, since={"offset": 1, "epoch": "not" + epoch})
        assert r["recovered"] is False and r["offset"] == 5, r
        d = await Client.login(wsd.url, full_tok(uniq("d")))
        r = await d.request("join", group=group, since=5)
        assert r["recovered"] is True, r
        # live traffic follows each replay without gaps or duplicates
        await p.ok("publish", group=group, data={"n": 6})
        for x in (a, b, c, d):
            got = await x.msgs(1)
            assert got[0]["off"] == 6, got  # c: no replay after a wrong epoch
            assert await x.drain() == []
        for x in (p, a, b, c, d):
            await x.close()
    run(go())


async def _publish_n(url, group, n):
    p = await Client.login(url, full_tok(uniq("hist")))
    for i in range(1, n + 1):
        r = await p.ok("publish", group=group, data=i)
        assert r["offset"] == i, r
    await p.close()


async def _join_since(url, group, since):
    """Joins with since; returns (reply, offsets of every message up to a ping's pong)."""
    c = await Client.login(url, full_tok(uniq("late")))
    r = await c.request("join", group=group, since=since)
    frames = await c.drain()
    await c.close()
    assert all(f["op"] == "msg" and f["ch"] == group for f in frames), frames
    return r, [f["off"] for f in frames]


def _suffix_ok(offs, since, latest):
    """A replay that is not a full recovery may only bring a gap-free run ending at latest."""
    return offs == [] or (offs == list(range(offs[0], latest + 1)) and offs[0] > since + 1)


def test_join_since_is_recovered_exactly_while_default_history_covers_the_gap(wsd):
    async def go():
        group = uniq("hd:")
        await _publish_n(wsd.url, group, 120)  # history_size 100 keeps 21..120
        r, offs = await _join_since(wsd.url, group, 20)
        assert r["recovered"] is True and r["offset"] == 120, r
        assert offs == list(range(21, 121)), offs[:3]
        r, offs = await _join_since(wsd.url, group, 19)
        assert r["recovered"] is False and r["offset"] == 120, r
        assert _suffix_ok(offs, 19, 120), offs[:3]
        r, offs = await _join_since(wsd.url, group, 0)
        assert r["recovered"] is False, r
        assert _suffix_ok(offs, 0, 120), offs[:3]
    run(go())


def test_join_since_follows_per_group_history_rules(wsd):
    async def go():
        g3, g0 = uniq("hx:"), uniq("h0:")
        await _publish_n(wsd.url, g3, 5)  # history_size=3: 3..5
        r, offs = await _join_since(wsd.url, g3, 2)
        assert r["recovered"] is True and offs == [3, 4, 5], (r, offs)
        r, offs = await _join_since(wsd.url, g3, 1)
        assert r["recovered"] is False and _suffix_ok(offs, 1, 5), (r, offs)
        await _publish_n(wsd.url, g0, 2)  # history_size=0: nothing kept
        r, offs = await _join_since(wsd.url, g0, 1)
        assert r["recovered"] is False and r["offset"] == 2 and offs == [], (r, offs)
        r, offs = await _join_since(wsd.url, g0, 2)
        assert r["recovered"] is True and offs == [], (r, offs)  # no gap to cover
    run(go())


def test_join_since_is_not_recovered_once_history_ttl_has_passed(wsd):
    async def go():
        group = uniq("ht:")
        await _publish_n(wsd.url, group, 2)  # history_ttl=1
        await asyncio.sleep(3)
        r, offs = await _join_since(wsd.url, group, 0)
        # messages 1 and 2 were missed and are no longer in the history
        assert offs == [], offs
        assert r["recovered"] is False, r
    run(go())


def test_join_since_recovered_always_matches_what_is_replayed_while_history_expires(wsd):
    async def go():
        group = uniq("ht:")
        await _publish_n(wsd.url, group, 2)  # history_ttl=1
        c = await Client.login(wsd.url, full_tok(uniq("watch")))
        seen = []
        deadline = time.monotonic() + 2.6
        while time.monotonic() < deadline:
            r = await c.request("join", group=group, since=0)
            offs = [f["off"] for f in await c.drain()]
            await c.ok("leave", group=group)
            seen.append((r["recovered"], offs))
            # recovered true means the whole gap (1..2) was replayed
            assert not r["recovered"] or offs == [1, 2], seen
            await asyncio.sleep(0.02)
        assert seen[0] == (True, [1, 2]) and seen[-1] == (False, []), seen
        await c.close()
    run(go())


def test_leave_stops_delivery_and_leaving_again_is_not_member(wsd):
    async def go():
        g1, g2 = uniq("lv:"), uniq("lv:")
        p = await Client.login(wsd.url, full_tok(uniq("pub")))
        c = await Client.login(wsd.url, full_tok(uniq("mem")))
        await c.join(g1)
        await c.join(g2)
        r = await c.request("leave", group=g1, id="l")
        assert r == {"op": "reply", "id": "l", "ok": True}, r
        await p.ok("publish", group=g1, data="gone")
        await p.ok("publish", group=g2, data="here")
        m = await c.msgs(1)
        assert m[0]["ch"] == g2 and m[0]["data"] == "here", m
        assert await c.drain() == []
        e = await error_of(c, {"op": "leave", "group": g1, "id": "l2"}, code="not_member")
        assert e["id"] == "l2"
        await error_of(c, {"op": "leave", "group": uniq("never"), "id": 3}, code="not_member")
        await p.close()
        await c.close()
    run(go())


def test_publish_needs_pub_permission_not_membership(wsd):
    async def go():
        group = uniq("pp:")
        member = await Client.login(wsd.url, tok(uniq("m"), join=["pp:*"]))
        await member.join(group)
        outsider = await Client.login(wsd.url, tok(uniq("o"), pub=["pp:*"]))
        r = await outsider.request("publish", group=group, data="x", id="p1")
        assert r == {"op": "reply", "id": "p1", "ok": True, "offset": 1,
                     "duplicate": False}, r
        m = await member.msgs(1)
        assert m[0]["data"] == "x" and m[0]["from"] == outsider.welcome["user"]
        assert set(m[0]) == {"op", "ch", "off", "mid", "from", "ts", "data"}, m
        assert isinstance(m[0]["mid"], str) and m[0]["mid"]
        assert abs(m[0]["ts"] - time.time() * 1000) < 60000
        await error_of(member, {"op": "publish", "group": group, "data": 1, "id": 2},
                       code="forbidden")
        await member.close()
        await outsider.close()
    run(go())


def test_publisher_does_not_receive_its_own_publish(wsd):
    async def go():
        group = uniq("own:")
        a = await Client.login(wsd.url, full_tok(uniq("a")))
        b = await Client.login(wsd.url, full_tok(uniq("b")))
        await a.join(group)
        await b.join(group)
        assert (await a.ok("publish", group=group, data="from-a", mid="m-a"))["offset"] == 1
        assert (await b.ok("publish", group=group, data="from-b"))["offset"] == 2
        got_a = await a.msgs(1)
        assert [(x["off"], x["data"]) for x in got_a] == [(2, "from-b")], got_a
        got_b = await b.msgs(1)
        assert [(x["off"], x["data"], x["mid"]) for x in got_b] == [(1, "from-a", "m-a")]
        assert await a.drain() == [] and await b.drain() == []
        await a.close()
        await b.close()
    run(go())


def test_send_replies_offset_delivered_stored_and_reaches_the_user(wsd):
    async def go():
        alice, bob = uniq("alice"), uniq("bob")
        a = await Client.login(wsd.url, tok(alice))
        b = await Client.login(wsd.url, tok(bob))
        r = await a.request("send", user=bob, data={"t": "hi"}, mid="s1", id="s")
        assert r == {"op": "reply", "id": "s", "ok": True, "offset": 1, "delivered": 1,
                     "stored": True, "duplicate": False}, r
        m = await b.msgs(1)
        assert m[0]["ch"] == "@" and m[0]["off"] == 1 and m[0]["from"] == alice
        assert m[0]["mid"] == "s1" and m[0]["data"] == {"t": "hi"}
        r = await a.request("send", user=bob, data=2)
        assert r["offset"] == 2 and r["delivered"] == 1
        assert (await b.msgs(1))[0]["off"] == 2
        assert await a.drain() == []
        await a.close()
        await b.close()
    run(go())


def test_send_permission_follows_the_send_claim(wsd):
    async def go():
        c = await Client.login(wsd.url, tok(uniq("s"), send=["team:*"]))
        await error_of(c, {"op": "send", "user": "boss", "data": 1, "id": 1},
                       code="forbidden")
        r = await c.ok("send", user="team:" + uniq("x"), data=1)
        assert r["delivered"] == 0 and r["stored"] is True
        await error_of(c, {"op": "send", "user": "", "data": 1, "id": 2}, code="bad_field")
        await c.close()
    run(go())


def test_send_is_not_stored_when_offline_ttl_is_0(misc):
    async def go():
        user = uniq("nostore")
        s = await Client.login(misc.url, tok(uniq("s")))
        r = await s.request("send", user=user, data="lost", id="n")
        assert r["ok"] is True and r["stored"] is False and r["delivered"] == 0, r
        c = await Client.login(misc.url, tok(user))
        assert await c.drain() == []
        r = await s.request("send", user=user, data="live")
        assert r["stored"] is False and r["delivered"] == 1, r
        m = await c.msgs(1, ch="@")
        assert m[0]["data"] == "live"
        await c.close()
        await s.close()
    run(go())


def test_a_mid_is_new_again_after_dedup_window(misc):
    async def go():
        c = await Client.login(misc.url, full_tok(uniq("dw")))
        group = uniq("dw:")
        assert (await c.ok("publish", group=group, data=1, mid="same"))["offset"] == 1
        r = await c.ok("publish", group=group, data=1, mid="same")
        assert r["duplicate"] is True and r["offset"] == 1, r
        await asyncio.sleep(2.2)  # dedup_window 1
        r = await c.ok("publish", group=group, data=1, mid="same")
        assert r["duplicate"] is False and r["offset"] == 2, r
        await c.close()
    run(go())


def test_ack_replies_ok_with_the_id(wsd):
    async def go():
        user = uniq("ack")
        c = await Client.login(wsd.url, tok(user))
        s = await Client.login(wsd.url, tok(uniq("snd")))
        await s.ok("send", user=user, data=1)
        assert (await c.msgs(1))[0]["off"] == 1
        r = await c.request("ack", offset=1, id="a")
        assert r == {"op": "reply", "id": "a", "ok": True}, r
        await c.close()
        await s.close()
    run(go())


def test_presence_replies_count_user_count_users(wsd):
    async def go():
        group = uniq("pr:")
        u1, u2 = uniq("u"), uniq("u")
        cs = [await Client.login(wsd.url, tok(u, join=["pr:*"])) for u in (u1, u1, u2)]
        anon = await Client.login(wsd.url)
        for c in cs:
            await c.join(group)
        r = await cs[0].request("presence", group=group, id="pr")
        assert set(r) == {"op", "id", "ok", "group", "count", "user_count", "users"}, r
        assert r["count"] == 3 and r["user_count"] == 2 and sorted(r["users"]) == sorted([u1, u2])
        r = await cs[0].request("presence", group=uniq("pr:"), id="none")
        assert r["count"] == 0 and r["user_count"] == 0 and r["users"] == [], r
        await error_of(anon, {"op": "presence", "group": group, "id": 1}, code="forbidden")
        await error_of(cs[0], {"op": "presence", "group": "elsewhere", "id": 2},
                       code="forbidden")
        for c in cs + [anon]:
            await c.close()
    run(go())


def test_broadcast_needs_the_admin_claim(wsd):
    async def go():
        c = await Client.login(wsd.url, full_tok(uniq("plain")))
        await error_of(c, {"op": "broadcast", "data": 1, "id": "b"}, code="forbidden")
        f = await Client.login(wsd.url, full_tok(uniq("notadmin"), admin=False))
        await error_of(f, {"op": "broadcast", "data": 1, "id": "b"}, code="forbidden")
        anon = await Client.login(wsd.url)
        await error_of(anon, {"op": "broadcast", "data": 1, "id": "b"}, code="forbidden")
        for x in (c, f, anon):
            await x.close()
    run(go())


# ---- error codes ---------------------------------------------------------------------

@pytest.fixture
def errc(wsd):
    """An authenticated JSON client for error tests (closed by the test's coroutine)."""
    return lambda: Client.login(wsd.url, full_tok(uniq("err")))


@pytest.mark.parametrize("text", ["{", '{"op":"ping"', "not json", '{"op":"ping"} x',
                                  '{"op":"ping",}', "", "{'op':'ping'}"])
def test_bad_json(errc, text):
    async def go():
        c = await errc()
        await c.send_raw(text)
        e = await c.recv()
        assert e["op"] == "error" and e["code"] == "bad_json" and "id" not in e, e
        await still_open(c)
        await c.close()
    run(go())


@pytest.mark.parametrize("data", [b"\xc1", b"\x81", b"\x82\xa2op\xa4ping",
                                  mp_pack({"op": "ping"}) + b"\x00", b""])
def test_bad_msgpack(errc, data):
    async def go():
        c = await errc()
        await c.send_raw(data)
        e, binary, _ = await c.recv_frame()
        assert e["op"] == "error" and e["code"] == "bad_msgpack" and "id" not in e, e
        assert binary  # the reply uses the request's frame type
        await still_open(c)
        await c.close()
    run(go())


@pytest.mark.parametrize("frame", ["[1,2]", '[{"op":"ping"}]', '"ping"', "42", "null", "true",
                                   mp_pack([1, 2]), mp_pack("ping"), mp_pack(7),
                                   mp_pack(None), mp_pack({1: "x"})],
                         ids=["json_array", "json_array_of_env", "json_string", "json_number",
                              "json_null", "json_bool", "mp_array", "mp_str", "mp_int",
                              "mp_nil", "mp_int_key"])
def test_bad_envelope(errc, frame):
    async def go():
        c = await errc()
        await c.send_raw(frame)
        e, binary, _ = await c.recv_frame()
        assert e["op"] == "error" and e["code"] == "bad_envelope", e
        assert binary == isinstance(frame, bytes)
        await still_open(c)
        await c.close()
    run(go())


def test_duplicate_key_is_bad_envelope(errc):
    async def go():
        c = await errc()
        await c.send_raw('{"op":"ping","op":"ping"}')
        e = await c.recv()
        assert e["code"] == "bad_envelope", e
        await c.close()
    run(go())


@pytest.mark.parametrize("binary", [False, True], ids=["json", "msgpack"])
def test_unknown_op_carries_the_id(errc, binary):
    async def go():
        c = await errc()
        e = await error_of(c, {"op": "fly", "id": "u1"}, binary=binary, code="unknown_op")
        assert e["id"] == "u1"
        e = await error_of(c, {"op": "", "id": 2}, binary=binary, code="unknown_op")
        assert e["id"] == 2
        await c.close()
    run(go())


@pytest.mark.parametrize("env", [
    {}, {"group": "g"}, {"op": "auth"}, {"op": "join"}, {"op": "leave"},
    {"op": "publish", "data": 1}, {"op": "publish", "group": "g"},
    {"op": "send", "data": 1}, {"op": "send", "user": "u"}, {"op": "broadcast"},
    {"op": "ack"}, {"op": "presence"}],
    ids=["empty", "no_op", "auth_token", "join_group", "leave_group", "publish_group",
         "publish_data", "send_user", "send_data", "broadcast_data", "ack_offset",
         "presence_group"])
def test_missing_field_carries_the_id(errc, env):
    async def go():
        c = await errc()
        e = await error_of(c, dict(env, id=77), code="missing_field")
        assert e["id"] == 77
        await still_open(c)
        await c.close()
    run(go())


@pytest.mark.parametrize("env", [
    {"op": 5}, {"op": ["ping"]}, {"op": "join", "group": 5}, {"op": "join", "group": ""},
    {"op": "join", "group": ["a"]}, {"op": "join", "group": "g", "since": "3"},
    {"op": "join", "group": "g", "since": -1}, {"op": "join", "group": "g", "since": {}},
    {"op": "publish", "group": "g", "data": 1, "mid": 5},
    {"op": "publish", "group": "g", "data": 1, "mid": ""},
    {"op": "send", "user": 7, "data": 1}, {"op": "auth", "token": 5},
    {"op": "ack", "offset": -1}, {"op": "ack", "offset": 1.5}, {"op": "ack", "offset": "3"},
    {"op": "presence", "group": None}],
    ids=lambda e: json.dumps(e))
def test_bad_field_carries_the_id(errc, env):
    async def go():
        c = await errc()
        e = await error_of(c, dict(env, id="bf"), code="bad_field")
        assert e["id"] == "bf"
        await still_open(c)
        await c.close()
    run(go())


def test_unrepresentable_json_number_in_data_is_bad_field(errc):
    async def go():
        c = await errc()
        await c.send_raw('{"op":"publish","group":"g","data":1e400,"id":1}')
        e = await c.recv()
        assert e["code"] == "bad_field" and e["id"] == 1, e
        await c.close()
    run(go())


@pytest.mark.parametrize("rid", [1.5, True, False, None, [], {}, [1], {"a": 1}, "x" * 65,
                                 "é" * 33],
                         ids=["float", "true", "false", "null", "empty_array", "empty_object",
                              "array", "object", "str65", "utf8_66_bytes"])
@pytest.mark.parametrize("binary", [False, True], ids=["json", "msgpack"])
def test_id_neither_short_string_nor_integer_is_bad_field_without_id(errc, rid, binary):
    async def go():
        c = await errc()
        await c.send({"op": "ping", "id": rid}, binary)
        e = await c.recv()
        assert e["op"] == "error" and e["code"] == "bad_field", e
        assert "id" not in e, e
        await still_open(c)
        await c.close()
    run(go())


def test_name_over_128_bytes_is_too_large(errc):
    async def go():
        c = await errc()
        ok = "g" * 128
        assert (await c.join(ok))["group"] == ok
        for op in ({"op": "join", "group": "g" * 129},
                   {"op": "join", "group": "é" * 65},
                   {"op": "publish", "group": "g" * 129, "data": 1},
                   {"op": "leave", "group": "g" * 129},
                   {"op": "presence", "group": "g" * 129},
                   {"op": "send", "user": "u" * 129, "data": 1}):
            e = await error_of(c, dict(op, id="tl"), code="too_large")
            assert e["id"] == "tl"
        r = await c.ok("send", user="u" * 128, data=1)
        assert r["stored"] is True
        await still_open(c)
        await c.close()
    run(go())


def test_data_over_max_data_size_is_too_large_counted_as_received(errc):
    async def go():
        c = await errc()
        limit = 65536
        # JSON: the data value's bytes as received, quotes included
        fits = '{"op":"publish","group":"big","data":"%s","id":1}' % ("a" * (limit - 2))
        over = '{"op":"publish","group":"big","data":"%s","id":2}' % ("a" * (limit - 1))
        await c.send_raw(fits)
        r = await c.recv()
        assert r["op"] == "reply" and r["id"] == 1, r
        await c.send_raw(over)
        e = await c.recv()
        assert e["code"] == "too_large" and e["id"] == 2, e
        # escapes count as received: 65534 bytes of "\n" decode to half as many
        esc = '{"op":"publish","group":"big","data":"%s","id":3}' % ("\\n" * (limit // 2))
        await c.send_raw(esc)
        e = await c.recv()
        assert e["code"] == "too_large" and e["id"] == 3, e
        # MessagePack: bin 16 has a 3-byte header
        r = await c.request("publish", binary=True, group="big", data=b"\0" * (limit - 3))
        assert r["op"] == "reply", r
        e = await c.request("publish", binary=True, group="big", data=b"\0" * (limit - 2))
        assert e["op"] == "error" and e["code"] == "too_large", e
        await still_open(c)
        await c.close()
    run(go())


def test_errors_do_not_close_the_connection(errc):
    async def go():
        c = await errc()
        for frame in ["{", "[]", '{"op":"x"}', '{"op":"join"}', '{"op":"ping","id":1.5}',
                      '{"op":"leave","group":"nope"}', b"\xc1"]:
            await c.send_raw(frame)
            e = await c.recv()
            assert e["op"] == "error", e
        await still_open(c)
        r = await c.ok("publish", group=uniq("after:"), data=1)
        assert r["offset"] == 1
        await c.close()
    run(go())


# unavailable (store or broker down) and internal (out of memory and the like) cannot be
# provoked from a client without breaking the server under test; not covered here.


# ---- encodings -----------------------------------------------------------------------

def test_subprotocol_is_selected_and_server_messages_use_it(wsd):
    async def go():
        group = uniq("sp:")
        mp = await Client.login(wsd.url, full_tok(uniq("mp")), msgpack=True)
        js = await Client.login(wsd.url, full_tok(uniq("js")),
                                subprotocols=["wsd.v1.json"])
        plain = await Client.login(wsd.url, full_tok(uniq("pl")))
        assert mp.ws.subprotocol == "wsd.v1.msgpack"
        assert js.ws.subprotocol == "wsd.v1.json"
        assert plain.ws.subprotocol is None
        for c in (mp, js, plain):
            await c.join(group)
        p = await Client.login(wsd.url, full_tok(uniq("p")))
        await p.ok("publish", group=group, data={"k": "v"})
        fr = await mp.recv_frame()
        assert fr[1] is True and fr[0]["data"] == {"k": "v"}, fr
        for c in (js, plain):
            fr = await c.recv_frame()
            assert fr[1] is False and fr[0]["data"] == {"k": "v"}, fr
        for c in (mp, js, plain, p):
            await c.close()
    run(go())


def test_welcome_uses_the_subprotocol_encoding(wsd):
    async def go():
        c = await Client.connect(wsd.url, full_tok(uniq("mpw")), msgpack=True)
        w, binary, _ = await c.recv_frame()
        assert binary and w["op"] == "welcome", w
        await c.close()
    run(go())


def test_replies_use_the_frame_type_of_the_request(wsd):
    async def go():
        mp = await Client.login(wsd.url, full_tok(uniq("mp")), msgpack=True)
        js = await Client.login(wsd.url, full_tok(uniq("js")))
        group = uniq("ft:")
        await mp.join(group)
        await js.join(group)
        for c in (mp, js):
            for binary in (False, True):
                env, got_binary, _ = await c.request_frame({"op": "ping", "id": "p"}, binary)
                assert env == {"op": "pong", "id": "p"} and got_binary == binary
                env, got_binary, _ = await c.request_frame(
                    {"op": "join", "group": group}, binary)
                assert env["op"] == "reply" and got_binary == binary, env
                env, got_binary, _ = await c.request_frame(
                    {"op": "leave", "group": uniq("nm")}, binary)
                assert env["code"] == "not_member" and got_binary == binary, env
                env, got_binary, _ = await c.request_frame(
                    {"op": "publish", "group": group, "data": 1}, binary)
                assert env["op"] == "reply" and got_binary == binary, env
                env, got_binary, _ = await c.request_frame(
                    {"op": "presence", "group": group}, binary)
                assert env["count"] == 2 and got_binary == binary, env
        # and the messages that are not replies keep the subprotocol's encoding
        for c, want_binary in ((mp, True), (js, False)):
            got = []
            while len(got) < 2:
                fr = await c.recv_frame()
                if fr[0]["op"] == "msg":
                    got.append(fr)
            assert all(f[1] == want_binary for f in got), got
        await mp.close()
        await js.close()
    run(go())


def test_msgpack_and_json_members_see_the_same_data(wsd):
    async def go():
        group = uniq("mix:")
        mp = await Client.login(wsd.url, full_tok(uniq("mp")), msgpack=True)
        js = await Client.login(wsd.url, full_tok(uniq("js")))
        for c in (mp, js):
            await c.join(group)
        p_mp = await Client.login(wsd.url, full_tok(uniq("pmp")), msgpack=True)
        p_js = await Client.login(wsd.url, full_tok(uniq("pjs")))
        blob = bytes(range(256)) + b"\x00\xff"
        data = {"bin": blob, "s": "héllo ✓", "n": -5, "big": 2 ** 40, "f": 1.25,
                "l": [True, False, None, [], {}], "m": {"nested": {"x": 1}}}
        await p_mp.ok("publish", group=group, data=data)
        got_mp = (await mp.msgs(1))[0]["data"]
        got_js = (await js.msgs(1))[0]["data"]
        assert got_mp == data
        expect_js = dict(data, bin=base64.b64encode(blob).decode())
        assert got_js == expect_js
        assert json.dumps(got_js)  # pure JSON values
        jdata = {"a": [1, 2.5, "x", None, True], "e": "\u00e9\n\"q\"", "neg": -123456789012}
        await p_js.ok("publish", group=group, data=jdata)
        assert (await mp.msgs(1))[0]["data"] == jdata
        assert (await js.msgs(1))[0]["data"] == jdata
        # scalars as the whole data value
        for v in ["plain", 0, None, False, 3.5]:
            await p_mp.ok("publish", group=group, data=v)
            assert (await js.msgs(1))[0]["data"] == v
            assert (await mp.msgs(1))[0]["data"] == v
        for c in (mp, js, p_mp, p_js):
            await c.close()
    run(go())


def test_replayed_and_queued_messages_are_transcoded_like_live_ones(wsd):
    async def go():
        group, js_user, mp_user = uniq("tr:"), uniq("jsu"), uniq("mpu")
        blob = b"\x00\x01binary\xfe\xff"
        data = {"bin": blob, "txt": "ok", "n": [1, -2, 0.5]}
        as_json = dict(data, bin=base64.b64encode(blob).decode())
        p = await Client.login(wsd.url, full_tok(uniq("p")), msgpack=True)
        await p.ok("publish", group=group, data=data)
        await p.ok("send", user=js_user, data=data)
        await p.ok("send", user=mp_user, data=data)
        js = await Client.login(wsd.url, full_tok(js_user))
        mp = await Client.login(wsd.url, full_tok(mp_user), msgpack=True)
        assert (await js.msgs(1, ch="@"))[0]["data"] == as_json  # offline queue
        assert (await mp.msgs(1, ch="@"))[0]["data"] == data
        await js.request("join", group=group, since=0)  # history replay
        await mp.request("join", group=group, since=0)
        assert (await js.msgs(1, ch=group))[0]["data"] == as_json
        assert (await mp.msgs(1, ch=group))[0]["data"] == data
        for c in (p, js, mp):
            await c.close()
    run(go())


def test_json_data_travels_byte_for_byte_between_json_peers(wsd):
    async def go():
        group = uniq("raw:")
        js = await Client.login(wsd.url, full_tok(uniq("js")))
        await js.join(group)
        p = await Client.login(wsd.url, full_tok(uniq("p")))
        raw_data = '{ "x" : 1.50 ,"y":"\\u00e9\\/", "z":[ 1e2 , -0 ] }'
        await p.send_raw('{"op":"publish","group":"%s","data":%s,"id":1}' % (group, raw_data))
        assert (await p.recv())["op"] == "reply"
        env, binary, raw = await js.recv_frame()
        assert env["op"] == "msg" and not binary
        assert ('"data":' + raw_data) in raw, raw
        await js.close()
        await p.close()
    run(go())


def test_msgpack_data_travels_byte_for_byte_between_msgpack_peers(wsd):
    async def go():
        group = uniq("rawmp:")
        mp = await Client.login(wsd.url, full_tok(uniq("mp")), msgpack=True)
        await mp.join(group)
        p = await Client.login(wsd.url, full_tok(uniq("p")), msgpack=True)
        # non-canonical encodings: uint32 for 1, str8 for "ab", float64 for 0.5
        raw_data = b"\x82\xa1a\xce\x00\x00\x00\x01\xa1b\x92\xd9\x02ab\xcb" + \
            struct.pack(">d", 0.5)
        # a map of 4 entries: op, group, id, data
        frame = b"\x84" + mp_pack("op") + mp_pack("publish") + mp_pack("group") + \
            mp_pack(group) + mp_pack("id") + mp_pack(1) + mp_pack("data") + raw_data
        await p.send_raw(frame)
        assert (await p.recv())["op"] == "reply"
        got, binary, raw = await mp.recv_frame()
        assert binary and got["data"] == {"a": 1, "b": ["ab", 0.5]}
        assert raw.endswith(mp_pack("data") + raw_data), raw
        await mp.close()
        await p.close()
    run(go())


def test_dedup_max_keeps_a_users_newest_mids_only():
    with Wsd(workers=2, extra="jwt_hs256_secret testsecret\ndedup_max 3\n") as w:
        async def go():
            user, group = uniq("dm"), uniq("dm:")
            c = await Client.login(w.url, full_tok(user))
            o = await Client.login(w.url, full_tok(uniq("dmo")))
            assert (await o.ok("publish", group=group, data=0, mid="o1"))["offset"] == 1
            for i in range(1, 6):
                r = await c.ok("publish", group=group, data=i, mid="m%d" % i)
                assert r["duplicate"] is False and r["offset"] == i + 1, r
            # The newest three are remembered, the oldest two were let go; the other
            # user's mid is counted apart.
            for i in (5, 4, 3):
                r = await c.ok("publish", group=group, data=i, mid="m%d" % i)
                assert r["duplicate"] is True and r["offset"] == i + 1, r
            r = await o.ok("publish", group=group, data=0, mid="o1")
            assert r["duplicate"] is True and r["offset"] == 1, r
            r = await c.ok("publish", group=group, data=1, mid="m1")
            assert r["duplicate"] is False and r["offset"] == 7, r
            await c.close()
            await o.close()
        run(go())
