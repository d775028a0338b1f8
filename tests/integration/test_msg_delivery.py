"""Delivery across workers (PROTOCOL.md "Delivery guarantees"): offsets under concurrent
publishers, a user's connections on several workers, deduplication, presence and
broadcast across workers, the offline queue, and slow consumers (4010) with bounded
memory. Tests that check cross-worker behaviour open 64 connections or more and check,
through /proc, that the connections are spread over the workers."""
import asyncio
import collections
import contextlib
import itertools
import json
import os
import time

import pytest
import websockets

from wsdclient import (Client, RawClient, close_all, full_tok, gather_connect, rss_kib, run,
                       tok, workers_of)
from wsdproc import Wsd, metrics

MAIN_CONF = ("jwt_hs256_secret testsecret\nanonymous on\npublic_groups public:*\n"
             "jwt_leeway 0\nauth_grace 1\n")
SLOW_CONF = MAIN_CONF + "output_queue_limit 1m\nclose_timeout 3\n"
WORKERS = 4

_names = itertools.count(1)


def uniq(prefix):
    return "%s%d-%s" % (prefix, next(_names), os.urandom(3).hex())


@pytest.fixture(scope="module")
def wsd():
    with Wsd(workers=WORKERS, extra=MAIN_CONF) as w:
        yield w


def _open_connections(port):
    return sum(v for k, v in metrics(port).items() if k.startswith("wsd_connections{"))


def assert_spread(wsd, clients, at_least=3):
    """The clients' connections are owned by at least `at_least` workers; returns owners."""
    owners = workers_of(wsd, clients)
    assert None not in owners, owners
    count = collections.Counter(owners)
    assert len(count) >= at_least, count
    return owners


async def connect_spread(wsd, make, n, at_least=3, limit=256):
    """Opens n clients with make(i), then more (16 at a time, up to limit) until their
    connections are owned by at least `at_least` workers: under load one worker can
    accept a whole burst of connections."""
    clients = await gather_connect(n, make)
    while len(set(workers_of(wsd, clients))) < at_least and len(clients) < limit:
        base = len(clients)
        clients += await gather_connect(16, lambda i: make(base + i))
    assert_spread(wsd, clients, at_least)
    return clients


def test_concurrent_publishers_give_every_member_contiguous_offsets(wsd):
    n_conns, n_pubs, per_pub = 64, 8, 200
    total = n_pubs * per_pub
    group = uniq("load:")

    async def publish_all(i, c):
        for k in range(per_pub):
            await c.send({"op": "publish", "group": group, "data": {"p": i, "k": k},
                          "id": k})
        offsets = []
        for k in range(per_pub):
            r = (await c.wait_id(k, timeout=60))[0]
            assert r["op"] == "reply" and r["duplicate"] is False, r
            offsets.append(r["offset"])
        return offsets

    async def go():
        clients = await connect_spread(wsd, lambda i: Client.login(
            wsd.url, full_tok(uniq("ld"))), n_conns)
        users = [c.welcome["user"] for c in clients]
        owners = workers_of(wsd, clients)
        pubs, subs = clients[:n_pubs], clients[n_pubs:]
        for i in range(n_pubs):
            others = [o for o in owners[n_pubs:] if o != owners[i]]
            assert len(others) >= 8, owners
        await asyncio.gather(*[c.join(group) for c in clients])
        results = await asyncio.gather(*[publish_all(i, c) for i, c in enumerate(pubs)],
                                       *[c.msgs(total, timeout=90, ch=group) for c in subs])
        pub_offsets, sub_msgs = results[:n_pubs], results[n_pubs:]
        # the replies: every offset once, each publisher's in its publish order
        flat = sorted(o for offs in pub_offsets for o in offs)
        assert flat == list(range(1, total + 1))
        expect = {}
        for i, offs in enumerate(pub_offsets):
            assert offs == sorted(offs), (i, offs)
            for k, o in enumerate(offs):
                expect[o] = (users[i], {"p": i, "k": k})
        # every other member sees 1..total once, in order, with the right data
        for j, got in enumerate(sub_msgs):
            assert [m["off"] for m in got] == list(range(1, total + 1)), j
            for m in got:
                assert (m["from"], m["data"]) == expect[m["off"]], m
        # publishers: everything but their own, in order, and nothing else
        for i, c in enumerate(pubs):
            own = set(pub_offsets[i])
            got = await c.msgs(total - per_pub, timeout=30, ch=group)
            offs = [m["off"] for m in got]
            assert offs == [o for o in range(1, total + 1) if o not in own], i
            for m in got:
                assert (m["from"], m["data"]) == expect[m["off"]], m
        extra = await asyncio.gather(*[c.drain() for c in clients])
        assert all(x == [] for x in extra), [x for x in extra if x][:1]
        await close_all(clients)
    run(go(), timeout=110)


def test_members_joining_during_publishing_see_every_later_offset_once_in_order(wsd):
    n_pubs, per_pub, n_joiners = 4, 500, 60
    total = n_pubs * per_pub
    group = uniq("race:")

    async def publish_all(i, c):
        for k in range(per_pub):
            await c.send({"op": "publish", "group": group, "data": k, "id": k})
            if k % 50 == 49 or k == per_pub - 1:
                r = (await c.wait_id(k, timeout=60))[0]
                assert r["op"] == "reply", r

    async def join_later(j, c):
        await asyncio.sleep(0.004 * j)
        since = None
        if j % 3 == 0:
            since = j * 10
            r = await c.request("join", group=group, since=since)
            assert r["op"] == "reply", r
        else:
            r = await c.join(group)
        got = []
        while not got or got[-1]["off"] < total:
            got += await c.msgs(1, timeout=60, ch=group)
        return since, r, [m["off"] for m in got]

    async def go():
        pubs = await gather_connect(n_pubs, lambda i: Client.login(wsd.url,
                                                                   full_tok(uniq("rp"))))
        joiners = await connect_spread(wsd, lambda i: Client.login(
            wsd.url, full_tok(uniq("rj"))), n_joiners)
        results = await asyncio.gather(*[publish_all(i, c) for i, c in enumerate(pubs)],
                                       *[join_later(j, c) for j, c in enumerate(joiners)])
        for since, r, offs in results[n_pubs:]:
            # gap-free and without duplicates up to the last offset
            assert offs == list(range(offs[0], total + 1)), (since, r, offs[:5])
            if since is None or since >= r["offset"]:
                assert offs[0] == r["offset"] + 1, (since, r, offs[:5])
            elif r["recovered"]:
                assert offs[0] == since + 1, (since, r, offs[:5])
            else:  # history did not reach back to since: it replays what it has
                assert since + 1 < offs[0] <= r["offset"] + 1, (since, r, offs[:5])
        extra = await asyncio.gather(*[c.drain() for c in joiners])
        assert all(x == [] for x in extra), [x for x in extra if x][:1]
        await close_all(pubs + joiners)
    run(go(), timeout=90)


def test_logins_during_sends_get_backlog_then_live_without_gaps(wsd):
    n = 400
    user = uniq("busy")

    async def send_all(s):
        for k in range(1, n + 1):
            await s.send({"op": "send", "user": user, "data": k, "id": k})
            if k % 40 == 0 or k == n:
                r = (await s.wait_id(k, timeout=60))[0]
                assert r["op"] == "reply" and r["offset"] == k, r

    async def login_later(j):
        await asyncio.sleep(0.01 * j)
        c = await Client.login(wsd.url, tok(user))
        got = await c.msgs(n, timeout=60, ch="@")
        return c, [m["off"] for m in got], [m["data"] for m in got]

    async def go():
        fillers = await connect_spread(wsd, lambda i: Client.login(wsd.url), 48)
        s = await Client.login(wsd.url, tok(uniq("sender")))
        results = await asyncio.gather(send_all(s), *[login_later(j) for j in range(16)])
        conns = [r[0] for r in results[1:]]
        assert_spread(wsd, conns + fillers)
        for c, offs, data in results[1:]:
            assert offs == list(range(1, n + 1)), offs[:5]
            assert data == list(range(1, n + 1))
        extra = await asyncio.gather(*[c.drain() for c in conns])
        assert all(x == [] for x in extra), [x for x in extra if x][:1]
        await close_all(conns + fillers + [s])
    run(go(), timeout=90)


def test_user_with_connections_on_several_workers_gets_each_direct_message_once_on_each(wsd):
    async def go():
        bob, alice = uniq("bob"), uniq("alice")
        conns = await connect_spread(wsd, lambda i: Client.login(wsd.url, tok(bob)), 16,
                                     at_least=2)
        fillers = await gather_connect(48, lambda i: Client.login(wsd.url))
        owners = workers_of(wsd, conns)
        n = len(conns)
        sender = await Client.login(wsd.url, tok(alice))
        for k in range(1, 11):
            r = await sender.request("send", user=bob, data={"k": k})
            assert r["ok"] and r["offset"] == k and r["delivered"] == n, r
            assert r["stored"] is True and r["duplicate"] is False
        for c in conns:
            got = await c.msgs(10, ch="@")
            assert [(m["off"], m["data"]["k"], m["from"]) for m in got] == \
                [(k, k, alice) for k in range(1, 11)], got
        extra = await asyncio.gather(*[c.drain() for c in conns])
        assert all(x == [] for x in extra), extra
        # a connection of the same user elsewhere gets it too, sent by the user himself
        r = await conns[0].request("send", user=bob, data="self")
        assert r["delivered"] == n, r
        for c in conns:
            assert (await c.msgs(1, ch="@"))[0]["off"] == 11
        assert len(set(owners)) >= 2
        await close_all(conns + fillers + [sender])
    run(go())


def test_duplicate_mid_publish_is_acknowledged_once_and_delivered_once(wsd):
    async def go():
        group, user = uniq("dd:"), uniq("dup")
        subs = await connect_spread(wsd, lambda i: Client.login(wsd.url, full_tok(uniq("s"))),
                                    64)
        await asyncio.gather(*[c.join(group) for c in subs])
        p1 = await Client.login(wsd.url, full_tok(user))
        p2s = await gather_connect(8, lambda i: Client.login(wsd.url, full_tok(user)))
        other = await Client.login(wsd.url, full_tok(uniq("oth")))
        r = await p1.request("publish", group=group, data="first", mid="x1")
        assert r["offset"] == 1 and r["duplicate"] is False, r
        r = await p1.request("publish", group=group, data="again", mid="x1", id="d")
        assert r == {"op": "reply", "id": "d", "ok": True, "offset": 1, "duplicate": True}, r
        # the same user on other connections (other workers): still a duplicate
        for p2 in p2s:
            r = await p2.request("publish", group=group, data="third", mid="x1")
            assert r["offset"] == 1 and r["duplicate"] is True, r
        # another user's mid is its own
        r = await other.request("publish", group=group, data="other", mid="x1")
        assert r["offset"] == 2 and r["duplicate"] is False, r
        r = await p1.request("publish", group=group, data="marker", mid="x2")
        assert r["offset"] == 3 and r["duplicate"] is False, r
        for c in subs:
            got = await c.msgs(3)
            assert [(m["off"], m["data"], m["mid"]) for m in got] == \
                [(1, "first", "x1"), (2, "other", "x1"), (3, "marker", "x2")], got
        extra = await asyncio.gather(*[c.drain() for c in subs])
        assert all(x == [] for x in extra), extra
        await close_all(subs + p2s + [p1, other])
    run(go())


def test_duplicate_mid_send_replies_first_offset_delivered_0_and_is_not_redelivered(wsd):
    async def go():
        target, sender = uniq("tgt"), uniq("snd")
        tconns = await gather_connect(8, lambda i: Client.login(wsd.url, tok(target)))
        fillers = await connect_spread(wsd, lambda i: Client.login(wsd.url), 56)
        s1 = await Client.login(wsd.url, tok(sender))
        s2 = await Client.login(wsd.url, tok(sender))
        r = await s1.request("send", user=target, data="one", mid="m1")
        assert r["offset"] == 1 and r["delivered"] == 8 and r["duplicate"] is False, r
        r = await s1.request("send", user=target, data="one again", mid="m1", id="x")
        assert r == {"op": "reply", "id": "x", "ok": True, "offset": 1, "delivered": 0,
                     "stored": True, "duplicate": True}, r
        r = await s2.request("send", user=target, data="other conn", mid="m1")
        assert r["offset"] == 1 and r["delivered"] == 0 and r["duplicate"] is True, r
        r = await s1.request("send", user=target, data="two", mid="m2")
        assert r["offset"] == 2 and r["duplicate"] is False, r
        for c in tconns:
            got = await c.msgs(2, ch="@")
            assert [(m["off"], m["data"]) for m in got] == [(1, "one"), (2, "two")], got
            assert await c.drain() == []
        # and the duplicate was not stored for the offline queue either
        late = await Client.login(wsd.url, tok(target))
        got = await late.msgs(2, ch="@")
        assert [(m["off"], m["data"]) for m in got] == [(1, "one"), (2, "two")], got
        assert await late.drain() == []
        await close_all(tconns + fillers + [s1, s2, late])
    run(go())


def test_presence_counts_connections_and_users_across_workers(wsd):
    async def go():
        group = uniq("pres:")
        users = [uniq("pu") for _ in range(16)]
        clients = await connect_spread(wsd, lambda i: Client.login(
            wsd.url, tok(users[i % 16], join=["pres:*"])), 64)
        n = len(clients)
        await asyncio.gather(*[c.join(group) for c in clients])
        for asker in (clients[0], clients[37]):
            r = await asker.request("presence", group=group)
            assert r["count"] == n and r["user_count"] == 16, r
            assert sorted(r["users"]) == sorted(users), r
        # every connection of users 0 and 1 leaves (on whatever worker it is)
        leavers = [c for i, c in enumerate(clients) if i % 16 in (0, 1)]
        await asyncio.gather(*[c.ok("leave", group=group) for c in leavers])
        r = await clients[5].request("presence", group=group)
        assert r["count"] == n - len(leavers) and r["user_count"] == 14, r
        assert sorted(r["users"]) == sorted(users[2:]), r
        # closing connections removes them too
        await close_all(clients[40:])
        remaining = [i for i in range(40) if i % 16 not in (0, 1)]
        for _ in range(50):  # the closes are handled asynchronously
            r = await clients[5].request("presence", group=group)
            if r["count"] == len(remaining):
                break
            await asyncio.sleep(0.1)
        assert r["count"] == len(remaining), r
        assert sorted(r["users"]) == sorted({users[i % 16] for i in remaining}), r
        await close_all(clients[:40])
    run(go())


def test_broadcast_reaches_every_other_connection_once_but_not_the_broadcaster(wsd):
    async def go():
        admin = uniq("root")
        users = await gather_connect(40, lambda i: Client.login(wsd.url, tok(uniq("bu"))))
        mps = await gather_connect(8, lambda i: Client.login(wsd.url, tok(uniq("bm")),
                                                             msgpack=True))
        anons = await connect_spread(wsd, lambda i: Client.login(wsd.url), 16)
        others = users + mps + anons
        a = await Client.login(wsd.url, tok(admin, admin=True))
        r = await a.request("broadcast", data={"notice": "hello", "bin": "x"}, id="b")
        assert r["op"] == "reply" and r["id"] == "b" and r["ok"] is True, r
        assert set(r) == {"op", "id", "ok", "delivered"}, r
        assert r["delivered"] >= len(others), r
        mids = set()
        for c in others:
            fr = await c.recv_frame()
            m = fr[0]
            assert fr[1] == c.msgpack  # in the subprotocol's encoding
            assert m["op"] == "msg" and m["ch"] == "*" and "off" not in m, m
            assert m["from"] == admin and isinstance(m["mid"], str) and m["mid"], m
            assert m["data"] == {"notice": "hello", "bin": "x"}, m
            assert "sys" not in m
            mids.add(m["mid"])
        assert len(mids) == 1, mids  # one message, one server-made mid
        extra = await asyncio.gather(*[c.drain() for c in others + [a]])
        assert all(x == [] for x in extra), [x for x in extra if x][:2]
        await close_all(others + [a])
    run(go())


def test_broadcast_delivered_counts_only_the_connections_it_reaches(wsd):
    async def go():
        others = await gather_connect(24, lambda i: Client.login(wsd.url, tok(uniq("bd"))))
        a = await Client.login(wsd.url, tok(uniq("root"), admin=True))
        # raw /echo connections are no messaging connections: not reached, not counted
        echo = [await websockets.connect(wsd.url + "/echo", ping_interval=None)
                for _ in range(4)]
        expect_open = len(others) + 1 + len(echo)
        for _ in range(100):  # connections of earlier tests are gone
            if _open_connections(wsd.port) == expect_open:
                break
            await asyncio.sleep(0.1)
        assert _open_connections(wsd.port) == expect_open
        r = await a.request("broadcast", data="count me")
        for c in others:
            assert (await c.msgs(1))[0]["data"] == "count me"
        for e in echo:
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(e.recv(), 0.2)
            await e.close()
        assert r["delivered"] == len(others), r
        await close_all(others + [a])
    run(go())


def test_offline_queue_delivers_after_welcome_in_order_until_acked(wsd):
    async def go():
        olga, sender = uniq("olga"), uniq("sender")
        s = await Client.login(wsd.url, tok(sender))
        for k in range(1, 6):
            r = await s.request("send", user=olga, data={"k": k}, mid="o%d" % k)
            assert r["offset"] == k and r["delivered"] == 0 and r["stored"] is True, r
            assert r["duplicate"] is False
        # login: welcome first, then the backlog in order
        c = await Client.connect(wsd.url, tok(olga))
        first = await c.recv()
        assert first["op"] == "welcome" and first["personal"]["offset"] == 5, first
        got = await c.msgs(5, ch="@")
        assert [(m["off"], m["data"]["k"], m["mid"], m["from"]) for m in got] == \
            [(k, k, "o%d" % k, sender) for k in range(1, 6)], got
        epoch = first["personal"]["epoch"]
        # live sends while online come after the backlog
        await s.ok("send", user=olga, data={"k": 6})
        assert (await c.msgs(1, ch="@"))[0]["off"] == 6
        r = await c.request("ack", offset=3, id="a3")
        assert r == {"op": "reply", "id": "a3", "ok": True}, r
        await c.close()
        # the next login gets only what was not acknowledged
        c = await Client.login(wsd.url, tok(olga))
        assert c.welcome["personal"] == {"offset": 6, "epoch": epoch}, c.welcome
        got = await c.msgs(3, ch="@")
        assert [m["off"] for m in got] == [4, 5, 6], got
        assert await c.drain() == []
        await c.ok("ack", offset=6)
        await c.close()
        c = await Client.login(wsd.url, tok(olga))
        assert await c.drain() == []
        # acknowledging is cumulative and an older ack does not bring messages back
        await c.ok("ack", offset=2)
        await c.close()
        c = await Client.login(wsd.url, tok(olga))
        assert await c.drain() == []
        await close_all([c, s])
    run(go())


def test_offline_queue_is_delivered_on_every_connection_that_logs_in(wsd):
    async def go():
        user, sender = uniq("multi"), uniq("s")
        s = await Client.login(wsd.url, tok(sender))
        for k in range(1, 4):
            await s.ok("send", user=user, data=k)
        conns = await gather_connect(8, lambda i: Client.login(wsd.url, tok(user)))
        for c in conns:
            got = await c.msgs(3, ch="@")
            assert [m["off"] for m in got] == [1, 2, 3], got
        # anonymous-then-login also gets the backlog after its welcome
        a = await Client.login(wsd.url)
        w = await a.request("auth", token=tok(user), id="in")
        assert w["op"] == "welcome" and w["personal"]["offset"] == 3, w
        got = await a.msgs(3, ch="@")
        assert [m["off"] for m in got] == [1, 2, 3], got
        await close_all(conns + [a, s])
    run(go())


# ---- slow consumers -------------------------------------------------------------------

SLOW_PUBS, SLOW_PER_PUB, SLOW_READERS = 4, 6000, 3


def _closes_4010(port):
    return metrics(port).get('wsd_closes_total{code="4010"}', 0)


def _read_until_closed(raw, limit_s=15):
    """Frames from a raw client until its close frame or the end of the stream.
    Returns (msg offsets, close code or None, how the stream ended)."""
    raw.sock.settimeout(limit_s)
    offs, code, end = [], None, "eof"
    try:
        while True:
            op, payload = raw.recv_frame()
            if op == 8:
                code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
                end = "close"
                break
            if op == 1:
                env = json.loads(payload)
                if env.get("op") == "msg":
                    offs.append(env["off"])
    except EOFError:
        end = "eof"
    except ConnectionResetError:
        end = "reset"
    return offs, code, end


def _drain_once_declared_slow(w, raw, user, limit_s=60):
    """Waits for the server's slow-consumer log line about user, then reads everything
    (within close_timeout) up to the close frame."""
    deadline = time.monotonic() + limit_s
    needle = "user=%s slow consumer" % user
    while needle not in w.read_log():
        if time.monotonic() > deadline:
            return [], None, "never declared slow"
        time.sleep(0.05)
    return _read_until_closed(raw)


def _slow_member(w, group, user):
    raw = RawClient(w.port, "/ws?token=" + full_tok(user), rcvbuf=4096)
    assert raw.recv_json()["op"] == "welcome"
    raw.send_text('{"op":"join","group":"%s","id":1}' % group)
    r = raw.recv_json()
    assert r["op"] == "reply" and r["offset"] == 0, r
    return raw


@contextlib.contextmanager
def _asan_quarantine(mb):
    """ASan keeps freed memory in a quarantine (256 MiB by default), which would show as
    RSS growth; a small one lets the RSS check see what the server really holds."""
    old = os.environ.get("ASAN_OPTIONS")
    os.environ["ASAN_OPTIONS"] = (old + ":" if old else "") + "quarantine_size_mb=%d" % mb
    try:
        yield
    finally:
        if old is None:
            del os.environ["ASAN_OPTIONS"]
        else:
            os.environ["ASAN_OPTIONS"] = old


def test_slow_consumer_is_closed_4010_while_others_get_everything_and_memory_stays_bounded():
    n_pubs, per_pub = SLOW_PUBS, SLOW_PER_PUB
    total = n_pubs * per_pub
    payload = "x" * 1024
    w = Wsd(workers=WORKERS, extra=SLOW_CONF)
    with _asan_quarantine(1):
        w.start()
    group = uniq("slow:")

    async def publish_all(c, i):
        offsets = []
        for start in range(0, per_pub, 100):
            ids = list(range(start, min(per_pub, start + 100)))
            for k in ids:
                await c.send({"op": "publish", "group": group,
                              "data": {"p": i, "k": k, "pad": payload}, "id": k})
            for k in ids:
                r = (await c.wait_id(k, timeout=60))[0]
                assert r["op"] == "reply", r
                offsets.append(r["offset"])
        return offsets

    async def go():
        subs = await connect_spread(w, lambda i: Client.login(w.url, full_tok(uniq("s"))), 60)
        readers = subs[:SLOW_READERS]
        await asyncio.gather(*[c.join(group) for c in readers])
        # two slow members: one never reads again; the other starts reading only once
        # the server has given up on it, and must then find the close frame after the data
        never_user, late_user = uniq("never"), uniq("late")
        never = _slow_member(w, group, never_user)
        late = _slow_member(w, group, late_user)
        closes_before = _closes_4010(w.port)
        pubs = await gather_connect(n_pubs, lambda i: Client.login(w.url, full_tok(uniq("p"))))
        before = {f: rss_kib(w, f) for f in ("VmRSS", "RssAnon")}
        peak = dict(before)

        def sample_once():
            for f in peak:
                peak[f] = max(peak[f], rss_kib(w, f))

        async def sample():
            while True:
                sample_once()
                await asyncio.sleep(0.2)

        sampler = asyncio.ensure_future(sample())
        late_result = asyncio.ensure_future(
            asyncio.to_thread(_drain_once_declared_slow, w, late, late_user))
        results = await asyncio.gather(
            *[publish_all(c, i) for i, c in enumerate(pubs)],
            *[c.msgs(total, timeout=90, ch=group) for c in readers])
        for _ in range(100):  # the one that never reads goes after close_timeout
            if _closes_4010(w.port) >= closes_before + 2:
                break
            await asyncio.sleep(0.2)
        sampler.cancel()
        sample_once()
        assert _closes_4010(w.port) >= closes_before + 2
        # the others got every message, in order
        offs = sorted(o for r in results[:n_pubs] for o in r)
        assert offs == list(range(1, total + 1))
        for got in results[n_pubs:]:
            assert [m["off"] for m in got] == list(range(1, total + 1))
        # bounded memory: the RSS of master and workers grows by less than 64 MiB, and
        # the heap by less than the backlog an unbounded queue would hold (24k x 1 KiB
        # for each slow member, less the few MiB they took)
        grown = {f: (peak[f] - before[f]) / 1024 for f in peak}
        assert grown["VmRSS"] < 64, grown
        assert grown["RssAnon"] < 24, grown
        # the late reader: a gap-free prefix, then the close frame with 4010
        late_offs, code, end = await late_result
        late.close()
        assert end == "close" and code == 4010, (end, code, len(late_offs))
        assert late_offs == list(range(1, len(late_offs) + 1))
        assert 0 < len(late_offs) < total
        # the one that never read: a gap-free prefix, then the close or a dropped socket
        never_offs, code, end = await asyncio.to_thread(_read_until_closed, never)
        never.close()
        assert never_offs == list(range(1, len(never_offs) + 1)), never_offs[:5]
        assert len(never_offs) < total
        assert end in ("close", "eof", "reset"), end
        if end == "close":
            assert code == 4010
        # the server still serves the others
        for c in readers:
            r = await c.request("ping", id="after")
            assert r == {"op": "pong", "id": "after"}
        await close_all(subs + pubs)
        return grown, len(late_offs), len(never_offs), end

    try:
        grown, n_late, n_never, end = run(go(), timeout=110)
    finally:
        w.stop()
    print("slow consumers: RSS +%.1f MiB (heap +%.1f MiB); late reader got %d messages "
          "then 4010; the other %d then %s" % (grown["VmRSS"], grown["RssAnon"], n_late,
                                               n_never, end))
