"""max_connections_per_ip: WebSocket connections per client address, counted over every
worker, refused with 429 at the limit; other addresses and plain HTTP requests are not
affected, a close makes room, and a reload changes the limit at once."""
import asyncio
import signal
import socket

import websockets

from wsdclient import conn_owners
from wsdproc import Wsd, metrics

LIMIT = 12


def run(coro, timeout=60):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def connect(w, source="127.0.0.1"):
    return await websockets.connect(w.url + "/echo", local_addr=(source, 0),
                                    compression=None, open_timeout=10)


async def refused_status(w, source="127.0.0.1"):
    try:
        ws = await connect(w, source)
    except websockets.InvalidStatusCode as e:
        return e.status_code
    await ws.close()
    return 101


def http_status(port, source="127.0.0.1"):
    with socket.create_connection(("127.0.0.1", port), timeout=5,
                                  source_address=(source, 0)) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        return int(s.recv(100).split()[1])


def test_per_address_limit_over_all_workers_with_room_after_a_close_and_a_reload():
    w = Wsd(workers=2, extra=f"max_connections_per_ip {LIMIT}")
    w.start()
    try:
        async def go():
            conns = [await connect(w) for _ in range(LIMIT)]
            owners = conn_owners(w)
            # More than the balancer lets one worker take: both hold some.
            assert len({owners[c.local_address[1]] for c in conns}) == 2, owners
            before = metrics(w.port).get(
                'wsd_handshake_failures_by_status_total{status="429"}', 0)
            assert [await refused_status(w) for _ in range(3)] == [429] * 3
            after = metrics(w.port)['wsd_handshake_failures_by_status_total{status="429"}']
            assert after - before == 3
            # Another address has its own count; plain requests are not limited.
            other = [await connect(w, "127.0.0.2") for _ in range(LIMIT)]
            assert await refused_status(w, "127.0.0.2") == 429
            assert http_status(w.port) == 200
            # Echo still works on the connections at the limit.
            await conns[-1].send("still")
            assert await conns[-1].recv() == "still"
            # A close makes room for exactly one.
            await conns.pop().close()
            await asyncio.sleep(0.2)
            conns.append(await connect(w))
            assert await refused_status(w) == 429
            # A reload raising the limit admits more at once, lowering it closes no one.
            with open(w.conf, "a") as f:
                f.write(f"max_connections_per_ip {LIMIT + 2}\n")
            w.signal(signal.SIGHUP)
            await asyncio.sleep(1.0)
            conns += [await connect(w) for _ in range(2)]
            assert await refused_status(w) == 429
            with open(w.conf, "a") as f:
                f.write("max_connections_per_ip 1\n")
            w.signal(signal.SIGHUP)
            await asyncio.sleep(1.0)
            for c in conns + other:
                await c.send("x")
                assert await c.recv() == "x"
            assert await refused_status(w, "127.0.0.2") == 429
            assert await refused_status(w, "127.0.0.3") == 101
            for c in conns + other:
                await c.close()
        run(go())
    finally:
        w.stop()
