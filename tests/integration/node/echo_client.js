// Drives wsd's /echo endpoint with Node `ws`: echo up to 16 MiB, fragmented sends,
// compression on and off, ping/pong, close codes. Prints one line per check and exits
// non-zero on the first failure.
'use strict';
const assert = require('node:assert');
const crypto = require('node:crypto');
const WebSocket = require('ws');

const url = process.argv[2];
const MiB = 1024 * 1024;

function open(deflate) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: deflate, maxPayload: 32 * MiB });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

function next(ws) {
  return new Promise((resolve, reject) => {
    ws.once('message', (data, isBinary) => resolve({ data, isBinary }));
    ws.once('error', reject);
  });
}

async function echoSizes(deflate) {
  const ws = await open(deflate);
  assert.strictEqual(Boolean(ws.extensions), Boolean(deflate));
  for (const size of [0, 1, 125, 126, 65535, 65536, MiB, 16 * MiB - 64 * 1024]) {
    const text = 'x'.repeat(size);
    const t = next(ws);
    ws.send(text);
    const r = await t;
    assert.strictEqual(r.isBinary, false);
    assert.strictEqual(r.data.toString(), text);
    const bin = crypto.randomBytes(size);
    const b = next(ws);
    ws.send(bin);
    const rb = await b;
    assert.strictEqual(rb.isBinary, true);
    assert.ok(Buffer.compare(rb.data, bin) === 0, 'binary echo of ' + size);
  }
  ws.close(1000);
  console.log('ok echo sizes deflate=' + deflate);
}

async function fragmented() {
  const ws = await open(false);
  const r = next(ws);
  ws.send('part1-', { fin: false });
  ws.send('part2-', { fin: false });
  ws.send('part3', { fin: true });
  assert.strictEqual((await r).data.toString(), 'part1-part2-part3');
  ws.close();
  console.log('ok fragmented');
}

async function pingPong() {
  const ws = await open(false);
  const pong = new Promise((resolve) => ws.once('pong', resolve));
  ws.ping(Buffer.from('abc'));
  assert.strictEqual((await pong).toString(), 'abc');
  ws.close();
  console.log('ok ping/pong');
}

async function closeCode(code) {
  const ws = await open(false);
  const closed = new Promise((resolve) => ws.once('close', (c, reason) => resolve([c, reason])));
  ws.close(code, 'done');
  const [c] = await closed;
  assert.strictEqual(c, code);
  console.log('ok close ' + code);
}

async function invalidUtf8Closes1007() {
  const ws = await open(false);
  const closed = new Promise((resolve) => ws.once('close', (c) => resolve(c)));
  ws.on('error', () => {});
  // ws validates outgoing text only as a string; send raw invalid bytes as a text frame.
  ws.send(Buffer.from([0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xed, 0xa0, 0x80]), { binary: false });
  assert.strictEqual(await closed, 1007);
  console.log('ok invalid utf-8 -> 1007');
}

async function concurrent() {
  const socks = await Promise.all(Array.from({ length: 200 }, () => open(false)));
  const replies = socks.map((ws, i) => { const p = next(ws); ws.send('c' + i); return p; });
  const got = await Promise.all(replies);
  got.forEach((r, i) => assert.strictEqual(r.data.toString(), 'c' + i));
  socks.forEach((ws) => ws.close());
  console.log('ok 200 concurrent');
}

(async () => {
  await echoSizes(false);
  await echoSizes(true);
  await fragmented();
  await pingPong();
  for (const code of [1000, 1001, 3000, 4999]) await closeCode(code);
  await invalidUtf8Closes1007();
  await concurrent();
  console.log('all ok');
})().catch((err) => { console.error('FAIL', err); process.exit(1); });
