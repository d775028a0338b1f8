"""Operational lifecycle of a running wsd with 4 workers and hundreds of echo clients
exchanging traffic: a worker killed with SIGKILL (crash restart, crash-loop back-off,
shared-table recovery), HUP reloads (a live setting, an invalid file, fewer and more
workers, a new listener), TERM, QUIT, USR1, and the heartbeat timeout (close 4000)
decided by the master's scan of the connection table.

Every test is bounded in time and leaves no process behind."""
import asyncio
import base64
import datetime
import os
import random
import re
import signal
import socket
import struct
import time

import pytest
import websockets

from wsdproc import Wsd, free_port, metrics

CLIENTS = 400


# ---- helpers ---------------------------------------------------------------------------

def run(coro, timeout=90):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def slot_pids(wsd):
    """{slot: pid} of the latest start of each worker slot, from the master's log."""
    pids = {}
    for m in re.finditer(r'msg="worker (\d+) started pid=(\d+)"', wsd.read_log()):
        pids[int(m.group(1))] = int(m.group(2))
    return pids


def wait_started(wsd, n, timeout=10):
    """Waits until n worker slots logged their start; returns slot_pids()."""
    deadline = time.monotonic() + timeout
    while len(slot_pids(wsd)) < n and time.monotonic() < deadline:
        time.sleep(0.02)
    pids = slot_pids(wsd)
    assert len(pids) == n, wsd.read_log()
    return pids


def log_events(wsd, pattern):
    """[(wall-clock seconds, match)] of the log lines whose msg matches pattern."""
    out = []
    for line in wsd.read_log().splitlines():
        ts = re.match(r'ts=(\S+)Z ', line)
        m = re.search(pattern, line)
        if ts and m:
            t = datetime.datetime.strptime(ts.group(1), "%Y-%m-%dT%H:%M:%S.%f")
            out.append((t.replace(tzinfo=datetime.timezone.utc).timestamp(), m))
    return out


def children(wsd):
    """The master's child processes (as `ps --ppid`, without forking a process: tests poll
    this while hundreds of clients exchange traffic in the same event loop)."""
    pid = wsd.proc.pid
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return {int(x) for x in f.read().split()}
    except OSError:
        return set(wsd.worker_pids())


def per_worker(port, name="wsd_connections"):
    m = metrics(port)
    out = {}
    for k, v in m.items():
        g = re.fullmatch(name + r'\{worker="(\d+)"\}', k)
        if g:
            out[int(g.group(1))] = int(v)
    return out


def closes(port):
    m = metrics(port)
    return {re.search(r'code="([^"]+)"', k).group(1): int(v)
            for k, v in m.items() if k.startswith("wsd_closes_total{")}


def alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def append_conf(wsd, text):
    with open(wsd.conf, "a") as f:
        f.write(text + "\n")


def conf_lines(wsd):
    with open(wsd.conf) as f:
        return f.read().count("\n")


def sanitizer_clean(wsd):
    log = wsd.read_log()
    assert "Sanitizer" not in log and "runtime error:" not in log, log[-6000:]


async def wait_until(pred, timeout, step=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        await asyncio.sleep(step)
    return pred()


def http_get(port, path, headers=b""):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data


def upgrade_request(path=b"/echo", origin=None):
    key = base64.b64encode(os.urandom(16))
    req = (b"GET " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
           b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + key +
           b"\r\n")
    if origin:
        req += b"Origin: " + origin + b"\r\n"
    return req + b"\r\n"


def raw_upgrade(port, origin=None, path=b"/echo"):
    """Sends an upgrade request; returns (socket, status, head, bytes after the head)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(upgrade_request(path, origin))
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/1.1 ") else 0
    return s, status, head, rest


def raw_close(s):
    """Sends a masked close frame (1000) and reads until the server closes."""
    mask = os.urandom(4)
    payload = bytes(b ^ mask[i % 4] for i, b in enumerate(struct.pack(">H", 1000)))
    try:
        s.sendall(b"\x88\x82" + mask + payload)
        s.settimeout(5)
        while s.recv(4096):
            pass
    except OSError:
        pass
    s.close()


def upgrade_status(port, origin=None):
    """Status of an upgrade request; a completed upgrade is closed cleanly (1000)."""
    s, status, _, _ = raw_upgrade(port, origin)
    if status == 101:
        raw_close(s)
    else:
        s.close()
    return status


def seg_name(control_socket):
    """The shared-memory segment of the instance with this control socket (shm/seg.c)."""
    h = 0xcbf29ce484222325
    for b in control_socket.encode():
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return "/dev/shm/wsd-%016x" % h


class Frames:
    """Server frames read from a raw socket (server frames are never masked)."""

    def __init__(self, sock, buffered=b""):
        self.sock, self.buf = sock, buffered

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk

    def next(self):
        self._need(2)
        b0, b1 = self.buf[0], self.buf[1]
        n, off = b1 & 0x7F, 2
        if n == 126:
            self._need(4)
            n, off = struct.unpack(">H", self.buf[2:4])[0], 4
        elif n == 127:
            self._need(10)
            n, off = struct.unpack(">Q", self.buf[2:10])[0], 10
        self._need(off + n)
        payload = self.buf[off:off + n]
        self.buf = self.buf[off + n:]
        return b0 & 0x0F, payload


class EchoPool:
    """Many /echo clients, each sending a numbered message and checking its echo in a
    loop until stopped; records round-trip times and how each connection ended."""

    def __init__(self, url):
        self.url, self.conns, self.stop_ev, self.tasks = url, [], None, []

    async def open(self, n, batch=100):
        while len(self.conns) < n:
            k = min(batch, n - len(self.conns))
            socks = await asyncio.gather(*[
                websockets.connect(self.url + "/echo", compression=None, ping_interval=None,
                                   close_timeout=2, open_timeout=20) for _ in range(k)])
            base = len(self.conns)
            self.conns.extend({"ws": ws, "idx": base + i, "times": [], "code": None,
                               "error": None} for i, ws in enumerate(socks))
        return self

    async def _run(self, c, period):
        ws, seq = c["ws"], 0
        await asyncio.sleep(random.random() * period)
        try:
            while not self.stop_ev.is_set():
                msg = "%d-%d" % (c["idx"], seq)
                await ws.send(msg)
                got = await ws.recv()
                if got != msg:
                    c["error"] = "got %r, expected %r" % (got, msg)
                    return
                c["times"].append(time.monotonic())
                seq += 1
                await asyncio.sleep(period * (0.5 + random.random()))
        except websockets.ConnectionClosed as e:
            c["code"] = e.rcvd.code if e.rcvd is not None else 1006

    def start(self, period=0.3):
        self.stop_ev = asyncio.Event()
        self.tasks = [asyncio.ensure_future(self._run(c, period)) for c in self.conns]

    async def stop(self):
        self.stop_ev.set()
        await asyncio.gather(*self.tasks)

    async def wait_done(self, timeout):
        """Waits (without stopping anyone) until every client loop ended by a close."""
        done, pending = await asyncio.wait(self.tasks, timeout=timeout)
        return not pending

    async def close(self):
        await asyncio.gather(*[c["ws"].close() for c in self.conns if c["code"] is None],
                             return_exceptions=True)

    def open_conns(self):
        return [c for c in self.conns if c["code"] is None and c["error"] is None]

    def closed(self, code=None):
        return [c for c in self.conns if c["code"] is not None and
                (code is None or c["code"] == code)]

    def errors(self):
        return [c["error"] for c in self.conns if c["error"]]

    @staticmethod
    def max_gap(c, since, until):
        """Longest time without a completed round trip in [since, until]."""
        ts = [since] + [t for t in c["times"] if since < t <= until] + [until]
        return max(b - a for a, b in zip(ts, ts[1:]))

    async def all_echo(self, conns):
        """Each connection in conns still echoes (checked outside the traffic loop)."""
        async def one(c):
            await c["ws"].send("final-%d" % c["idx"])
            return await asyncio.wait_for(c["ws"].recv(), 10) == "final-%d" % c["idx"]
        return all(await asyncio.gather(*[one(c) for c in conns]))


@pytest.fixture
def wsd4():
    w = Wsd(workers=4, extra="shutdown_timeout 5")
    w.start()
    wait_started(w, 4)
    yield w
    w.stop()


# ---- crash restart ---------------------------------------------------------------------

def test_kill9_worker_restarts_in_its_slot_and_others_see_nothing(wsd4):
    wsd = wsd4

    async def go():
        pool = await EchoPool(wsd.url).open(CLIENTS)
        pool.start()
        await asyncio.sleep(1.5)
        before = per_worker(wsd.port)
        assert sum(before.values()) == CLIENTS, before
        pids = slot_pids(wsd)
        victim = max(before, key=before.get)  # the busiest slot
        victim_pid = pids[victim]
        t_kill_wall = time.time()
        t_kill = time.monotonic()
        os.kill(victim_pid, signal.SIGKILL)
        started = r'msg="worker %d started pid=(\d+)"' % victim

        def replaced():
            ev = [(t, int(m.group(1))) for t, m in log_events(wsd, started)]
            return ev[-1] if ev and ev[-1][1] != victim_pid else None
        ev = await wait_until(replaced, 5.0)
        assert ev, "no new worker in slot %d:\n%s" % (victim, wsd.read_log())
        t_new_wall, new_pid = ev
        # Measured on the server's clock: the client side may be slowed by the load.
        assert t_new_wall - t_kill_wall <= 1.0, (t_kill_wall, t_new_wall)
        assert new_pid in children(wsd)
        assert not alive(victim_pid)
        # The dead worker's connections are gone from the table, the others untouched.
        after = per_worker(wsd.port)
        assert after[victim] == 0, after
        assert {k: v for k, v in after.items() if k != victim} == \
            {k: v for k, v in before.items() if k != victim}, (before, after)
        await asyncio.sleep(2.0)  # traffic keeps flowing
        t_end = time.monotonic()
        await pool.stop()
        assert not pool.errors(), pool.errors()[:3]
        dead = pool.closed()
        assert len(dead) == before[victim], (len(dead), before)
        assert all(c["code"] == 1006 for c in dead)
        survivors = pool.open_conns()
        assert len(survivors) == CLIENTS - before[victim]
        for c in survivors:
            assert sum(1 for t in c["times"] if t > t_kill) >= 3, c["idx"]
            assert EchoPool.max_gap(c, t_kill, t_end) < 1.5, c["idx"]
        assert await pool.all_echo(survivors)
        # The replacement serves new clients.
        extra = await EchoPool(wsd.url).open(40)
        assert await extra.all_echo(extra.conns)
        await extra.close()
        await pool.close()
        m = metrics(wsd.port)
        assert m["wsd_worker_restarts_total"] == 1
        return victim, before[victim]
    victim, held = run(go())
    log = wsd.read_log()
    assert "worker %d killed by signal 9" % victim in log
    assert "worker %d: released %d connection slots" % (victim, held) in log


def test_crash_loop_restarts_with_growing_delay():
    with Wsd(workers=2) as wsd:
        pid = wait_started(wsd, 2)[0]
        for _ in range(5):
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 5
            while slot_pids(wsd)[0] == pid and time.monotonic() < deadline:
                time.sleep(0.005)
            assert slot_pids(wsd)[0] != pid, wsd.read_log()
            pid = slot_pids(wsd)[0]
        log = wsd.read_log()
        delays = [int(x) for x in re.findall(
            r'worker 0 crashes repeatedly: restarting in (\d+) ms', log)]
        assert delays == [250, 500, 1000, 2000], delays
        # On the server's clock: from each reap to the next start.
        reaps = [t for t, _ in log_events(wsd, r'msg="worker 0 killed by signal 9"')]
        starts = [t for t, _ in log_events(wsd, r'msg="worker 0 started')][1:]
        gaps = [b - a for a, b in zip(reaps, starts)]
        assert len(gaps) == 5 and gaps[0] < 0.1, gaps
        for gap, d in zip(gaps[1:], delays):
            assert d / 1000 - 0.01 <= gap < d / 1000 + 1.0, (gaps, delays)
        # The other slot never restarted and still serves; the looping slot recovers.
        assert len(re.findall(r'worker 1 started', log)) == 1

        async def serve():
            pool = await EchoPool(wsd.url).open(20)
            assert await pool.all_echo(pool.conns)
            await pool.close()
        run(serve())


def test_table_stays_consistent_when_workers_die_during_churn(wsd4):
    """Integration counterpart of tests/unit/conn_table_test.c, which stops a process at
    each step of allocation and release to test the robust-lock repair deterministically:
    here workers are killed with SIGKILL at random moments while connections are opened
    and closed as fast as the clients can, so a kill can land inside a critical section
    of the connection table or the name tables. Afterwards the table's accounting must
    match what the clients hold: nothing leaked, nothing counted twice."""
    wsd = wsd4

    async def churn(stop):
        while not stop.is_set():
            try:
                async with websockets.connect(wsd.url + "/echo", compression=None,
                                              open_timeout=5, close_timeout=1) as ws:
                    await ws.send("x")
                    await asyncio.wait_for(ws.recv(), 5)
            except (OSError, EOFError, asyncio.TimeoutError, websockets.WebSocketException):
                await asyncio.sleep(0.01)

    async def go():
        stop = asyncio.Event()
        tasks = [asyncio.ensure_future(churn(stop)) for _ in range(16)]
        rng = random.Random(5)
        for _ in range(12):
            await asyncio.sleep(rng.uniform(0.1, 0.4))
            pids = slot_pids(wsd)
            slot = rng.choice(sorted(pids))
            if alive(pids[slot]):
                os.kill(pids[slot], signal.SIGKILL)
        stop.set()
        await asyncio.gather(*tasks)
        # Let the last restarts (with back-off) settle.
        assert await wait_until(lambda: len(children(wsd)) == 4, 15, 0.1), wsd.read_log()
        await asyncio.sleep(0.5)
        assert await wait_until(lambda: sum(per_worker(wsd.port).values()) == 0, 5, 0.1), \
            per_worker(wsd.port)
        pool = await EchoPool(wsd.url).open(300)
        counts = per_worker(wsd.port)
        assert sum(counts.values()) == 300, counts
        assert await pool.all_echo(pool.conns)
        await pool.close()
        assert await wait_until(lambda: sum(per_worker(wsd.port).values()) == 0, 5, 0.1), \
            per_worker(wsd.port)
    run(go(), 120)
    assert "broken" not in wsd.read_log()


# ---- HUP -------------------------------------------------------------------------------

def test_hup_applies_live_settings_without_closing_anyone(wsd4):
    wsd = wsd4

    async def go():
        pool = await EchoPool(wsd.url).open(CLIENTS)
        pool.start()
        await asyncio.sleep(1)
        pids = slot_pids(wsd)
        before_closes = closes(wsd.port)
        assert upgrade_status(wsd.port, b"http://evil.example") == 101
        # max_connections needs a restart: it keeps its value and the log says so.
        append_conf(wsd, "allowed_origins http://good.example\nmax_message_size 64k\n"
                         "max_connections 5000")
        t_hup = time.monotonic()
        wsd.signal(signal.SIGHUP)
        await asyncio.sleep(1.0)
        # In effect within 1 s, on whichever worker takes the connection.
        assert [upgrade_status(wsd.port, b"http://evil.example") for _ in range(24)] == \
            [403] * 24
        assert upgrade_status(wsd.port, b"http://good.example") == 101
        assert upgrade_status(wsd.port) == 101  # no Origin: not a browser
        # max_message_size applies at once, to new connections ...
        async with websockets.connect(wsd.url + "/echo", compression=None) as ws:
            await ws.send("y" * 100000)
            with pytest.raises(websockets.ConnectionClosed) as ei:
                await ws.recv()
            assert ei.value.rcvd.code == 1009
        old = pool.conns[0]
        await asyncio.sleep(0.5)
        await pool.stop()
        assert not pool.errors(), pool.errors()[:3]
        assert not pool.closed(), [c["code"] for c in pool.closed()][:5]
        assert await pool.all_echo(pool.conns)
        # ... and to the next message on those that were open.
        await old["ws"].send("z" * 65536)
        assert await old["ws"].recv() == "z" * 65536
        await old["ws"].send("z" * 65537)
        with pytest.raises(websockets.ConnectionClosed) as ei:
            await old["ws"].recv()
        assert ei.value.rcvd.code == 1009
        for c in pool.conns:
            assert EchoPool.max_gap(c, t_hup, c["times"][-1]) < 1.5
        # A close is counted when the server lets go of the connection, after the
        # client's reply to the close frame: that can trail the client's recv().
        def closes_since():
            after = closes(wsd.port)
            return {k: after[k] - before_closes.get(k, 0) for k in after}
        await wait_until(lambda: closes_since()["1009"] >= 2, 5)
        diff = closes_since()
        assert diff["1001"] == 0 and diff["1006"] == 0 and diff["1009"] == 2, diff
        assert slot_pids(wsd) == pids
        await pool.close()
        return t_hup
    run(go())
    log = wsd.read_log()
    assert re.search(r'configuration reloaded: 2 keys changed: max_message_size allowed_origins',
                     log), log[-3000:]
    assert "a restart is needed to apply max_connections: keeping the running values" in log
    assert len(re.findall(r'role=worker\d+ pid=\d+ msg="configuration reloaded"', log)) == 4


def test_hup_with_invalid_file_changes_nothing(wsd4):
    wsd = wsd4

    async def go():
        pool = await EchoPool(wsd.url).open(200)
        pool.start()
        pids = slot_pids(wsd)
        line = conf_lines(wsd) + 2
        append_conf(wsd, "allowed_origins http://good.example\nheartbeat_sekonds 3")
        wsd.signal(signal.SIGHUP)
        pattern = r'reload refused, keeping the running configuration: %s:%d: ' % (
            re.escape(wsd.conf), line)
        assert await wait_until(lambda: re.search(pattern, wsd.read_log()), 2), \
            wsd.read_log()[-2000:]
        await asyncio.sleep(1)
        assert [upgrade_status(wsd.port, b"http://evil.example") for _ in range(8)] == \
            [101] * 8
        await pool.stop()
        assert not pool.closed() and not pool.errors()
        assert await pool.all_echo(pool.conns)
        assert slot_pids(wsd) == pids and children(wsd) == set(pids.values())
        await pool.close()
    run(go())
    assert "unknown key" in wsd.read_log() or "heartbeat_sekonds" in wsd.read_log()
    assert 'msg="configuration reloaded' not in wsd.read_log()


def test_hup_with_fewer_workers_retires_only_theirs(wsd4):
    wsd = wsd4

    async def go():
        pool = await EchoPool(wsd.url).open(CLIENTS)
        pool.start()
        await asyncio.sleep(1)
        before = per_worker(wsd.port)
        pids = slot_pids(wsd)
        assert sorted(pids) == [0, 1, 2, 3]
        retiring = before[2] + before[3]
        assert retiring > 0, before
        append_conf(wsd, "workers 2")
        t_hup = time.monotonic()
        wsd.signal(signal.SIGHUP)
        assert await wait_until(lambda: children(wsd) == {pids[0], pids[1]}, 8, 0.05), \
            (children(wsd), pids)
        await asyncio.sleep(2.0)  # not restarted
        assert children(wsd) == {pids[0], pids[1]}
        t_end = time.monotonic()
        await pool.stop()
        assert not pool.errors(), pool.errors()[:3]
        gone = pool.closed()
        assert len(gone) == retiring and all(c["code"] == 1001 for c in gone), \
            (len(gone), retiring, {c["code"] for c in gone})
        stay = pool.open_conns()
        assert len(stay) == before[0] + before[1]
        for c in stay:
            assert EchoPool.max_gap(c, t_hup, t_end) < 1.5
        assert await pool.all_echo(stay)
        after = per_worker(wsd.port)
        assert after.get(2, 0) == 0 and after.get(3, 0) == 0, after
        # New clients go to the remaining workers.
        more = await EchoPool(wsd.url).open(100)
        assert await more.all_echo(more.conns)
        counts = per_worker(wsd.port)
        assert counts[0] + counts[1] == len(stay) + 100, counts
        # And back to 4: two workers start in the free slots.
        append_conf(wsd, "workers 4")
        wsd.signal(signal.SIGHUP)
        assert await wait_until(lambda: len(children(wsd)) == 4, 1.0, 0.02), children(wsd)
        await more.close()
        await pool.close()
    run(go())
    log = wsd.read_log()
    assert "worker 2 retired" in log and "worker 3 retired" in log
    assert "worker 0 retired" not in log and "worker 1 retired" not in log


def test_hup_with_a_new_listener_replaces_the_workers(wsd4):
    """Listeners are shared by every worker, so a changed set replaces them all: the new
    workers start with the new sockets first, then the old ones retire (their clients get
    1001 and resume on the new ones)."""
    wsd = wsd4
    port2 = free_port()

    async def go():
        pool = await EchoPool(wsd.url).open(100)
        pool.start()
        old = children(wsd)
        with open(wsd.conf) as f:
            text = f.read()
        with open(wsd.conf, "w") as f:
            f.write(text.replace("listen 127.0.0.1:%d" % wsd.port,
                                 "listen 127.0.0.1:%d" % port2))
        wsd.signal(signal.SIGHUP)
        assert await wait_until(lambda: upgrade_status_safe(port2) == 101, 1.0, 0.05)

        def new_set():
            c = children(wsd)
            return len(c) == 4 and not (c & old)
        assert await wait_until(new_set, 10, 0.05), (old, children(wsd))
        assert await pool.wait_done(5)
        assert {c["code"] for c in pool.conns} == {1001}
        assert upgrade_status(port2) == 101
        with pytest.raises(OSError):
            upgrade_status(wsd.port)  # the old address is closed
        again = await EchoPool("ws://127.0.0.1:%d" % port2).open(100)
        assert await again.all_echo(again.conns)
        await again.close()
    run(go())
    log = wsd.read_log()
    assert "listeners changed: replacing every worker" in log
    # The replacements were forked before the first old worker was told to retire.
    starts = [m.start() for m in re.finditer(r'msg="worker [4-7] started', log)]
    assert len(starts) == 4 and max(starts) < log.index("retiring"), log[-4000:]


def upgrade_status_safe(port):
    try:
        return upgrade_status(port)
    except OSError:
        return 0


# ---- TERM / QUIT / USR1 ----------------------------------------------------------------

def shm_names():
    return {n for n in os.listdir("/dev/shm") if n.startswith("wsd-")}


def test_term_closes_everyone_with_1001_and_leaves_nothing():
    w = Wsd(workers=4, extra="shutdown_timeout 3")
    pidfile = os.path.join(w.dir, "wsd.pid")
    append_conf(w, "pid_file " + pidfile)
    seg = seg_name(w.sock)
    w.start()
    try:
        async def go():
            pool = await EchoPool(w.url).open(CLIENTS)
            pool.start()
            # A client that never reads keeps one worker draining until shutdown_timeout.
            stubborn, status, _, _ = raw_upgrade(w.port)
            assert status == 101
            await asyncio.sleep(1)
            workers = children(w)
            assert len(workers) == 4
            assert os.path.exists(seg) and os.path.exists(pidfile) and os.path.exists(w.sock)
            assert http_get(w.port, b"/healthz").startswith(b"HTTP/1.1 200")
            t_term = time.monotonic()
            w.signal(signal.SIGTERM)
            assert await pool.wait_done(3)
            assert {c["code"] for c in pool.conns} == {1001}, \
                {c["code"] for c in pool.conns}
            assert not pool.errors()
            # Still draining (the stubborn client): no new upgrades, not healthy.
            resp = http_get(w.port, b"/healthz")
            assert resp.startswith(b"HTTP/1.1 503") and b"Retry-After:" in resp, resp
            s, status, head, _ = raw_upgrade(w.port)
            s.close()
            assert status == 503 and b"Retry-After:" in head, head
            loop = asyncio.get_running_loop()
            rc = await loop.run_in_executor(None, w.proc.wait, 3 + 2)
            elapsed = time.monotonic() - t_term
            frames = Frames(stubborn)
            op, payload = frames.next()
            stubborn.close()
            assert op == 0x8 and struct.unpack(">H", payload[:2])[0] == 1001
            return rc, elapsed, workers
        rc, elapsed, workers = run(go())
        assert rc == 0
        assert elapsed <= 3 + 1.5, elapsed
        assert not any(alive(p) for p in workers), workers
        assert not os.path.exists(pidfile) and not os.path.exists(w.sock)
        assert not os.path.exists(seg)
        sanitizer_clean(w)
        log = w.read_log()
        assert "graceful shutdown" in log and 'msg="wsd stopped"' in log
    finally:
        w.stop()


def test_term_without_clients_exits_at_once():
    w = Wsd(workers=4, extra="shutdown_timeout 10")
    w.start()
    try:
        workers = children(w)
        t = time.monotonic()
        w.signal(signal.SIGTERM)
        assert w.proc.wait(5) == 0
        assert time.monotonic() - t < 2.0
        assert not any(alive(p) for p in workers)
        sanitizer_clean(w)
    finally:
        w.stop()


def test_quit_stops_fast_dropping_connections():
    w = Wsd(workers=4, extra="shutdown_timeout 30")
    w.start()
    try:
        async def go():
            pool = await EchoPool(w.url).open(200)
            pool.start()
            await asyncio.sleep(0.5)
            workers = children(w)
            t = time.monotonic()
            w.signal(signal.SIGQUIT)
            assert await pool.wait_done(5)
            loop = asyncio.get_running_loop()
            rc = await loop.run_in_executor(None, w.proc.wait, 5)
            return rc, time.monotonic() - t, workers, pool
        rc, elapsed, workers, pool = run(go())
        assert rc == 0 and elapsed < 3.0, elapsed
        assert {c["code"] for c in pool.conns} == {1006}
        assert not any(alive(p) for p in workers)
        assert not os.path.exists(w.sock)
        sanitizer_clean(w)
    finally:
        w.stop()


def test_usr1_reopens_the_log_in_master_and_workers():
    w = Wsd(workers=4)
    logfile = os.path.join(w.dir, "file.log")
    append_conf(w, "log_file " + logfile)
    w.start()
    try:
        time.sleep(0.5)
        with open(logfile) as f:
            assert "worker started" in f.read()
        os.rename(logfile, logfile + ".1")
        w.signal(signal.SIGUSR1)
        deadline = time.monotonic() + 2
        text = ""
        while time.monotonic() < deadline:
            if os.path.exists(logfile):
                with open(logfile) as f:
                    text = f.read()
                if len(re.findall(r'msg="log file reopened"', text)) == 5:
                    break
            time.sleep(0.05)
        roles = set(re.findall(r'role=(\S+) pid=\d+ msg="log file reopened"', text))
        assert roles == {"master", "worker0", "worker1", "worker2", "worker3"}, text
        with open(logfile + ".1") as f:
            assert "log file reopened" not in f.read()
    finally:
        w.stop()


# ---- heartbeat -------------------------------------------------------------------------

def test_silent_client_is_closed_with_4000_in_the_protocol_window():
    heartbeat, misses = 1, 2
    w = Wsd(workers=4, extra="heartbeat %d\nheartbeat_misses %d" % (heartbeat, misses))
    w.start()
    try:
        async def go():
            pool = await EchoPool(w.url).open(100)
            pool.start(period=1.0)
            loop = asyncio.get_running_loop()

            def silent_client():
                # Completes the handshake, then never writes: only reads what arrives.
                s, status, _, rest = raw_upgrade(w.port)
                t0 = time.monotonic()
                assert status == 101
                frames, pings = Frames(s, rest), 0
                s.settimeout(10)
                while True:
                    op, payload = frames.next()
                    if op == 0x9:
                        pings += 1
                    elif op == 0x8:
                        t1 = time.monotonic()
                        s.close()
                        return t1 - t0, struct.unpack(">H", payload[:2])[0], pings
            elapsed, code, pings = await loop.run_in_executor(None, silent_client)
            await asyncio.sleep(1.5)
            await pool.stop()
            # Clients that answer pings (websockets does by itself) stay.
            assert not pool.closed() and not pool.errors()
            assert await pool.all_echo(pool.conns)
            await pool.close()
            return elapsed, code, pings
        elapsed, code, pings = run(go())
        assert code == 4000
        lo, hi = heartbeat * (misses + 1), heartbeat * (misses + 2) + 1
        assert lo < elapsed <= hi, (elapsed, lo, hi)
        assert pings >= misses, pings
        assert closes(w.port)["4000"] == 1
        assert re.search(r'heartbeat: 1 connections silent for over 3000 ms asked to close',
                         w.read_log())
    finally:
        w.stop()
