"""Start and stop a private redis-server for integration tests.

Each server gets a free loopback port and a private temp directory for its append-only
file, so it can be killed (SIGKILL by pid, as a crash) and started again on the same
port and directory with its data. Only the process started here is ever signalled.
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from wsdproc import free_port

REDIS_BIN = os.environ.get("REDIS_BIN", "/usr/bin/redis-server")


def available():
    return os.access(REDIS_BIN, os.X_OK)


def _encode(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


class _Reader:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def reply(self):
        line = self.line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError("redis error: " + rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self.exact(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise RuntimeError("unexpected redis reply %r" % line)


def command(port, *args, timeout=5):
    """Runs one command on 127.0.0.1:port and returns its decoded reply."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(_encode(args))
        return _Reader(s).reply()


class Redis:
    """redis-server --port P --bind 127.0.0.1 --save "" --appendonly yes --dir D."""

    def __init__(self, port=None, directory=None):
        self.port = port or free_port()
        self.dir = directory or tempfile.mkdtemp(prefix="wsd-redis-")
        self.own_dir = directory is None
        self.log = os.path.join(self.dir, "redis.log")
        self.proc = None

    @property
    def uri(self):
        return "redis://127.0.0.1:%d" % self.port

    def start(self, timeout=15):
        self.logf = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [REDIS_BIN, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--dir", self.dir, "--daemonize", "no"],
            stdout=self.logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("redis-server exited early:\n" + self.read_log())
            try:
                if command(self.port, "PING", timeout=1) == "PONG":
                    return self
            except (OSError, RuntimeError):
                pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError("redis-server did not answer PING:\n" + self.read_log())

    def read_log(self):
        try:
            with open(self.log, "rb") as f:
                return f.read().decode(errors="replace")[-4000:]
        except OSError:
            return ""

    def command(self, *args):
        return command(self.port, *args)

    def kill(self):
        """SIGKILL (a crash: the append-only file keeps what was written)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self._close_log()

    def stop(self, timeout=10):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._close_log()

    def _close_log(self):
        f = getattr(self, "logf", None)
        if f is not None and not f.closed:
            f.close()

    def cleanup(self):
        self.stop()
        if self.own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()
