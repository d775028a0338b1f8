#!/usr/bin/python3
"""Reference echo server for the conformance suite (WSD_TARGET=ref), on websockets 10.4.

It serves what wsd serves for conformance testing: GET /echo upgrades and echoes every
message with its type (permessage-deflate on, messages up to 16 MiB), GET /healthz answers
"ok\\n", other paths 404, non-GET 405, a non-upgrade request to /echo 426, a wrong
Sec-WebSocket-Version 426 with "Sec-WebSocket-Version: 13", a missing or bad key 400.
An offer of server_max_window_bits=8 is declined (zlib cannot deflate with that window).

Usage: ref_echo_server.py --port PORT [--host 127.0.0.1]. SIGTERM or SIGINT stops it (exit 0).
"""

import argparse
import asyncio
import base64
import binascii
import http
import logging
import signal

import websockets
from websockets.exceptions import AbortHandshake, InvalidMessage, NegotiationError
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.legacy.server import WebSocketServerProtocol

MAX_MESSAGE = 16 * 1024 * 1024
ECHO_PATH = "/echo"


class DeflateFactory(ServerPerMessageDeflateFactory):
    """websockets' server side of permessage-deflate, declining server_max_window_bits=8."""

    def process_request_params(self, params, accepted_extensions):
        for name, value in params:
            if name == "server_max_window_bits" and value == "8":
                raise NegotiationError("server_max_window_bits=8 is not supported")
        return super().process_request_params(params, accepted_extensions)


def plain(status, body, headers=()):
    return (status, [("Content-Type", "text/plain"), ("Connection", "close")] + list(headers),
            body)


class EchoProtocol(WebSocketServerProtocol):
    """Echoes each message from the reading task itself, before the next frame is read, so
    the echo of a message always goes out before the close frame caused by a later bad
    frame (an echo from the handler task could lose that race)."""

    async def read_message(self):
        message = await super().read_message()
        if message is not None:
            await self.send(message)
        return message

    async def read_http_request(self):
        try:
            return await super().read_http_request()
        except InvalidMessage as exc:
            cause = exc.__cause__
            if isinstance(cause, ValueError) and "unsupported HTTP method" in str(cause):
                raise AbortHandshake(*plain(http.HTTPStatus.METHOD_NOT_ALLOWED,
                                            b"method not allowed\n", [("Allow", "GET")]))
            raise

    async def process_request(self, path, headers):
        path = path.split("?", 1)[0]
        if path == "/healthz":
            return plain(http.HTTPStatus.OK, b"ok\n")
        if path != ECHO_PATH:
            return plain(http.HTTPStatus.NOT_FOUND, b"not found\n")
        upgrade = [v.strip().lower() for v in ",".join(headers.get_all("Upgrade")).split(",")]
        if "websocket" not in upgrade:
            return plain(http.HTTPStatus.UPGRADE_REQUIRED, b"upgrade required\n",
                         [("Upgrade", "websocket")])
        if headers.get_all("Sec-WebSocket-Version") != ["13"]:
            return plain(http.HTTPStatus.UPGRADE_REQUIRED, b"unsupported version\n",
                         [("Sec-WebSocket-Version", "13")])
        keys = headers.get_all("Sec-WebSocket-Key")
        try:
            if len(keys) != 1 or len(base64.b64decode(keys[0], validate=True)) != 16:
                raise ValueError
        except (ValueError, binascii.Error):
            return plain(http.HTTPStatus.BAD_REQUEST, b"bad Sec-WebSocket-Key\n")
        return None


async def drain(ws, _path):
    try:
        async for _message in ws:
            pass  # already echoed by EchoProtocol.read_message
    except websockets.ConnectionClosed:
        pass


async def main(host, port):
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    async with websockets.serve(
            drain, host, port,
            create_protocol=EchoProtocol,
            extensions=[DeflateFactory(server_max_window_bits=12, client_max_window_bits=12,
                                       compress_settings={"memLevel": 5})],
            compression=None,
            max_size=MAX_MESSAGE,
            max_queue=None,
            ping_interval=None,
            close_timeout=1):
        await stop


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main(args.host, args.port))
