"""Start and stop a real build/wsd for integration tests.

Every server gets a private temp directory (config, control socket, store) and a free
loopback port; stop() sends TERM and waits, and kills by pid only what it started.
"""
import os
import signal
import ssl
import socket
import subprocess
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
WSD_BIN = os.environ.get("WSD_BIN", os.path.join(ROOT, "build", "san", "wsd"))
WSCTL_BIN = os.environ.get("WSCTL_BIN", os.path.join(os.path.dirname(WSD_BIN), "wsctl"))


def make_cert(directory, name="cert"):
    """A self-signed P-256 certificate for 127.0.0.1 and localhost, made with the openssl
    command line: (cert path, key path)."""
    cert = os.path.join(directory, name + ".pem")
    key = os.path.join(directory, name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=" + name,
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)
    return cert, key


def free_port(host="127.0.0.1"):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class Wsd:
    def __init__(self, workers=2, extra="", echo=True, port=None, tls=False, env=None):
        self.dir = tempfile.mkdtemp(prefix="wsd-test-")
        self.port = port or free_port()
        self.tls_port = None
        self.env = env or {}  # added to the environment as it is at start()
        self.sock = os.path.join(self.dir, "wsd.sock")
        self.conf = os.path.join(self.dir, "wsd.conf")
        self.log = os.path.join(self.dir, "wsd.log")
        lines = [
            f"listen 127.0.0.1:{self.port}",
            f"workers {workers}",
            f"control_socket {self.sock}",
            f"store lmdb:{self.dir}/store",
            "max_message_size 16m",
            "log_level info",
        ]
        if echo:
            lines.append("echo_path /echo")
        if tls:
            # A second listener speaking TLS, with a certificate made for this server.
            self.tls_port = free_port()
            self.cert, self.key = make_cert(self.dir)
            lines += [f"tls_listen 127.0.0.1:{self.tls_port}", f"tls_cert {self.cert}",
                      f"tls_key {self.key}"]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n" + extra + "\n")
        self.proc = None

    @property
    def url(self):
        return f"ws://127.0.0.1:{self.port}"

    @property
    def wss_url(self):
        return f"wss://127.0.0.1:{self.tls_port}"

    def tls_context(self):
        """A client context that trusts this server's certificate (and checks the name)."""
        return ssl.create_default_context(cafile=self.cert)

    def start(self, timeout=15):
        self.errf = open(self.log, "wb")
        self.proc = subprocess.Popen([WSD_BIN, "-c", self.conf], stdout=self.errf,
                                     stderr=subprocess.STDOUT, cwd=ROOT,
                                     env=dict(os.environ, **self.env))
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("wsd exited early:\n" + self.read_log())
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("wsd did not start listening:\n" + self.read_log())

    def read_log(self):
        try:
            with open(self.log, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=20, allow=()):
        """TERM, wait, and fail on any sanitizer report in the log (lines that contain
        one of the `allow` strings excepted)."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError("wsd did not stop on TERM:\n" + self.read_log())
        finally:
            self.errf.close()
        log = "\n".join(line for line in self.read_log().splitlines()
                        if not any(a in line for a in allow))
        if "Sanitizer" in log or "runtime error:" in log:
            raise RuntimeError("sanitizer report in the wsd log:\n" + log[-6000:])
        return self.proc.returncode

    def worker_pids(self):
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(self.proc.pid)],
                             capture_output=True, text=True).stdout
        return [int(x) for x in out.split()]

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def recv_all(sock):
    """Everything the peer sends until it closes (a socket or an ssl.SSLSocket)."""
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def metrics(port):
    """GET /metrics and return {name{labels}: value}."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        data = recv_all(s)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    out = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out
