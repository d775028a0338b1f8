"""audit_log: one JSON object per line for connections, logins and failed logins,
messages (never their bodies), HTTP errors, operator actions, reloads, start and stop;
whole lines from every process under load, and a reopen on USR1 for rotation."""
import asyncio
import json
import os
import signal
import socket
import subprocess
import time

import websockets

from wsdclient import Client, full_tok, hs256_token
from wsdproc import WSCTL_BIN, Wsd

BODY = "secret-body-6d1f"


def run(coro, timeout=60):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def read_audit(path):
    with open(path) as f:
        text = f.read()
    assert text.endswith("\n")
    lines = [json.loads(line) for line in text.splitlines()]  # every line whole JSON
    for e in lines:
        assert {"ts", "event", "role", "pid"} <= set(e), e
        assert e["ts"].endswith("Z") and len(e["ts"]) == 24, e
    return text, lines


def wait_for(path, pred, timeout=5):
    deadline = time.monotonic() + timeout
    while True:
        _, lines = read_audit(path)
        if pred(lines) or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def events(lines, name):
    return [e for e in lines if e["event"] == name]


def wsctl(w, *args):
    p = subprocess.run([WSCTL_BIN, "-s", w.sock, "--json", *args], capture_output=True,
                       text=True, timeout=20)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_audit_log_records_who_did_what_and_never_a_body(tmp_path):
    path = str(tmp_path / "audit.log")
    query_tok = full_tok("aud-query")
    w = Wsd(workers=2, extra=f"jwt_hs256_secret testsecret\naudit_log {path}")
    w.start()
    try:
        async def go():
            a = await Client.login(w.url, full_tok("aud-alice"))
            b = await Client.login(w.url, full_tok("aud-bob"))
            await b.join("aud:room")
            r1 = await a.ok("publish", group="aud:room", data=BODY, mid="m1")
            r2 = await a.ok("publish", group="aud:room", data=BODY, mid="m1")
            assert r2["duplicate"] is True
            await a.ok("send", user="aud-bob", data=BODY, mid="d1")
            # A token with a bad signature: auth_failed, then the close.
            bad = hs256_token({"sub": "aud-mallory"}, secret=b"wrong")
            m = await Client.connect(w.url, bad)
            await m.closed()
            # A token in the query string stays out of the log.
            q = await Client.connect(w.url, query_tok, query_token=True)
            assert (await q.recv())["user"] == "aud-query"
            await q.close()
            e = await websockets.connect(w.url + "/echo")
            e_port = e.local_address[1]
            await e.send(BODY)
            await e.recv()
            await e.close(1000)
            wsctl(w, "kick", "--code", "4321", str(b.welcome["conn"]))
            assert (await b.closed())[0] == 4321
            wsctl(w, "send", "--group", "aud:room", "maintenance")
            wsctl(w, "reload")
            await a.close()
            return r1["offset"], b.welcome["conn"], e_port
        offset, bob_conn, e_port = run(go())
        with socket.create_connection(("127.0.0.1", w.port), timeout=5) as s:
            s.sendall(b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n")
            s.recv(1000)
        # Failed operator commands are recorded too.
        p = subprocess.run([WSCTL_BIN, "-s", w.sock, "kick", "999999"], capture_output=True,
                           text=True, timeout=20)
        assert p.returncode != 0
        wait_for(path, lambda ls: len(events(ls, "http_error")) == 1 and
                 len(events(ls, "close")) >= 5)
    finally:
        w.stop()
    text, lines = read_audit(path)
    assert BODY not in text and "maintenance" not in text  # no message body, ever
    assert query_tok not in text and "token=" not in text
    assert lines[0]["event"] == "start" and lines[0]["role"] == "master"
    assert lines[-1]["event"] == "stop" and lines[-1]["status"] == 0
    assert events(lines, "shutdown") == [dict(events(lines, "shutdown")[0], signal="TERM")]

    connects = events(lines, "connect")
    assert len(connects) == 5, connects
    assert all(c["role"].startswith("worker") and c["tls"] is False for c in connects)
    assert sorted(c["path"] for c in connects) == ["/echo", "/ws", "/ws", "/ws", "/ws"]
    assert any(c["remote"] == "127.0.0.1:%d" % e_port for c in connects)

    logins = {e["user"]: e for e in events(lines, "login")}
    assert set(logins) == {"aud-alice", "aud-bob", "aud-query"}
    (failed,) = events(lines, "auth_failed")
    assert failed["reason"] and failed["authenticated"] is False

    pubs = events(lines, "publish")
    assert [(p["user"], p["channel"], p["mid"], p["duplicate"]) for p in pubs] == [
        ("aud-alice", "aud:room", "m1", False), ("aud-alice", "aud:room", "m1", True)]
    assert pubs[0]["offset"] == offset and pubs[0]["bytes"] == len(json.dumps(BODY))
    (snd,) = events(lines, "send")
    assert snd["channel"] == "@aud-bob" and snd["mid"] == "d1"
    (sysmsg,) = events(lines, "system")
    assert sysmsg["channel"] == "aud:room" and sysmsg["user"] == ""

    closes = {e["conn"]: e for e in events(lines, "close")}
    assert closes[bob_conn]["code"] == 4321 and closes[bob_conn]["user"] == "aud-bob"
    assert sorted(e["code"] for e in closes.values()) == sorted([1000, 1000, 1000, 4001, 4321])
    echo_close = [e for e in closes.values() if e["msgs_in"] == 1 and e["user"] == ""]
    assert len(echo_close) == 1 and echo_close[0]["bytes_out"] > len(BODY)

    ops = events(lines, "operator")
    assert [(o["action"], o["ok"]) for o in ops] == [
        ("kick", True), ("send", True), ("reload", True), ("kick", False)]
    assert ops[0]["conn"] == bob_conn and ops[0]["code"] == 4321
    assert ops[1]["group"] == "aud:room" and ops[1]["bytes"] > 0
    assert ops[3]["error"].startswith("no such connection")
    assert all(o["uid"] == os.getuid() and o["role"] == "master" for o in ops)
    assert [r["ok"] for r in events(lines, "reload")] == [True]
    (err,) = events(lines, "http_error")
    assert err["status"] == 404 and err["remote"].startswith("127.0.0.1:")


def test_audit_lines_stay_whole_under_load_and_usr1_reopens_the_file(tmp_path):
    path = tmp_path / "audit.log"
    w = Wsd(workers=2, extra=f"jwt_hs256_secret testsecret\naudit_log {path}")
    w.start()
    try:
        async def go():
            clients = [await Client.login(w.url, full_tok("load%d" % i)) for i in range(16)]
            async def burst(c, i):
                for k in range(40):
                    await c.ok("publish", group="load:%d" % (i % 4), data=k, mid="k%d" % k)
            await asyncio.gather(*[burst(c, i) for i, c in enumerate(clients)])
            workers = {e["role"] for e in events(read_audit(path)[1], "login")}
            assert len(workers) == 2, workers  # both workers write into the one file
            # Rotation: move the file away, USR1, and the next lines go to a new file.
            os.rename(path, str(path) + ".1")
            w.signal(signal.SIGUSR1)
            await asyncio.sleep(0.5)
            for c in clients:
                await c.ok("publish", group="load:x", data=0, mid="after")
            for c in clients:
                await c.close()
        run(go(), 90)
        old = read_audit(str(path) + ".1")[1]
        assert len(events(old, "publish")) == 16 * 40
        new = wait_for(path, lambda ls: len(events(ls, "close")) == 16)
        assert len(events(new, "publish")) == 16
        assert {e["mid"] for e in events(new, "publish")} == {"after"}
    finally:
        w.stop()


def test_an_audit_log_that_cannot_be_written_is_reported_and_serving_goes_on():
    """/dev/full takes the open and refuses every write (ENOSPC)."""
    w = Wsd(workers=1, extra="jwt_hs256_secret testsecret\naudit_log /dev/full")
    w.start()
    try:
        async def go():
            for i in range(3):
                c = await Client.login(w.url, full_tok("full%d" % i))
                await c.ok("publish", group="full:g", data=i)
                await c.close()
        run(go())
    finally:
        w.stop()
    log = w.read_log()
    assert "audit log: write failed" in log and "No space left on device" in log, log[-2000:]
    # said once by each process (the worker's lines are its own), not once per line
    said = [line for line in log.splitlines() if "audit log: write failed" in line]
    assert len([line for line in said if "role=master" in line]) == 1, said
    assert len([line for line in said if "role=master" not in line]) == 1, said


# A shim for the server's process: fdatasync() and fsync() fail with EIO while the file
# named by WSD_FAULT_FILE exists, so LMDB's commit of a batch fails (store_sync batch).
FAULT_SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

static int failing(void)
{
    const char *p = getenv("WSD_FAULT_FILE");
    return p != NULL && access(p, F_OK) == 0;
}

int fdatasync(int fd)
{
    if (failing()) {
        errno = EIO;
        return -1;
    }
    return ((int (*)(int))dlsym(RTLD_NEXT, "fdatasync"))(fd);
}

int fsync(int fd)
{
    if (failing()) {
        errno = EIO;
        return -1;
    }
    return ((int (*)(int))dlsym(RTLD_NEXT, "fsync"))(fd);
}
"""


def test_a_publish_whose_batch_fails_to_commit_leaves_no_audit_line(tmp_path):
    src, shim, trigger = tmp_path / "shim.c", tmp_path / "shim.so", tmp_path / "fail-now"
    src.write_text(FAULT_SHIM)
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(shim), str(src), "-ldl"], check=True)
    audit = str(tmp_path / "audit.log")
    asan = os.environ.get("ASAN_OPTIONS", "")
    env = {"LD_PRELOAD": str(shim), "WSD_FAULT_FILE": str(trigger),
           # the shim comes before the sanitizer runtime in the library list
           "ASAN_OPTIONS": (asan + ":" if asan else "") + "verify_asan_link_order=0"}
    w = Wsd(workers=1, extra="jwt_hs256_secret testsecret\nstore_sync batch\naudit_log %s\n" %
            audit, env=env)
    w.start()
    try:
        async def go():
            c = await Client.login(w.url, full_tok("committer"))
            r = await c.request("publish", group="commit:g", data=1, mid="before")
            assert r["op"] == "reply" and r["offset"] == 1, r
            trigger.write_text("")
            r = await c.request("publish", group="commit:g", data=2, mid="lost")
            assert r["op"] == "error" and r["code"] == "unavailable", r
            trigger.unlink()
            r = await c.request("publish", group="commit:g", data=3, mid="after")
            assert r["op"] == "reply" and r["offset"] == 2, r
            await c.close()
        run(go())
        lines = wait_for(audit, lambda ls: any(e.get("mid") == "after" for e in ls))
    finally:
        w.stop()
    assert "store commit failed" in w.read_log()
    published = [e["mid"] for e in lines if e["event"] == "publish"]
    assert published == ["before", "after"], published
