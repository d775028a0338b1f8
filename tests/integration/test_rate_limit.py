"""rate_limit / rate_burst: refused messages get rate_limited, persistent abuse closes 4008."""
import asyncio

from wsdclient import Client, Closed, run, tok
from wsdproc import Wsd

CONF = "jwt_hs256_secret testsecret\nrate_limit 1\nrate_burst 10\n"


def test_burst_then_rate_limited_then_recovers_after_refill():
    with Wsd(workers=2, extra=CONF) as w:
        async def go():
            c = await Client.login(w.url, tok("rl", join=["*"]))
            replies = []
            for i in range(14):
                await c.send({"op": "ping", "id": i})
            for _ in range(14):
                replies.append(await c.recv())
            kinds = [r.get("op") for r in replies]
            assert kinds.count("pong") == 10, replies
            refused = [r for r in replies if r.get("op") == "error"]
            assert len(refused) == 4 and all(r["code"] == "rate_limited" for r in refused)
            assert sorted(r["id"] for r in refused) == [10, 11, 12, 13]
            await asyncio.sleep(1.2)  # 1/s refills one token
            await c.send({"op": "ping", "id": 99})
            assert (await c.recv())["op"] == "pong"
            await c.close()
        run(go())


def test_client_that_keeps_sending_is_closed_with_4008():
    with Wsd(workers=1, extra=CONF) as w:
        async def go():
            c = await Client.login(w.url, tok("abuser"))
            other = await Client.login(w.url, tok("calm"))
            for i in range(40):
                try:
                    await c.send({"op": "ping", "id": i})
                except Closed:
                    break
            code = None
            try:
                while True:
                    await c.recv(timeout=5)
            except Closed as e:
                code = e.code
            assert code == 4008
            await other.send({"op": "ping", "id": 1})
            assert (await other.recv())["op"] == "pong"  # others are not affected
            await other.close()
        run(go())
