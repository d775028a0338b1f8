"""The JavaScript client (client/wsd.js, served at /wsd.js) in headless Chromium.

Node drives Debian's /usr/bin/chromium through playwright-core (installed into
build/peers from npm, like `ws` in tools/run-integration; no browser is downloaded).
The page runs tests/integration/browser/scenario.js; between two steps the driver kills
the worker that serves one client's connection. The results come back as JSON and are
checked here.
"""
import base64
import hashlib
import hmac
import json
import os
import shutil
import signal
import subprocess
import time

import pytest

from wsdproc import ROOT, Wsd, free_port

PEERS = os.path.join(ROOT, "build", "peers")
NODE_PATH = os.path.join(PEERS, "node_modules")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
DRIVER = os.path.join(ROOT, "tests", "integration", "browser", "driver.js")
TLS_DRIVER = os.path.join(ROOT, "tests", "integration", "browser", "tls_driver.js")
SECRET = b"testsecret"
CONFIG = ("jwt_hs256_secret testsecret\nanonymous on\npublic_groups public:*\n"
          "client_file client/wsd.js\n")


def b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def mint(claims, secret=SECRET):
    head = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64url(json.dumps(dict(claims, exp=int(time.time()) + 600)).encode())
    sig = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64url(sig)}"


def tokens():
    rooms = ["room:*"]
    return {
        "alice": mint({"sub": "alice", "join": rooms + ["public:*"], "pub": rooms + ["public:*"],
                       "admin": True}),
        "bob": mint({"sub": "bob", "join": rooms, "pub": rooms}),
        "carol": mint({"sub": "carol", "join": rooms, "pub": rooms}),
        "dave": mint({"sub": "dave", "join": rooms, "pub": rooms}),
        "eve": mint({"sub": "eve", "pub": rooms}),
        "frank": mint({"sub": "frank"}),
        "bad": mint({"sub": "bob"}, secret=b"not the secret"),
    }


def ensure_playwright():
    if os.path.isdir(os.path.join(NODE_PATH, "playwright-core")):
        return None
    os.makedirs(PEERS, exist_ok=True)
    p = subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix",
                        PEERS, "playwright-core"], capture_output=True, text=True, timeout=180)
    if p.returncode != 0:
        return "npm install playwright-core failed: " + (p.stderr or p.stdout)[-500:]
    return None


def need_browser():
    """Skips the test when Chromium, node or playwright-core cannot be had."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is not installed")
    if not shutil.which("node"):
        pytest.skip("node is not installed")
    why = ensure_playwright()
    if why:
        pytest.skip(why)


def run_driver(params, driver=DRIVER):
    env = dict(os.environ, NODE_PATH=NODE_PATH, CHROMIUM=CHROMIUM)
    proc = subprocess.Popen(["node", driver, json.dumps(params)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # node and the browser it started
        out, err = proc.communicate()
        pytest.fail("browser driver timed out\n" + err[-4000:])
    for line in out.splitlines():
        if line.startswith("CHROMIUM_UNAVAILABLE"):
            pytest.skip("headless Chromium cannot start here: " + line.split(" ", 1)[1])
        if line.startswith("RESULT "):
            return json.loads(line[7:]), err
    pytest.fail(f"no result from the driver (exit {proc.returncode})\n{out[-2000:]}\n{err[-4000:]}")


def msgs(rec, ch=None):
    return [m for m in rec["msgs"] if ch is None or m["ch"] == ch]


def test_browser_client_reconnects_resumes_acks_and_deduplicates():
    need_browser()
    with Wsd(workers=2, extra=CONFIG) as w:
        workers_before = set(w.worker_pids())
        started = time.monotonic()
        res, log = run_driver({"port": w.port, "deadPort": free_port(), "tokens": tokens()})
        elapsed = time.monotonic() - started
        assert "error" not in res, (res["error"] + "\nrecords: " +
                                    json.dumps(res.get("recs"))[-4000:] + "\n" + log[-2000:])
        assert elapsed < 60

        # served at /wsd.js and usable as a classic script
        assert res["wsdType"] == "function"

        b = res["basics"]
        assert b["aliceWelcome"]["user"] == "alice"
        assert b["aliceWelcome"]["resumed"] is False
        assert b["anonWelcome"]["user"] == ""
        assert b["aliceProtocol"] == "wsd.v1.json"
        assert b["daveProtocol"] == "wsd.v1.msgpack"
        assert b["anonJoinPrivate"] == "forbidden"
        assert b["anonPublish"] == "forbidden"
        assert b["aliceJoinForbidden"] == "forbidden"
        assert b["publicReply"]["duplicate"] is False
        # MessagePack bin reaches a JSON client as standard base64, and back as values
        assert b["binSeenByJson"] == base64.b64encode(bytes([1, 2, 3, 255])).decode()
        assert b["jsonSeenByMsgpack"] == {"x": [1, "\u00e9"], "y": 2.5}
        assert b["broadcast"]["delivered"] >= 2
        assert b["broadcastSeen"]["from"] == "alice" and b["broadcastSeen"]["data"] == {"b": 1}
        assert b["ping"]["op"] == "pong"
        # 4001: a new token from getToken, then a welcome; without getToken, no retry
        assert b["frank"]["user"] == "frank" and b["frank"]["asked"] == 1
        assert b["frank"]["closes"][0] == {"code": 4001, "reconnect": True}
        assert "unauthorized" in b["frank"]["errors"]
        assert b["nofix"]["closes"] == [{"code": 4001, "reconnect": False}]
        assert b["nofix"]["reconnects"] == 0

        cb = res["connectBob"]
        assert cb["pubs"] == [1, 2, 3]
        assert cb["dm"]["stored"] is True and cb["dm"]["delivered"] == 1
        assert cb["presence"]["count"] == 2
        assert sorted(cb["presence"]["users"]) == ["alice", "bob"]

        # the worker serving bob was killed: a worker, and the master replaced it
        assert res["killed"] and set(res["killed"]) <= workers_before
        workers_after = set(w.worker_pids())
        assert len(workers_after) == 2 and not workers_after & set(res["killed"])

        r = res["resume"]
        # first retry after 1 s (less up to 20 % jitter)
        assert r["reconnect"]["attempt"] == 1
        assert 800 <= r["reconnect"]["delay"] <= 1000
        # everything was published while bob was away, and came back by replay
        assert r["bobStateWhenDone"] == "reconnecting"
        assert r["doneAt"] < r["secondWelcomeAt"]
        assert r["secondWelcomeAt"] - r["t0"] >= 790
        assert r["offsets"] == [4, 5, 6, 7, 8]
        assert r["queued"]["duplicate"] is False
        if not r["resumed"]:  # a fresh login: the client joined again with since
            rejoin = [j for j in r["bobJoined"] if j["group"] == "room:1"][-1]
            assert rejoin["recovered"] is True and rejoin["offset"] == 8

        rt = res["retry"]
        assert rt["aliceCopies"] == 1
        assert rt["bobWelcomes"] == 3
        # dm 3 came again after the reconnect (its handler had not finished): dropped, and
        # acknowledged only once the handler was done
        assert rt["dm"]["offset"] == 3
        assert rt["ackedBefore"] == 2
        assert rt["bobDropped"] == 1

        lt = res["later"]
        assert lt["bob2Personal"] == 0  # every direct message was acknowledged
        assert lt["offline"]["stored"] is True and lt["offline"]["delivered"] == 0
        assert [m["data"] for m in lt["carolPersonal"]] == [{"offline": 1}]
        assert lt["carol2Personal"] == 0

        # end-to-end encryption with Chromium's WebCrypto (a JSON and a MessagePack client)
        e = res["e2e"]
        assert [(m["from"], m["e2e"], m["data"]) for m in e["groupSeenByKey"]] == \
            [("carol", True, {"text": "sealed in chromium"})]
        assert [(m["from"], m["e2e"], m["data"]) for m in e["directSeenByKey"]] == \
            [("carol", True, {"text": "direct in chromium"})]
        sealed = e["groupSeenWithoutKey"]
        assert len(sealed) == 1 and sealed[0]["encrypted"] and not sealed[0]["e2e"]
        assert set(sealed[0]["data"]) == {"e2e", "iv", "ct"}

        f = res["finish"]
        recs = f["recs"]
        assert all(not d for d in f["duplicates"].values()), f["duplicates"]
        bob = recs["bob"]
        room = [m["data"] for m in msgs(bob, "room:1")]
        assert room == [{"p": 1}, {"p": 2}, {"p": 3}, {"q": 1}, {"q": 2}, {"q": 3}, {"q": 4},
                        {"q": 5}]
        assert [m["off"] for m in msgs(bob, "room:1")] == list(range(1, 9))
        assert [m["data"] for m in msgs(bob, "@")] == [{"dm": 1}, {"dm": 2}, {"dm": 3}]
        assert [m["from"] for m in msgs(bob, "@")] == ["alice", "eve", "eve"]
        alice = recs["alice"]
        assert not [m for m in msgs(alice, "room:1") if m["from"] == "alice"]
        fromBob = [m["data"] for m in msgs(alice, "room:1") if m["from"] == "bob"]
        assert fromBob == [{"fromBob": "queued"}, {"retry": 1}]
        # the backoff doubles from 200 ms up to its 800 ms cap, with at most 20 % jitter
        delays = [s["info"]["delay"] for s in recs["dead"]["states"]
                  if s["state"] == "reconnecting"][:5]
        for got, full in zip(delays, [200, 400, 800, 800, 800]):
            assert 0.8 * full - 1 <= got <= full, delays
        tried = [s["t"] for s in recs["dead"]["states"] if s["state"] == "connecting"][:5]
        gaps = [b - a for a, b in zip(tried, tried[1:])]
        for gap, want in zip(gaps, delays):
            assert gap >= want - 5, (gaps, delays)


def test_browser_over_tls_echo_and_client_library():
    """Chromium on https:// and wss:// to a tls_listen address (self-signed certificate,
    accepted by the browser): /wsd.js served over TLS, a 1 MiB text and a 300 KB binary
    echo, and two Wsd.Client instances exchanging a group message."""
    need_browser()
    t = tokens()
    with Wsd(workers=2, extra=CONFIG, tls=True) as w:
        res, log = run_driver({"port": w.tls_port,
                               "tokens": {"alice": t["alice"], "bob": t["bob"]}}, TLS_DRIVER)
        assert "error" not in res, res["error"] + "\n" + log[-2000:]
        assert res["health"] == {"status": 200, "body": "ok\n"}
        assert res["echo"] == {"text": True, "binary": True, "closeCode": 1000}
        m = res["messaging"]
        assert m["users"] == ["alice", "bob"]
        assert m["got"] == [{"ch": "room:tls", "from": "alice", "data": {"over": "tls"}}]
        assert m["offset"] == 1
