// The demo page in headless Chromium (Debian's, through playwright-core): both models load with
// progress, an answer streams from the worker while the page keeps running, and a reload loads
// the models again from the Cache API without a single model-file request.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { startServer } from '../demo/server.js';
import { launch } from './chromium.js';
import { MINILM, SMOLLM2, pkgRoot, requireModels } from './helpers.js';

const SCREENSHOT = join(pkgRoot, 'test-results', 'demo.png');
const LOAD_TIMEOUT = 180_000;

requireModels();

let server;
let browser;
let page;
const modelRequests = []; // model-file requests the page made (any frame or worker)

before(async () => {
  server = await startServer({ port: 0 });
  browser = await launch();
  browser.context.on('request', (r) => {
    if (new URL(r.url()).pathname.startsWith('/models/')) modelRequests.push(r.url());
  });
  page = await browser.context.newPage();
  page.on('pageerror', (e) => console.error(`page error: ${e.message}`));
});

after(async () => {
  await browser?.close();
  await server?.close();
});

const serverModelRequests = () => server.requests.filter((p) => p.startsWith('/models/'));

async function loadModelsFromPage() {
  await page.waitForFunction(() => window.llmkgDemo?.engine, null, { timeout: 60_000 });
  await page.click('#load-models');
  await page.waitForFunction(() => Object.keys(window.llmkgDemo.loaded).length === 2 || document.querySelector('.model.failed'), null, { timeout: LOAD_TIMEOUT });
  return page.evaluate(() => ({ loaded: window.llmkgDemo.loaded, progress: window.llmkgDemo.progress }));
}

function checkProgress(progress, id, fromCache) {
  const mine = progress.filter((p) => p.model === id);
  const downloads = mine.filter((p) => p.phase === 'download');
  assert.ok(downloads.length >= 3, `${id}: ${downloads.length} progress events`);
  const total = downloads[0].total;
  assert.ok(total > 50e6, `${id}: total ${total}`);
  for (let i = 1; i < downloads.length; i++) assert.ok(downloads[i].loaded >= downloads[i - 1].loaded, `${id}: progress went backwards`);
  assert.equal(downloads.at(-1).loaded, total);
  assert.ok(downloads.every((p) => p.fromCache === fromCache), `${id}: every file ${fromCache ? 'from the cache' : 'from the network'}`);
  assert.ok(mine.some((p) => p.phase === 'finish'), `${id}: a finish event`);
}

test('the demo page loads both models with progress events', async () => {
  await page.goto(`${server.url}/`);
  const { loaded, progress } = await loadModelsFromPage();
  assert.deepEqual(Object.keys(loaded).sort(), [MINILM.id, SMOLLM2.id]);
  checkProgress(progress, SMOLLM2.id, false);
  checkProgress(progress, MINILM.id, false);
  // Each file crossed the network once, and the page's request log (worker requests included) saw it.
  assert.equal(serverModelRequests().length, SMOLLM2.files.length + MINILM.files.length);
  assert.equal(modelRequests.length, SMOLLM2.files.length + MINILM.files.length);
  assert.equal(await page.evaluate(() => window.llmkgDemo.engine.inWorker), true);
});

test('an answer containing "Paris" streams from the worker while the main thread keeps ticking', async () => {
  await page.evaluate(() => {
    window.__ticks = [];
    window.__timer = setInterval(() => window.__ticks.push(performance.now()), 10);
  });
  await page.fill('#chat-input', 'What is the capital of France?');
  const t0 = await page.evaluate(() => performance.now());
  await page.click('#chat-send');
  await page.waitForSelector('.msg.assistant[data-done]', { timeout: 60_000 });
  const r = await page.evaluate((t0) => {
    clearInterval(window.__timer);
    const end = performance.now();
    const ticks = window.__ticks.filter((t) => t >= t0 && t <= end);
    let maxGap = 0;
    for (let i = 1; i < ticks.length; i++) maxGap = Math.max(maxGap, ticks[i] - ticks[i - 1]);
    return { text: document.querySelector('.msg.assistant').textContent, ms: end - t0, ticks: ticks.length, maxGap };
  }, t0);
  console.log(`generation ${r.ms.toFixed(0)} ms; main-thread timer ticked ${r.ticks} times, longest gap ${r.maxGap.toFixed(0)} ms`);
  assert.match(r.text, /Paris/);
  // A 10 ms timer on a free main thread ticks ~ms/10 times; decoding on the main thread would
  // freeze it for the whole generation.
  assert.ok(r.ticks >= Math.max(10, (0.4 * r.ms) / 10), `only ${r.ticks} ticks in ${r.ms.toFixed(0)} ms`);
  assert.ok(r.maxGap < 250, `the main thread stalled for ${r.maxGap.toFixed(0)} ms`);

  await page.click('#embed-run');
  await page.waitForSelector('#embed-out table');
  await page.waitForTimeout(1100); // one memory-panel refresh
  mkdirSync(join(pkgRoot, 'test-results'), { recursive: true });
  await page.screenshot({ path: SCREENSHOT, fullPage: true });
});

test('after a reload the models load from the Cache API with zero model-file requests', async () => {
  const before = { server: serverModelRequests().length, page: modelRequests.length };
  await page.reload();
  await page.evaluate(() => window.llmkgDemo.ready);
  const { loaded, progress } = await loadModelsFromPage();
  assert.deepEqual(Object.keys(loaded).sort(), [MINILM.id, SMOLLM2.id]);
  checkProgress(progress, SMOLLM2.id, true);
  checkProgress(progress, MINILM.id, true);
  assert.equal(serverModelRequests().length - before.server, 0, 'model files requested from the server');
  assert.equal(modelRequests.length - before.page, 0, 'model-file requests made by the page');
});

test('an AbortSignal terminates the Web Worker; a new one starts and the page is told what was lost', async () => {
  const r = await page.evaluate(async () => {
    const { engine } = window.llmkgDemo;
    const events = [];
    engine.addEventListener('respawn', (e) => events.push(e.detail));
    const ac = new AbortController();
    let pieces = 0;
    let error = null;
    try {
      for await (const _ of engine.stream({ prompt: 'Once upon a time', maxTokens: 2000 }, { signal: ac.signal })) if (++pieces === 3) ac.abort();
    } catch (e) {
      error = { name: e.name, code: e.code, respawned: e.respawned, lostModels: e.lostModels };
    }
    const models = await engine.listModels();
    return { pieces, error, events, models, build: await engine.buildInfo() };
  });
  assert.equal(r.pieces, 3);
  assert.deepEqual(r.error, { name: 'AbortError', code: 'aborted', respawned: true, lostModels: [SMOLLM2.id, MINILM.id] });
  assert.deepEqual(r.events.map((e) => [e.reason, e.lostModels]), [['abort', [SMOLLM2.id, MINILM.id]]]);
  assert.deepEqual(r.models, []);
  assert.equal(r.build.simd128, true);
  // The page shows the models as unloaded and offers to load them again.
  assert.equal(await page.isEnabled('#load-models'), true);
});

test('the chat-model picker loads Gemma 3 270M, which continues the Eiffel Tower with Paris', async () => {
  await page.selectOption('#chat-model', 'gemma3-270m');
  await page.click('#load-models');
  await page.waitForFunction(() => window.llmkgDemo.loaded['gemma3-270m'] || document.querySelector('.model.failed'), null, { timeout: LOAD_TIMEOUT });
  const r = await page.evaluate(async () => {
    const { engine, loaded } = window.llmkgDemo;
    const c = await engine.generate({ model: 'gemma3-270m', prompt: 'The Eiffel Tower is located in the city of', maxTokens: 8 });
    return { info: loaded['gemma3-270m'], text: c.text, chatHeader: document.getElementById('chat-model-name').textContent };
  });
  console.log(`gemma3-270m loaded in ${r.info.loadSeconds.toFixed(1)} s (${r.info.quantization}); continuation ${JSON.stringify(r.text)}`);
  assert.equal(r.info.architecture, 'gemma3');
  assert.equal(r.chatHeader, 'Gemma 3 270M (base)');
  assert.match(r.text, /^\s*Paris/);
});
