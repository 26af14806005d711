// The demo page end to end, the same test in every browser engine (test/browsers.js):
// Chromium (playwright-core), Firefox ESR (WebDriver BiDi, puppeteer-core) and WebKitGTK
// (WebKitWebDriver, selenium-webdriver). In each: both models load with progress, an answer
// streams from the worker while the page keeps running, the embeddings are the very vectors Node
// computes with the same component, a reload loads the models from the Cache API without a
// single model-file request, and an abort replaces the worker.
//   LLMKG_BROWSERS=chromium,firefox,webkit   which engines (default all three)
//   LLMKG_SIMD=0                              the page asks for the no-SIMD build ({ simd: false })
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { startServer } from '../demo/server.js';
import { Engine } from '../src/index.js';
import { launch, selectedBrowsers } from './browsers.js';
import { MINILM, SMOLLM2, cosine, modelSpec, pkgRoot, requireModels } from './helpers.js';

const BROWSERS = selectedBrowsers();
const SIMD = process.env.LLMKG_SIMD !== '0';
const ENGINE_OPTIONS = SIMD ? {} : { simd: false };
const DEMO_PATH = SIMD ? '/' : '/?simd=0';
const LOAD_TIMEOUT = 240_000;
const TEST_TIMEOUT = 300_000;
const QUESTION = 'What is the capital of France?';

requireModels();

let server;
let reference; // the same component in Node, in-process: what every browser must answer

before(async () => {
  server = await startServer({ port: 0 });
  reference = await Engine.create(ENGINE_OPTIONS);
  assert.equal((await reference.buildInfo()).simd128, SIMD, `Node: Engine.create(${JSON.stringify(ENGINE_OPTIONS)}) gave the other build`);
  await reference.loadModel(modelSpec(SMOLLM2));
  await reference.loadModel(modelSpec(MINILM));
});

after(async () => {
  await reference?.close();
  await server?.close();
});

// One server for every browser: each suite counts from where the previous one left off.
const serverModelRequests = () => server.requests.filter((p) => p.startsWith('/models/'));
const isModelUrl = (u) => new URL(u).pathname.startsWith('/models/');

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

for (const name of BROWSERS) {
  describe(name, () => {
    /** @type {import('./browsers.js').Driver} */
    let page;

    before(
      async () => {
        page = await launch(name);
        console.log(`${name}: ${page.version} (${page.userAgent})`);
      },
      { timeout: 120_000 },
    );

    after(async () => {
      if (page?.errors.length) console.error(`${name}: page errors:\n  ${page.errors.join('\n  ')}`);
      await page?.close();
    });

    async function loadModelsFromPage() {
      await page.waitFor(() => !!window.llmkgDemo?.engine || document.getElementById('build-badge').textContent.startsWith('failed'), null, { what: 'the engine' });
      const badge = await page.evaluate(() => document.getElementById('build-badge').textContent);
      assert.doesNotMatch(badge, /^failed/, `${name}: the engine did not start`);
      await page.click('#load-models');
      await page.waitFor(() => Object.keys(window.llmkgDemo.loaded).length === 2 || !!document.querySelector('.model.failed'), null, { timeout: LOAD_TIMEOUT, what: 'both models' });
      return page.evaluate(() => ({
        loaded: window.llmkgDemo.loaded,
        progress: window.llmkgDemo.progress,
        failed: [...document.querySelectorAll('.model.failed')].map((e) => e.textContent),
      }));
    }

    test('the demo page loads both models with progress events', { timeout: TEST_TIMEOUT }, async () => {
      const before = serverModelRequests().length;
      await page.goto(`${server.url}${DEMO_PATH}`);
      const t0 = Date.now();
      const { loaded, progress, failed } = await loadModelsFromPage();
      assert.deepEqual(failed, []);
      console.log(`${name}: both models loaded cold in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      assert.deepEqual(Object.keys(loaded).sort(), [MINILM.id, SMOLLM2.id]);
      checkProgress(progress, SMOLLM2.id, false);
      checkProgress(progress, MINILM.id, false);
      // Each file crossed the network once, and (where the driver sees the network) the page's
      // request log, worker requests included, saw it.
      assert.equal(serverModelRequests().length - before, SMOLLM2.files.length + MINILM.files.length);
      if (page.requests) assert.equal(page.requests.filter(isModelUrl).length, SMOLLM2.files.length + MINILM.files.length);
      assert.equal(await page.evaluate(() => window.llmkgDemo.engine.inWorker), true);
      const build = await page.evaluate(() => window.llmkgDemo.engine.buildInfo());
      console.log(`${name}: component SIMD128 ${build.simd128 ? 'on' : 'off'}`);
      assert.equal(build.simd128, SIMD, `the page got the ${build.simd128 ? 'SIMD' : 'no-SIMD'} build (LLMKG_SIMD=${process.env.LLMKG_SIMD ?? ''})`);
    });

    test('an answer containing "Paris" streams from the worker while the main thread keeps ticking', { timeout: TEST_TIMEOUT }, async () => {
      await page.evaluate(() => {
        window.__ticks = [];
        window.__timer = setInterval(() => window.__ticks.push(performance.now()), 10);
      });
      await page.fill('#chat-input', QUESTION);
      const t0 = await page.evaluate(() => performance.now());
      await page.click('#chat-send');
      await page.waitFor(() => !!document.querySelector('.msg.assistant[data-done], .msg.error'), null, { what: 'the answer' });
      const r = await page.evaluate((t0) => {
        clearInterval(window.__timer);
        const end = performance.now();
        const ticks = window.__ticks.filter((t) => t >= t0 && t <= end);
        let maxGap = 0;
        for (let i = 1; i < ticks.length; i++) maxGap = Math.max(maxGap, ticks[i] - ticks[i - 1]);
        const bubble = document.querySelector('.msg.assistant');
        return { error: document.querySelector('.msg.error')?.textContent ?? null, text: bubble?.firstChild.textContent, meta: bubble?.querySelector('.meta')?.textContent, ms: end - t0, ticks: ticks.length, maxGap };
      }, t0);
      assert.equal(r.error, null);
      console.log(`${name}: generation ${r.ms.toFixed(0)} ms (${r.meta}); main-thread timer ticked ${r.ticks} times, longest gap ${r.maxGap.toFixed(0)} ms`);
      assert.match(r.text, /Paris/);
      // Same component, same greedy decode: the very text the component gives in Node.
      const expected = await reference.chat([{ role: 'user', content: QUESTION }], { maxTokens: 256 });
      assert.equal(r.text, expected.text);
      // A 10 ms timer on a free main thread ticks ~ms/10 times; decoding on the main thread would
      // freeze it for the whole generation.
      assert.ok(r.ticks >= Math.max(10, (0.4 * r.ms) / 10), `only ${r.ticks} ticks in ${r.ms.toFixed(0)} ms`);
      assert.ok(r.maxGap < 250, `the main thread stalled for ${r.maxGap.toFixed(0)} ms`);
    });

    test('the Similarity card shows the cosines of the vectors Node computes', { timeout: TEST_TIMEOUT }, async () => {
      await page.click('#embed-run');
      await page.waitFor(() => !!document.querySelector('#embed-out table, #embed-out .error'), null, { what: 'the similarity table' });
      const r = await page.evaluate(async () => {
        const sentences = document.getElementById('embed-input').value.split('\n').map((s) => s.trim()).filter(Boolean);
        const cells = [...document.querySelectorAll('#embed-out tr')].slice(1).map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent));
        const vectors = (await window.llmkgDemo.engine.embed(sentences)).map((v) => Array.from(v));
        return { sentences, cells, vectors };
      });
      assert.equal(r.sentences.length, 5);
      const expected = await reference.embed(r.sentences);
      let maxDiff = 0;
      r.vectors.forEach((v, i) => {
        assert.equal(v.length, 384);
        assert.ok(cosine(v, expected[i]) > 0.99999, `${name}: sentence ${i}: cosine ${cosine(v, expected[i])} to Node's vector`);
        for (let j = 0; j < v.length; j++) maxDiff = Math.max(maxDiff, Math.abs(v[j] - expected[i][j]));
      });
      console.log(`${name}: 5 embeddings, largest difference to Node's ${maxDiff.toExponential(2)}`);
      // The table is what the page computed: cat/kitten, as Node has it, and above cat/stocks.
      assert.equal(r.cells[0][1], cosine(expected[0], expected[1]).toFixed(2));
      assert.ok(Number(r.cells[0][1]) > Number(r.cells[0][4]), `cat~kitten ${r.cells[0][1]} vs cat~stocks ${r.cells[0][4]}`);
      await page.waitFor(() => document.querySelectorAll('#mem-models li:not(.muted)').length === 2, null, { what: 'the memory panel' });
      mkdirSync(join(pkgRoot, 'test-results'), { recursive: true });
      await page.screenshot(join(pkgRoot, 'test-results', `demo-${name}.png`));
    });

    test('after a reload the models load from the Cache API with zero model-file requests (an ephemeral session: from the network again)', { timeout: TEST_TIMEOUT }, async () => {
      if (!page.persistentStorage) console.log(`${name}: an ephemeral session: its Cache API forgets on reload, so the files must come from the network again`);
      const before = { server: serverModelRequests().length, page: page.requests?.filter(isModelUrl).length };
      await page.reload();
      const t0 = Date.now();
      const { loaded, progress, failed } = await loadModelsFromPage();
      assert.deepEqual(failed, []);
      console.log(`${name}: both models loaded ${page.persistentStorage ? 'from the cache' : 'again from the network (ephemeral session)'} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      assert.deepEqual(Object.keys(loaded).sort(), [MINILM.id, SMOLLM2.id]);
      // An ephemeral session (MiniBrowser) has emptied the cache: then the fallback is the
      // network, every file once more, and the page works the same.
      const fromCache = page.persistentStorage;
      checkProgress(progress, SMOLLM2.id, fromCache);
      checkProgress(progress, MINILM.id, fromCache);
      const expected = fromCache ? 0 : SMOLLM2.files.length + MINILM.files.length;
      assert.equal(serverModelRequests().length - before.server, expected, 'model files requested from the server');
      if (page.requests) assert.equal(page.requests.filter(isModelUrl).length - before.page, expected, 'model-file requests made by the page');
    });

    test('an AbortSignal terminates the Web Worker; a new one starts and the page is told what was lost', { timeout: TEST_TIMEOUT }, async () => {
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
        return { pieces, error, events: events.map((e) => ({ reason: e.reason, lostModels: e.lostModels })), models, build: await engine.buildInfo() };
      });
      assert.equal(r.pieces, 3);
      assert.deepEqual(r.error, { name: 'AbortError', code: 'aborted', respawned: true, lostModels: [SMOLLM2.id, MINILM.id] });
      assert.deepEqual(r.events.map((e) => [e.reason, e.lostModels]), [['abort', [SMOLLM2.id, MINILM.id]]]);
      assert.deepEqual(r.models, []);
      // The build the page asked for (LLMKG_SIMD=0: the no-SIMD component).
      assert.equal(r.build.simd128, SIMD);
      // The page shows the models as unloaded and offers to load them again.
      assert.equal(await page.isEnabled('#load-models'), true);
    });

    test('the chat-model picker loads Gemma 3 270M, which continues the Eiffel Tower with Paris', { timeout: TEST_TIMEOUT }, async () => {
      await page.select('#chat-model', 'gemma3-270m');
      await page.click('#load-models');
      await page.waitFor(() => !!(window.llmkgDemo.loaded['gemma3-270m'] || document.querySelector('.model.failed[data-model="gemma3-270m"]')), null, { timeout: LOAD_TIMEOUT, what: 'Gemma' });
      const r = await page.evaluate(async () => {
        const { engine, loaded } = window.llmkgDemo;
        if (!loaded['gemma3-270m']) return { failed: document.querySelector('.model[data-model="gemma3-270m"]').textContent };
        const c = await engine.generate({ model: 'gemma3-270m', prompt: 'The Eiffel Tower is located in the city of', maxTokens: 8 });
        return { info: loaded['gemma3-270m'], text: c.text, chatHeader: document.getElementById('chat-model-name').textContent };
      });
      assert.equal(r.failed, undefined);
      console.log(`${name}: gemma3-270m loaded in ${r.info.loadSeconds.toFixed(1)} s (${r.info.quantization}); continuation ${JSON.stringify(r.text)}`);
      assert.equal(r.info.architecture, 'gemma3');
      assert.equal(r.chatHeader, 'Gemma 3 270M (base)');
      assert.match(r.text, /^\s*Paris/);
    });
  });
}
