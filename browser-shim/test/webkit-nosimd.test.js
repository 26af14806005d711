// A browser without SIMD128, for real: WebKitGTK (Safari's engine, Debian's MiniBrowser driven by
// WebKitWebDriver) with JavaScriptCore's `useWasmSIMD` option off (JSC_useWasmSIMD=false).
// There the SIMD component does not even compile, so `Engine.create()` must pick the no-SIMD
// one by itself; the demo page then loads both models and answers "Paris". The same browser
// with SIMD on picks the SIMD build (the control).
// Needs a display: `xvfb-run -a node --test test/webkit-nosimd.test.js` (npm run test:webkit-nosimd).
// Plain WebDriver over fetch (no client library).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { startServer } from '../demo/server.js';
import { MINILM, SMOLLM2, requireModels } from './helpers.js';

const DRIVER = process.env.LLMKG_WEBKIT_DRIVER || '/usr/bin/WebKitWebDriver';
const MINIBROWSER = process.env.LLMKG_MINIBROWSER || '/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser';
const LOAD_TIMEOUT = 240_000;

requireModels();
for (const p of [DRIVER, MINIBROWSER]) if (!existsSync(p)) throw new Error(`${p} is missing: apt-get install -y webkit2gtk-driver (or set LLMKG_WEBKIT_DRIVER / LLMKG_MINIBROWSER)`);
if (!process.env.DISPLAY) throw new Error('no $DISPLAY: run under xvfb-run -a');

const freePort = () =>
  new Promise((resolve, reject) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });

/** WebKitWebDriver with `env` (JSC options reach the web process through it) and one session. */
async function openWebKit(env) {
  const port = await freePort();
  const driver = spawn(DRIVER, [`--port=${port}`], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
  const base = `http://127.0.0.1:${port}`;
  const request = async (method, path, body) => {
    const res = await fetch(base + path, { method, body: body && JSON.stringify(body), headers: { 'content-type': 'application/json' }, signal: AbortSignal.timeout(LOAD_TIMEOUT + 60_000) });
    const json = await res.json();
    if (!res.ok) throw new Error(`WebDriver ${method} ${path}: ${json.value?.error}: ${json.value?.message}`);
    return json.value;
  };
  let s;
  try {
    for (let i = 0; ; i++) {
      try {
        await fetch(`${base}/status`);
        break;
      } catch (e) {
        if (i > 100) throw new Error(`WebKitWebDriver did not start: ${e.message}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    const { sessionId } = await request('POST', '/session', {
      capabilities: { alwaysMatch: { browserName: 'MiniBrowser', 'webkitgtk:browserOptions': { binary: MINIBROWSER, args: ['--automation'] } } },
    });
    s = `/session/${sessionId}`;
    await request('POST', `${s}/timeouts`, { script: LOAD_TIMEOUT });
  } catch (e) {
    if (s) await request('DELETE', s).catch(() => {});
    driver.kill();
    throw e;
  }
  return {
    goto: (url) => request('POST', `${s}/url`, { url }),
    /** Runs `fn(arg)` (may be async) in the page; returns its JSON-able result or throws its error. */
    run: async (fn, arg) => {
      const script = `const done = arguments[arguments.length - 1];
        Promise.resolve((${fn})(arguments[0])).then((value) => done({ value }), (e) => done({ error: String(e && e.stack || e) }));`;
      const r = await request('POST', `${s}/execute/async`, { script, args: [arg ?? null] });
      if (r.error) throw new Error(`in the page: ${r.error}`);
      return r.value;
    },
    close: async () => {
      await request('DELETE', s).catch(() => {});
      driver.kill();
    },
  };
}

let server;
before(async () => {
  server = await startServer({ port: 0 });
});
after(() => server?.close());

/** In the page: waits for the demo's engine (WebDriver's navigation can return before the
 * page's module script has run), then reports what it picked. */
const whenReady = async () => {
  while (!window.llmkgDemo) await new Promise((r) => setTimeout(r, 50));
  await window.llmkgDemo.ready;
  const { Engine } = await import('/src/index.js');
  const e = window.llmkgDemo.engine;
  return { capabilities: Engine.capabilities(), build: e.build, info: await e.buildInfo(), userAgent: navigator.userAgent };
};

test('WebKit without SIMD128: Engine.create() picks the no-SIMD build, and the demo answers "Paris"', { timeout: 2 * LOAD_TIMEOUT }, async () => {
  const wk = await openWebKit({ JSC_useWasmSIMD: 'false' });
  try {
    await wk.goto(`${server.url}/`);
    const r = await wk.run(whenReady);
    console.log(`${r.userAgent}: ${JSON.stringify(r.capabilities)}`);
    assert.equal(r.capabilities.simd128, false);
    assert.equal(r.capabilities.build, 'nosimd');
    assert.equal(r.build, 'nosimd');
    assert.equal(r.info.simd128, false);

    const answer = await wk.run(
      async ({ smollm2, minilm }) => {
        const { engine } = window.llmkgDemo;
        const spec = (m) => ({ id: m.id, kind: m.kind, files: m.files.map((name) => ({ name, url: `/models/${m.dir}/${name}` })) });
        await engine.loadModel(spec(smollm2));
        await engine.loadModel(spec(minilm));
        const chat = await engine.chat('What is the capital of France?', { maxTokens: 48 });
        const [a, b, c] = await engine.embed(['The cat sits on the mat.', 'A kitten rests on a rug.', 'Quantum chromodynamics describes the strong force.']);
        const dot = (x, y) => x.reduce((s, v, i) => s + v * y[i], 0);
        return { text: chat.text, similar: dot(a, b), unrelated: dot(a, c) };
      },
      { smollm2: SMOLLM2, minilm: MINILM },
    );
    console.log(`WebKit, no SIMD: ${JSON.stringify(answer)}`);
    assert.match(answer.text, /Paris/);
    assert.ok(answer.similar > answer.unrelated + 0.3, JSON.stringify(answer));
  } finally {
    await wk.close();
  }
});

test('the same WebKit with SIMD128 picks the SIMD build', { timeout: LOAD_TIMEOUT }, async () => {
  const wk = await openWebKit({});
  try {
    await wk.goto(`${server.url}/`);
    const r = await wk.run(whenReady);
    assert.equal(r.capabilities.simd128, true);
    assert.equal(r.build, 'simd');
    assert.equal(r.info.simd128, true);
  } finally {
    await wk.close();
  }
});
