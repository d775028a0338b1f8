"""wsctl against a real wsd: inspection from the shared segment (status, workers, conns,
users, groups, top), actions through the control socket (kick, send, reload, stop),
token minting, and the errors an operator sees when something is wrong."""
import asyncio
import base64
import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import time

import pytest
import websockets

from wsdproc import WSCTL_BIN, Wsd

SECRET = b"testsecret"
CONF = "\n".join([
    "jwt_hs256_secret testsecret",
    "anonymous on",
    "public_groups public:*",
    "heartbeat 30",
])
TIMEOUT = 60


@pytest.fixture(scope="module")
def wsd():
    with Wsd(workers=4, extra=CONF) as w:
        yield w


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, TIMEOUT))


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint(sub, **claims):
    head = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64url(json.dumps({"sub": sub, "join": ["*"], "pub": ["*"], **claims}).encode())
    sig = hmac.new(SECRET, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64url(sig)}"


def signed_with(token, secret):
    head, body, sig = token.split(".")
    want = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return b64url(want) == sig


def wsctl(w, *args, sock=None, timeout=30):
    """Runs wsctl against w (or the socket given); returns the CompletedProcess."""
    argv = [WSCTL_BIN, "-s", sock or w.sock, *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


def wsctl_json(w, *args):
    p = wsctl(w, "--json", *args)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


async def awsctl(w, *args, **kw):
    return await asyncio.to_thread(wsctl, w, *args, **kw)


class Client:
    """A messaging connection: welcome on connect, requests with ids, an inbox of the
    frames that were not the awaited reply."""

    def __init__(self, ws, welcome):
        self.ws = ws
        self.welcome = welcome
        self.conn = welcome["conn"]
        self.user = welcome["user"]
        self.inbox = []
        self.next_id = 1

    @classmethod
    async def open(cls, w, user=None, token=None):
        uri = w.url + "/ws"
        if token is None and user is not None:
            token = mint(user)
        if token is not None:
            uri += "?token=" + token
        ws = await websockets.connect(uri, compression=None)
        welcome = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert welcome["op"] == "welcome", welcome
        return cls(ws, welcome)

    async def request(self, op, **fields):
        rid = self.next_id
        self.next_id += 1
        await self.ws.send(json.dumps({"op": op, "id": rid, **fields}))
        while True:
            m = json.loads(await asyncio.wait_for(self.ws.recv(), 10))
            if m.get("id") == rid:
                return m
            self.inbox.append(m)

    async def join(self, group):
        r = await self.request("join", group=group)
        assert r.get("ok") is True, r
        return r

    async def next_msg(self, timeout=10):
        if self.inbox:
            return self.inbox.pop(0)
        return json.loads(await asyncio.wait_for(self.ws.recv(), timeout))

    async def nothing_pending(self):
        """True when nothing arrives before the reply to a ping sent now."""
        r = await self.request("ping")
        assert r["op"] == "pong", r
        return self.inbox == []

    async def close_code(self, timeout=10):
        """Waits for the server to close the connection; returns the close code."""
        try:
            while True:
                m = await asyncio.wait_for(self.ws.recv(), timeout)
                self.inbox.append(json.loads(m))
        except websockets.ConnectionClosed:
            pass
        return self.ws.close_code

    async def close(self):
        await self.ws.close()


async def open_all(w, users):
    return await asyncio.gather(*[Client.open(w, u) for u in users])


async def close_all(clients):
    await asyncio.gather(*[c.close() for c in clients], return_exceptions=True)


def by_id(conns):
    return {c["id"]: c for c in conns["connections"]}


# ---- inspection ------------------------------------------------------------------------

def test_control_socket_is_private(wsd):
    assert stat.S_IMODE(os.stat(wsd.sock).st_mode) == 0o600


def test_status_and_workers_describe_the_instance(wsd):
    st = wsctl_json(wsd, "status")
    assert st["state"] == "running"
    assert st["master_pid"] == wsd.proc.pid
    assert st["socket"] == wsd.sock
    assert st["uptime_s"] >= 0
    pids = sorted(wsd.worker_pids())
    assert sorted(x["pid"] for x in st["workers"]) == pids
    assert [x["slot"] for x in st["workers"]] == [0, 1, 2, 3]
    for x in st["workers"]:
        assert x["state"] == "running"
        assert x["ring_size"] > 0 and 0 <= x["ring_used"] <= x["ring_size"]
    for key in ("connections", "msgs_in", "msgs_out", "bytes_in", "bytes_out", "deliveries",
                "delivery_failures", "dedup_hits", "ring_full_retries"):
        assert isinstance(st["totals"][key], int), key
    wk = wsctl_json(wsd, "workers")["workers"]
    assert sorted(x["pid"] for x in wk) == pids
    text = wsctl(wsd, "status")
    assert text.returncode == 0 and "running" in text.stdout and str(wsd.proc.pid) in text.stdout
    text = wsctl(wsd, "workers")
    assert text.returncode == 0 and text.stdout.splitlines()[0].split()[:3] == [
        "SLOT", "PID", "STATE"]
    assert len(text.stdout.splitlines()) == 5


def test_conns_users_groups_match_the_clients(wsd):
    users = [f"insp-u{i}" for i in range(10)]

    async def go():
        clients = await open_all(wsd, users + ["insp-u3"])
        anon = [await Client.open(wsd) for _ in range(2)]
        try:
            for i, c in enumerate(clients):
                await c.join("insp:all")
                if i % 2 == 0 and i < 10:
                    await c.join("insp:even")
            for a in anon:
                assert a.user == ""
                await a.join("public:insp")
            await check(clients, anon)
        finally:
            await close_all(clients + anon)

    async def check(clients, anon):
        conns = await asyncio.to_thread(wsctl_json, wsd, "conns")
        rows = by_id(conns)
        mine = clients + anon
        for c in mine:
            row = rows[c.conn]
            assert row["user"] == c.user
            assert row["state"] == "connected"
            assert row["remote"] == "127.0.0.1:%d" % c.ws.local_address[1]
            assert 0 <= row["worker"] < 4
            assert row["authenticated"] == (c.user != "")
        worker_of = {c.conn: rows[c.conn]["worker"] for c in mine}

        ulist = {u["user"]: u for u in (await asyncio.to_thread(wsctl_json, wsd,
                                                                "users"))["users"]}
        for u in users:
            mine_u = [c for c in clients if c.user == u]
            assert ulist[u]["connections"] == len(mine_u)
            assert ulist[u]["workers"] == sorted({worker_of[c.conn] for c in mine_u})
        assert "" not in ulist

        glist = {g["group"]: g for g in (await asyncio.to_thread(wsctl_json, wsd,
                                                                 "groups"))["groups"]}
        expect = {"insp:all": clients, "insp:even": clients[0:10:2], "public:insp": anon}
        for name, members in expect.items():
            assert glist[name]["members"] == len(members), glist[name]
            per_worker = {}
            for c in members:
                per_worker[str(worker_of[c.conn])] = per_worker.get(str(worker_of[c.conn]), 0) + 1
            assert glist[name]["workers"] == per_worker

        u3 = await asyncio.to_thread(wsctl_json, wsd, "conns", "--user", "insp-u3")
        assert u3["count"] == 2
        assert sorted(r["id"] for r in u3["connections"]) == sorted(
            c.conn for c in clients if c.user == "insp-u3")
        nouser = await asyncio.to_thread(wsctl_json, wsd, "conns", "--user", "")
        assert {a.conn for a in anon} <= set(by_id(nouser))
        assert all(r["user"] == "" for r in nouser["connections"])
        w = worker_of[clients[0].conn]
        on_w = await asyncio.to_thread(wsctl_json, wsd, "conns", "--worker", str(w))
        assert on_w["count"] >= 1 and all(r["worker"] == w for r in on_w["connections"])
        assert clients[0].conn in by_id(on_w)

        even = await asyncio.to_thread(wsctl_json, wsd, "conns", "--group", "insp:even")
        assert even["group"]["members"] == 5
        assert even["group"]["workers"] == glist["insp:even"]["workers"]
        member_workers = {int(k) for k in glist["insp:even"]["workers"]}
        assert all(r["worker"] in member_workers for r in even["connections"])
        assert {c.conn for c in clients[0:10:2]} <= set(by_id(even))

        text = await awsctl(wsd, "conns", "--user", "insp-u5")
        assert text.returncode == 0, text.stderr
        lines = text.stdout.splitlines()
        assert lines[0].split()[:3] == ["ID", "WORKER", "USER"]
        assert len(lines) == 2 and "insp-u5" in lines[1] and str(clients[5].conn) in lines[1]
        text = await awsctl(wsd, "groups")
        assert any(l.split()[:2] == ["insp:even", "5"] for l in text.stdout.splitlines())
        text = await awsctl(wsd, "users")
        assert any(l.split()[:2] == ["insp-u3", "2"] for l in text.stdout.splitlines())

    run(go())


def test_conns_of_a_group_without_members(wsd):
    out = wsctl_json(wsd, "conns", "--group", "nobody:here")
    assert out["group"] == {"name": "nobody:here", "members": 0, "workers": {},
                            "note": out["group"]["note"]}
    assert out["connections"] == [] and out["count"] == 0
    text = wsctl(wsd, "conns", "--group", "nobody:here")
    assert text.returncode == 0 and "no members" in text.stdout


def test_closed_connections_leave_the_listing(wsd):
    async def go():
        c = await Client.open(wsd, "gone-user")
        await c.join("gone:group")
        assert c.conn in by_id(await asyncio.to_thread(wsctl_json, wsd, "conns"))
        await c.close()
        for _ in range(100):
            conns = await asyncio.to_thread(wsctl_json, wsd, "conns")
            users = await asyncio.to_thread(wsctl_json, wsd, "users")
            if c.conn not in by_id(conns) and all(
                    u["user"] != "gone-user" for u in users["users"]):
                break
            await asyncio.sleep(0.1)
        assert c.conn not in by_id(conns)
        assert all(u["user"] != "gone-user" for u in users["users"])
        groups = await asyncio.to_thread(wsctl_json, wsd, "groups")
        assert all(g["group"] != "gone:group" for g in groups["groups"])
    run(go())


def test_top_refreshes_with_rates(wsd):
    async def go():
        c = await Client.open(wsd, "top-user")
        try:
            proc = await asyncio.create_subprocess_exec(
                WSCTL_BIN, "-s", wsd.sock, "top", "--iterations", "2", "--json",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            t0 = time.monotonic()
            while proc.returncode is None and time.monotonic() - t0 < 1.5:
                await c.request("ping")
                await asyncio.sleep(0.02)
            out, err = await asyncio.wait_for(proc.communicate(), 20)
            assert proc.returncode == 0, err
            frames = [json.loads(l) for l in out.decode().splitlines()]
            assert len(frames) == 2
            for f in frames:
                assert 900 <= f["interval_ms"] <= 5000
                assert f["state"] == "running"
                assert set(f["rates"]) >= {"msgs_in", "msgs_out", "bytes_in", "bytes_out"}
                assert len(f["workers"]) == 4
            assert max(f["rates"]["msgs_in"] for f in frames) > 0
            top = [t for f in frames for t in f["top"] if t["id"] == c.conn]
            assert top and top[0]["user"] == "top-user"
        finally:
            await c.close()
    run(go())
    text = wsctl(wsd, "top", "--iterations", "1")
    assert text.returncode == 0, text.stderr
    assert "per second" in text.stdout and "\033[2J" not in text.stdout


# ---- kick --------------------------------------------------------------------------------

@pytest.mark.parametrize("code", [None, 4321])
def test_kick_closes_exactly_that_connection(wsd, code):
    async def go():
        clients = await open_all(wsd, ["kick-a", "kick-b", "kick-c"])
        try:
            args = ["--json", "kick", str(clients[1].conn)]
            if code is not None:
                args += ["--code", str(code)]
            p = await awsctl(wsd, *args)
            assert p.returncode == 0, p.stderr
            reply = json.loads(p.stdout)
            assert reply["ok"] is True and reply["conn"] == clients[1].conn
            assert reply["code"] == (code or 4009)
            assert await clients[1].close_code() == (code or 4009)
            for c in (clients[0], clients[2]):
                assert await c.nothing_pending()
        finally:
            await close_all(clients)
    run(go())
    assert "operator: kick conn=" in wsd.read_log()


def test_kick_by_hex_id_and_human_output(wsd):
    async def go():
        c = await Client.open(wsd, "kick-hex")
        p = await awsctl(wsd, "kick", hex(c.conn))
        assert p.returncode == 0, p.stderr
        assert f"connection {c.conn}" in p.stdout and "4009" in p.stdout
        assert await c.close_code() == 4009
    run(go())


def test_kick_of_unknown_connection_fails(wsd):
    p = wsctl(wsd, "kick", "999999999")
    assert p.returncode == 1 and "no such connection" in p.stderr
    p = wsctl(wsd, "--json", "kick", "999999999")
    assert p.returncode == 1 and json.loads(p.stdout)["ok"] is False


def test_kick_user_closes_all_of_that_users_connections(wsd):
    async def go():
        victims = await open_all(wsd, ["kick-user"] * 4)
        other = await Client.open(wsd, "kick-other")
        try:
            p = await awsctl(wsd, "--json", "kick", "--user", "kick-user")
            assert p.returncode == 0, p.stderr
            reply = json.loads(p.stdout)
            assert reply["connections"] == 4 and reply["user"] == "kick-user"
            codes = await asyncio.gather(*[v.close_code() for v in victims])
            assert codes == [4009] * 4
            assert await other.nothing_pending()
            for _ in range(100):
                p = await awsctl(wsd, "kick", "--user", "kick-user")
                if p.returncode == 1:
                    break
                await asyncio.sleep(0.1)
            assert p.returncode == 1 and "has no connections" in p.stderr
        finally:
            await close_all(victims + [other])
    run(go())
    assert "operator: kick user=kick-user" in wsd.read_log()


def test_kick_usage_errors(wsd):
    assert wsctl(wsd, "kick").returncode == 2
    assert wsctl(wsd, "kick", "abc").returncode == 2
    assert wsctl(wsd, "kick", "0").returncode == 2
    assert wsctl(wsd, "kick", "12", "--user", "x").returncode == 2
    assert wsctl(wsd, "kick", "12", "--code", "1005").returncode == 2
    assert wsctl(wsd, "kick", "12", "--code", "5000").returncode == 2


# ---- send --------------------------------------------------------------------------------

def assert_system_msg(m, ch, data):
    assert m["op"] == "msg", m
    assert m["ch"] == ch and m["data"] == data
    assert m["sys"] is True and m["from"] == ""


def test_send_group_reaches_members_only(wsd):
    async def go():
        members = await open_all(wsd, ["sg-m0", "sg-m1", "sg-m2", "sg-m3"])
        others = await open_all(wsd, ["sg-o0", "sg-o1", "sg-o2"])
        try:
            for m in members:
                await m.join("sg:room")
            await others[0].join("sg:other")
            p = await awsctl(wsd, "send", "--group", "sg:room", "hello", "members")
            assert p.returncode == 0, p.stderr
            assert "sg:room" in p.stdout and "4 member" in p.stdout
            offs = set()
            for m in members:
                msg = await m.next_msg()
                assert_system_msg(msg, "sg:room", "hello members")
                offs.add(msg["off"])
            assert len(offs) == 1 and offs.pop() >= 1
            for c in members + others:
                assert await c.nothing_pending()
        finally:
            await close_all(members + others)
    run(go())
    assert "operator: send group=sg:room" in wsd.read_log()


def test_send_user_reaches_that_users_connections_only(wsd):
    async def go():
        target = await open_all(wsd, ["su-target"] * 3)
        others = await open_all(wsd, ["su-other", "su-other2"])
        try:
            p = await awsctl(wsd, "--json", "send", "--user", "su-target", "--data",
                             '{"alert": [1, 2, {"x": null}]}')
            assert p.returncode == 0, p.stderr
            reply = json.loads(p.stdout)
            assert reply["ok"] is True and reply["online"] == 3
            for t in target:
                assert_system_msg(await t.next_msg(), "@", {"alert": [1, 2, {"x": None}]})
            for c in target + others:
                assert await c.nothing_pending()
        finally:
            await close_all(target + others)
    run(go())


def test_send_all_reaches_every_connection(wsd):
    async def go():
        clients = await open_all(wsd, ["sa-0", "sa-1", "sa-2", "sa-3", "sa-4"])
        clients.append(await Client.open(wsd))
        try:
            p = await awsctl(wsd, "send", "--all", "--data", '"maintenance\\nat noon"')
            assert p.returncode == 0, p.stderr
            for c in clients:
                assert_system_msg(await c.next_msg(), "*", "maintenance\nat noon")
            for c in clients:
                assert await c.nothing_pending()
        finally:
            await close_all(clients)
    run(go())


def test_send_multiline_data_is_one_request(wsd):
    async def go():
        c = await Client.open(wsd, "sa-multi")
        try:
            p = await awsctl(wsd, "send", "--user", "sa-multi", "--data", '{\n "a":\r\n 1\n}')
            assert p.returncode == 0, p.stderr
            assert_system_msg(await c.next_msg(), "@", {"a": 1})
        finally:
            await c.close()
    run(go())


def test_send_errors(wsd):
    assert wsctl(wsd, "send", "hello").returncode == 2
    assert wsctl(wsd, "send", "--all").returncode == 2
    assert wsctl(wsd, "send", "--all", "--group", "g", "x").returncode == 2
    assert wsctl(wsd, "send", "--all", "--data", "{bad").returncode == 2
    assert wsctl(wsd, "send", "--all", "--data", "1", "text").returncode == 2
    assert wsctl(wsd, "send", "--group", "x" * 129, "hi").returncode == 2
    p = wsctl(wsd, "send", "--all", "x" * 70000)
    assert p.returncode == 1 and "max_data_size" in p.stderr


# ---- the control socket itself -----------------------------------------------------------

def control(w, line, timeout=5):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(w.sock)
        s.sendall(line)
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    return json.loads(data)


@pytest.mark.parametrize("line,reason", [
    (b"frobnicate\n", "unknown command"),
    (b"reload now\n", "JSON"),
    (b"{\"cmd\":\"kick\"}\n", "conn or user"),
    (b"{\"cmd\":\"kick\",\"conn\":\"12\"}\n", "integer"),
    (b"{\"cmd\":\"kick\",\"conn\":12,\"code\":999}\n", "code"),
    (b"{\"cmd\":\"kick\",\"conn\":12,\"conn\":13}\n", "twice"),
    (b"{\"cmd\":\"send\",\"all\":true}\n", "data"),
    (b"{\"cmd\":\"send\",\"group\":\"\",\"data\":1}\n", "group"),
    (b"{\"cmd\":\"send\",\"all\":true,\"user\":\"u\",\"data\":1}\n", "one of"),
    (b"{\"cmd\":\"stop\",\"conn\":1}\n", "argument"),
    (b"{\"cmd\":\"stop\",\"bogus\":1}\n", "unknown field"),
    (b"{\"cmd\":\"send\",\"all\":true,\"data\":[1,}\n", "JSON object"),
    (b"\n", "empty"),
])
def test_control_socket_rejects_bad_requests(wsd, line, reason):
    reply = control(wsd, line)
    assert reply["ok"] is False and reason in reply["error"], reply


def test_control_socket_does_not_wait_for_a_silent_client(wsd):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(wsd.sock)
        s.sendall(b"{\"cmd\":")  # never finished
        t0 = time.monotonic()
        p = wsctl(wsd, "kick", "999999999")  # served once the master gave up on s
        assert p.returncode == 1 and "no such connection" in p.stderr
        assert time.monotonic() - t0 < 5
        s.settimeout(5)
        reply = json.loads(s.recv(4096))
        assert reply["ok"] is False and "not received" in reply["error"]


# ---- token -------------------------------------------------------------------------------

def test_token_is_accepted_by_the_server(wsd):
    p = subprocess.run([WSCTL_BIN, "--json", "token", "-c", wsd.conf, "--user", "tok-alice",
                        "--join", "room:*", "--pub", "room:*", "--ttl", "60"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["sub"] == "tok-alice" and abs(out["exp"] - time.time() - 60) < 5
    payload = json.loads(base64.urlsafe_b64decode(out["token"].split(".")[1] + "=="))
    assert payload["join"] == ["room:*"] and payload["pub"] == ["room:*"]
    assert "send" not in payload and "admin" not in payload

    async def go():
        c = await Client.open(wsd, token=out["token"])
        try:
            assert c.user == "tok-alice"
            assert (await c.request("join", group="room:1"))["ok"] is True
            denied = await c.request("join", group="lobby")
            assert denied["op"] == "error" and denied["code"] == "forbidden"
        finally:
            await c.close()
    run(go())


def test_token_with_secret_option_and_admin(wsd):
    p = subprocess.run([WSCTL_BIN, "token", "--secret", "testsecret", "--user", "tok-bob",
                        "--admin", "--send", "x*"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    tok = p.stdout.strip()
    payload = json.loads(base64.urlsafe_b64decode(tok.split(".")[1] + "=="))
    assert payload["admin"] is True and payload["send"] == ["x*"] and "exp" not in payload
    assert signed_with(tok, SECRET)
    b64 = "base64:" + base64.b64encode(b"testsecret").decode()
    p2 = subprocess.run([WSCTL_BIN, "token", "--secret", b64, "--user", "tok-bob"],
                        capture_output=True, text=True, timeout=30)
    assert p2.returncode == 0 and signed_with(p2.stdout.strip(), SECRET)

    async def go():
        c = await Client.open(wsd, token=tok)
        try:
            assert c.user == "tok-bob"
            r = await c.request("broadcast", data="from admin")
            assert r.get("ok") is True, r
        finally:
            await c.close()
    run(go())


def test_token_with_a_wrong_secret_is_refused(wsd):
    p = subprocess.run([WSCTL_BIN, "token", "--secret", "wrong", "--user", "tok-eve"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0

    async def go():
        ws = await websockets.connect(wsd.url + "/ws?token=" + p.stdout.strip())
        m = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert m["op"] == "error" and m["code"] == "unauthorized"
        try:
            await asyncio.wait_for(ws.recv(), 10)
        except websockets.ConnectionClosed:
            pass
        assert ws.close_code == 4001
    run(go())


def test_token_usage_errors(tmp_path):
    def tok(*args):
        return subprocess.run([WSCTL_BIN, "token", *args], capture_output=True, text=True,
                              timeout=30)
    assert tok("--user", "u").returncode == 2                       # no secret
    assert tok("--secret", "s").returncode == 2                     # no user
    assert tok("--secret", "s", "--user", "u", "--ttl", "x").returncode == 2
    assert tok("--secret", "base64:!!", "--user", "u").returncode == 2
    conf = tmp_path / "nosecret.conf"
    conf.write_text("workers 1\n")
    p = tok("-c", str(conf), "--user", "u")
    assert p.returncode == 1 and "jwt_hs256_secret" in p.stderr


# ---- wsd not running, bad segments, usage ------------------------------------------------

@pytest.mark.parametrize("cmd", [["status"], ["workers"], ["conns"], ["users"], ["groups"],
                                 ["top", "--iterations", "1"]])
def test_inspection_when_wsd_is_not_running(tmp_path, cmd):
    sock = str(tmp_path / "none.sock")
    p = subprocess.run([WSCTL_BIN, "-s", sock, *cmd], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 1
    assert p.stderr.strip() == f"wsctl: wsd is not running (no shared segment for {sock})"
    assert p.stdout == ""
    p = subprocess.run([WSCTL_BIN, "-s", sock, "--json", *cmd], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 1 and json.loads(p.stdout)["ok"] is False


@pytest.mark.parametrize("cmd", [["reload"], ["stop"], ["kick", "5"], ["send", "--all", "x"]])
def test_actions_when_wsd_is_not_running(tmp_path, cmd):
    sock = str(tmp_path / "none.sock")
    p = subprocess.run([WSCTL_BIN, "-s", sock, *cmd], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 1
    assert f"cannot connect to {sock}: No such file or directory" in p.stderr


def seg_name(sock):
    h = 0xcbf29ce484222325
    for b in sock.encode():
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return "wsd-%016x" % h


def test_foreign_layout_version_is_refused(tmp_path):
    sock = str(tmp_path / "fake.sock")
    path = "/dev/shm/" + seg_name(sock)
    with open(path, "wb") as f:
        f.write((0x57534453484d3031).to_bytes(8, "little") + (99).to_bytes(4, "little") +
                bytes(4096 - 12))
    try:
        p = subprocess.run([WSCTL_BIN, "-s", sock, "status"], capture_output=True, text=True,
                           timeout=30)
    finally:
        os.unlink(path)
    assert p.returncode == 1
    assert "segment layout version 99 not supported" in p.stderr


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root and setpriv to run wsctl as another user")
def test_segment_of_another_user_is_permission_denied(wsd):
    p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                        WSCTL_BIN, "-s", wsd.sock, "status"], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 1 and "permission denied" in p.stderr, p.stderr


@pytest.mark.parametrize("args", [[], ["frobnicate"], ["status", "extra"], ["--bogus", "status"],
                                  ["conns", "--worker", "x"], ["conns", "--worker", "64"],
                                  ["top", "--iterations", "0"], ["-s"]])
def test_usage_errors_exit_2(args):
    p = subprocess.run([WSCTL_BIN, *args], capture_output=True, text=True, timeout=30)
    assert p.returncode == 2, (args, p.stderr)
    assert p.stderr.startswith("wsctl: ")


def test_help_and_version():
    p = subprocess.run([WSCTL_BIN, "--help"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and "kick CONN" in p.stdout
    p = subprocess.run([WSCTL_BIN, "-V"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and p.stdout.startswith("wsctl ")


def test_socket_comes_from_the_config(wsd):
    p = subprocess.run([WSCTL_BIN, "-c", wsd.conf, "--json", "status"], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["socket"] == wsd.sock


# ---- reload and stop ---------------------------------------------------------------------

def test_reload_applies_a_valid_config_and_refuses_an_invalid_one():
    with Wsd(workers=2, extra=CONF) as w:
        gen0 = wsctl_json(w, "status")["config_generation"]
        p = wsctl(w, "reload")
        assert p.returncode == 0, p.stderr
        assert f"generation {gen0 + 1}" in p.stdout
        assert wsctl_json(w, "status")["config_generation"] == gen0 + 1
        with open(w.conf) as f:
            good = f.read()
        with open(w.conf, "a") as f:
            f.write("hartbeat 5\n")
        p = wsctl(w, "reload")
        assert p.returncode == 1
        assert "reload refused" in p.stderr and "hartbeat" in p.stderr and w.conf in p.stderr
        assert wsctl_json(w, "status")["config_generation"] == gen0 + 1
        with open(w.conf, "w") as f:
            f.write(good)
        assert control(w, b"reload\n") == {"ok": True, "config_generation": gen0 + 2}
        log = w.read_log()
        assert "operator: reload uid=" in log and "operator: reload refused" in log


def test_stop_shuts_wsd_down_gracefully():
    w = Wsd(workers=2, extra=CONF).start()
    try:
        async def go():
            c = await Client.open(w, "stop-user")
            p = await awsctl(w, "stop")
            assert p.returncode == 0, p.stderr
            assert "shutting down" in p.stdout
            assert await c.close_code() == 1001
        run(go())
        assert w.proc.wait(timeout=30) == 0
        log = w.read_log()
        assert "operator: stop" in log
        assert "Sanitizer" not in log and "runtime error:" not in log
        p = wsctl(w, "status")
        assert p.returncode == 1 and "not running" in p.stderr
    finally:
        w.stop()
