#!/usr/bin/env node
// Browser figures for SmolLM2-135M-Instruct in headless Chromium: the component runs in one
// module Web Worker, single-threaded (no wasm threads). Prints cold model load (network ->
// Cache API -> component, Q4_1 -> Q8_0 conversion included), cached load, first-token latency
// of a chat, and decode tokens/s. Each figure is the median of --runs runs (default 3).
// Usage: npm run bench:browser [-- --runs 5 --json]
import { startServer } from '../demo/server.js';
import { launch } from '../test/chromium.js';
import { SMOLLM2, MINILM, requireModels, transpiledComponent } from '../test/helpers.js';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const RUNS = Number(arg('--runs', 3));
const DECODE_TOKENS = Number(arg('--decode-tokens', 128));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

requireModels();
const server = await startServer({ port: 0 });
const browser = await launch();
const page = await browser.context.newPage();
page.on('pageerror', (e) => console.error(`page error: ${e.message}`));

const spec = (m) => ({ id: m.id, kind: m.kind, files: m.files.map((name) => ({ name, url: `/models/${m.dir}/${name}` })) });

/** A fresh page (new worker, new instance); `cold` empties the Cache API first. */
async function freshPage(cold) {
  await page.goto(`${server.url}/`);
  await page.evaluate(() => window.llmkgDemo.ready);
  if (cold) await page.evaluate(() => caches.delete('llmkg-models'));
}

async function timeLoad(m) {
  return page.evaluate(async (s) => {
    const t0 = performance.now();
    let fromCache = null;
    await window.llmkgDemo.engine.loadModel(s, { onProgress: (p) => (fromCache ??= p.fromCache) });
    return { ms: performance.now() - t0, fromCache };
  }, spec(m));
}

const figures = { coldLoadMs: [], cachedLoadMs: [], embedColdLoadMs: [], embedCachedLoadMs: [], firstTokenMs: [], decodeTokPerS: [], runtimeReadyMs: [] };
let chatPromptTokens = 0;
let decodeTokens = 0;

for (let run = 0; run < RUNS; run++) {
  await freshPage(true);
  const cold = await timeLoad(SMOLLM2);
  if (cold.fromCache !== false) throw new Error('the cold load was served from the cache');
  figures.coldLoadMs.push(cold.ms);
  figures.embedColdLoadMs.push((await timeLoad(MINILM)).ms);

  await freshPage(false);
  figures.runtimeReadyMs.push(await page.evaluate(() => window.llmkgDemo.readyAt));
  const cached = await timeLoad(SMOLLM2);
  if (cached.fromCache !== true) throw new Error('the cached load went to the network');
  figures.cachedLoadMs.push(cached.ms);
  figures.embedCachedLoadMs.push((await timeLoad(MINILM)).ms);

  // First token of a fresh instance's first chat (as a user would see it).
  const chat = await page.evaluate(async () => {
    const t0 = performance.now();
    let first = null;
    const s = window.llmkgDemo.engine.streamChat('What is the capital of France?', { maxTokens: 32 });
    for await (const _ of s) first ??= performance.now() - t0;
    return { first, completion: await s.completion };
  });
  if (!/Paris/.test(chat.completion.text)) throw new Error(`unexpected answer: ${chat.completion.text}`);
  figures.firstTokenMs.push(chat.first);
  chatPromptTokens = chat.completion.promptTokens;

  const dec = await page.evaluate(async (n) => {
    let first = null;
    const s = window.llmkgDemo.engine.stream({ prompt: 'Once upon a time, in a small village by the sea,', maxTokens: n });
    for await (const _ of s) first ??= performance.now();
    const end = performance.now();
    const c = await s.completion;
    return { tokens: c.completionTokens, perS: (c.completionTokens - 1) / ((end - first) / 1000) };
  }, DECODE_TOKENS);
  figures.decodeTokPerS.push(dec.perS);
  decodeTokens = dec.tokens;
}

const version = (await page.evaluate(() => navigator.userAgent)).match(/Chrome\/[\d.]+/)?.[0];
await browser.close();
await server.close();

const m = Object.fromEntries(Object.entries(figures).map(([k, v]) => [k, median(v)]));
const rows = [
  ['cold model load (SmolLM2 GGUF, network -> cache -> component, Q4_1->Q8_0)', `${(m.coldLoadMs / 1000).toFixed(2)} s`, '2.6 s'],
  ['cached model load (Cache API)', `${(m.cachedLoadMs / 1000).toFixed(2)} s`, ''],
  [`first-token latency (chat, ${chatPromptTokens}-token prompt, fresh instance)`, `${(m.firstTokenMs / 1000).toFixed(2)} s`, '0.9 s'],
  [`decode (${decodeTokens} tokens, greedy)`, `${m.decodeTokPerS.toFixed(1)} tok/s`, '15.1 tok/s'],
  ['runtime ready after page load (component fetch + compile + instantiate)', `${(m.runtimeReadyMs / 1000).toFixed(2)} s`, ''],
  ['MiniLM load cold / cached', `${(m.embedColdLoadMs / 1000).toFixed(2)} s / ${(m.embedCachedLoadMs / 1000).toFixed(2)} s`, ''],
];
const stamp = transpiledComponent();
console.log(`headless ${version ?? 'Chromium'}, component ${stamp.sha256.slice(0, 12)} (${(stamp.bytes / 2 ** 20).toFixed(1)} MiB), 1 worker thread, median of ${RUNS} runs`);
const w = Math.max(...rows.map((r) => r[0].length));
console.log(`${'figure'.padEnd(w)}  ${'llmkg'.padStart(12)}  ${'wllama'.padStart(10)}`);
for (const [name, ours, ref] of rows) console.log(`${name.padEnd(w)}  ${ours.padStart(12)}  ${ref.padStart(10)}`);
if (process.argv.includes('--json')) console.log(JSON.stringify({ runs: RUNS, figures, median: m, chatPromptTokens, decodeTokens }));
