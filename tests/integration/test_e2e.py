"""End-to-end encryption in the JavaScript client (client/wsd.js, wsd-protocol(7)
"End-to-end encryption"), run under Node with `ws` against the real server: members with
the key read the messages, the server and its store only ever hold ciphertext, and what
is moved, altered or sent under another name does not open."""
import json
import os
import secrets
import shutil
import subprocess

from test_browser import mint
from wsdproc import ROOT, Wsd

NODE_PATH = os.path.join(ROOT, "build", "peers", "node_modules")
SCRIPT = os.path.join(ROOT, "tests", "integration", "node", "e2e_client.js")
CONF = ("jwt_hs256_secret testsecret\naudit_log {dir}/audit.log\n"
        "offline_ttl 600\n")


def files_containing(root, needle):
    hits = []
    for d, _, names in os.walk(root):
        for n in names:
            p = os.path.join(d, n)
            try:
                with open(p, "rb") as f:
                    if needle in f.read():
                        hits.append(os.path.relpath(p, root))
            except OSError:
                pass
    return hits


def test_client_encrypts_end_to_end_and_the_server_never_holds_the_plaintext():
    assert shutil.which("node"), "node is required"
    assert os.path.isdir(os.path.join(NODE_PATH, "ws")), "npm ws missing in build/peers"
    secret = "TOP-SECRET-" + secrets.token_hex(8)
    rooms = ["room:*"]
    tokens = {u: mint({"sub": u, "join": rooms, "pub": rooms})
              for u in ("alice", "bob", "carol", "mallory")}
    w = Wsd(workers=2, extra="")
    with open(w.conf, "a") as f:
        f.write(CONF.format(dir=w.dir))
    w.start()
    try:
        p = subprocess.run(["node", SCRIPT, w.url, json.dumps(tokens), secret],
                           env=dict(os.environ, NODE_PATH=NODE_PATH), capture_output=True,
                           text=True, timeout=90)
        assert p.returncode == 0, p.stderr[-3000:]
        r = json.loads(p.stdout.strip().splitlines()[-1])
    finally:
        w.stop()

    # group members with the key (JSON and MessagePack) read every message, in order,
    # bytes included
    want = [{"text": secret, "n": i, "raw": {"bytes": [i, 255, 0]}} for i in range(20)]
    for who in ("bob", "carol"):
        got = r[who]
        assert [m["off"] for m in got] == r["group_offsets"], who
        assert all(m["e2e"] and m["from"] == "alice" for m in got), got[:2]
        assert [m["data"] for m in got] == want, (who, got[:2])
    # without the key: the sealed envelope only
    for m in r["mallory"]:
        assert m["encrypted"] and not m["e2e"], m
        assert set(m["data"]) == {"e2e", "iv", "ct"} and m["data"]["e2e"] == 1, m
        assert secret not in json.dumps(m)
    # a sealed message re-sent by another user, or altered, does not open; the next
    # genuine one does
    assert r["bob_errors"] == [{"code": "decrypt_failed", "from": "mallory", "ch": "room:e2e"}] * 2
    assert [m["data"] for m in r["bob_after_forgery"]] == [{"text": "after", "n": 20}]
    # passphrase keys: the same passphrase opens, another does not
    assert [m["data"] for m in r["pass_bob"]] == [{"text": secret + " by passphrase"}]
    assert r["pass_carol_errors"][-1:] == ["decrypt_failed"] and r["pass_carol_got"] == 0
    # direct messages under ECDH-derived keys, both ways, and from the offline queue
    assert [(m["ch"], m["from"], m["e2e"], m["data"]) for m in r["direct_bob"]] == \
        [("@", "alice", True, {"text": secret + " direct"})]
    assert [(m["from"], m["e2e"], m["data"]) for m in r["direct_alice"]] == \
        [("bob", True, {"text": "reply"})]
    offline = [m for m in r["offline_bob"] if "n" in m["data"]]
    assert [m["data"] for m in offline] == [{"text": secret, "n": i} for i in range(5)]
    assert all(m["e2e"] for m in offline)
    assert r["offline_again"] == []  # acknowledged after the handlers ran
    # the server's files (LMDB store, audit log, log) hold no plaintext; a message sent
    # without a key is there, so the search would have found it
    assert files_containing(w.dir, secret.encode()) == []
    plain = ("PLAIN-MARK-" + secret[::-1]).encode()
    assert files_containing(os.path.join(w.dir, "store"), plain) != []
