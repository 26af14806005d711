// Headless Chromium: Engine.capabilities() on a plain and on a cross-origin isolated page, and the
// demo page on the component built without SIMD128 (`?simd=0`), checked against the SIMD build
// in the same page: same greedy text, embeddings within cosine 0.9999.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../demo/server.js';
import { launch } from './chromium.js';
import { MINILM, SMOLLM2, requireModels } from './helpers.js';

const LOAD_TIMEOUT = 180_000;

requireModels();

let server;
let browser;

before(async () => {
  server = await startServer({ port: 0 });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.close();
});

/** Engine.capabilities() in a page of `url` (the demo page, which imports the API). */
async function capabilitiesAt(url) {
  const page = await browser.context.newPage();
  try {
    await page.goto(url);
    return await page.evaluate(async () => (await import('/src/index.js')).Engine.capabilities());
  } finally {
    await page.close();
  }
}

test('capabilities: SIMD128 and relaxed SIMD, a module worker, memory and cores; no SharedArrayBuffer unless isolated', { timeout: 60_000 }, async () => {
  const c = await capabilitiesAt(`${server.url}/`);
  console.log(`chromium capabilities: ${JSON.stringify(c)}`);
  assert.equal(c.runtime, 'browser');
  assert.equal(c.simd128, true);
  assert.equal(c.relaxedSimd, true); // shipped in Chromium since 114
  assert.equal(c.build, 'simd');
  assert.equal(c.worker, 'module-worker');
  assert.equal(c.sharedArrayBuffer, false);
  assert.equal(c.crossOriginIsolated, false);
  assert.equal(typeof c.webgpu, 'boolean');
  assert.ok(c.deviceMemory > 0, `deviceMemory ${c.deviceMemory}`); // 127.0.0.1 is a secure context
  assert.ok(c.hardwareConcurrency >= 1);

  const isolated = await startServer({ port: 0, isolated: true });
  try {
    const i = await capabilitiesAt(`${isolated.url}/`);
    assert.equal(i.crossOriginIsolated, true);
    assert.equal(i.sharedArrayBuffer, true);
  } finally {
    await isolated.close();
  }
});

test('the demo page on the no-SIMD build answers "Paris", and agrees with the SIMD build token for token', { timeout: 2 * LOAD_TIMEOUT + 240_000 }, async () => {
  const page = await browser.context.newPage();
  page.on('pageerror', (e) => console.error(`page error: ${e.message}`));
  try {
    await page.goto(`${server.url}/?simd=0`);
    await page.waitForFunction(() => window.llmkgDemo?.engine, null, { timeout: 60_000 });
    const build = await page.evaluate(async () => ({ build: window.llmkgDemo.engine.build, info: await window.llmkgDemo.engine.buildInfo(), badge: document.getElementById('build-badge').textContent }));
    assert.equal(build.build, 'nosimd');
    assert.equal(build.info.simd128, false);
    assert.match(build.badge, /SIMD128 off/);

    await page.click('#load-models');
    await page.waitForFunction(() => Object.keys(window.llmkgDemo.loaded).length === 2 || document.querySelector('.model.failed'), null, { timeout: LOAD_TIMEOUT });
    assert.deepEqual(Object.keys(await page.evaluate(() => window.llmkgDemo.loaded)).sort(), [MINILM.id, SMOLLM2.id]);
    await page.fill('#chat-input', 'What is the capital of France?');
    await page.click('#chat-send');
    await page.waitForSelector('.msg.assistant[data-done]', { timeout: 120_000 });
    assert.match(await page.textContent('.msg.assistant'), /Paris/);

    // A second engine in the same page, on the SIMD build, with the same files (now in the Cache API).
    const r = await page.evaluate(async ({ smollm2, minilm }) => {
      const { Engine } = await import('/src/index.js');
      const nosimd = window.llmkgDemo.engine;
      const simd = await Engine.create();
      const spec = (m) => ({ id: m.id, kind: m.kind, files: m.files.map((name) => ({ name, url: `/models/${m.dir}/${name}` })) });
      await simd.loadModel(spec(smollm2));
      await simd.loadModel(spec(minilm));
      const chats = ['What is the capital of France?', 'Name three primary colors.'];
      const prompts = ['The capital of France is', 'Once upon a time, in a small village,'];
      const sentences = ['The cat sits on the mat.', 'A kitten rests on a rug.', 'Paris is the capital of France.', 'Quantum chromodynamics describes the strong force.'];
      const out = { build: [simd.build, (await simd.buildInfo()).simd128], chats: [], prompts: [], cosines: [] };
      for (const q of chats) out.chats.push([(await simd.chat(q, { maxTokens: 48 })).text, (await nosimd.chat(q, { maxTokens: 48 })).text]);
      for (const prompt of prompts) out.prompts.push([(await simd.generate({ prompt, maxTokens: 32 })).text, (await nosimd.generate({ prompt, maxTokens: 32 })).text]);
      const [a, b] = [await simd.embed(sentences), await nosimd.embed(sentences)];
      const dot = (x, y) => x.reduce((s, v, i) => s + v * y[i], 0);
      for (let i = 0; i < sentences.length; i++) out.cosines.push(dot(a[i], b[i]) / Math.sqrt(dot(a[i], a[i]) * dot(b[i], b[i])));
      simd.close();
      return out;
    }, { smollm2: SMOLLM2, minilm: MINILM });
    console.log(`chromium: simd vs nosimd answers ${JSON.stringify(r.chats.map((c) => c[0]))}; embedding cosines ${r.cosines.map((c) => c.toFixed(7)).join(', ')}`);
    assert.deepEqual(r.build, ['simd', true]);
    for (const [a, b] of [...r.chats, ...r.prompts]) assert.equal(b, a);
    assert.match(r.chats[0][1], /Paris/);
    for (const c of r.cosines) assert.ok(c >= 0.9999, `cosine ${c}`);
  } finally {
    await page.close();
  }
});
