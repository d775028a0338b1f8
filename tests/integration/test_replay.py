"""Replays paced by the socket (PROTOCOL.md "Delivery guarantees", 5): a join with
`since` and the offline backlog at login are written as the client reads them, not
queued whole. The server's memory stays bounded while a client sits on a long replay,
the replay never makes the connection a slow consumer (4010), and each channel arrives
gap-free, in order and without duplicates, with the live messages published during the
replay after it."""
import asyncio
import json
import time

import pytest

from redisproc import Redis
from test_msg_delivery import _asan_quarantine, uniq
from wsdclient import Client, RawClient, close_all, full_tok, rss_kib, run
from wsdproc import Wsd, metrics

# A 1 MiB live-output limit, far below the replays of these tests (40 to 50 MiB).
CONF = ("jwt_hs256_secret testsecret\njwt_leeway 0\noutput_queue_limit 1m\n"
        "close_timeout 3\nhistory_size 20000\nhistory_ttl 0\noffline_max 20000\n")
PAD = "r" * 4000
REPLAY_RSS_MAX_MIB = 16  # an unpaced replay of these tests holds 40 MiB or more


@pytest.fixture(scope="module")
def redis():
    r = Redis().start()
    yield r
    r.cleanup()


@pytest.fixture(params=["lmdb", "redis"])
def conf(request):
    """The configuration on each store: the replay reads history and backlog from it."""
    if request.param == "lmdb":
        return CONF
    return CONF + "store %s\n" % request.getfixturevalue("redis").uri


def _closes_4010(port):
    return metrics(port).get('wsd_closes_total{code="4010"}', 0)


async def _publish(c, group, n, tag, pad=PAD):
    """Publishes n messages to group, 200 in flight; returns their offsets."""
    offsets = []
    for start in range(0, n, 200):
        ids = ["%s%d" % (tag, k) for k in range(start, min(n, start + 200))]
        for i in ids:
            await c.send({"op": "publish", "group": group, "data": {"t": tag, "pad": pad},
                          "id": i})
        for i in ids:
            r = (await c.wait_id(i, timeout=60))[0]
            assert r["op"] == "reply", r
            offsets.append(r["offset"])
    return offsets


async def _send_direct(c, user, n, tag, pad=PAD):
    for start in range(0, n, 200):
        ids = ["%s%d" % (tag, k) for k in range(start, min(n, start + 200))]
        for i in ids:
            await c.send({"op": "send", "user": user, "data": {"t": tag, "pad": pad}, "id": i})
        for i in ids:
            r = (await c.wait_id(i, timeout=60))[0]
            assert r["op"] == "reply" and r["stored"] is True, r


def _read_all(raw, expect, limit_s=60):
    """Reads text frames until `expect` messages arrived. Returns (the envelopes in order,
    a close code or None)."""
    raw.sock.settimeout(limit_s)
    got = []
    deadline = time.monotonic() + limit_s
    while sum(1 for e in got if e.get("op") == "msg") < expect:
        assert time.monotonic() < deadline, "only %d of %d messages" % (len(got), expect)
        op, payload = raw.recv_frame()
        if op == 8:
            code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
            return got, code
        if op == 1:
            got.append(json.loads(payload))
    return got, None


def _offsets(envs, ch):
    return [e["off"] for e in envs if e.get("op") == "msg" and e.get("ch") == ch]


def _watch_rss(w, seconds):
    """The most the server's RSS grew (MiB) over `seconds`, sampled every 0.1 s."""
    base = rss_kib(w)
    peak = base
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        peak = max(peak, rss_kib(w))
        time.sleep(0.1)
    return (peak - base) / 1024


def test_join_replay_is_paced_bounded_never_slow_and_live_follows_in_order(conf):
    n_hist, n_live = 10000, 20
    group, other = uniq("hist:"), uniq("live:")
    w = Wsd(workers=2, extra=conf)
    with _asan_quarantine(1):
        w.start()

    async def go():
        pub = await Client.login(w.url, full_tok(uniq("pub")))
        assert await _publish(pub, group, n_hist, "h") == list(range(1, n_hist + 1))
        closes_before = _closes_4010(w.port)
        # a reader with a 4 KiB receive buffer joins another group, then asks for the
        # whole history of `group`, and reads nothing for a while
        reader = RawClient(w.port, "/ws?token=" + full_tok(uniq("reader")), rcvbuf=4096)
        assert reader.recv_json()["op"] == "welcome"
        reader.send_text(json.dumps({"op": "join", "group": other, "id": "j1"}))
        assert reader.recv_json()["id"] == "j1"
        reader.send_text(json.dumps({"op": "join", "group": group, "since": 0, "id": "j2"}))
        grown = await asyncio.to_thread(_watch_rss, w, 1.5)
        # live traffic on both groups while the replay waits for the reader: the other
        # group's messages are live output and must not find the connection slow
        live_other = await _publish(pub, other, n_live, "o", pad="x" * 100)
        live_group = await _publish(pub, group, n_live, "g", pad="x" * 100)
        grown = max(grown, await asyncio.to_thread(_watch_rss, w, 1.0))
        envs, code = await asyncio.to_thread(_read_all, reader, n_hist + 2 * n_live)
        reader.close()
        await close_all([pub])
        return grown, envs, code, live_other, live_group, closes_before

    try:
        grown, envs, code, live_other, live_group, closes_before = run(go(), timeout=120)
        assert code is None, "closed with %s after %d frames" % (code, len(envs))
        assert _closes_4010(w.port) == closes_before
        # the join reply first, then the history, then what was published during it
        assert envs[0]["op"] == "reply" and envs[0]["id"] == "j2", envs[0]
        assert envs[0]["offset"] == n_hist
        assert _offsets(envs, group) == list(range(1, n_hist + 1)) + live_group
        assert _offsets(envs, other) == live_other == list(range(1, n_live + 1))
        assert grown < REPLAY_RSS_MAX_MIB, "RSS grew by %.1f MiB during the replay" % grown
    finally:
        w.stop()
    print("join replay of %d x 4 KiB: RSS +%.1f MiB while the reader waited" % (n_hist, grown))


def test_offline_backlog_at_login_is_paced_and_live_direct_messages_follow(conf):
    n_backlog, n_live = 10000, 20
    user = uniq("off")
    w = Wsd(workers=2, extra=conf)
    with _asan_quarantine(1):
        w.start()

    async def go():
        sender = await Client.login(w.url, full_tok(uniq("snd")))
        await _send_direct(sender, user, n_backlog, "b")
        closes_before = _closes_4010(w.port)
        reader = RawClient(w.port, "/ws?token=" + full_tok(user), rcvbuf=4096)
        assert reader.recv_json()["op"] == "welcome"
        grown = await asyncio.to_thread(_watch_rss, w, 1.5)
        await _send_direct(sender, user, n_live, "l", pad="x" * 100)
        envs, code = await asyncio.to_thread(_read_all, reader, n_backlog + n_live)
        reader.close()
        await close_all([sender])
        return grown, envs, code, closes_before

    try:
        grown, envs, code, closes_before = run(go(), timeout=120)
        assert code is None, code
        assert _closes_4010(w.port) == closes_before
        assert _offsets(envs, "@") == list(range(1, n_backlog + n_live + 1))
        assert [e["data"]["t"] for e in envs if e.get("op") == "msg"] == \
            ["b"] * n_backlog + ["l"] * n_live
        assert grown < REPLAY_RSS_MAX_MIB, "RSS grew by %.1f MiB during the backlog" % grown
    finally:
        w.stop()
    print("offline backlog of %d x 4 KiB: RSS +%.1f MiB while the reader waited" %
          (n_backlog, grown))


def test_leaving_during_a_replay_ends_it_and_a_resumed_session_continues_it(conf):
    n_hist = 3000
    group = uniq("hist:")
    w = Wsd(workers=2, extra=conf)
    w.start()

    async def go():
        pub = await Client.login(w.url, full_tok(uniq("pub")))
        await _publish(pub, group, n_hist, "h")
        user = uniq("rd")
        # leave once the replay is under way: nothing of the group after the leave reply
        raw = RawClient(w.port, "/ws?token=" + full_tok(user), rcvbuf=4096)
        assert raw.recv_json()["op"] == "welcome"
        raw.send_text(json.dumps({"op": "join", "group": group, "since": 0, "id": "j"}))
        got = [raw.recv_json()]
        assert got[0]["id"] == "j", got[0]
        raw.send_text(json.dumps({"op": "leave", "group": group, "id": "l"}))
        raw.send_text(json.dumps({"op": "ping", "id": "p"}))
        raw.sock.settimeout(20)
        while not (got and got[-1].get("op") == "pong"):
            op, payload = raw.recv_frame()
            assert op == 1, op
            got.append(json.loads(payload))
        ids = [e.get("id") for e in got]
        offs = _offsets(got, group)
        assert offs == list(range(1, len(offs) + 1))
        assert len(offs) < n_hist, "the whole replay was written before the leave"
        assert ids.index("l") > ids.index("j")
        assert not [e for e in got[ids.index("l"):] if e.get("op") == "msg"]
        raw.close()

        # a session that ends during a replay resumes it from where the server had got to
        raw = RawClient(w.port, "/ws?token=" + full_tok(user), rcvbuf=4096)
        welcome = raw.recv_json()
        session = welcome["session"]
        raw.send_text(json.dumps({"op": "join", "group": group, "since": 0, "id": "j"}))
        first, _ = _read_all(raw, 100, limit_s=20)
        read = _offsets(first, group)
        assert read == list(range(1, 101))
        raw.close()
        await asyncio.sleep(0.5)  # the server sees the drop and saves the session
        resumed = RawClient(w.port, "/ws?session=%s&token=%s" % (session, full_tok(user)),
                            rcvbuf=1 << 20)
        welcome = resumed.recv_json()
        assert welcome["op"] == "welcome" and welcome["resumed"] is True, welcome
        rest, code = await asyncio.to_thread(_read_all, resumed, 1, 20)
        assert code is None
        more = []
        resumed.sock.settimeout(2)
        try:
            while True:
                op, payload = resumed.recv_frame()
                if op == 1:
                    more.append(json.loads(payload))
        except (TimeoutError, OSError):
            pass
        resumed.close()
        offs = _offsets(rest + more, group)
        await close_all([pub])
        return offs

    try:
        offs = run(go(), timeout=90)
        # gap-free to the end, starting after what the first connection read and at
        # most where the server had got to (never from the start again)
        assert offs and offs[-1] == n_hist, offs[-3:]
        assert offs == list(range(offs[0], n_hist + 1))
        assert 101 <= offs[0] <= n_hist, offs[0]
    finally:
        w.stop()


def test_a_replay_waits_out_a_store_outage_and_goes_on_in_order():
    """The store goes away in the middle of a replay (redis-server killed): the replay
    stalls without closing anyone and, once the store is back, carries on where it
    stopped, gap-free."""
    n_hist = 3000
    group = uniq("hist:")
    redis = Redis().start()
    w = Wsd(workers=1, extra=CONF + "store %s\n" % redis.uri)
    w.start()
    try:
        async def publish():
            pub = await Client.login(w.url, full_tok(uniq("pub")))
            await _publish(pub, group, n_hist, "h")
            await close_all([pub])
        run(publish(), timeout=60)
        reader = RawClient(w.port, "/ws?token=" + full_tok(uniq("rd")), rcvbuf=4096)
        assert reader.recv_json()["op"] == "welcome"
        reader.send_text(json.dumps({"op": "join", "group": group, "since": 0, "id": "j"}))
        first, _ = _read_all(reader, 100, limit_s=20)
        redis.kill()
        # what was queued before the outage still arrives; then the replay waits
        during, _ = _read_all(reader, 1, limit_s=5)
        reader.sock.settimeout(1.5)
        try:
            while True:
                op, payload = reader.recv_frame()
                assert op == 1, op
                during.append(json.loads(payload))
        except (TimeoutError, OSError):
            pass
        redis.start()
        so_far = _offsets(first + during, group)
        assert so_far == list(range(1, len(so_far) + 1))
        assert len(so_far) < n_hist, "the replay did not stall"
        rest, code = _read_all(reader, n_hist - len(so_far), limit_s=60)
        reader.close()
        assert code is None
        assert so_far + _offsets(rest, group) == list(range(1, n_hist + 1))
    finally:
        w.stop()
        redis.cleanup()
