// The worker pool in headless Chromium (demo/pool.html, `window.llmkgPool`): two module Web
// Workers; concurrent loads of one id make one download (counted by the server and by the
// browser's request log) and one upload per worker; a split batch gives the vectors of one
// worker; the embedding cache answers a repeat without a worker call; an aborted generation
// replaces one worker while the other answers "Paris".
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../demo/server.js';
import { launch } from './chromium.js';
import { MINILM, SMOLLM2, requireModels } from './helpers.js';

requireModels();

let server;
let browser;
let page;
const modelRequests = []; // model-file requests the page made (any frame or worker)
const served = (m) => server.requests.filter((p) => p.startsWith(`/models/${m.dir}/`)).length;

before(async () => {
  server = await startServer({ port: 0 });
  browser = await launch();
  browser.context.on('request', (r) => {
    if (new URL(r.url()).pathname.startsWith('/models/')) modelRequests.push(r.url());
  });
  page = await browser.context.newPage();
  page.on('pageerror', (e) => console.error(`page error: ${e.message}`));
  await page.goto(`${server.url}/demo/pool.html`);
  await page.waitForFunction(() => window.llmkgPool, null, { timeout: 60_000 });
  await page.evaluate(async () => {
    const { Engine } = window.llmkgPool;
    window.pool = await Engine.create({ workers: 2, embeddingCache: 256 });
    window.events = [];
    for (const type of ['respawn', 'reload']) window.pool.addEventListener(type, (e) => window.events.push({ type, ...e.detail }));
  });
});

after(async () => {
  await browser?.close();
  await server?.close();
});

test('two concurrent loadModel calls for one id: one download of each file, one upload per worker', { timeout: 180_000 }, async () => {
  const r = await page.evaluate(async () => {
    const { pool } = window;
    const { spec, MINILM } = window.llmkgPool;
    const a = pool.loadModel(spec(MINILM));
    const b = pool.loadModel(spec(MINILM));
    const progress = [];
    const c = pool.loadModel(spec(MINILM), { onProgress: (p) => progress.push(p) });
    await Promise.all([a, b, c]);
    const s = pool.stats().pool;
    return { same: a === b, workers: s.workers.map((w) => [w.uploads, w.calls.loadModel, w.models]), fileReads: s.fileReads, inWorker: pool.inWorker, workersN: pool.workers, lastProgress: progress.at(-1) };
  });
  assert.equal(r.same, true);
  assert.equal(r.inWorker, true);
  assert.equal(r.workersN, 2);
  assert.equal(served(MINILM), MINILM.files.length, 'requests the server saw');
  assert.equal(modelRequests.length, MINILM.files.length, 'model-file requests the page and its workers made');
  assert.equal(r.fileReads, MINILM.files.length);
  assert.deepEqual(r.workers, [
    [1, 1, [MINILM.id]],
    [1, 1, [MINILM.id]],
  ]);
  assert.equal(r.lastProgress.phase, 'finish');
  assert.equal(r.lastProgress.fromCache, false);
});

test('a batch of 32 split across two workers gives exactly the vectors of one worker; a repeat comes from the cache', { timeout: 180_000 }, async () => {
  const r = await page.evaluate(async () => {
    const { pool } = window;
    const { Engine, spec, MINILM, SENTENCES } = window.llmkgPool;
    const single = await Engine.create({ workers: 1 });
    try {
      await single.loadModel(spec(MINILM)); // from the Cache API the pool's load filled
      const calls = () => pool.stats().pool.workers.map((w) => w.calls.embed ?? 0);
      const c0 = calls();
      const [one, two] = await Promise.all([single.embed(SENTENCES), pool.embed(SENTENCES)]);
      const c1 = calls();
      const hits = pool.stats().embeddingCache.hits;
      const again = await pool.embed(SENTENCES);
      const c2 = calls();
      const same = (x, y) => x.length === y.length && x.every((v, i) => v.length === y[i].length && v.every((f, j) => f === y[i][j]));
      return {
        n: two.length,
        dim: two[0].length,
        identical: same(one, two),
        repeatIdentical: same(one, again),
        split: c1.map((n, i) => n - c0[i]),
        repeatCalls: c2.map((n, i) => n - c1[i]),
        hits: pool.stats().embeddingCache.hits - hits,
      };
    } finally {
      single.close();
    }
  });
  assert.equal(r.n, 32);
  assert.equal(r.dim, 384);
  assert.deepEqual(r.split, [1, 1], 'each worker embedded one slice');
  assert.equal(r.identical, true, 'workers: 2 vectors equal workers: 1 vectors');
  assert.deepEqual(r.repeatCalls, [0, 0], 'no worker call for the repeat');
  assert.equal(r.hits, 32);
  assert.equal(r.repeatIdentical, true);
  assert.equal(modelRequests.length, MINILM.files.length, 'the single worker loaded from the Cache API');
});

test('an aborted generation replaces only its worker; the other answers "Paris" meanwhile', { timeout: 240_000 }, async () => {
  const r = await page.evaluate(async () => {
    const { pool, events } = window;
    const { spec, SMOLLM2 } = window.llmkgPool;
    await pool.loadModel(spec(SMOLLM2));
    const stats = () => pool.stats().pool;
    const reloaded = new Promise((resolve) => pool.addEventListener('reload', (e) => resolve(e.detail), { once: true }));
    const ac = new AbortController();
    const story = pool.stream({ prompt: 'Once upon a time', maxTokens: 2000 }, { signal: ac.signal });
    const busy = stats().workers.findIndex((w) => w.inFlight === 1);
    const chat = pool.chat('What is the capital of France?', { maxTokens: 48 });
    let pieces = 0;
    let error = null;
    try {
      for await (const _ of story) if (++pieces === 2) ac.abort();
    } catch (e) {
      error = { name: e.name, respawned: e.respawned, lostModels: e.lostModels };
    }
    // Sent while the new worker has no models yet: the other one takes it.
    const duringCall = pool.chat('What is the capital of France?', { maxTokens: 48 });
    const answer = (await chat).text;
    const during = (await duringCall).text;
    const reload = await reloaded;
    const s = stats();
    return { busy, error, answer, during, reload, respawn: events.find((e) => e.type === 'respawn'), respawns: s.workers.map((w) => w.respawns), models: s.workers.map((w) => w.models), chats: s.workers.map((w) => w.calls.chat ?? 0) };
  });
  const other = 1 - r.busy;
  assert.deepEqual(r.error, { name: 'AbortError', respawned: true, lostModels: [] });
  assert.match(r.answer, /Paris/);
  assert.match(r.during, /Paris/);
  assert.equal(r.chats[other], 2, 'both chats ran on the worker that was not aborted');
  assert.equal(r.respawn.reason, 'abort');
  assert.equal(r.respawn.worker, r.busy);
  assert.deepEqual(r.reload, { worker: r.busy, models: [MINILM.id, SMOLLM2.id], error: null });
  assert.deepEqual(r.respawns[r.busy], 1);
  assert.deepEqual(r.respawns[other], 0);
  assert.deepEqual(r.models, [
    [MINILM.id, SMOLLM2.id],
    [MINILM.id, SMOLLM2.id],
  ]);
  // The reload came from the Cache API: SmolLM2 crossed the network once.
  assert.equal(served(SMOLLM2), SMOLLM2.files.length);
});
