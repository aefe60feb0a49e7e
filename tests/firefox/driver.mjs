// Debian's firefox-esr, driven over WebDriver BiDi by puppeteer-core, for the Python tests
// (tests/firefox/__init__.py). One command per stdin line, one answer per stdout line, both JSON:
//   {"id": 1, "op": "goto", "url": "..."}            -> {"id": 1, "ok": true, "value": ...}
// Ops: goto, fill, click, waitFor (a selector, optionally {hidden: true}), evaluate (a function's
// source and an argument), errors (script errors and console errors so far), close.
// Never a downloaded browser: executablePath is the Debian package's.
import readline from 'node:readline';
import puppeteer from 'puppeteer-core';

const FIREFOX = process.env.AMTSKLINGEL_FIREFOX || '/usr/bin/firefox-esr';

// What a clerk's Firefox needs in the test: WebRTC over loopback (the test's network namespace has
// nothing else), host candidates with their addresses (central's candidate rule reads them), fake
// camera and microphone without a prompt, and sound that plays without a click. Camera and
// microphone are allowed as if stored for the site: without that permission Firefox offers only
// the address of its default route, and the namespace has none, so it would gather no candidate at
// all. H.264 stays as a city's Firefox ESR has it without the OpenH264 plugin: absent, never fetched.
const PREFS = {
  'media.peerconnection.ice.loopback': true,
  'media.peerconnection.ice.obfuscate_host_addresses': false,
  'media.navigator.streams.fake': true,
  'media.navigator.permission.disabled': true,
  'permissions.default.camera': 1,
  'permissions.default.microphone': 1,
  'media.autoplay.default': 0,
  'media.autoplay.blocking_policy': 0,
  'media.gmp-gmpopenh264.enabled': false,
  'media.gmp-gmpopenh264.autoupdate': false,
  'media.gmp-manager.updateEnabled': false,
};

const browser = await puppeteer.launch({
  browser: 'firefox', protocol: 'webDriverBiDi', executablePath: FIREFOX, headless: true,
  extraPrefsFirefox: PREFS,
});
const page = await browser.newPage();
const errors = [];
page.on('console', (msg) => { if (msg.type() === 'error') errors.push(msg.text()); });
page.on('pageerror', (err) => errors.push(String(err)));

const ops = {
  goto: async ({ url }) => { await page.goto(url); return page.url(); },
  fill: async ({ selector, value }) => { await page.locator(selector).fill(value); },
  click: async ({ selector }) => { await page.locator(selector).click(); },
  waitFor: async ({ selector, hidden = false, timeout = 20000 }) => {
    await page.waitForSelector(selector, { hidden, visible: !hidden, timeout });
  },
  waitForNavigation: async ({ timeout = 20000 }) => { await page.waitForNavigation({ timeout }); return page.url(); },
  evaluate: async ({ source, arg = null }) => page.evaluate(`(${source})(${JSON.stringify(arg)})`),
  errors: async () => errors.splice(0),
  version: async () => browser.version(),
  close: async () => { await browser.close(); process.exit(0); },
};

const reply = (answer) => process.stdout.write(`${JSON.stringify(answer)}\n`);
process.stdout.write(`${JSON.stringify({ ready: await browser.version() })}\n`);
for await (const line of readline.createInterface({ input: process.stdin })) {
  const { id, op, ...args } = JSON.parse(line);
  try {
    if (!ops[op]) throw new Error(`unknown op ${op}`);
    reply({ id, ok: true, value: (await ops[op](args)) ?? null });
  } catch (err) {
    reply({ id, ok: false, error: String(err && err.stack || err) });
  }
}
await browser.close();  // stdin closed: the test is done with us
