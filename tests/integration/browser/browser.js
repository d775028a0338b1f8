/*
 * browser.js - what the browser drivers share: a fresh headless Chromium (Debian's, via
 * playwright-core), one page whose console goes to stderr, and the one line of output.
 *
 * run(options, steps, onError): launches the browser (options are added to the launch
 * options; options.args to the command line), calls steps(page, result), which fills
 * result, and prints "RESULT <json>". A step that throws sets result.error, then
 * onError(page, result) may add to it. "CHROMIUM_UNAVAILABLE <reason>" is printed
 * instead when the browser cannot start.
 */
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const {chromium} = require('playwright-core');

const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run'];

async function run(options, steps, onError) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wsd-chromium-'));
    let context;
    try {
        context = await chromium.launchPersistentContext(dir, Object.assign({
            executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
            headless: true,
            timeout: 30000,
        }, options, {args: ARGS.concat(options.args || [])}));
    } catch (e) {
        console.log('CHROMIUM_UNAVAILABLE ' + String(e.message || e).split('\n')[0]);
        fs.rmSync(dir, {recursive: true, force: true});
        return;
    }
    const result = {};
    const page = context.pages()[0] || await context.newPage();
    try {
        page.on('console', (m) => process.stderr.write(`[page] ${m.text()}\n`));
        page.on('pageerror', (e) => process.stderr.write(`[page error] ${e}\n`));
        await steps(page, result);
    } catch (e) {
        result.error = String(e.stack || e);
        if (onError)
            await onError(page, result);
    } finally {
        await context.close();
        fs.rmSync(dir, {recursive: true, force: true});
    }
    console.log('RESULT ' + JSON.stringify(result));
}

module.exports = {run};
