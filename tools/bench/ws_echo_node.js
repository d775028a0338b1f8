#!/usr/bin/env node
/*
 * ws_echo_node.js - the Node `ws` peer for side-by-side benchmarks with wsd.
 *
 *   node ws_echo_node.js [--port 8090] [--host 127.0.0.1] [--tls-cert F --tls-key F]
 *   (NODE_PATH must reach the `ws` package, e.g. npm install --prefix DIR ws)
 *
 * Paths:
 *   /echo  echoes every message with its frame type (text stays text, binary binary)
 *   other  a minimal messaging endpoint with wsd's envelope shapes, enough for
 *          `wsbench fanout` and `wsbench direct`:
 *            connect           -> {"op":"welcome","conn":N,"user":U}
 *                                 U is the "sub" of the token (Authorization: Bearer T
 *                                 or ?token=T; read, not verified) or ?user=U, else ""
 *            join {group}      -> reply {"op":"reply","ok":true,"group":G,"offset":N}
 *            leave {group}     -> reply
 *            publish {group,data}
 *                              -> {"op":"msg","ch":G,"off":N,"from":U,"ts":MS,"data":D}
 *                                 to every other member (encoded once), then
 *                                 reply {"op":"reply","ok":true,"offset":N}
 *            send {user,data}  -> {"op":"msg","ch":"@",...} to the user's connections,
 *                                 reply {"op":"reply","ok":true,"offset":N,"delivered":K}
 *            ack, ping         -> reply, {"op":"pong"}
 *          "id" is echoed in replies; anything else gets {"op":"error",...}.
 * Prints "ready PORT PID" on stdout once listening; exits on TERM or INT.
 */
'use strict';

const fs = require('fs');
const http = require('http');
const https = require('https');
const { WebSocketServer } = require('ws');

function arg(name, dflt) {
    const i = process.argv.indexOf(name);
    return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}

const port = parseInt(arg('--port', '8090'), 10);
const host = arg('--host', '127.0.0.1');

const groups = new Map(); /* group -> { members: Set<ws>, offset } */
const users = new Map();  /* user -> { conns: Set<ws>, offset } */
let nextConn = 1;

function tokenSub(token) {
    try {
        const part = token.split('.')[1];
        const claims = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
        return typeof claims.sub === 'string' ? claims.sub : '';
    } catch (e) {
        return '';
    }
}

function userOf(req, url) {
    const auth = req.headers.authorization || '';
    if (auth.startsWith('Bearer '))
        return tokenSub(auth.slice(7));
    if (url.searchParams.has('token'))
        return tokenSub(url.searchParams.get('token'));
    return url.searchParams.get('user') || '';
}

function reply(ws, msg, extra) {
    const out = Object.assign({ op: 'reply' }, msg.id !== undefined ? { id: msg.id } : {},
        { ok: true }, extra || {});
    ws.send(JSON.stringify(out));
}

function error(ws, msg, code, text) {
    const out = { op: 'error' };
    if (msg && msg.id !== undefined)
        out.id = msg.id;
    out.code = code;
    out.message = text;
    ws.send(JSON.stringify(out));
}

function publish(ws, msg) {
    if (typeof msg.group !== 'string' || msg.data === undefined)
        return error(ws, msg, 'missing_field', 'group and data are required');
    let g = groups.get(msg.group);
    if (!g) {
        g = { members: new Set(), offset: 0 };
        groups.set(msg.group, g);
    }
    const off = ++g.offset;
    const frame = JSON.stringify({ op: 'msg', ch: msg.group, off, from: ws.user, ts: Date.now(),
        data: msg.data });
    for (const m of g.members)
        if (m !== ws && m.readyState === 1)
            m.send(frame);
    reply(ws, msg, { offset: off, duplicate: false });
}

function send(ws, msg) {
    if (typeof msg.user !== 'string' || msg.data === undefined)
        return error(ws, msg, 'missing_field', 'user and data are required');
    let u = users.get(msg.user);
    if (!u) {
        u = { conns: new Set(), offset: 0 };
        users.set(msg.user, u);
    }
    const off = ++u.offset;
    const frame = JSON.stringify({ op: 'msg', ch: '@', off, from: ws.user, ts: Date.now(),
        data: msg.data });
    let delivered = 0;
    for (const c of u.conns) {
        if (c.readyState === 1) {
            c.send(frame);
            delivered++;
        }
    }
    reply(ws, msg, { offset: off, delivered, stored: false, duplicate: false });
}

function join(ws, msg) {
    if (typeof msg.group !== 'string')
        return error(ws, msg, 'missing_field', 'group is required');
    let g = groups.get(msg.group);
    if (!g) {
        g = { members: new Set(), offset: 0 };
        groups.set(msg.group, g);
    }
    g.members.add(ws);
    ws.groups.add(msg.group);
    reply(ws, msg, { group: msg.group, offset: g.offset, epoch: 'node' });
}

function leave(ws, msg) {
    const g = groups.get(msg.group);
    if (!g || !g.members.delete(ws))
        return error(ws, msg, 'not_member', 'not a member');
    ws.groups.delete(msg.group);
    reply(ws, msg);
}

function onEnvelope(ws, data, isBinary) {
    let msg;
    try {
        msg = JSON.parse(isBinary ? data.toString('utf8') : data);
    } catch (e) {
        return error(ws, null, 'bad_json', 'not JSON');
    }
    if (msg === null || typeof msg !== 'object' || Array.isArray(msg))
        return error(ws, null, 'bad_envelope', 'not an object');
    switch (msg.op) {
    case 'publish': return publish(ws, msg);
    case 'send': return send(ws, msg);
    case 'join': return join(ws, msg);
    case 'leave': return leave(ws, msg);
    case 'ack': return reply(ws, msg);
    case 'ping':
        return ws.send(JSON.stringify(msg.id !== undefined ? { op: 'pong', id: msg.id }
                                                           : { op: 'pong' }));
    default: return error(ws, msg, 'unknown_op', 'unknown op');
    }
}

function onMessaging(ws, req, url) {
    ws.user = userOf(req, url);
    ws.groups = new Set();
    let u = users.get(ws.user);
    if (!u) {
        u = { conns: new Set(), offset: 0 };
        users.set(ws.user, u);
    }
    u.conns.add(ws);
    ws.on('message', (data, isBinary) => onEnvelope(ws, data, isBinary));
    ws.on('close', () => {
        for (const name of ws.groups) {
            const g = groups.get(name);
            if (g)
                g.members.delete(ws);
        }
        u.conns.delete(ws);
    });
    ws.send(JSON.stringify({ op: 'welcome', conn: nextConn++, user: ws.user, session: '',
        heartbeat: 30, resumed: false }));
}

function onRequest(req, res) {
    res.writeHead(req.url === '/healthz' ? 200 : 404, { 'Content-Type': 'text/plain' });
    res.end(req.url === '/healthz' ? 'ok\n' : 'not found\n');
}

/* --tls-cert FILE --tls-key FILE: the same server over TLS (wss://). */
const tlsCert = arg('--tls-cert', '');
const server = tlsCert
    ? https.createServer({ cert: fs.readFileSync(tlsCert),
        key: fs.readFileSync(arg('--tls-key', '')) }, onRequest)
    : http.createServer(onRequest);
const wss = new WebSocketServer({ server, perMessageDeflate: false, maxPayload: 64 << 20 });

wss.on('connection', (ws, req) => {
    const url = new URL(req.url, 'http://localhost');
    ws.on('error', () => {});
    if (url.pathname === '/echo')
        ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    else
        onMessaging(ws, req, url);
});

server.listen(port, host, 4096, () => {
    process.stdout.write(`ready ${port} ${process.pid}\n`);
});

for (const sig of ['SIGTERM', 'SIGINT'])
    process.on(sig, () => process.exit(0));
