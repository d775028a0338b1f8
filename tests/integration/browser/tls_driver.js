/*
 * tls_driver.js - headless Chromium against wsd's TLS listener.
 *
 *   node tls_driver.js PARAMS_JSON
 *
 * PARAMS_JSON: {"port": N, "tokens": {"alice": T, "bob": T}}, port being the tls_listen
 * port (a self-signed certificate: the browser is told to accept it). Loads
 * https://127.0.0.1:PORT/healthz, adds /wsd.js (served over TLS), then in the page: a
 * raw WebSocket echo over wss:// (text and binary, up to 1 MiB), and two Wsd.Client
 * instances on wss:// where bob receives what alice publishes. Prints one line
 * "RESULT <json>"; "CHROMIUM_UNAVAILABLE <reason>" when the browser cannot start.
 */
'use strict';
const browser = require('./browser');

const params = JSON.parse(process.argv[2]);
const base = `https://127.0.0.1:${params.port}`;

async function steps(page, result) {
    const resp = await page.goto(`${base}/healthz`);
    result.health = {status: resp.status(), body: await resp.text()};
    await page.addScriptTag({url: '/wsd.js'});
    result.echo = await page.evaluate(async (port) => {
        const ws = new WebSocket(`wss://127.0.0.1:${port}/echo`);
        ws.binaryType = 'arraybuffer';
        await new Promise((ok, fail) => { ws.onopen = ok; ws.onerror = fail; });
        const next = () => new Promise((ok) => { ws.onmessage = (e) => ok(e.data); });
        const out = {};
        const big = 'é'.repeat(1 << 19); /* 1 MiB of UTF-8 */
        ws.send(big);
        out.text = (await next()) === big;
        const bin = new Uint8Array(300000).map((_, i) => (i * 7) & 255);
        ws.send(bin);
        const back = new Uint8Array(await next());
        out.binary = back.length === bin.length && back.every((v, i) => v === bin[i]);
        const closed = new Promise((ok) => { ws.onclose = (e) => ok(e.code); });
        ws.close(1000);
        out.closeCode = await closed;
        return out;
    }, params.port);
    result.messaging = await page.evaluate(async (p) => {
        const url = `wss://127.0.0.1:${p.port}/ws`;
        const alice = new Wsd.Client(url, {token: p.tokens.alice});
        const bob = new Wsd.Client(url, {token: p.tokens.bob});
        const got = [];
        bob.on('message', (m) => got.push({ch: m.ch, from: m.from, data: m.data}));
        const welcome = (c) => new Promise((ok) => c.on('welcome', ok));
        const [wa, wb] = await Promise.all([welcome(alice), welcome(bob)]);
        await bob.join('room:tls');
        const reply = await alice.publish('room:tls', {over: 'tls'});
        const t0 = Date.now();
        while (got.length < 1 && Date.now() - t0 < 5000)
            await new Promise((ok) => setTimeout(ok, 10));
        alice.close();
        bob.close();
        return {users: [wa.user, wb.user], offset: reply.offset, got};
    }, {port: params.port, tokens: params.tokens});
}

async function main() {
    await browser.run({ignoreHTTPSErrors: true, args: ['--ignore-certificate-errors']}, steps);
}

main().catch((e) => {
    console.log('RESULT ' + JSON.stringify({error: String(e.stack || e)}));
});
