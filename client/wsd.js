/*
 * wsd.js - browser client for the wsd messaging protocol (wsd-protocol(7)).
 *
 * Dependency-free ES2017. Loaded with a classic <script src="/wsd.js"> it defines
 * window.Wsd; under CommonJS it is module.exports (pass options.WebSocket where there
 * is no global WebSocket, e.g. require('ws') on Node 20).
 *
 *   const c = new Wsd.Client('wss://example.com/ws', {
 *       token: jwt,                       // or none: anonymous (if the server allows it)
 *       getToken: async () => fetchJwt(), // asked again after 4001/4003 and token_expired
 *       json: true,                       // false: MessagePack (binary frames)
 *       backoff: {initial: 1000, max: 30000, jitter: 0.2},
 *       autoAck: true,                    // false: the application calls c.ack(offset)
 *       heartbeat: true,                  // ping op when idle; drop a silent link
 *       session: saved, since: savedPositions, // from c.session and c.positions()
 *   });
 *   c.on('message', (m) => render(m.ch, m.from, m.data));
 *   await c.join('room:1');
 *   await c.publish('room:1', {text: 'hi'});
 *
 * What it does for the application:
 * - requests (join, leave, publish, send, broadcast, presence, ping) return Promises
 *   resolved with the server's reply (matched by id) or rejected with its error envelope;
 *   requests made while disconnected are queued and sent after the next welcome;
 * - personal messages (ch "@") are acknowledged (cumulatively) after every 'message'
 *   handler has returned, or after the Promise it returned has settled;
 * - each channel's messages are de-duplicated by offset (an offset at or below the last
 *   one seen is dropped), and a publish or send keeps its mid across retries, so the
 *   server's idempotency drops a repeat;
 * - after an abnormal close it reconnects with exponential backoff (1 s, 2 s, 4 s, ...
 *   up to max, each delay shortened by up to `jitter` of itself) and resumes: the auth
 *   carries the last session and the position of every channel; when the welcome says
 *   resumed: false, every group is joined again with `since`, so the missed messages
 *   are replayed. No reconnect after close(), 1008, 4009 or 4011; after 4001 and 4003
 *   only when getToken gives a new token;
 * - end-to-end encryption when the application gives a key with c.setKey(group or
 *   '@user', key): publishes and sends are sealed (AES-256-GCM in WebCrypto, bound to
 *   channel, sender and recipient) and what arrives from there is opened, in order;
 *   Wsd.e2e makes keys (randomKey, keyFromPassphrase, generateKeyPair, deriveKey).
 *   Format: wsd-protocol(7), "End-to-end encryption".
 *
 * Events (c.on(name, fn) returns a function that removes fn):
 *   'welcome' (welcome)   each login;   'message' (msg)   each new message;
 *   'joined' (reply)      each join reply, also of automatic re-joins (see recovered);
 *   'error' (err)         errors no request owns, exceptions of handlers, and
 *                         {code: 'decrypt_failed', ch, off, from} for a sealed message
 *                         that does not open;
 *   'state' (state, info) 'connecting' 'authenticating' 'open' 'reconnecting' 'closed';
 *   'close' (info)        every closed socket: {code, reason, reconnect}.
 * Tests may close c._ws to simulate a dropped connection.
 */
(function (root, factory) {
    var Wsd = factory();
    if (typeof module === 'object' && module.exports)
        module.exports = Wsd;
    else
        root.Wsd = Wsd;
})(typeof self !== 'undefined' ? self : this, function () {
    'use strict';

    var NO_RECONNECT = {1008: 1, 4009: 1, 4011: 1};
    var NEED_TOKEN = {4001: 1, 4003: 1};
    var OWN_MIDS_KEPT = 1000;

    /* ---- MessagePack (the subset the protocol uses; ext is refused) ---- */

    var utf8enc = new TextEncoder(), utf8dec = new TextDecoder('utf-8', {fatal: true});

    function mpEncode(value) {
        var out = [];
        function u(n, bytes) {
            for (var i = bytes - 1; i >= 0; i--) out.push(Math.floor(n / Math.pow(2, 8 * i)) & 255);
        }
        function head(len, fix, fixMax, c8, c16, c32) {
            if (fix !== null && len <= fixMax) out.push(fix | len);
            else if (c8 !== null && len < 256) { out.push(c8); u(len, 1); }
            else if (len < 65536) { out.push(c16); u(len, 2); }
            else { out.push(c32); u(len, 4); }
        }
        function enc(v) {
            if (v === null || v === undefined) out.push(0xc0);
            else if (v === true || v === false) out.push(v ? 0xc3 : 0xc2);
            else if (typeof v === 'number' && Number.isSafeInteger(v)) {
                if (v >= 0 && v < 128) out.push(v);
                else if (v < 0 && v >= -32) out.push(v & 255);
                else if (v >= 0) { out.push(0xcf); u(v, 8); }
                else { out.push(0xd3); var hi = Math.floor(v / 4294967296);
                    u(hi >>> 0, 4); u((v - hi * 4294967296) >>> 0, 4); }
            } else if (typeof v === 'number') {
                var f = new DataView(new ArrayBuffer(8)); f.setFloat64(0, v);
                out.push(0xcb); for (var i = 0; i < 8; i++) out.push(f.getUint8(i));
            } else if (typeof v === 'string') {
                var s = utf8enc.encode(v); head(s.length, 0xa0, 31, 0xd9, 0xda, 0xdb);
                for (var j = 0; j < s.length; j++) out.push(s[j]);
            } else if (v instanceof ArrayBuffer || ArrayBuffer.isView(v)) {
                var b = v instanceof ArrayBuffer ? new Uint8Array(v)
                    : new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
                head(b.length, null, 0, 0xc4, 0xc5, 0xc6);
                for (var k = 0; k < b.length; k++) out.push(b[k]);
            } else if (Array.isArray(v)) {
                head(v.length, 0x90, 15, null, 0xdc, 0xdd); v.forEach(enc);
            } else {
                var keys = Object.keys(v).filter(function (key) { return v[key] !== undefined; });
                head(keys.length, 0x80, 15, null, 0xde, 0xdf);
                keys.forEach(function (key) { enc(key); enc(v[key]); });
            }
        }
        enc(value);
        return new Uint8Array(out);
    }

    function mpDecode(buf) {
        var b = new Uint8Array(buf), dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
        var pos = 0;
        function take(n) {
            if (pos + n > b.length) throw new Error('truncated MessagePack');
            pos += n; return pos - n;
        }
        function uint(n) {
            var v = 0, at = take(n);
            for (var i = 0; i < n; i++) v = v * 256 + b[at + i];
            return v;
        }
        function str(n) { var at = take(n); return utf8dec.decode(b.subarray(at, at + n)); }
        function arr(n) { var a = []; for (var i = 0; i < n; i++) a.push(dec()); return a; }
        function map(n) {
            var o = {};
            for (var i = 0; i < n; i++) {
                var k = dec();
                Object.defineProperty(o, k, {value: dec(), enumerable: true, writable: true,
                    configurable: true}); /* also a "__proto__" key, as JSON.parse does */
            }
            return o;
        }
        function dec() {
            var c = b[take(1)];
            if (c < 0x80) return c;
            if (c >= 0xe0) return c - 256;
            if (c < 0x90) return map(c & 15);
            if (c < 0xa0) return arr(c & 15);
            if (c < 0xc0) return str(c & 31);
            switch (c) {
            case 0xc0: return null;
            case 0xc2: return false;
            case 0xc3: return true;
            case 0xc4: case 0xc5: case 0xc6:
                var n = uint(1 << (c - 0xc4)), at = take(n);
                return b.slice(at, at + n);
            case 0xca: return dv.getFloat32(take(4));
            case 0xcb: return dv.getFloat64(take(8));
            case 0xcc: case 0xcd: case 0xce: case 0xcf: return uint(1 << (c - 0xcc));
            case 0xd0: return dv.getInt8(take(1));
            case 0xd1: return dv.getInt16(take(2));
            case 0xd2: return dv.getInt32(take(4));
            case 0xd3: var hi = dv.getInt32(take(4)); return hi * 4294967296 + uint(4);
            case 0xd9: case 0xda: case 0xdb: return str(uint(1 << (c - 0xd9)));
            case 0xdc: case 0xdd: return arr(uint(c === 0xdc ? 2 : 4));
            case 0xde: case 0xdf: return map(uint(c === 0xde ? 2 : 4));
            }
            throw new Error('unsupported MessagePack type 0x' + c.toString(16));
        }
        var v = dec();
        if (pos !== b.length) throw new Error('trailing bytes after MessagePack value');
        return v;
    }

    /* ---- helpers ---- */

    function randomHex(bytes) {
        var a = new Uint8Array(bytes), s = '';
        if (typeof crypto !== 'undefined' && crypto.getRandomValues) crypto.getRandomValues(a);
        else for (var i = 0; i < bytes; i++) a[i] = Math.floor(Math.random() * 256);
        for (var j = 0; j < bytes; j++) s += (a[j] < 16 ? '0' : '') + a[j].toString(16);
        return s;
    }

    /* True when the JWT's exp claim has passed (false when it cannot tell). */
    function tokenExpired(token) {
        try {
            var p = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
            var claims = JSON.parse(atob(p + '==='.slice((p.length + 3) % 4)));
            return typeof claims.exp === 'number' && claims.exp * 1000 <= Date.now();
        } catch (e) {
            return false;
        }
    }

    function position(since) {
        if (since === undefined || since === null) return null;
        if (typeof since === 'number') return {offset: since, epoch: null};
        return {offset: since.offset, epoch: since.epoch || null};
    }

    function localError(code, message) {
        return {op: 'error', code: code, message: message};
    }

    /* ---- end-to-end encryption: AES-256-GCM in WebCrypto; the server relays ciphertext ---- */

    var E2E_TAG = 'wsd-e2e/1';

    function subtle() {
        if (typeof crypto === 'undefined' || !crypto.subtle)
            throw new Error('end-to-end encryption needs WebCrypto (https:// or localhost)');
        return crypto.subtle;
    }

    function b64uEncode(bytes) {
        var s = '';
        for (var i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
        return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
    }

    function b64uDecode(text) {
        if (typeof text !== 'string' || !/^[A-Za-z0-9_-]*$/.test(text))
            throw new Error('not base64url');
        var s = atob(text.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((text.length + 3) % 4));
        var out = new Uint8Array(s.length);
        for (var i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
        return out;
    }

    function bytesOf(v) {
        if (typeof v === 'string') return b64uDecode(v);
        if (v instanceof ArrayBuffer) return new Uint8Array(v);
        if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
        throw new Error('expected bytes or base64url');
    }

    /* A key given to setKey(): an AES-GCM CryptoKey, or 32 bytes (or their base64url). */
    function aesKey(key) {
        if (typeof CryptoKey !== 'undefined' && key instanceof CryptoKey) {
            if (key.algorithm.name !== 'AES-GCM') throw new Error('not an AES-GCM key');
            return Promise.resolve(key);
        }
        var raw = bytesOf(key);
        if (raw.length !== 32) throw new Error('an end-to-end key is 32 bytes');
        return subtle().importKey('raw', raw, {name: 'AES-GCM'}, false, ['encrypt', 'decrypt']);
    }

    /* What the ciphertext is bound to: the channel, the sender and, for a direct message,
       the recipient; a ciphertext moved elsewhere or re-sent by someone else fails. */
    function e2eAad(kind, a, b) {
        return mpEncode([E2E_TAG, kind, a, b]);
    }

    function isSealed(data) {
        return data !== null && typeof data === 'object' && data.e2e === 1 &&
            typeof data.iv === 'string' && typeof data.ct === 'string';
    }

    async function seal(key, aad, data) {
        var iv = crypto.getRandomValues(new Uint8Array(12));
        var ct = await subtle().encrypt({name: 'AES-GCM', iv: iv, additionalData: aad}, key,
            mpEncode(data));
        return {e2e: 1, iv: b64uEncode(iv), ct: b64uEncode(new Uint8Array(ct))};
    }

    async function unseal(key, aad, data) {
        var pt = await subtle().decrypt({name: 'AES-GCM', iv: b64uDecode(data.iv),
            additionalData: aad}, key, b64uDecode(data.ct));
        return mpDecode(pt);
    }

    var e2e = {
        /* 32 random bytes: a group key to hand to the members (e.g. in encrypted sends). */
        randomKey: function () {
            return crypto.getRandomValues(new Uint8Array(32));
        },
        /* An AES-256-GCM key from a passphrase every member knows (PBKDF2-SHA-256). */
        keyFromPassphrase: async function (passphrase, salt, iterations) {
            var base = await subtle().importKey('raw', utf8enc.encode(passphrase), 'PBKDF2',
                false, ['deriveKey']);
            return subtle().deriveKey({name: 'PBKDF2', hash: 'SHA-256',
                salt: utf8enc.encode(E2E_TAG + ' ' + salt), iterations: iterations || 310000},
                base, {name: 'AES-GCM', length: 256}, false, ['encrypt', 'decrypt']);
        },
        /* An ECDH P-256 key pair: publicKey (base64url, to publish), privateKey (kept). */
        generateKeyPair: async function () {
            var pair = await subtle().generateKey({name: 'ECDH', namedCurve: 'P-256'}, false,
                ['deriveBits']);
            var pub = await subtle().exportKey('raw', pair.publicKey);
            return {publicKey: b64uEncode(new Uint8Array(pub)), privateKey: pair.privateKey};
        },
        /* The key two users share: ECDH, then HKDF-SHA-256 over context (a string both
           sides agree on, e.g. their two user ids sorted). */
        deriveKey: async function (privateKey, theirPublicKey, context) {
            var pub = await subtle().importKey('raw', bytesOf(theirPublicKey),
                {name: 'ECDH', namedCurve: 'P-256'}, false, []);
            var bits = await subtle().deriveBits({name: 'ECDH', public: pub}, privateKey, 256);
            var hk = await subtle().importKey('raw', bits, 'HKDF', false, ['deriveKey']);
            return subtle().deriveKey({name: 'HKDF', hash: 'SHA-256', salt: new Uint8Array(0),
                info: utf8enc.encode(E2E_TAG + ' ' + (context || ''))}, hk,
                {name: 'AES-GCM', length: 256}, false, ['encrypt', 'decrypt']);
        },
    };

    /* ---- the client ---- */

    function Client(url, options) {
        var o = options || {};
        this.url = url;
        this.user = null;                 /* from the welcome; "" when anonymous */
        this.session = o.session || null; /* sent in auth to resume */
        this.state = 'idle';
        this._token = o.token || null;
        this._getToken = o.getToken || null;
        this._json = o.json !== false;
        this._WebSocket = o.WebSocket || (typeof WebSocket !== 'undefined' ? WebSocket : null);
        var bo = o.backoff || {};
        this._backoff = {initial: bo.initial || 1000, max: bo.max || 30000,
            jitter: bo.jitter === undefined ? 0.2 : bo.jitter};
        this._autoAck = o.autoAck !== false;
        this._heartbeat = o.heartbeat !== false;
        this._handlers = {};
        this._ws = null;
        this._nextId = 1;
        this._pending = new Map();        /* id -> request */
        this._subs = new Map();           /* group -> {offset, epoch} or null (unknown) */
        this._personal = null;            /* {offset: last received, epoch} */
        this._acked = 0;                  /* personal offset acknowledged (handlers done) */
        this._ackSent = 0;
        this._inflightAcks = [];          /* [{off, done}] in offset order */
        this._midPrefix = randomHex(6) + '-';
        this._midCounter = 0;
        this._ownMids = new Set();
        this._ownMidOrder = [];
        this._authId = null;
        this._attempt = 0;
        this._timer = null;
        this._hbTimer = null;
        this._lastRecv = 0;
        this._stopped = false;
        this.stats = {duplicates: 0, reconnects: 0};
        this._keys = new Map();           /* group or "@user" -> Promise of an AES-GCM key */
        this._txChain = Promise.resolve(); /* encrypted requests leave in call order */
        this._txSealing = 0;
        this._rxChain = Promise.resolve(); /* decrypted messages are handed over in order */
        this._rxOpening = 0;
        var since = o.since || {};
        for (var ch in since) {
            if (ch === '@') this._personal = position(since[ch]);
            else this._subs.set(ch, position(since[ch]));
        }
        if (this._personal) this._acked = this._personal.offset;
        var self = this;
        Promise.resolve().then(function () { self._connect(); }); /* after on() calls */
    }

    Client.prototype.on = function (name, fn) {
        (this._handlers[name] = this._handlers[name] || []).push(fn);
        var self = this;
        return function () { self.off(name, fn); };
    };

    Client.prototype.off = function (name, fn) {
        var list = this._handlers[name] || [];
        var i = list.indexOf(fn);
        if (i >= 0) list.splice(i, 1);
    };

    /* Calls the handlers of name; returns what they returned. */
    Client.prototype._emit = function (name) {
        var args = Array.prototype.slice.call(arguments, 1), results = [];
        var list = (this._handlers[name] || []).slice();
        for (var i = 0; i < list.length; i++) {
            try {
                results.push(list[i].apply(this, args));
            } catch (e) {
                if (name === 'error') throw e;
                this._emit('error', e);
            }
        }
        return results;
    };

    Client.prototype._setState = function (state, info) {
        this.state = state;
        this._emit('state', state, info || {});
    };

    /* ---- requests ---- */

    Client.prototype.join = function (group, opts) {
        var since = position(opts && opts.since);
        if (since || !this._subs.has(group)) this._subs.set(group, since);
        return this._request({op: 'join', group: group}, 'join');
    };

    Client.prototype.leave = function (group) {
        this._subs.delete(group);
        return this._request({op: 'leave', group: group}, 'leave');
    };

    Client.prototype.publish = function (group, data, opts) {
        var mid = (opts && opts.mid) || this._newMid(), self = this;
        this._rememberMid(mid);
        return this._sealed(group, 'g', group, data, function (sealed) {
            return self._request({op: 'publish', group: group, data: sealed, mid: mid}, 'publish');
        });
    };

    Client.prototype.send = function (user, data, opts) {
        var mid = (opts && opts.mid) || this._newMid(), self = this;
        return this._sealed('@' + user, 'd', user, data, function (sealed) {
            return self._request({op: 'send', user: user, data: sealed, mid: mid}, 'send');
        });
    };

    /*
     * The key for a group, or for the user after "@": what this client publishes to the
     * group (sends to the user) is encrypted with it, and what arrives from there is
     * decrypted. key: an AES-GCM CryptoKey, 32 bytes or their base64url; null removes it.
     * Returns a Promise that settles once the key is ready.
     */
    Client.prototype.setKey = function (target, key) {
        if (key === null || key === undefined) {
            this._keys.delete(target);
            return Promise.resolve();
        }
        var ready = Promise.resolve(key).then(aesKey);
        ready.catch(function () {}); /* the requests that use it report the failure */
        this._keys.set(target, ready);
        return ready.then(function () {});
    };

    /* Calls go(data), encrypted when target has a key; requests keep their call order. */
    Client.prototype._sealed = function (target, kind, to, data, go) {
        var key = this._keys.get(target), self = this;
        if (!key && this._txSealing === 0) return go(data);
        this._txSealing++;
        var queued = this._txChain.then(async function () {
            if (!key) return {reply: go(data)};
            var from = await self._whoami();
            var aad = kind === 'g' ? e2eAad('g', to, from) : e2eAad('d', from, to);
            var sealed = await seal(await key, aad, data);
            return {reply: go(sealed)}; /* queued now; its reply is awaited by the caller */
        });
        this._txChain = queued.then(function () { self._txSealing--; },
            function () { self._txSealing--; });
        return queued.then(function (r) { return r.reply; });
    };

    /* This client's user id, once a welcome has said it. */
    Client.prototype._whoami = function () {
        if (this.user !== null) return Promise.resolve(this.user); /* "" when anonymous */
        var self = this;
        return new Promise(function (res) {
            var off = self.on('welcome', function (w) { off(); res(w.user); });
        });
    };

    Client.prototype.broadcast = function (data) {
        return this._request({op: 'broadcast', data: data}, 'broadcast');
    };

    Client.prototype.presence = function (group) {
        return this._request({op: 'presence', group: group}, 'presence');
    };

    Client.prototype.ping = function () {
        return this._request({op: 'ping'}, 'ping');
    };

    /* Acknowledges the personal channel up to offset (with autoAck off). */
    Client.prototype.ack = function (offset) {
        if (offset > this._acked) this._acked = offset;
        this._flushAck();
    };

    /* The channel positions, as auth's since (to persist and pass back as options.since). */
    Client.prototype.positions = function () {
        var since = {};
        this._subs.forEach(function (pos, group) {
            if (pos && pos.epoch) since[group] = {offset: pos.offset, epoch: pos.epoch};
        });
        if (this._personal && this._personal.epoch)
            since['@'] = {offset: this._acked, epoch: this._personal.epoch};
        return since;
    };

    Client.prototype._newMid = function () {
        return this._midPrefix + (++this._midCounter).toString(36);
    };

    Client.prototype._rememberMid = function (mid) {
        this._ownMids.add(mid);
        this._ownMidOrder.push(mid);
        if (this._ownMidOrder.length > OWN_MIDS_KEPT) this._ownMids.delete(this._ownMidOrder.shift());
    };

    Client.prototype._request = function (env, kind) {
        var self = this;
        if (this._stopped) return Promise.reject(localError('closed', 'the client is closed'));
        return new Promise(function (resolve, reject) {
            var req = {id: self._nextId++, env: env, kind: kind, resolve: resolve, reject: reject,
                sent: false, retried: false};
            self._pending.set(req.id, req);
            if (self.state === 'open') self._sendRequest(req);
        });
    };

    Client.prototype._sendRequest = function (req) {
        var env = Object.assign({id: req.id}, req.env);
        if (req.kind === 'join') {
            var pos = this._subs.get(env.group);
            if (pos) env.since = pos.epoch ? {offset: pos.offset, epoch: pos.epoch} : pos.offset;
            req.since = pos ? {offset: pos.offset, epoch: pos.epoch} : null; /* as sent */
        }
        req.sent = true;
        this._write(env);
    };

    Client.prototype._write = function (env) {
        if (!this._ws || this._ws.readyState !== 1) return;
        this._ws.send(this._json ? JSON.stringify(env) : mpEncode(env));
    };

    /* ---- connection ---- */

    Client.prototype._connect = async function () {
        if (this._stopped) return;
        this._setState('connecting', {attempt: this._attempt});
        try {
            if (this._getToken && (!this._token || tokenExpired(this._token)))
                this._token = await this._getToken();
        } catch (e) {
            this._emit('error', e);
            return this._scheduleReconnect();
        }
        if (this._stopped) return;
        var ws;
        try {
            ws = this._json ? new this._WebSocket(this.url, 'wsd.v1.json')
                : new this._WebSocket(this.url, 'wsd.v1.msgpack');
        } catch (e) {
            this._emit('error', e);
            return this._scheduleReconnect();
        }
        ws.binaryType = 'arraybuffer';
        this._ws = ws;
        var self = this;
        ws.onopen = function () { self._onOpen(ws); };
        ws.onmessage = function (ev) { if (ws === self._ws) self._onFrame(ev.data); };
        ws.onclose = function (ev) { self._onClose(ws, ev.code, ev.reason); };
        ws.onerror = function () { /* a close event follows */ };
    };

    Client.prototype._onOpen = function (ws) {
        if (ws !== this._ws) return;
        this._lastRecv = Date.now();
        this._setState('authenticating');
        if (!this._token) return; /* anonymous: the server welcomes at once */
        var auth = {op: 'auth', id: this._nextId++, token: this._token};
        if (this.session) auth.session = this.session;
        var since = this.positions();
        if (Object.keys(since).length) auth.since = since;
        this._authId = auth.id;
        this._write(auth);
    };

    Client.prototype._onClose = function (ws, code, reason) {
        if (ws !== this._ws) return;
        this._ws = null;
        clearInterval(this._hbTimer);
        var self = this;
        this._pending.forEach(function (req, id) {
            if (!req.sent) return;
            if (req.kind === 'broadcast') { /* not idempotent: the application decides */
                self._pending.delete(id);
                req.reject(localError('disconnected', 'connection lost before the reply'));
            } else {
                req.sent = false;
                req.retried = true;
            }
        });
        this._ackSent = 0;
        var again = !this._stopped && !NO_RECONNECT[code] && (!NEED_TOKEN[code] || !!this._getToken);
        if (NEED_TOKEN[code]) this._token = null; /* getToken gives a new one */
        this._emit('close', {code: code, reason: reason, reconnect: again});
        if (again) this._scheduleReconnect();
        else this._shutdown(localError('closed', 'connection closed with ' + code));
    };

    Client.prototype._scheduleReconnect = function () {
        if (this._stopped) return;
        var b = this._backoff;
        var delay = Math.min(b.max, b.initial * Math.pow(2, this._attempt));
        delay = Math.round(delay * (1 - b.jitter * Math.random()));
        this._attempt++;
        this.stats.reconnects++;
        this._setState('reconnecting', {attempt: this._attempt, delay: delay});
        var self = this;
        this._timer = setTimeout(function () { self._timer = null; self._connect(); }, delay);
    };

    /* Closes for good (by the application, or a close code that forbids a reconnect). */
    Client.prototype.close = function () {
        if (this._stopped) return;
        var ws = this._ws;
        this._ws = null;
        if (ws) ws.close(1000);
        this._emit('close', {code: 1000, reason: 'closed by the application', reconnect: false});
        this._shutdown(localError('closed', 'the client is closed'));
    };

    Client.prototype._shutdown = function (err) {
        this._stopped = true;
        clearTimeout(this._timer);
        clearInterval(this._hbTimer);
        this._pending.forEach(function (req) { req.reject(err); });
        this._pending.clear();
        this._setState('closed');
    };

    /* A ping op when idle for a heartbeat; a silent link is closed (and reconnected). */
    Client.prototype._startHeartbeat = function (seconds) {
        clearInterval(this._hbTimer);
        if (!this._heartbeat || !(seconds > 0)) return;
        var self = this, ms = seconds * 1000;
        this._hbTimer = setInterval(function () {
            var idle = Date.now() - self._lastRecv;
            if (idle > 2 * ms) self._drop(4000, 'no answer from the server');
            else if (idle >= ms) self._write({op: 'ping'});
        }, ms);
    };

    /* Closes the socket and goes on at once as if the server had closed with code. */
    Client.prototype._drop = function (code, reason) {
        var ws = this._ws;
        if (!ws) return;
        try { ws.close(code, reason); } catch (e) { /* already closing */ }
        this._onClose(ws, code, reason);
    };

    /* ---- incoming ---- */

    Client.prototype._onFrame = function (data) {
        var m;
        this._lastRecv = Date.now();
        try {
            m = typeof data === 'string' ? JSON.parse(data) : mpDecode(data);
        } catch (e) {
            this._emit('error', e);
            return;
        }
        if (m.op === 'msg') this._onMsg(m);
        else if (m.op === 'welcome') this._onWelcome(m);
        else if (m.op === 'reply' || m.op === 'pong') this._onReply(m);
        else if (m.op === 'error') this._onError(m);
    };

    Client.prototype._onWelcome = function (w) {
        if (this._token && w.id !== this._authId) return; /* anonymous welcome before our auth */
        this.user = w.user;
        this.session = w.session;
        this._attempt = 0;
        var p = w.personal || {};
        if (this._personal && this._personal.epoch && p.epoch !== this._personal.epoch) {
            this._personal = null; /* the personal channel's history was lost */
            this._acked = 0;
            this._inflightAcks = [];
        }
        if (!this._personal) this._personal = {offset: 0, epoch: p.epoch};
        this._personal.epoch = p.epoch;
        this._setState('open', {resumed: !!w.resumed});
        this._emit('welcome', w);
        this._startHeartbeat(w.heartbeat);
        if (this._acked > 0) this._write({op: 'ack', offset: this._acked});
        this._ackSent = this._acked;
        this._restoreGroups(w);
        var self = this;
        this._pending.forEach(function (req) { if (!req.sent) self._sendRequest(req); });
    };

    /* After a login: groups the server restored keep their place, the others are joined. */
    Client.prototype._restoreGroups = function (w) {
        var restored = (w.resumed && w.groups) || {}, self = this, queued = {};
        this._pending.forEach(function (req) {
            if (req.kind === 'join' && !req.sent) queued[req.env.group] = true;
        });
        Object.keys(restored).forEach(function (g) {
            if (!self._subs.has(g)) {
                self._write({op: 'leave', group: g}); /* left while disconnected */
                return;
            }
            var pos = self._subs.get(g), r = restored[g];
            if (!pos || pos.epoch !== r.epoch) self._subs.set(g, {offset: r.offset, epoch: r.epoch});
        });
        this._subs.forEach(function (pos, g) {
            if (restored[g] || queued[g]) return;
            var req = {id: self._nextId++, env: {op: 'join', group: g}, kind: 'join',
                resolve: function () {}, reject: function (e) { self._emit('error', e); }};
            self._pending.set(req.id, req);
            self._sendRequest(req);
        });
    };

    Client.prototype._onReply = function (r) {
        var req = this._pending.get(r.id);
        if (!req) return;
        this._pending.delete(r.id);
        if (req.kind === 'join') this._onJoined(req, r);
        if (req.kind === 'publish') this._onPublished(req.env.group, r);
        req.resolve(r);
    };

    Client.prototype._onJoined = function (req, r) {
        var g = r.group, pos = this._subs.get(g), sent = req.since;
        if (!this._subs.has(g)) return; /* left meanwhile */
        if (!sent || !pos || (sent.epoch && sent.epoch !== r.epoch) || sent.offset > r.offset) {
            /* no replay follows: live messages start after the group's latest offset */
            var from = pos && pos.epoch === r.epoch ? Math.max(pos.offset, r.offset) : r.offset;
            this._subs.set(g, {offset: from, epoch: r.epoch});
        } else {
            pos.epoch = r.epoch; /* the replay after this reply moves pos.offset on */
        }
        this._emit('joined', r);
    };

    Client.prototype._onPublished = function (group, r) {
        var pos = this._subs.get(group);
        if (pos && !r.duplicate && r.offset === pos.offset + 1) pos.offset = r.offset;
    };

    Client.prototype._onError = function (e) {
        var req = e.id !== undefined ? this._pending.get(e.id) : null;
        if (e.code === 'token_expired') this._refreshToken();
        if (e.id !== undefined && e.id === this._authId && this.state !== 'open') {
            /* login refused; an anonymous connection would stay open: handle it as 4001 */
            this._emit('error', e);
            return this._drop(4001, 'unauthorized');
        }
        if (!req) {
            this._emit('error', e);
            return;
        }
        this._pending.delete(e.id);
        if (req.kind === 'join' || req.kind === 'leave') {
            if (req.kind === 'leave' && req.retried && e.code === 'not_member')
                return req.resolve({op: 'reply', id: e.id, ok: true});
            if (req.kind === 'join') this._subs.delete(req.env.group);
        }
        req.reject(e);
    };

    Client.prototype._refreshToken = async function () {
        if (!this._getToken) return;
        try {
            this._token = await this._getToken();
            this._write({op: 'auth', id: this._nextId++, token: this._token});
        } catch (e) {
            this._emit('error', e);
        }
    };

    /* A message: drop what was seen, hand the rest over, acknowledge personal ones. */
    Client.prototype._onMsg = function (m) {
        var pos = m.ch === '@' ? this._personal : this._subs.get(m.ch);
        if (m.ch !== '@' && m.ch !== '*' && !this._subs.has(m.ch))
            return; /* a group left meanwhile */
        if (m.ch !== '*' && pos) {
            if (m.off <= pos.offset) {
                this.stats.duplicates++;
                if (m.ch === '@') this._flushAck(true);
                return;
            }
            pos.offset = m.off;
            if (m.ch !== '@' && m.from === this.user && this._ownMids.has(m.mid))
                return; /* our own publish, replayed on a join with since */
        }
        var entry = null, self = this;
        if (m.ch === '@' && this._autoAck) {
            entry = {off: m.off, done: false};
            this._inflightAcks.push(entry);
        }
        var sealed = isSealed(m.data);
        if (!sealed && this._rxOpening === 0) return this._deliver(m, entry);
        /* decryption is asynchronous: later messages wait for it, to keep their order */
        this._rxOpening++;
        this._rxChain = this._rxChain.then(function () {
            return sealed ? self._open(m) : true;
        }).then(function (ok) {
            if (ok) self._deliver(m, entry);
            else if (entry) { entry.done = true; self._advanceAck(); }
        }).catch(function (e) {
            self._emit('error', e);
        }).then(function () {
            self._rxOpening--;
        }, function () {
            self._rxOpening--; /* an 'error' handler threw: the next messages still go */
        });
    };

    /* Decrypts m.data in place when its channel has a key. False when it cannot be
       decrypted (wrong key, altered, or re-sent by someone else): 'error' says so and the
       message is dropped. Without a key the message is handed over still sealed, with
       m.encrypted set. */
    Client.prototype._open = async function (m) {
        var direct = m.ch === '@', key = this._keys.get(direct ? '@' + m.from : m.ch);
        if (!key) {
            m.encrypted = true;
            return true;
        }
        try {
            var aad = direct ? e2eAad('d', m.from, this.user) : e2eAad('g', m.ch, m.from);
            m.data = await unseal(await key, aad, m.data);
            m.e2e = true;
            return true;
        } catch (e) {
            this._emit('error', {op: 'error', code: 'decrypt_failed', ch: m.ch, off: m.off,
                from: m.from, message: 'cannot decrypt: ' + (e && e.message || e)});
            return false;
        }
    };

    /* Hands m to the 'message' handlers; a personal one is acknowledged once they are done. */
    Client.prototype._deliver = function (m, entry) {
        var results = this._emit('message', m), self = this;
        if (!entry) return;
        var finish = function () { entry.done = true; self._advanceAck(); };
        var waits = results.filter(function (x) { return x && typeof x.then === 'function'; });
        if (waits.length === 0) return finish();
        Promise.all(waits).then(finish, function (e) { self._emit('error', e); finish(); });
    };

    Client.prototype._advanceAck = function () {
        var list = this._inflightAcks;
        while (list.length && list[0].done) this._acked = Math.max(this._acked, list.shift().off);
        this._flushAck();
    };

    /* Sends one cumulative ack for what the handlers finished (batched per task). */
    Client.prototype._flushAck = function (again) {
        if (again) this._ackSent = 0;
        if (this._ackQueued || this._acked <= this._ackSent) return;
        this._ackQueued = true;
        var self = this;
        setTimeout(function () {
            self._ackQueued = false;
            if (self.state !== 'open' || self._acked <= self._ackSent) return;
            self._ackSent = self._acked;
            self._write({op: 'ack', offset: self._acked});
        }, 0);
    };

    return {Client: Client, e2e: e2e, msgpack: {encode: mpEncode, decode: mpDecode},
        version: '1'};
});
