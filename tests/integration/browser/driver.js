/*
 * driver.js - runs scenario.js in headless Chromium against a running wsd.
 *
 *   node driver.js PARAMS_JSON
 *
 * PARAMS_JSON: {"port": N, "deadPort": N, "tokens": {...}}. Needs playwright-core on
 * NODE_PATH and /usr/bin/chromium (or $CHROMIUM). Loads /healthz from wsd, adds /wsd.js
 * and scenario.js, runs the steps, and between two of them kills (SIGKILL) the worker
 * process that serves bob's connection, found with ss(8). Prints one line
 * "RESULT <json>"; "CHROMIUM_UNAVAILABLE <reason>" when the browser cannot start.
 */
'use strict';
const path = require('path');
const {execFileSync} = require('child_process');
const browser = require('./browser');

const params = JSON.parse(process.argv[2]);
const base = `http://127.0.0.1:${params.port}`;

/* Established connections to the server port: peer port -> server-side pid. */
function serverSockets() {
    const out = execFileSync('ss', ['-tnpH', 'state', 'established',
        `( sport = :${params.port} )`], {encoding: 'utf8'});
    const map = new Map();
    for (const line of out.split('\n')) {
        const peer = line.match(/127\.0\.0\.1:(\d+)\s+users:/);
        const pid = line.match(/pid=(\d+)/);
        if (peer && pid)
            map.set(peer[1], Number(pid[1]));
    }
    return map;
}

async function steps(page, result) {
    await page.goto(`${base}/healthz`);
    await page.addScriptTag({url: '/wsd.js'});
    await page.addScriptTag({path: path.join(__dirname, 'scenario.js')});
    result.wsdType = await page.evaluate(() => typeof Wsd.Client);
    const p = {url: `ws://127.0.0.1:${params.port}/ws`,
        deadUrl: `ws://127.0.0.1:${params.deadPort}/ws`, tokens: params.tokens};
    result.basics = await page.evaluate((q) => wsdTest.basics(q), p);

    const before = serverSockets();
    result.connectBob = await page.evaluate(() => wsdTest.connectBob());
    const after = serverSockets();
    const pids = [...after].filter(([peer]) => !before.has(peer)).map(([, pid]) => pid);
    result.killed = [...new Set(pids)];
    if (result.killed.length === 0)
        throw new Error('could not find the worker of bob\'s connection');
    await page.evaluate(() => wsdTest.armDrop());
    for (const pid of result.killed)
        process.kill(pid, 'SIGKILL');
    result.resume = await page.evaluate(() => wsdTest.awaitResume());
    result.retry = await page.evaluate(() => wsdTest.retry());
    result.later = await page.evaluate(() => wsdTest.laterLogins());
    result.e2e = await page.evaluate(() => wsdTest.e2e());
    result.finish = await page.evaluate(() => wsdTest.finish());
}

async function main() {
    await browser.run({}, steps, async (page, result) => {
        result.recs = await page.evaluate(() => wsdTest.recs).catch(() => null);
    });
}

const guard = setTimeout(() => {
    console.log('RESULT ' + JSON.stringify({error: 'driver timed out'}));
    process.exit(1);
}, 55000);
main().then(() => clearTimeout(guard), (e) => {
    console.log('RESULT ' + JSON.stringify({error: String(e.stack || e)}));
    process.exit(1);
});
