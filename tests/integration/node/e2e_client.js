// End-to-end encryption in client/wsd.js, under Node with `ws`: group keys (random and
// from a passphrase), direct messages with ECDH-derived keys, the offline queue, order,
// and what a client without the key, or one that re-sends a sealed message, gets.
// Usage: node e2e_client.js URL TOKENS_JSON SECRET. Prints one JSON object of results;
// the assertions are in test_e2e.py (and a few here, which exit non-zero).
'use strict';
const assert = require('node:assert');
const path = require('node:path');
const WebSocket = require('ws');
const Wsd = require(path.join(__dirname, '..', '..', '..', 'client', 'wsd.js'));

const [url, tokensJson, SECRET] = process.argv.slice(2);
const tokens = JSON.parse(tokensJson);
const out = {};

function client(user, opts) {
  const c = new Wsd.Client(url + '/ws', Object.assign({ token: tokens[user], WebSocket,
    backoff: { initial: 100, max: 200 } }, opts || {}));
  c.got = [];
  c.errors = [];
  c.on('message', (m) => c.got.push(m));
  c.on('error', (e) => c.errors.push(e));
  return c;
}

function opened(c) {
  if (c.state === 'open') return Promise.resolve();
  return new Promise((res) => { const off = c.on('welcome', () => { off(); res(); }); });
}

async function until(pred, what, ms = 10000) {
  const t0 = Date.now();
  while (!pred()) {
    if (Date.now() - t0 > ms) throw new Error('timeout waiting for ' + what);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function view(m) {
  const bytes = (k, v) => (v instanceof Uint8Array ? { bytes: Array.from(v) } : v);
  return { ch: m.ch, off: m.off, from: m.from, e2e: !!m.e2e, encrypted: !!m.encrypted,
    data: JSON.parse(JSON.stringify(m.data === undefined ? null : m.data, bytes)) };
}

async function groups() {
  const g = 'room:e2e';
  const alice = client('alice'), bob = client('bob'), carol = client('carol', { json: false });
  const mallory = client('mallory');
  const key = Wsd.e2e.randomKey();
  // the key as bytes, and as base64url (how an application would pass it around)
  await Promise.all([alice.setKey(g, key), bob.setKey(g, key),
    carol.setKey(g, Buffer.from(key).toString('base64url'))]);
  await Promise.all([alice, bob, carol, mallory].map((c) => c.join(g)));
  // sealed publishes, some with binary inside (JSON cannot carry bytes, the ciphertext can)
  const replies = [];
  for (let i = 0; i < 20; i++)
    replies.push(alice.publish(g, { text: SECRET, n: i, raw: new Uint8Array([i, 255, 0]) }));
  const offs = (await Promise.all(replies)).map((r) => r.offset);
  await until(() => bob.got.length >= 20 && carol.got.length >= 20 && mallory.got.length >= 20,
    'the group messages');
  out.group_offsets = offs;
  out.bob = bob.got.map(view);
  out.carol = carol.got.map(view);
  out.mallory = mallory.got.map(view);
  // mallory re-publishes a sealed message verbatim: bound to alice, it does not open
  const sealed = mallory.got[0].data;
  await mallory.publish(g, sealed);
  // and one with the ciphertext altered, under a key she does not have
  const altered = Object.assign({}, sealed, { ct: (sealed.ct[0] === 'A' ? 'B' : 'A') + sealed.ct.slice(1) });
  await mallory.publish(g, altered);
  await alice.publish(g, { text: 'after', n: 20 });
  await until(() => bob.got.length >= 21 && bob.errors.length >= 2, 'the forged messages');
  out.bob_after_forgery = bob.got.slice(20).map(view);
  out.bob_errors = bob.errors.map((e) => ({ code: e.code, from: e.from, ch: e.ch }));
  // a passphrase key: the same passphrase opens, another does not
  const pg = 'room:pass';
  const [k1, k2, k3] = await Promise.all([
    Wsd.e2e.keyFromPassphrase('correct horse battery', pg, 1000),
    Wsd.e2e.keyFromPassphrase('correct horse battery', pg, 1000),
    Wsd.e2e.keyFromPassphrase('wrong horse battery', pg, 1000)]);
  await Promise.all([alice.setKey(pg, k1), bob.setKey(pg, k2), carol.setKey(pg, k3)]);
  await Promise.all([bob.join(pg), carol.join(pg)]);
  await alice.publish(pg, { text: SECRET + ' by passphrase' });
  await until(() => bob.got.some((m) => m.ch === pg) && carol.errors.length >= 1, 'passphrase');
  out.pass_bob = bob.got.filter((m) => m.ch === pg).map(view);
  out.pass_carol_errors = carol.errors.map((e) => e.code);
  out.pass_carol_got = carol.got.filter((m) => m.ch === pg).length;
  // a plain message on a group without a key, to show the search in the store works
  await alice.join('room:plain');
  await alice.publish('room:plain', { text: 'PLAIN-MARK-' + SECRET.split('').reverse().join('') });
  for (const c of [alice, bob, carol, mallory]) c.close();
}

async function direct() {
  const alice = client('alice'), bob = client('bob');
  const [ka, kb] = await Promise.all([Wsd.e2e.generateKeyPair(), Wsd.e2e.generateKeyPair()]);
  assert.match(ka.publicKey, /^[A-Za-z0-9_-]{87}$/); // 65 bytes, uncompressed P-256 point
  const ctx = ['alice', 'bob'].sort().join(' ');
  await alice.setKey('@bob', await Wsd.e2e.deriveKey(ka.privateKey, kb.publicKey, ctx));
  await bob.setKey('@alice', await Wsd.e2e.deriveKey(kb.privateKey, ka.publicKey, ctx));
  await Promise.all([opened(alice), opened(bob)]);
  await alice.send('bob', { text: SECRET + ' direct' });
  await bob.send('alice', { text: 'reply' });
  await until(() => bob.got.length >= 1 && alice.got.length >= 1, 'the direct messages');
  out.direct_bob = bob.got.map(view);
  out.direct_alice = alice.got.map(view);
  // bob goes away; alice's sealed sends wait in the offline queue
  bob.close();
  await sleep(200);
  for (let i = 0; i < 5; i++) await alice.send('bob', { text: SECRET, n: i });
  const bob2 = client('bob');
  await bob2.setKey('@alice', await Wsd.e2e.deriveKey(kb.privateKey, ka.publicKey, ctx));
  await until(() => bob2.got.filter((m) => m.data && m.data.n !== undefined).length >= 5,
    'the offline queue');
  await sleep(300); // the acknowledgement goes out
  out.offline_bob = bob2.got.map(view);
  bob2.close();
  await sleep(200);
  const bob3 = client('bob'); // acknowledged: nothing comes back
  await bob3.setKey('@alice', await Wsd.e2e.deriveKey(kb.privateKey, ka.publicKey, ctx));
  await opened(bob3);
  await sleep(500);
  out.offline_again = bob3.got.map(view);
  bob3.close();
  alice.close();
}

(async () => {
  await groups();
  await direct();
  console.log(JSON.stringify(out));
  process.exit(0);
})().catch((e) => {
  console.error(e && e.stack || e);
  process.exit(1);
});
