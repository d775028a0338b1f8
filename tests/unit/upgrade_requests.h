/*
 * upgrade_requests.h - upgrade requests captured from real clients (Chromium 156,
 * Python websockets 10.4) and Firefox 128's documented shape, shared by the HTTP parser
 * and handshake tests.
 */
#ifndef WSD_TESTS_UNIT_UPGRADE_REQUESTS_H
#define WSD_TESTS_UNIT_UPGRADE_REQUESTS_H

/* A real Chromium 156 upgrade (captured). */
static const char chrome_upgrade[] =
    "GET /ws?token=eyJhbGciOiJIUzI1NiJ9.e30.abc-_x HTTP/1.1\r\n"
    "Host: 127.0.0.1:18780\r\n"
    "Connection: Upgrade\r\n"
    "Pragma: no-cache\r\n"
    "Cache-Control: no-cache\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/156.0.0.0 Safari/537.36\r\n"
    "Upgrade: websocket\r\n"
    "Origin: http://127.0.0.1:18780\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "Accept-Encoding: gzip, deflate, br, zstd\r\n"
    "Accept-Language: en-US,en;q=0.9\r\n"
    "Sec-WebSocket-Key: 3w1PBoBJpxOpBdSISuiVZg==\r\n"
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    "Sec-WebSocket-Protocol: wsd.v1.msgpack, wsd.v1.json\r\n"
    "\r\n";

/* Firefox 128's shape: Connection is a list, the offer has no parameters. */
static const char firefox_upgrade[] =
    "GET /ws HTTP/1.1\r\n"
    "Host: localhost:8080\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n"
    "Accept: */*\r\n"
    "Accept-Language: en-US,en;q=0.5\r\n"
    "Accept-Encoding: gzip, deflate, br, zstd\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "Origin: http://localhost:8080\r\n"
    "Sec-WebSocket-Protocol: wsd.v1.json\r\n"
    "Sec-WebSocket-Extensions: permessage-deflate\r\n"
    "Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n"
    "Connection: keep-alive, Upgrade\r\n"
    "Sec-Fetch-Dest: empty\r\n"
    "Sec-Fetch-Mode: websocket\r\n"
    "Sec-Fetch-Site: same-origin\r\n"
    "Pragma: no-cache\r\n"
    "Cache-Control: no-cache\r\n"
    "Upgrade: websocket\r\n"
    "\r\n";

/* Python websockets 10.4 (captured). */
static const char python_upgrade[] =
    "GET /ws?token=abc HTTP/1.1\r\n"
    "Host: 127.0.0.1:35169\r\n"
    "Origin: http://localhost:8080\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Key: /ScwQQ3iGgB+kZpgmP48qw==\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    "Sec-WebSocket-Protocol: wsd.v1.json\r\n"
    "User-Agent: Python/3.11 websockets/10.4\r\n"
    "\r\n";

#endif
