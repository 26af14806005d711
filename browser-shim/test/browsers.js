// One small driver per browser engine, so the browser test and the benchmark are written once:
//   chromium  Debian's /usr/bin/chromium through playwright-core (test/chromium.js)
//   firefox   Debian's /usr/bin/firefox-esr over WebDriver BiDi through puppeteer-core
//   webkit    WebKitGTK (test/webkit-browser.py, a minimal browser on Debian's libwebkit2gtk-4.1)
//             through Debian's WebKitWebDriver (W3C WebDriver) and selenium-webdriver, on an Xvfb
//             display of its own (WebKitGTK has no headless mode)
// Never a downloaded browser. Each launch has a fresh profile, so the Cache API starts empty.
// $LLMKG_BROWSERS picks the engines (comma-separated; default all three).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launch as launchChromium } from './chromium.js';

export const ENGINES = ['chromium', 'firefox', 'webkit'];
export const FIREFOX = process.env.LLMKG_FIREFOX || '/usr/bin/firefox-esr';
export const WEBKIT_DRIVER = process.env.LLMKG_WEBKIT_DRIVER || '/usr/bin/WebKitWebDriver';
// WebKitGTK's own MiniBrowser keeps automation sessions ephemeral, where the Cache API loses its
// entries on reload; test/webkit-browser.py is the same engine with a profile on disk.
export const WEBKIT_BROWSER = process.env.LLMKG_WEBKIT_BROWSER || join(import.meta.dirname, 'webkit-browser.py');
const VIEWPORT = { width: 1280, height: 900 };
/** The longest a single call into the page may take (a cold model load in the slowest engine). */
const CALL_TIMEOUT = 300_000;

/** The engines $LLMKG_BROWSERS names (default: all), checked, in the order given. */
export function selectedBrowsers(env = process.env) {
  const names = (env.LLMKG_BROWSERS || ENGINES.join(','))
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  for (const n of names) if (!ENGINES.includes(n)) throw new Error(`LLMKG_BROWSERS: unknown browser "${n}" (known: ${ENGINES.join(', ')})`);
  return names;
}

/**
 * Starts a browser with a fresh profile and one page.
 * @returns {Promise<Driver>}
 *
 * @typedef {object} Driver
 * @property {string} name       'chromium' | 'firefox' | 'webkit'
 * @property {string} version    product and version as the browser reports it
 * @property {string} userAgent
 * @property {(url: string) => Promise<void>} goto
 * @property {() => Promise<void>} reload
 * @property {<A, R>(fn: (arg: A) => R | Promise<R>, arg?: A) => Promise<R>} evaluate  runs fn in
 *   the page (its source is sent, so it cannot close over Node variables); JSON in and out
 * @property {(fn: Function, arg?: any, opts?: { timeout?: number, what?: string }) => Promise<any>} waitFor
 *   polls fn in the page until it returns a truthy value; rejects after the timeout
 * @property {(selector: string) => Promise<void>} click
 * @property {(selector: string, text: string) => Promise<void>} fill
 * @property {(selector: string, value: string) => Promise<void>} select
 * @property {(selector: string) => Promise<boolean>} isEnabled
 * @property {(path: string) => Promise<void>} screenshot
 * @property {string[] | null} requests  URLs the browser requested (page and workers), or null
 *   where the driver cannot see the network (WebDriver classic): count on the server's log then
 * @property {string[]} errors  uncaught page errors, where the driver reports them
 * @property {boolean} persistentStorage  false where the browser runs an ephemeral session whose
 *   Cache API forgets on reload (WebKitGTK's MiniBrowser, when LLMKG_WEBKIT_BROWSER names it)
 * @property {() => Promise<void>} close  closes the browser, removes the profile, ends every process
 */
export async function launch(name) {
  if (name === 'chromium') return chromium();
  if (name === 'firefox') return firefox();
  if (name === 'webkit') return webkit();
  throw new Error(`unknown browser ${name}`);
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, fail) => {
      timer = setTimeout(() => fail(new Error(`${what}: no answer in ${ms / 1000} s`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** An expression that runs `fn(arg)` in the page and gives its result as JSON text: every driver
 * then returns plain data the same way (WebDriver BiDi, for one, sends an object met twice as a
 * bare reference, which puppeteer turns into undefined). */
const jsonCall = (fn, arg) => `(async () => JSON.stringify(await (${fn})(${JSON.stringify(arg ?? null)})) ?? 'null')()`;
const fromJson = (text) => JSON.parse(text);

/** The common part: polling, built on `evaluate`. */
function driver(d) {
  d.waitFor = async (fn, arg, { timeout = 60_000, what = 'condition' } = {}) => {
    const end = Date.now() + timeout;
    for (;;) {
      const v = await d.evaluate(fn, arg);
      if (v) return v;
      if (Date.now() > end) throw new Error(`${d.name}: timed out after ${timeout / 1000} s waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  d.isEnabled ??= (sel) => d.evaluate((s) => !document.querySelector(s).disabled, sel);
  d.select ??= (sel, value) =>
    d.evaluate(
      ([s, v]) => {
        const e = document.querySelector(s);
        e.value = v;
        e.dispatchEvent(new Event('change', { bubbles: true }));
      },
      [sel, value],
    );
  return d;
}

async function chromium() {
  const b = await launchChromium();
  const page = await b.context.newPage();
  const requests = [];
  const errors = [];
  b.context.on('request', (r) => requests.push(r.url()));
  page.on('pageerror', (e) => errors.push(e.message));
  page.setDefaultTimeout(CALL_TIMEOUT);
  const userAgent = await page.evaluate(() => navigator.userAgent);
  return driver({
    name: 'chromium',
    version: `Chromium ${b.context.browser()?.version() ?? userAgent.match(/Chrome\/([\d.]+)/)?.[1]}`,
    userAgent,
    requests,
    errors,
    persistentStorage: true,
    goto: async (url) => void (await page.goto(url)),
    reload: async () => void (await page.reload()),
    evaluate: async (fn, arg) => fromJson(await page.evaluate(jsonCall(fn, arg))),
    click: (sel) => page.click(sel),
    fill: (sel, text) => page.fill(sel, text),
    select: async (sel, value) => void (await page.selectOption(sel, value)),
    isEnabled: (sel) => page.isEnabled(sel),
    screenshot: async (path) => void (await page.screenshot({ path, fullPage: true })),
    close: () => b.close(),
    page,
  });
}

async function firefox() {
  if (!existsSync(FIREFOX)) throw new Error(`${FIREFOX} is missing: apt-get install -y firefox-esr (or set LLMKG_FIREFOX)`);
  const { default: puppeteer } = await import('puppeteer-core');
  // puppeteer makes a fresh temporary profile and removes it on close.
  const browser = await puppeteer.launch({
    browser: 'firefox',
    executablePath: FIREFOX,
    headless: true,
    defaultViewport: VIEWPORT,
    protocolTimeout: CALL_TIMEOUT,
    // The profile's own warm-up traffic (updates, telemetry, safe browsing) off; none can leave
    // the machine anyway.
    extraPrefsFirefox: { 'app.update.enabled': false, 'browser.safebrowsing.malware.enabled': false, 'browser.safebrowsing.phishing.enabled': false, 'datareporting.policy.dataSubmissionEnabled': false },
  });
  try {
    const [page] = await browser.pages();
    page.setDefaultTimeout(CALL_TIMEOUT);
    const requests = [];
    const errors = [];
    page.on('request', (r) => requests.push(r.url()));
    page.on('pageerror', (e) => errors.push(e.message));
    return driver({
      name: 'firefox',
      version: `Firefox ${(await browser.version()).replace(/^firefox\//i, '')}`,
      userAgent: await browser.userAgent(),
      requests,
      errors,
      persistentStorage: true,
      goto: async (url) => void (await page.goto(url, { waitUntil: 'load' })),
      reload: async () => void (await page.reload({ waitUntil: 'load' })),
      evaluate: async (fn, arg) => fromJson(await page.evaluate(jsonCall(fn, arg))),
      click: (sel) => page.click(sel),
      fill: async (sel, text) => {
        await page.$eval(sel, (e) => (e.value = ''));
        await page.type(sel, text);
      },
      screenshot: async (path) => void (await page.screenshot({ path, fullPage: true })),
      close: () => browser.close(),
      page,
    });
  } catch (e) {
    await browser.close();
    throw e;
  }
}

/** Cleanups still due (process groups to end, profiles to remove), done when Node exits however
 * the test ends, in case close() never ran. */
const dueAtExit = new Set();
process.on('exit', () => [...dueAtExit].reverse().forEach((f) => f()));
/** `fn`, run once: now, or at exit if not called before. */
function once(fn) {
  const run = () => {
    if (!dueAtExit.delete(run)) return;
    try {
      fn();
    } catch {}
  };
  dueAtExit.add(run);
  return run;
}

/** A process group of our own (so the browser and its web processes end with the driver). */
function spawnGroup(cmd, args, opts) {
  const p = spawn(cmd, args, { ...opts, detached: true });
  p.killGroup = once(() => process.kill(-p.pid, 'SIGKILL'));
  return p;
}

/** An Xvfb server on a free display (-displayfd prints the number it picked). */
async function startXvfb() {
  const xvfb = spawnGroup('Xvfb', ['-displayfd', '3', '-screen', '0', `${VIEWPORT.width}x${VIEWPORT.height}x24`, '-nolisten', 'tcp'], { stdio: ['ignore', 'ignore', 'pipe', 'pipe'] });
  let stderr = '';
  xvfb.stderr.on('data', (c) => (stderr += c));
  const display = await withTimeout(
    new Promise((ok, fail) => {
      let out = '';
      xvfb.stdio[3].on('data', (c) => {
        out += c;
        if (out.includes('\n')) ok(`:${out.trim()}`);
      });
      xvfb.once('error', (e) => fail(new Error(`Xvfb: ${e.message} (apt-get install -y xvfb)`)));
      xvfb.once('exit', (code) => fail(new Error(`Xvfb exited (${code}): ${stderr.trim()}`)));
    }),
    20_000,
    'Xvfb',
  ).catch((e) => {
    xvfb.killGroup();
    throw e;
  });
  return { display, stop: () => xvfb.killGroup() };
}

async function freePort() {
  const { createServer } = await import('node:net');
  return new Promise((ok, fail) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
    s.once('error', fail);
  });
}

async function webkit() {
  if (!existsSync(WEBKIT_DRIVER)) throw new Error(`${WEBKIT_DRIVER} is missing: apt-get install -y webkit2gtk-driver gir1.2-webkit2-4.1 python3-gi xvfb`);
  if (!existsSync(WEBKIT_BROWSER)) throw new Error(`${WEBKIT_BROWSER} is missing (LLMKG_WEBKIT_BROWSER)`);
  const { Builder, By } = await import('selenium-webdriver');
  const cleanup = [];
  const stopAll = () => {
    for (const f of cleanup.reverse()) f();
    cleanup.length = 0;
  };
  try {
    // A display of our own unless one is given, so `npm run test:browser` needs no xvfb-run.
    let display = process.env.DISPLAY;
    if (!display) {
      const x = await startXvfb();
      cleanup.push(x.stop);
      display = x.display;
    }
    // A fresh profile, so a session never finds a previous run's models (XDG_* too: WebKitGTK
    // keeps some state there whatever the profile).
    const home = mkdtempSync(join(tmpdir(), 'llmkg-webkit-'));
    cleanup.push(once(() => rmSync(home, { recursive: true, force: true })));
    const port = await freePort();
    const env = { ...process.env, DISPLAY: display, XDG_DATA_HOME: join(home, 'data'), XDG_CACHE_HOME: join(home, 'cache'), XDG_CONFIG_HOME: join(home, 'config') };
    const wd = spawnGroup(WEBKIT_DRIVER, [`--port=${port}`], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    cleanup.push(() => wd.killGroup());
    let wdErr = '';
    wd.stderr.on('data', (c) => (wdErr = (wdErr + c).slice(-4000)));
    const url = `http://127.0.0.1:${port}`;
    await withTimeout(
      (async () => {
        for (;;) {
          if (wd.exitCode !== null) throw new Error(`WebKitWebDriver exited (${wd.exitCode}): ${wdErr.trim()}`);
          try {
            if ((await fetch(`${url}/status`)).ok) return;
          } catch {}
          await new Promise((r) => setTimeout(r, 100));
        }
      })(),
      20_000,
      'WebKitWebDriver',
    );
    const session = await withTimeout(
      new Builder()
        .usingServer(url)
        .withCapabilities({
          browserName: WEBKIT_BROWSER.endsWith('MiniBrowser') ? 'MiniBrowser' : 'WebKitGTK',
          'webkitgtk:browserOptions': { binary: WEBKIT_BROWSER, args: WEBKIT_BROWSER.endsWith('MiniBrowser') ? ['--automation'] : [`--profile=${join(home, 'profile')}`] },
        })
        .build(),
      60_000,
      'WebKitWebDriver: new session',
    );
    await session.manage().setTimeouts({ script: CALL_TIMEOUT, pageLoad: CALL_TIMEOUT, implicit: 0 });
    await session.manage().window().setRect({ x: 0, y: 0, ...VIEWPORT });
    const caps = await session.getCapabilities();
    // executeAsyncScript: the function's source and its argument go as JSON; errors come back
    // as values so the message survives.
    const evaluate = async (fn, arg) => {
      const r = await session.executeAsyncScript(
        `const done = arguments[arguments.length - 1];
         ${jsonCall(fn, arg)}.then((json) => done({ json }), (e) => done({ error: String(e && e.stack ? e.message + '\\n' + e.stack : e) }));`,
      );
      if ('error' in r) throw new Error(`in the page: ${r.error}`);
      return fromJson(r.json);
    };
    return driver({
      name: 'webkit',
      version: `${caps.get('browserName')} ${caps.get('browserVersion')}`,
      userAgent: await evaluate(() => navigator.userAgent),
      requests: null,
      errors: [],
      persistentStorage: !WEBKIT_BROWSER.endsWith('MiniBrowser'),
      goto: (u) => session.get(u),
      reload: () => session.navigate().refresh(),
      evaluate,
      click: async (sel) => (await session.findElement(By.css(sel))).click(),
      fill: async (sel, text) => {
        const e = await session.findElement(By.css(sel));
        await e.clear();
        await e.sendKeys(text);
      },
      screenshot: async (path) => writeFileSync(path, Buffer.from(await session.takeScreenshot(), 'base64')),
      close: async () => {
        await withTimeout(session.quit(), 20_000, 'WebKitWebDriver: end session').catch(() => {});
        stopAll();
      },
    });
  } catch (e) {
    stopAll();
    throw e;
  }
}
