"""Core server against Node `ws` (installed into build/peers by tools/run-integration)."""
import os
import shutil
import subprocess

import pytest

from wsdproc import ROOT, Wsd

NODE_PATH = os.path.join(ROOT, "build", "peers", "node_modules")


@pytest.mark.parametrize("workers", [2, 4])
def test_node_ws_echo_suite(workers):
    assert shutil.which("node"), "node is required"
    assert os.path.isdir(os.path.join(NODE_PATH, "ws")), "npm ws missing in build/peers"
    with Wsd(workers=workers) as w:
        env = dict(os.environ, NODE_PATH=NODE_PATH)
        p = subprocess.run(["node", os.path.join(ROOT, "tests/integration/node/echo_client.js"),
                            w.url + "/echo"], capture_output=True, text=True, env=env,
                           timeout=120)
        assert p.returncode == 0, p.stdout + p.stderr
        assert "all ok" in p.stdout
