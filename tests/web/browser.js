// Headless Chromium (Debian's /usr/bin/chromium) driven by playwright-core, for
// tests/e2e/test_web_clients.py. One browser; each "page" is its own context (its own
// storage, like another person's browser).
//
// It reads one JSON request a line on stdin and answers each with one JSON line on
// stdout: {"id": N, "ok": true, "value": ...} or {"id": N, "ok": false, "error": "..."}.
//   {"id":1, "op":"open", "page":"a", "url":"http://...", "width":1000, "height":700}
//      (also "scheme": "dark", and "insecure": true to take a test certificate)
//   {"id":2, "op":"login", "page":"a", "name":"alice"}  -> "app" or "error: TEXT"
//   {"id":3, "op":"say", "page":"a", "text":"hello"}
//   {"id":4, "op":"wait", "page":"a", "js":"EXPRESSION", "timeout":10000} -> its value
//   {"id":5, "op":"eval", "page":"a", "js":"EXPRESSION"}                 -> its value
//   {"id":6, "op":"shot", "page":"a", "path":"build/x.png"}
//   {"id":8, "op":"press", "page":"a", "key":"Alt+ArrowDown"}      (to the focused element)
//   {"id":9, "op":"errors", "page":"a"}    -> the page's console errors and exceptions
//   {"id":10, "op":"reload", "page":"a"}   (the same browser profile: its localStorage stays)
//   {"id":7, "op":"close", "page":"a"}
// Every wait is bounded (timeout, default 10 s). The browser exits when stdin closes,
// and on its own after NATTER_BROWSER_LIFE seconds (default 300), whatever happens.
'use strict';
const { chromium } = require('playwright-core');
const readline = require('readline');

const EXE = process.env.CHROMIUM || '/usr/bin/chromium';
const LIFE = Number(process.env.NATTER_BROWSER_LIFE || 300) * 1000;
const pages = new Map();
const errors = new Map(); // page -> console errors and page errors seen
let browser = null;

function answer(o) { process.stdout.write(JSON.stringify(o) + '\n'); }

async function page(name) {
  const p = pages.get(name);
  if (!p) throw new Error('no page ' + name);
  return p;
}

const OPS = {
  async open(r) {
    const ctx = await browser.newContext({ viewport: { width: r.width || 1000, height: r.height || 700 },
      colorScheme: r.scheme || 'light', ignoreHTTPSErrors: !!r.insecure });
    const p = await ctx.newPage();
    p.setDefaultTimeout(r.timeout || 10000);
    const errs = [];
    errors.set(r.page, errs);
    p.on('console', (m) => { if (m.type() === 'error') errs.push('console: ' + m.text()); });
    p.on('pageerror', (e) => errs.push('pageerror: ' + e.message));
    await p.goto(r.url, { timeout: r.timeout || 10000 });
    pages.set(r.page, p);
    return true;
  },
  async login(r) {
    const p = await page(r.page);
    await p.fill('#login-name', r.name);
    await p.click('#login-go');
    // The server's answer: the app (001), or the prompt again with why (433, 432).
    await OPS.wait({ page: r.page, timeout: r.timeout, js: "!document.getElementById('app').hidden || " +
      "document.getElementById('login-error').textContent !== ''" });
    const err = await p.textContent('#login-error');
    return err ? 'error: ' + err : 'app';
  },
  async say(r) {
    const p = await page(r.page);
    await p.fill('#input', r.text);
    await p.press('#input', 'Enter');
    return true;
  },
  // Polled from here with evaluate (waitForFunction would need the page's CSP to allow
  // eval, and natterd's does not).
  async wait(r) {
    const p = await page(r.page);
    const deadline = Date.now() + (r.timeout || 10000);
    let last;
    for (;;) {
      last = await p.evaluate(r.js);
      if (last) return last;
      if (Date.now() > deadline) throw new Error('timed out after ' + (r.timeout || 10000) + ' ms waiting for ' + r.js + ' (last: ' + JSON.stringify(last) + ')');
      await new Promise((res) => setTimeout(res, 50));
    }
  },
  async eval(r) {
    const p = await page(r.page);
    return p.evaluate(r.js);
  },
  async reload(r) {
    const p = await page(r.page);
    await p.reload({ timeout: r.timeout || 10000 });
    return true;
  },
  async press(r) {
    const p = await page(r.page);
    await p.keyboard.press(r.key);
    return true;
  },
  async shot(r) {
    const p = await page(r.page);
    await p.screenshot({ path: r.path });
    return r.path;
  },
  async errors(r) {
    return errors.get(r.page) || [];
  },
  async close(r) {
    const p = await page(r.page);
    pages.delete(r.page);
    await p.context().close();
    return true;
  },
};

async function main() {
  setTimeout(() => { process.stderr.write('browser.js: lived too long, exiting\n'); process.exit(5); }, LIFE).unref();
  browser = await chromium.launch({
    executablePath: EXE, timeout: 30000,
    // --no-sandbox: root in a container has no user namespaces for Chromium's sandbox.
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
  });
  answer({ id: 0, ok: true, value: browser.version() });
  const rl = readline.createInterface({ input: process.stdin });
  let queue = Promise.resolve();
  rl.on('line', (line) => {
    queue = queue.then(async () => {
      let r;
      try { r = JSON.parse(line); } catch (e) { answer({ id: null, ok: false, error: 'bad JSON' }); return; }
      try {
        const op = OPS[r.op];
        if (!op) throw new Error('unknown op ' + r.op);
        answer({ id: r.id, ok: true, value: await op(r) });
      } catch (e) {
        answer({ id: r.id, ok: false, error: String(e && e.message || e) });
      }
    });
  });
  rl.on('close', () => { queue.then(() => browser.close()).then(() => process.exit(0), () => process.exit(1)); });
}

main().catch((e) => { answer({ id: 0, ok: false, error: String(e && e.message || e) }); process.exit(1); });
