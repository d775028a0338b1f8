"""Allocation failures: under ASan with allocator_may_return_null and a 4 MiB cap on a
single allocation, the messages that need more memory than that fail. The connection
that needed it is closed with 1011, every other one goes on, and nothing leaks
(LeakSanitizer runs when the workers exit)."""
import asyncio
import json
import subprocess

import pytest
import websockets

from wsdproc import WSD_BIN, Wsd

ASAN = {"ASAN_OPTIONS": "allocator_may_return_null=1:max_allocation_size_mb=4:"
                        "detect_leaks=1:abort_on_error=0"}
FAILED_ALLOC = "AddressSanitizer failed to allocate"


def asan_build():
    """True when WSD_BIN is built with ASan (it then imports the __asan_* functions)."""
    nm = subprocess.run(["nm", "-D", WSD_BIN], capture_output=True, text=True)
    return "__asan_" in nm.stdout


async def closed_code(ws, *messages):
    try:
        for m in messages:
            await ws.send(m)
        await ws.recv()
    except websockets.ConnectionClosed as e:
        return e.rcvd.code if e.rcvd else None, e.rcvd.reason if e.rcvd else None
    return None


def test_a_message_that_cannot_be_allocated_closes_only_its_connection_1011():
    if not asan_build():
        pytest.skip("needs the ASan build (build/san/wsd) for the allocation cap")
    w = Wsd(workers=1, env=ASAN, extra="max_message_size 16m\nmax_data_size 16m\n"
                                        "anonymous on\npublic_groups pub:*\n")
    w.start()
    try:
        async def go():
            bystander = await websockets.connect(w.url + "/echo", compression=None)
            member = await websockets.connect(w.url + "/ws", compression=None)
            assert json.loads(await member.recv())["op"] == "welcome"
            await member.send(json.dumps({"op": "join", "id": 1, "group": "pub:oom"}))
            assert json.loads(await member.recv())["ok"] is True
            opts = dict(max_size=None, compression=None)
            # 6 MiB in six fragments, one unfragmented frame of 6 MiB, and a 6 MiB
            # publish: each needs one buffer over the cap.
            a = await websockets.connect(w.url + "/echo", **opts)
            assert await closed_code(a, ["f" * (1 << 20) for _ in range(6)]) == \
                (1011, "out of memory")
            b = await websockets.connect(w.url + "/echo", **opts)
            assert await closed_code(b, "u" * (6 << 20)) == (1011, "out of memory")
            c = await websockets.connect(w.url + "/ws", **opts)
            await c.recv()
            big = json.dumps({"op": "publish", "id": 2, "group": "pub:oom",
                              "data": "d" * (6 << 20)})
            assert await closed_code(c, big) == (1011, "out of memory")
            # Everyone else goes on, with messages that fit.
            await bystander.send("x" * 100000)
            assert await bystander.recv() == "x" * 100000
            await member.send(json.dumps({"op": "ping", "id": 3}))
            r = json.loads(await member.recv())
            assert r["op"] == "pong", r
            await bystander.close()
            await member.close()
        asyncio.run(asyncio.wait_for(go(), 60))
    finally:
        w.stop(allow=(FAILED_ALLOC,))
    assert w.read_log().count(FAILED_ALLOC) >= 3  # the cap did bite, three times
