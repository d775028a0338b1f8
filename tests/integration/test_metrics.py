"""GET /metrics: families, labels, allow-list, counters that follow what happened."""
import asyncio
import socket
import time

import websockets

from wsdproc import Wsd, metrics


def get(port, path, source="127.0.0.1"):
    with socket.socket() as s:
        s.bind((source, 0))
        s.settimeout(5)
        s.connect(("127.0.0.1", port))
        s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
        return data


def test_metrics_report_failures_rtt_rings_and_refuse_other_addresses():
    with Wsd(workers=2, extra="heartbeat 1\nheartbeat_misses 3") as w:
        for _ in range(3):
            assert get(w.port, b"/nope").startswith(b"HTTP/1.1 404")
        assert get(w.port, b"/metrics", source="127.0.0.2").startswith(b"HTTP/1.1 403")

        async def go():
            async with websockets.connect(w.url + "/echo") as ws:
                await ws.send("x")
                assert await ws.recv() == "x"
                await asyncio.sleep(2.5)  # a server ping and its pong
                return metrics(w.port)
        m = asyncio.run(asyncio.wait_for(go(), 20))
        assert m['wsd_handshake_failures_by_status_total{status="404"}'] >= 3
        assert m['wsd_handshake_failures_by_status_total{status="403"}'] >= 1
        assert m['wsd_rtt_seconds_count'] >= 1
        assert m['wsd_rtt_seconds_bucket{le="+Inf"}'] == m['wsd_rtt_seconds_count']
        assert m['wsd_ring_size_bytes{worker="0"}'] > 0
        assert 'wsd_drops_total{reason="slow_consumer"}' in m
        assert sum(v for k, v in m.items() if k.startswith("wsd_messages_in_total")) >= 1
        assert m["wsd_up"] == 1
