"""Fixtures of the RFC 6455 / RFC 7692 conformance suite.

WSD_TARGET=wsd (default): start WSD_BIN (default build/san/wsd under the repository root)
with a temporary config, once per session; WSD_WORKERS sets its worker count (default 2).
WSD_TARGET=ref: start ref_echo_server.py (python websockets) instead, to check the suite.

The server runs for the whole session. Before and after each test the fixture checks that it
is still running and that its log holds no sanitizer report; at the end it gets SIGTERM and
must exit 0 within 15 s.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import wsraw

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
START_TIMEOUT = 10.0
STOP_TIMEOUT = 15.0
SANITIZER_MARKS = (b"ERROR: AddressSanitizer", b"ERROR: LeakSanitizer", b"runtime error:",
                   b"SUMMARY: UndefinedBehaviorSanitizer", b"WARNING: ThreadSanitizer")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, name, argv, log_path, port):
        self.name = name
        self.addr = ("127.0.0.1", port)
        self.log_path = log_path
        self._log_pos = 0
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(argv, cwd=str(REPO), stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def log_text(self, tail=6000):
        data = Path(self.log_path).read_bytes()
        return data[-tail:].decode("utf-8", "replace")

    def wait_listening(self):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail("%s exited with status %d during start-up; its output:\n%s"
                            % (self.name, self.proc.returncode, self.log_text()))
            try:
                socket.create_connection(self.addr, timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        self.kill()
        pytest.fail("%s did not accept connections on %s:%d within %.0f s; its output:\n%s"
                    % (self.name, *self.addr, START_TIMEOUT, self.log_text()))

    def check(self, alive=True):
        """Fail if the server died or printed a sanitizer report since the last check."""
        if alive and self.proc.poll() is not None:
            pytest.fail("%s exited with status %d; its output:\n%s"
                        % (self.name, self.proc.returncode, self.log_text()))
        with open(self.log_path, "rb") as f:
            f.seek(self._log_pos)
            new = f.read()
        self._log_pos += len(new)
        for mark in SANITIZER_MARKS:
            at = new.find(mark)
            if at >= 0:
                pytest.fail("%s printed a sanitizer report:\n%s"
                            % (self.name, new[max(0, at - 2000):at + 6000].decode(
                                "utf-8", "replace")))

    def kill(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self._log.close()

    def stop(self):
        """SIGTERM, then wait; SIGKILL (whole process group) and fail after STOP_TIMEOUT."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.kill()
                pytest.fail("%s did not exit within %.0f s of SIGTERM; killed. Output:\n%s"
                            % (self.name, STOP_TIMEOUT, self.log_text()))
        # Workers left behind by a master that exited are an error too.
        leftover = live_group_members(self.proc.pid)
        deadline = time.monotonic() + 2.0
        while leftover and time.monotonic() < deadline:
            time.sleep(0.05)
            leftover = live_group_members(self.proc.pid)
        self.kill()
        self.check(alive=False)
        if leftover:
            pytest.fail("%s left processes %s behind after exiting" % (self.name, leftover))
        if self.proc.returncode != 0:
            pytest.fail("%s exited with status %d after SIGTERM; its output:\n%s"
                        % (self.name, self.proc.returncode, self.log_text()))


def live_group_members(pgid):
    """Pids of non-zombie processes in process group pgid."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            pids.append(int(entry.name))
    return pids


def start_wsd(tmp):
    binary = Path(os.environ.get("WSD_BIN", "build/san/wsd"))
    if not binary.is_absolute():
        binary = REPO / binary
    if not os.access(binary, os.X_OK):
        pytest.fail("no executable wsd at %s (build it with `make SAN=1 build/san/wsd` or set "
                    "WSD_BIN; WSD_TARGET=ref runs the suite against the reference server)"
                    % binary)
    port = free_port()
    conf = tmp / "wsd.conf"
    conf.write_text("listen 127.0.0.1:%d\n"
                    "workers %s\n"
                    "echo_path /echo\n"
                    "max_message_size 16m\n"
                    "control_socket %s\n"
                    "compression on\n"
                    % (port, os.environ.get("WSD_WORKERS", "2"), tmp / "wsd.sock"))
    return Server("wsd", [str(binary), "-c", str(conf)], str(tmp / "wsd.log"), port)


def start_ref(tmp):
    port = free_port()
    argv = [sys.executable, str(HERE / "ref_echo_server.py"), "--host", "127.0.0.1",
            "--port", str(port)]
    return Server("ref_echo_server", argv, str(tmp / "ref.log"), port)


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    target = os.environ.get("WSD_TARGET", "wsd")
    tmp = tmp_path_factory.mktemp("wsd")
    if target == "wsd":
        srv = start_wsd(tmp)
    elif target == "ref":
        srv = start_ref(tmp)
    else:
        pytest.fail("WSD_TARGET must be wsd or ref, not %r" % target)
    srv.wait_listening()
    yield srv
    srv.stop()


@pytest.fixture
def addr(server):
    """(host, port) of the server under test, checked alive and clean around the test."""
    server.check()
    yield server.addr
    server.check()


@pytest.fixture
def connect(addr):
    """Factory: connect(**kw) opens a WsClient to /echo (see WsClient.connect); every client
    is closed after the test."""
    clients = []

    def open_client(**kw):
        ws = wsraw.WsClient.connect(addr, **kw)
        clients.append(ws)
        return ws

    yield open_client
    for ws in clients:
        ws.close()


@pytest.fixture
def ws(connect):
    """A client connected to /echo without extensions."""
    return connect()
