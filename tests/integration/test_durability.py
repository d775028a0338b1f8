"""Durability (PROTOCOL.md "Delivery guarantees" 1-6) on both store backends, LMDB and
Redis: the offline queue, acknowledgements and offline_ttl, session resume with and
without since, takeover, a worker killed with SIGKILL mid-stream, TERM and restart on
the same store, Redis killed while publishers run, and new epochs after a wiped store.

Every test is bounded in time (run() cancels it); servers run 4 workers with
jwt_hs256_secret testsecret and a history long enough for the streams used here.
"""
import asyncio
import os
import shutil
import signal
import time
import uuid

import pytest

from redisproc import Redis
from wsdclient import Client, Closed, full_tok, run, workers_of
from wsdproc import Wsd

BACKENDS = ["lmdb", "redis"]
BASE_CONF = ["jwt_hs256_secret testsecret", "history_size 10000"]


def uniq(prefix):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


def make_wsd(backend, redis=None, extra=()):
    lines = list(BASE_CONF) + list(extra)
    if backend == "redis":
        lines.append("store " + redis.uri)  # overrides the harness's lmdb line
    return Wsd(workers=4, extra="\n".join(lines))


def stop_and_clean(w):
    try:
        w.stop()
    finally:
        shutil.rmtree(w.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def shared_redis():
    r = Redis().start()
    yield r
    r.cleanup()


@pytest.fixture
def own_redis():
    r = Redis().start()
    yield r
    r.cleanup()


def sanitizer_report(w, start=0):
    """The sanitizer report in w's log from byte start on ("" when none), and the log's end."""
    log = w.read_log()
    tail = log[start:]
    for mark in ("ERROR: AddressSanitizer", "runtime error:", "Sanitizer"):
        i = tail.find(mark)
        if i >= 0:
            return tail[max(0, i - 200):i + 6000], len(log)
    return "", len(log)


@pytest.fixture(scope="module", params=BACKENDS)
def shared_server(request):
    """One server per backend shared by the tests that use fresh names."""
    redis = request.getfixturevalue("shared_redis") if request.param == "redis" else None
    w = make_wsd(request.param, redis).start()
    w.reported = False
    yield w
    try:
        stop_and_clean(w)
    except RuntimeError:
        if not w.reported:  # else already failed the test that caused it
            raise


@pytest.fixture
def server(shared_server):
    """The shared server; a sanitizer report written during the test fails that test."""
    _, start = sanitizer_report(shared_server)
    yield shared_server
    report, _ = sanitizer_report(shared_server, start)
    if report:
        shared_server.reported = True
        pytest.fail("sanitizer report in the wsd log during this test:\n" + report)


@pytest.fixture(params=BACKENDS)
def backend(request):
    """(backend name, Redis or None) for tests that start their own server."""
    redis = request.getfixturevalue("own_redis") if request.param == "redis" else None
    return request.param, redis


# ---- client helpers -------------------------------------------------------------------

async def login(url, user, **claims):
    return await Client.login(url, full_tok(user, **claims))


async def auth_login(url, user, session=None, since=None):
    """Connects without a token and logs in with the auth op (session, since)."""
    c = await Client.connect(url)
    env = {"op": "auth", "token": full_tok(user)}
    if session is not None:
        env["session"] = session
    if since is not None:
        env["since"] = since
    w = (await c.request_frame(env))[0]
    assert w.get("op") == "welcome", w
    c.welcome = w
    return c


def msgs_of(frames, ch=None):
    return [f for f in frames if f.get("op") == "msg" and (ch is None or f.get("ch") == ch)]


def offsets(msgs):
    return [m["off"] for m in msgs]


def abort(c):
    """Drops the TCP connection at once, without a close handshake."""
    c.ws.transport.abort()


def assert_sequential(offs, first, last, what):
    assert offs == list(range(first, last + 1)), "%s: expected %d..%d gap-free, got %r" % (
        what, first, last, offs)


# ---- offline queue --------------------------------------------------------------------

def test_offline_queue_delivered_in_order_once_then_acked(server):
    async def go():
        url = server.url
        sender_id, rcpt = uniq("sender"), uniq("rcpt")
        sender = await login(url, sender_id)
        for i in range(1, 21):
            r = await sender.ok("send", user=rcpt, data={"i": i}, mid="m%d" % i)
            assert (r["offset"], r["stored"], r["delivered"], r["duplicate"]) == \
                (i, True, 0, False), r

        c = await login(url, rcpt)
        assert c.welcome["resumed"] is False
        assert c.welcome["personal"]["offset"] == 20, c.welcome
        got = await c.msgs(20, timeout=15)
        assert all(m["ch"] == "@" for m in got), got
        assert_sequential(offsets(got), 1, 20, "offline backlog")
        assert [m["data"] for m in got] == [{"i": i} for i in range(1, 21)]
        assert [m["mid"] for m in got] == ["m%d" % i for i in range(1, 21)]
        assert {m["from"] for m in got} == {sender_id}
        assert msgs_of(await c.drain()) == [], "backlog delivered more than once"

        # a partial ack: the next login gets only what follows it
        await c.ok("ack", offset=10)
        await c.close()
        c = await login(url, rcpt)
        got = await c.msgs(10, timeout=15)
        assert_sequential(offsets(got), 11, 20, "backlog after ack 10")
        assert msgs_of(await c.drain()) == []

        # acknowledging the last offset empties the queue for good
        await c.ok("ack", offset=20)
        await c.close()
        c = await login(url, rcpt)
        assert c.welcome["personal"]["offset"] == 20, c.welcome
        assert msgs_of(await c.drain()) == [], "acknowledged messages came again"

        # the channel goes on at the next offset, live
        r = await sender.ok("send", user=rcpt, data={"i": 21})
        assert r["offset"] == 21 and r["delivered"] == 1, r
        live = await c.msgs(1)
        assert (live[0]["ch"], live[0]["off"], live[0]["data"]) == ("@", 21, {"i": 21})
        await c.close()
        await sender.close()
    run(go(), 60)


def test_offline_ttl_drops_old_messages(backend):
    name, redis = backend
    w = make_wsd(name, redis, ["offline_ttl 2"]).start()
    try:
        async def go():
            sender = await login(w.url, uniq("sender"))
            rcpt = uniq("rcpt")
            for i in range(1, 4):
                r = await sender.ok("send", user=rcpt, data={"old": i})
                assert r["offset"] == i and r["stored"] is True, r
            await asyncio.sleep(3.2)
            for i in range(4, 6):
                r = await sender.ok("send", user=rcpt, data={"new": i})
                assert r["offset"] == i, r
            c = await login(w.url, rcpt)
            assert c.welcome["personal"]["offset"] == 5, c.welcome
            got = msgs_of(await c.drain())
            assert offsets(got) == [4, 5], "offline_ttl 2: expected only 4, 5, got %r" % got
            assert [m["data"] for m in got] == [{"new": 4}, {"new": 5}]
            await c.close()
            await sender.close()
        run(go(), 30)
    finally:
        stop_and_clean(w)


# ---- order ----------------------------------------------------------------------------

def test_concurrent_publishers_live_delivery_is_gap_free(server):
    """Guarantee 1 with no drop at all: 8 publishers (spread over the workers) publish to
    one group; every member receives every offset once, in order."""
    async def go():
        group, n_pubs, per_pub = uniq("grp"), 8, 25
        total = n_pubs * per_pub
        members = [await login(server.url, uniq("member")) for _ in range(3)]
        for m in members:
            await m.join(group)
        pubs = [await login(server.url, uniq("pub")) for _ in range(n_pubs)]

        async def publisher(k):
            for i in range(per_pub):
                await pubs[k].ok("publish", group=group, data={"p": k, "i": i})
                await asyncio.sleep(0.005)

        async def member(m):
            got = []
            while not got or got[-1] < total:
                try:
                    got += offsets(await m.msgs(1, ch=group, timeout=10))
                except AssertionError:
                    break  # stalled: reported below with what arrived
            return got + offsets(msgs_of(await m.drain(), group))

        readers = [asyncio.ensure_future(member(m)) for m in members]
        await asyncio.gather(*[publisher(k) for k in range(n_pubs)])
        for i, got in enumerate(await asyncio.gather(*readers)):
            assert got == list(range(1, total + 1)), \
                "member %d: missing %r, out of order at %r" % (
                    i, sorted(set(range(1, total + 1)) - set(got))[:10],
                    [(a, b) for a, b in zip(got, got[1:]) if b != a + 1][:5])
        for c in members + pubs:
            await c.close()
    run(go(), 60)


# ---- resume ---------------------------------------------------------------------------

async def stream_with_drop(url, use_since, pubs_n=8, before=30, after=10, read_first=50):
    """A subscriber joins a group, 8 publishers publish to it; the subscriber drops its
    TCP connection after read_first messages and resumes its session (with or without
    since) while the publishers go on; the last `after` publishes of each publisher
    start only once the resume was welcomed (live traffic).
    Returns (first connection's offsets, the resumed welcome, second connection's
    offsets, total published, group)."""
    group, user = uniq("grp"), uniq("sub")
    sub = await login(url, user)
    j = await sub.join(group)
    assert j["offset"] == 0, j
    epoch, session = j["epoch"], sub.welcome["session"]
    pubs = [await login(url, uniq("pub")) for _ in range(pubs_n)]
    resumed = asyncio.Event()
    acked = []

    async def publisher(k, p):
        for i in range(before + after):
            if i == before:
                await resumed.wait()
            r = await p.ok("publish", group=group, data={"p": k, "i": i})
            assert r["duplicate"] is False, r
            acked.append(r["offset"])
            await asyncio.sleep(0.01)

    tasks = [asyncio.ensure_future(publisher(k, p)) for k, p in enumerate(pubs)]
    try:
        first = offsets(await sub.msgs(read_first, timeout=20))
        abort(sub)
        await asyncio.sleep(0.3)  # the server sees the drop; publishing goes on
        since = {group: {"offset": first[-1], "epoch": epoch}} if use_since else None
        c2 = await auth_login(url, user, session=session, since=since)
        resumed.set()
        await asyncio.gather(*tasks)
    finally:
        for t in tasks:
            t.cancel()
    total = pubs_n * (before + after)
    assert sorted(acked) == list(range(1, total + 1)), "publish offsets are not 1..total"
    welcome = c2.welcome
    assert welcome["resumed"] is True, welcome
    assert welcome["session"] == session, welcome
    assert welcome["groups"][group]["epoch"] == epoch, welcome
    second = []
    deadline = time.monotonic() + 20
    while (not second or second[-1] < total) and time.monotonic() < deadline:
        second += offsets(await c2.msgs(1, ch=group, timeout=20))
    second += offsets(msgs_of(await c2.drain(), group))
    await c2.close()
    for p in pubs:
        await p.close()
    return first, welcome, second, total, group


def test_resume_with_since_replays_exactly_the_gap(server):
    async def go():
        first, welcome, second, total, group = await stream_with_drop(server.url, True)
        assert_sequential(first, 1, 50, "first connection")
        assert welcome["recovered"] is True, welcome
        latest = welcome["groups"][group]["offset"]
        assert 50 <= latest < total, welcome
        assert_sequential(second, 51, total, "resumed connection")
        union = first + second
        assert union == list(range(1, total + 1)), "not every offset exactly once"
        assert second[-1] > latest, "no live message after the replay"
    run(go(), 90)


def test_resume_without_since_is_gap_free_after_first(server):
    async def go():
        first, welcome, second, total, group = await stream_with_drop(server.url, False)
        assert_sequential(first, 1, 50, "first connection")
        assert second, "nothing arrived on the resumed connection"
        assert_sequential(second, second[0], total, "resumed connection")
        assert second[0] > first[-1], \
            "resume without since repeated offsets the old connection had: from %d after %d" \
            % (second[0], first[-1])
    run(go(), 90)


def test_resume_takes_over_the_open_connection(server):
    async def go():
        url, user, group = server.url, uniq("user"), uniq("grp")
        old = await login(url, user)
        await old.join(group)
        session = old.welcome["session"]
        new = await auth_login(url, user, session=session)
        assert new.welcome["resumed"] is True, new.welcome
        assert group in new.welcome["groups"], new.welcome
        code, _ = await old.closed(timeout=10)
        assert code == 4011, "old connection closed with %r, expected 4011" % code
        pub = await login(url, uniq("pub"))
        r = await pub.ok("publish", group=group, data="after takeover")
        got = await new.msgs(1, ch=group)
        assert (got[0]["off"], got[0]["data"]) == (r["offset"], "after takeover")
        await new.close()
        await pub.close()
    run(go(), 30)


def test_session_of_another_user_is_a_fresh_login(server):
    async def go():
        url = server.url
        a = await login(url, uniq("alice"))
        await a.join(uniq("grp"))
        b = await auth_login(url, uniq("bob"), session=a.welcome["session"])
        assert b.welcome["resumed"] is False, b.welcome
        assert b.welcome["session"] != a.welcome["session"], b.welcome
        assert msgs_of(await a.drain()) == []  # a is still open and untouched
        await a.close()
        await b.close()
    run(go(), 30)


# ---- a worker killed mid-stream -------------------------------------------------------

async def place_clients(w, pubs, pub_users, subs):
    """Picks a worker that serves subscribers and no publisher, reconnecting publishers
    of the busiest subscriber worker until one is free of them (which worker accepts a
    connection is the kernel's and the balancer's choice, so any such worker will do).
    Returns the victim pid."""
    serving = [pid for pid in workers_of(w, subs) if pid is not None]
    assert serving, "no subscriber found on a worker"
    for _ in range(80):
        owners = workers_of(w, pubs)
        free = [pid for pid in serving if pid not in owners]
        if free:
            return max(set(free), key=serving.count)
        busiest = max(set(serving), key=serving.count)
        k = owners.index(busiest)
        await pubs[k].close()
        pubs[k] = await login(w.url, pub_users[k])
    raise AssertionError("no subscriber worker could be freed of publishers")


def test_worker_sigkill_mid_stream_subscribers_resume(backend):
    name, redis = backend
    w = make_wsd(name, redis).start()
    try:
        async def go():
            group, n_pubs, per_pub, n_subs = uniq("grp"), 4, 60, 12
            total = n_pubs * per_pub
            pub_users = [uniq("pub") for _ in range(n_pubs)]
            pubs = [await login(w.url, u) for u in pub_users]
            sub_users = [uniq("sub") for _ in range(n_subs)]
            subs = [await login(w.url, u) for u in sub_users]
            epoch = None
            for s in subs:
                epoch = (await s.join(group))["epoch"]
            sessions = [s.welcome["session"] for s in subs]
            victim = await place_clients(w, pubs, pub_users, subs)
            on_victim = [i for i, pid in enumerate(workers_of(w, subs)) if pid == victim]
            acked = []

            async def publisher(k):
                for i in range(per_pub):
                    r = await pubs[k].ok("publish", group=group, data={"p": k, "i": i})
                    acked.append(r["offset"])
                    await asyncio.sleep(0.01)

            async def follow(i):
                c, got, reconnects = subs[i], [], 0
                while not got or got[-1] < total:
                    try:
                        m = await c.recv(timeout=20)
                    except Closed:
                        reconnects += 1
                        assert reconnects <= 3, "subscriber %d dropped again and again" % i
                        last = got[-1] if got else 0
                        c = await auth_login(w.url, sub_users[i], session=sessions[i],
                                             since={group: {"offset": last, "epoch": epoch}})
                        assert c.welcome["resumed"] is True, c.welcome
                        assert c.welcome["recovered"] is True, c.welcome
                        continue
                    except asyncio.TimeoutError:
                        raise AssertionError("subscriber %d stalled after %r (%d reconnects)"
                                             % (i, got[-3:], reconnects)) from None
                    if m.get("op") == "msg" and m.get("ch") == group:
                        got.append(m["off"])
                got += offsets(msgs_of(await c.drain(), group))
                await c.close()
                return got, reconnects

            async def killer():
                while len(acked) < total // 3:
                    await asyncio.sleep(0.005)
                os.kill(victim, signal.SIGKILL)

            followers = [asyncio.ensure_future(follow(i)) for i in range(n_subs)]
            await asyncio.gather(killer(), *[publisher(k) for k in range(n_pubs)])
            results = await asyncio.gather(*followers)
            assert sorted(acked) == list(range(1, total + 1))
            for i, (got, reconnects) in enumerate(results):
                where = "on the killed worker" if i in on_victim else "elsewhere"
                assert got == list(range(1, total + 1)), \
                    "subscriber %d (%s, %d reconnects): not every offset exactly once: " \
                    "missing %r, repeated %r" % (
                        i, where, reconnects, sorted(set(range(1, total + 1)) - set(got))[:10],
                        sorted({x for x in got if got.count(x) > 1})[:10])
                if i in on_victim:
                    assert reconnects >= 1, "subscriber %d on the killed worker not dropped" % i
                else:
                    assert reconnects == 0, "subscriber %d on a live worker was dropped" % i
            assert victim not in w.worker_pids()
            assert len(w.worker_pids()) == 4, "the killed worker was not replaced"
            for p in pubs:
                await p.close()
        run(go(), 90)
    finally:
        stop_and_clean(w)


# ---- TERM and restart on the same store -----------------------------------------------

def test_term_and_restart_keeps_queue_history_and_sessions(backend):
    name, redis = backend
    w = make_wsd(name, redis).start()
    group, rcpt, sub_user = uniq("grp"), uniq("rcpt"), uniq("sub")
    state = {}

    async def before():
        sender = await login(w.url, uniq("sender"))
        sub = await login(w.url, sub_user)
        j = await sub.join(group)
        state.update(epoch=j["epoch"], session=sub.welcome["session"])
        for i in range(1, 6):
            r = await sender.ok("send", user=rcpt, data={"dm": i})
            assert r["offset"] == i and r["stored"] is True, r
        for i in range(1, 11):
            r = await sender.ok("publish", group=group, data={"g": i})
            assert r["offset"] == i, r
        got = await sub.msgs(10, ch=group)
        assert_sequential(offsets(got), 1, 10, "before restart")
        await sender.close()
        # the subscriber stays connected through the shutdown (closed with 1001)

    async def after():
        sender = await login(w.url, uniq("sender"))
        for i in range(11, 16):
            r = await sender.ok("publish", group=group, data={"g": i})
            assert r["offset"] == i, r
        # undelivered personal messages survive
        c = await login(w.url, rcpt)
        assert c.welcome["personal"]["offset"] == 5, c.welcome
        got = msgs_of(await c.drain())
        assert offsets(got) == [1, 2, 3, 4, 5], "offline queue after restart: %r" % got
        assert [m["data"] for m in got] == [{"dm": i} for i in range(1, 6)]
        # group history survives: join with since replays
        j = await c.join(group, since={"offset": 3, "epoch": state["epoch"]})
        assert (j["offset"], j["epoch"], j["recovered"]) == (15, state["epoch"], True), j
        got = await c.msgs(12, ch=group)
        assert_sequential(offsets(got), 4, 15, "join with since after restart")
        assert [m["data"] for m in got] == [{"g": i} for i in range(4, 16)]
        # the session closed by the shutdown resumes
        s = await auth_login(w.url, sub_user, session=state["session"],
                             since={group: {"offset": 10, "epoch": state["epoch"]}})
        assert s.welcome["resumed"] is True and s.welcome["recovered"] is True, s.welcome
        got = await s.msgs(5, ch=group)
        assert_sequential(offsets(got), 11, 15, "resumed session after restart")
        for x in (c, s, sender):
            await x.close()

    try:
        run(before(), 30)
        w.stop()
        w.start()
        run(after(), 30)
    finally:
        stop_and_clean(w)


# ---- Redis down mid-stream ------------------------------------------------------------

def test_redis_killed_mid_stream_then_recovers(own_redis):
    redis = own_redis
    w = make_wsd("redis", redis).start()
    try:
        async def go():
            group = uniq("grp")
            reader = await login(w.url, uniq("reader"))
            epoch = (await reader.join(group))["epoch"]
            await reader.ok("leave", group=group)
            pubs = [await login(w.url, uniq("pub")) for _ in range(4)]
            acked, errors = {}, []        # mid -> offset; error codes
            phase = {"down": False, "up_at": None, "recovered_at": None, "stop": False}

            async def publisher(k):
                i = 0
                while not phase["stop"]:
                    mid = "p%d-%d" % (k, i)
                    i += 1
                    r = await pubs[k].request("publish", group=group, data={"mid": mid},
                                              mid=mid, timeout=10)
                    if r.get("op") == "reply" and r.get("ok"):
                        acked[mid] = r["offset"]
                        if phase["up_at"] is not None and phase["recovered_at"] is None:
                            phase["recovered_at"] = time.monotonic()
                    else:
                        assert r.get("op") == "error", r
                        errors.append((phase["down"], r.get("code")))
                    await asyncio.sleep(0.01)

            tasks = [asyncio.ensure_future(publisher(k)) for k in range(4)]
            try:
                while len(acked) < 40:
                    await asyncio.sleep(0.01)
                redis.kill()
                phase["down"] = True
                acked_at_kill = len(acked)
                await asyncio.sleep(1.5)
                down_errors = [code for down, code in errors if down]
                await asyncio.get_running_loop().run_in_executor(None, redis.start)
                phase["up_at"] = time.monotonic()
                deadline = phase["up_at"] + 10
                while phase["recovered_at"] is None and time.monotonic() < deadline:
                    await asyncio.sleep(0.02)
                assert phase["recovered_at"] is not None, \
                    "publishes did not succeed again within 10 s of Redis coming back"
                await asyncio.sleep(0.5)
            finally:
                phase["stop"] = True
                outcome = await asyncio.gather(*tasks, return_exceptions=True)
            for x in outcome:
                if isinstance(x, BaseException):
                    raise AssertionError("a publisher failed: %r" % (x,)) from x
            assert down_errors, "no publish failed while Redis was down (acked %d -> %d)" % (
                acked_at_kill, len(acked))
            assert set(code for _, code in errors) == {"unavailable"}, errors
            recovery = phase["recovered_at"] - phase["up_at"]
            assert recovery < 5, "service came back %.1f s after Redis" % recovery

            # every acknowledged publish is in the history, at the offset it was given
            c = await login(w.url, uniq("check"))
            j = await c.join(group, since={"offset": 0, "epoch": epoch})
            assert j["epoch"] == epoch and j["recovered"] is True, j
            hist = await c.msgs(j["offset"], ch=group, timeout=20)
            assert_sequential(offsets(hist), 1, j["offset"], "history after Redis came back")
            by_off = {m["off"]: m["mid"] for m in hist}
            lost = {mid: off for mid, off in acked.items() if by_off.get(off) != mid}
            assert not lost, "acknowledged publishes missing from history: %r" % (
                sorted(lost.items())[:10],)
            for x in [c, reader] + pubs:
                await x.close()
        run(go(), 60)
    finally:
        stop_and_clean(w)


# ---- epochs after a wiped store -------------------------------------------------------

def test_wiped_store_gives_new_epochs(backend):
    name, redis = backend
    w = make_wsd(name, redis).start()
    group, user = uniq("grp"), uniq("user")
    old = {}

    async def first_run():
        pub = await login(w.url, uniq("pub"))
        for i in range(1, 6):
            assert (await pub.ok("publish", group=group, data=i))["offset"] == i
            assert (await pub.ok("send", user=user, data=i))["offset"] == i
        c = await login(w.url, user)
        old["personal"] = c.welcome["personal"]["epoch"]
        old["group"] = (await c.join(group))["epoch"]
        for x in (c, pub):
            await x.close()

    async def second_run():
        pub = await login(w.url, uniq("pub"))
        for i in range(1, 6):  # new history at the same offsets as before
            assert (await pub.ok("publish", group=group, data=i * 100))["offset"] == i
        for i in range(1, 3):
            assert (await pub.ok("send", user=user, data=i * 100))["offset"] == i
        # a join with the old epoch: not recovered, no replay, live delivery goes on
        m = await login(w.url, uniq("member"))
        j = await m.join(group, since={"offset": 2, "epoch": old["group"]})
        assert j["epoch"] != old["group"], "group epoch unchanged after the wipe: %r" % j
        assert j["recovered"] is False and j["offset"] == 5, j
        assert msgs_of(await m.drain()) == [], "replayed across epochs"
        r = await pub.ok("publish", group=group, data="live")
        got = await m.msgs(1, ch=group)
        assert (got[0]["off"], got[0]["data"]) == (r["offset"], "live")
        # personal channel: an old epoch in since is ignored, the whole backlog comes
        c = await auth_login(w.url, user, since={"@": {"offset": 5, "epoch": old["personal"]}})
        assert c.welcome["personal"]["epoch"] != old["personal"], c.welcome
        got = msgs_of(await c.drain())
        assert offsets(got) == [1, 2] and [x["data"] for x in got] == [100, 200], got
        for x in (c, m, pub):
            await x.close()

    try:
        run(first_run(), 30)
        w.stop()
        if name == "lmdb":
            shutil.rmtree(os.path.join(w.dir, "store"))
        else:
            assert redis.command("FLUSHALL") == "OK"
        w.start()
        run(second_run(), 30)
    finally:
        stop_and_clean(w)
