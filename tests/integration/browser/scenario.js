/*
 * scenario.js - runs in the page (after /wsd.js): the steps of test_browser.py, each a
 * function of window.wsdTest that the Node driver calls and whose JSON result it prints.
 */
(function () {
    'use strict';
    var T = window.wsdTest = {clients: {}, recs: {}, p: null};

    function sleep(ms) {
        return new Promise(function (res) { setTimeout(res, ms); });
    }

    function waitFor(pred, ms, what) {
        var t0 = Date.now();
        return new Promise(function (res, rej) {
            (function poll() {
                var v = pred();
                if (v) return res(v);
                if (Date.now() - t0 > ms) return rej(new Error('timeout waiting for ' + what));
                setTimeout(poll, 10);
            })();
        });
    }

    function plain(v) {
        return v instanceof Uint8Array ? {bin: Array.from(v)} : v;
    }

    /* A client whose events are all recorded in T.recs[name]. */
    function mk(name, opts) {
        var rec = {name: name, msgs: [], states: [], welcomes: [], errors: [], closes: [],
            joined: []};
        var c = new Wsd.Client(opts.url || T.p.url, opts);
        c.on('message', function (m) {
            rec.msgs.push({ch: m.ch, off: m.off, mid: m.mid, from: m.from, sys: !!m.sys,
                data: plain(m.data), e2e: !!m.e2e, encrypted: !!m.encrypted, t: Date.now()});
        });
        c.on('state', function (s, info) {
            rec.states.push({state: s, info: info, t: Date.now()});
        });
        c.on('welcome', function (w) {
            rec.welcomes.push({user: w.user, resumed: w.resumed, session: w.session,
                personal: w.personal, t: Date.now()});
        });
        c.on('error', function (e) {
            rec.errors.push(e && e.code ? e.code : String(e));
        });
        c.on('close', function (i) { rec.closes.push({code: i.code, reconnect: i.reconnect}); });
        c.on('joined', function (r) {
            rec.joined.push({group: r.group, offset: r.offset, recovered: r.recovered});
        });
        T.clients[name] = c;
        T.recs[name] = rec;
        return c;
    }

    function opened(c, n) {
        var rec = T.recs[Object.keys(T.clients).find(function (k) { return T.clients[k] === c; })];
        return waitFor(function () { return c.state === 'open' && rec.welcomes.length >= (n || 1); },
            10000, 'welcome');
    }

    function got(name, pred) {
        return T.recs[name].msgs.filter(pred);
    }

    function codeOf(promise) {
        return promise.then(function () { return 'ok'; }, function (e) { return e.code; });
    }

    /* Alice, an anonymous client, a MessagePack client, broadcast, 4001 with and without
     * getToken; the backoff client on a dead port keeps retrying meanwhile. */
    T.basics = async function (p) {
        T.p = p;
        var r = {};
        mk('dead', {url: p.deadUrl, token: p.tokens.alice, backoff: {initial: 200, max: 800}});
        var alice = mk('alice', {token: p.tokens.alice});
        var anon = mk('anon', {});
        var dave = mk('dave', {token: p.tokens.dave, json: false});
        await Promise.all([opened(alice), opened(anon), opened(dave)]);
        r.aliceWelcome = T.recs.alice.welcomes[0];
        r.anonWelcome = T.recs.anon.welcomes[0];
        r.daveProtocol = dave._ws.protocol;
        r.aliceProtocol = alice._ws.protocol;
        await alice.join('room:1');
        await alice.join('public:lobby');
        await alice.join('room:bin');
        await anon.join('public:lobby');
        await dave.join('room:bin');
        r.anonJoinPrivate = await codeOf(anon.join('room:1'));
        r.anonPublish = await codeOf(anon.publish('public:lobby', 1));
        r.aliceJoinForbidden = await codeOf(alice.join('secret'));
        r.publicReply = await alice.publish('public:lobby', {hello: 'anon'});
        await waitFor(function () { return got('anon', function (m) { return m.ch === 'public:lobby'; }).length; },
            5000, 'anonymous delivery');
        await dave.publish('room:bin', new Uint8Array([1, 2, 3, 255]));
        await alice.publish('room:bin', {x: [1, '\u00e9'], y: 2.5});
        await waitFor(function () {
            return got('alice', function (m) { return m.ch === 'room:bin'; }).length &&
                got('dave', function (m) { return m.ch === 'room:bin'; }).length;
        }, 5000, 'cross-encoding delivery');
        r.binSeenByJson = got('alice', function (m) { return m.ch === 'room:bin'; })[0].data;
        r.jsonSeenByMsgpack = got('dave', function (m) { return m.ch === 'room:bin'; })[0].data;
        r.broadcast = await alice.broadcast({b: 1});
        await waitFor(function () {
            return got('anon', function (m) { return m.ch === '*'; }).length &&
                got('dave', function (m) { return m.ch === '*'; }).length;
        }, 5000, 'broadcast');
        r.broadcastSeen = got('anon', function (m) { return m.ch === '*'; })[0];
        r.ping = await alice.ping();
        /* 4001: with getToken the client asks for a new token and comes back */
        var asked = 0;
        var frank = mk('frank', {token: p.tokens.bad, backoff: {initial: 100},
            getToken: async function () { asked++; return p.tokens.frank; }});
        await opened(frank);
        r.frank = {asked: asked, closes: T.recs.frank.closes, errors: T.recs.frank.errors,
            user: frank.user};
        /* without getToken it stops */
        var nofix = mk('nofix', {token: p.tokens.bad});
        await waitFor(function () { return nofix.state === 'closed'; }, 5000, 'closed');
        r.nofix = {closes: T.recs.nofix.closes, errors: T.recs.nofix.errors,
            reconnects: nofix.stats.reconnects};
        frank.close();
        return r;
    };

    /* Bob joins, gets three publishes and a direct message, which is acknowledged. */
    T.connectBob = async function () {
        var r = {}, alice = T.clients.alice;
        var bob = mk('bob', {getToken: async function () { return T.p.tokens.bob; }});
        await opened(bob);
        r.join = await bob.join('room:1');
        r.pubs = [];
        for (var i = 1; i <= 3; i++)
            r.pubs.push((await alice.publish('room:1', {p: i})).offset);
        r.dm = await alice.send('bob', {dm: 1});
        await waitFor(function () {
            return got('bob', function (m) { return m.ch === 'room:1'; }).length === 3 &&
                got('bob', function (m) { return m.ch === '@'; }).length === 1;
        }, 5000, 'bob deliveries');
        await waitFor(function () { return bob._ackSent >= r.dm.offset; }, 5000, 'ack sent');
        await bob.publish('room:sync', 0); /* the ack is committed before this reply */
        r.presence = await alice.presence('room:1');
        return r;
    };

    /* Armed before the driver kills bob's worker: when bob starts reconnecting, eve
     * publishes and sends to bob, and bob queues a publish of his own. Bob's reconnect
     * waits for that (his backoff delay runs meanwhile), so it all happens while he is
     * away however slow the machine is. */
    T.armDrop = function () {
        var bob = T.clients.bob, d = T.drop = {started: false}, release;
        var gate = new Promise(function (res) { release = res; });
        var connect = bob._connect;
        bob._connect = function () {
            var self = this;
            return gate.then(function () { return connect.call(self); });
        };
        bob.on('state', function (s, info) {
            if (s !== 'reconnecting' || d.started)
                return;
            d.started = true;
            d.reconnect = info;
            d.t0 = Date.now();
            d.job = (async function () {
                try {
                    var eve = mk('eve', {token: T.p.tokens.eve});
                    await opened(eve);
                    d.offsets = [];
                    for (var i = 1; i <= 5; i++)
                        d.offsets.push((await eve.publish('room:1', {q: i})).offset);
                    d.dm = await eve.send('bob', {dm: 2});
                    d.queued = bob.publish('room:1', {fromBob: 'queued'});
                    d.bobStateWhenDone = bob.state;
                    d.doneAt = Date.now();
                } finally {
                    delete bob._connect;
                    release();
                }
            })();
        });
        return true;
    };

    T.awaitResume = async function () {
        var d = T.drop, bob = T.clients.bob, alice = T.clients.alice;
        await waitFor(function () { return d.started; }, 10000, 'bob reconnecting');
        await d.job;
        var queued = await d.queued;
        await opened(bob, 2);
        await waitFor(function () {
            return got('bob', function (m) { return m.ch === 'room:1' && m.data && m.data.q; }).length === 5 &&
                got('bob', function (m) { return m.ch === '@'; }).length === 2;
        }, 10000, 'replay to bob');
        await waitFor(function () {
            return alice.state === 'open' &&
                got('alice', function (m) { return m.data && m.data.fromBob; }).length;
        }, 10000, 'alice gets the queued publish');
        await bob.publish('room:sync', 0); /* dm 2's ack is committed */
        var w2 = T.recs.bob.welcomes[1];
        return {reconnect: d.reconnect, doneAt: d.doneAt, t0: d.t0, secondWelcomeAt: w2.t,
            resumed: w2.resumed, bobStateWhenDone: d.bobStateWhenDone, offsets: d.offsets,
            dm: d.dm, queued: queued, bobJoined: T.recs.bob.joined,
            aliceWelcomes: T.recs.alice.welcomes.length};
    };

    /* A publish whose reply is lost with the connection is sent again with its mid; a
     * direct message whose handler is still running comes again with the backlog, is
     * dropped, and is acknowledged once the handler is done. */
    T.retry = async function () {
        var bob = T.clients.bob, alice = T.clients.alice, release;
        var gate = new Promise(function (res) { release = res; });
        var unhook = bob.on('message', function (m) {
            if (m.ch === '@' && m.data && m.data.dm === 3) return gate;
        });
        var dm = await T.clients.eve.send('bob', {dm: 3});
        await waitFor(function () { return got('bob', function (m) { return m.ch === '@'; }).length === 3; },
            5000, 'dm 3');
        var pr = bob.publish('room:1', {retry: 1}, {mid: 'bob-retry-1'});
        bob._ws.close(4999);
        var reply = await pr;
        await waitFor(function () {
            return got('alice', function (m) { return m.data && m.data.retry; }).length;
        }, 10000, 'retried publish');
        await waitFor(function () { return bob.stats.duplicates >= 1; }, 5000, 'dm 3 again');
        var ackedBefore = bob._ackSent;
        release();
        unhook();
        await waitFor(function () { return bob._ackSent >= dm.offset; }, 5000, 'dm 3 ack');
        await bob.publish('room:sync', 0);
        await alice.ping();
        await sleep(300);
        return {reply: reply, aliceCopies: got('alice', function (m) { return m.data && m.data.retry; }).length,
            bobWelcomes: T.recs.bob.welcomes.length, dm: dm, ackedBefore: ackedBefore,
            bobDropped: bob.stats.duplicates};
    };

    /* Acknowledged direct messages are not delivered to a later login. */
    T.laterLogins = async function () {
        var r = {};
        var bob2 = mk('bob2', {token: T.p.tokens.bob});
        await opened(bob2);
        await bob2.ping(); /* the backlog precedes this pong */
        r.bob2Personal = got('bob2', function (m) { return m.ch === '@'; }).length;
        r.offline = await T.clients.alice.send('carol', {offline: 1});
        var carol = mk('carol', {token: T.p.tokens.carol});
        await opened(carol);
        await waitFor(function () { return got('carol', function (m) { return m.ch === '@'; }).length; },
            5000, 'offline message');
        r.carolPersonal = got('carol', function (m) { return m.ch === '@'; });
        await waitFor(function () { return carol._ackSent >= r.offline.offset; }, 5000, 'carol ack');
        await carol.publish('room:sync', 0);
        carol.close();
        var carol2 = mk('carol2', {token: T.p.tokens.carol});
        await opened(carol2);
        await carol2.ping();
        r.carol2Personal = got('carol2', function (m) { return m.ch === '@'; }).length;
        return r;
    };

    /* Every record, with the (channel, offset) pairs delivered more than once. */
    /* End-to-end encryption with WebCrypto: a passphrase key for a group, an ECDH key for
     * a direct message; a member without the key sees the sealed envelope. */
    T.e2e = async function () {
        var r = {}, g = 'room:e2e';
        var a = mk('e2eA', {token: T.p.tokens.carol});
        var b = mk('e2eB', {token: T.p.tokens.dave, json: false});
        var c = mk('e2eC', {token: T.p.tokens.bob});
        var keys = await Promise.all([Wsd.e2e.keyFromPassphrase('chromium passphrase', g, 1000),
            Wsd.e2e.keyFromPassphrase('chromium passphrase', g, 1000),
            Wsd.e2e.generateKeyPair(), Wsd.e2e.generateKeyPair()]);
        await a.setKey(g, keys[0]);
        await b.setKey(g, keys[1]);
        await a.setKey('@dave', await Wsd.e2e.deriveKey(keys[2].privateKey, keys[3].publicKey,
            'carol dave'));
        await b.setKey('@carol', await Wsd.e2e.deriveKey(keys[3].privateKey, keys[2].publicKey,
            'carol dave'));
        await Promise.all([a.join(g), b.join(g), c.join(g)]);
        r.pub = await a.publish(g, {text: 'sealed in chromium'});
        r.dm = await a.send('dave', {text: 'direct in chromium'});
        await waitFor(function () {
            return got('e2eB', function (m) { return m.ch === g; }).length &&
                got('e2eB', function (m) { return m.ch === '@'; }).length &&
                got('e2eC', function (m) { return m.ch === g; }).length;
        }, 5000, 'e2e deliveries');
        r.groupSeenByKey = got('e2eB', function (m) { return m.ch === g; });
        r.directSeenByKey = got('e2eB', function (m) { return m.ch === '@'; });
        r.groupSeenWithoutKey = got('e2eC', function (m) { return m.ch === g; });
        return r;
    };

    T.finish = async function () {
        var dead = T.clients.dead;
        await waitFor(function () { return dead.stats.reconnects >= 5; }, 10000, 'backoff');
        var out = {recs: {}, duplicates: {}, dropped: {}};
        Object.keys(T.clients).forEach(function (name) {
            var seen = {}, dups = [];
            T.recs[name].msgs.forEach(function (m) {
                if (m.ch === '*') return;
                var k = m.ch + '#' + m.off;
                if (seen[k]) dups.push(k);
                seen[k] = true;
            });
            out.duplicates[name] = dups;
            out.dropped[name] = T.clients[name].stats.duplicates;
            out.recs[name] = T.recs[name];
            T.clients[name].close();
        });
        return out;
    };
})();
