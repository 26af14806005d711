#!/usr/bin/env node
// Browser figures for the default models in each browser engine (test/browsers.js: Chromium,
// Firefox ESR, WebKitGTK); the component runs in one module Web Worker, single-threaded.
// Each run starts the browser with a fresh profile, so the cold figures have nothing cached
// (no Cache API entry, no compiled wasm code):
//   runtime ready     page load -> component fetched, compiled, instantiated in the worker
//   cold load         loadModel: network -> Cache API -> component (SmolLM2: Q4_1 -> Q8_0 included)
//   cached load       the same after a reload (a new worker), every file from the Cache API
//   first token       of a chat on that fresh instance; decode: tokens/s after the first token
// Each figure: the median and the 95th percentile of the slow end (nearest rank: for 5 runs, the
// slowest; for decode tok/s the 5th percentile, again the slowest) of
// --runs runs (default 5), the browsers interleaved run by run. Prints a table per browser and
// the load average; --json prints every sample as JSON too, --json-file writes it.
// Usage: npm run bench:browser [-- --runs 5 --browsers chromium,firefox,webkit --decode-tokens 128 --json]
//        (--browsers defaults to $LLMKG_BROWSERS, else all three; --decode-tokens 0 skips the chat)
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { startServer } from '../demo/server.js';
import { launch, selectedBrowsers } from '../test/browsers.js';
import { SMOLLM2, MINILM, requireModels, transpiledComponent } from '../test/helpers.js';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const RUNS = Number(arg('--runs', 5));
const DECODE_TOKENS = Number(arg('--decode-tokens', 128));
const BROWSERS = selectedBrowsers({ LLMKG_BROWSERS: arg('--browsers', process.env.LLMKG_BROWSERS) });
const JSON_FILE = arg('--json-file', null);
if (!(RUNS >= 1)) throw new Error('--runs must be at least 1');

const sorted = (xs) => [...xs].sort((a, b) => a - b);
const median = (xs) => {
  const s = sorted(xs);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
/** Nearest-rank percentile: the smallest sample with at least p% of the samples at or below it. */
const percentile = (xs, p) => sorted(xs)[Math.max(0, Math.ceil((p / 100) * xs.length) - 1)];

requireModels();
const spec = (m) => ({ id: m.id, kind: m.kind, files: m.files.map((name) => ({ name, url: `/models/${m.dir}/${name}` })) });

async function ready(page) {
  await page.waitFor(() => window.llmkgDemo?.readyAt || document.getElementById('build-badge').textContent.startsWith('failed'), null, { timeout: 120_000, what: 'the engine' });
  const r = await page.evaluate(() => ({ readyAt: window.llmkgDemo.readyAt, badge: document.getElementById('build-badge').textContent }));
  if (!r.readyAt) throw new Error(`${page.name}: the engine did not start: ${r.badge}`);
  return r.readyAt;
}

async function timeLoad(page, m, expectCache) {
  const r = await page.evaluate(async (s) => {
    const t0 = performance.now();
    let fromCache = null;
    await window.llmkgDemo.engine.loadModel(s, { onProgress: (p) => (fromCache ??= p.fromCache) });
    return { ms: performance.now() - t0, fromCache };
  }, spec(m));
  if (r.fromCache !== expectCache) throw new Error(`${page.name}: ${m.id}: the ${expectCache ? 'cached load went to the network' : 'cold load was served from the cache'}`);
  return r.ms;
}

/** One run: a fresh profile, cold loads, a reload, cached loads, a chat and a decode. */
async function run(name, server) {
  const page = await launch(name);
  try {
    const f = {};
    await page.goto(`${server.url}/`);
    f.runtimeReadyColdMs = await ready(page);
    f.smollm2ColdMs = await timeLoad(page, SMOLLM2, false);
    f.minilmColdMs = await timeLoad(page, MINILM, false);

    await page.reload();
    f.runtimeReadyCachedMs = await ready(page);
    f.smollm2CachedMs = await timeLoad(page, SMOLLM2, true);
    f.minilmCachedMs = await timeLoad(page, MINILM, true);

    if (DECODE_TOKENS > 0) {
      const chat = await page.evaluate(async () => {
        const t0 = performance.now();
        let first = null;
        const s = window.llmkgDemo.engine.streamChat('What is the capital of France?', { maxTokens: 32 });
        for await (const _ of s) first ??= performance.now() - t0;
        return { first, completion: await s.completion };
      });
      if (!/Paris/.test(chat.completion.text)) throw new Error(`${name}: unexpected answer: ${chat.completion.text}`);
      f.firstTokenMs = chat.first;
      const dec = await page.evaluate(async (n) => {
        let first = null;
        const s = window.llmkgDemo.engine.stream({ prompt: 'Once upon a time, in a small village by the sea,', maxTokens: n });
        for await (const _ of s) first ??= performance.now();
        const end = performance.now();
        const c = await s.completion;
        return { tokens: c.completionTokens, perS: (c.completionTokens - 1) / ((end - first) / 1000) };
      }, DECODE_TOKENS);
      f.decodeTokPerS = dec.perS;
      f.chatPromptTokens = chat.completion.promptTokens;
      f.decodeTokens = dec.tokens;
    }
    return { version: page.version, figures: f };
  } finally {
    await page.close();
  }
}

const ROWS = [
  ['runtimeReadyColdMs', 'runtime ready, fresh profile (fetch + compile + instantiate)', 's'],
  ['runtimeReadyCachedMs', 'runtime ready after a reload', 's'],
  ['smollm2ColdMs', 'SmolLM2 cold load (network -> Cache API -> component, Q4_1->Q8_0)', 's'],
  ['smollm2CachedMs', 'SmolLM2 cached load (Cache API -> component)', 's'],
  ['minilmColdMs', 'MiniLM cold load', 's'],
  ['minilmCachedMs', 'MiniLM cached load', 's'],
  ['firstTokenMs', 'first token (chat, fresh instance)', 's'],
  ['decodeTokPerS', 'decode (greedy)', 'tok/s'],
];
const fmt = (v, unit) => (unit === 's' ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(1)} tok/s`);

const loadNow = () => loadavg().map((x) => x.toFixed(2)).join(', ');
const loadAtStart = loadNow();
const server = await startServer({ port: 0 });
const results = {};
try {
  // Interleaved (run 1 in every browser, then run 2, ...): the machine's drift falls on all alike.
  const samples = Object.fromEntries(BROWSERS.map((n) => [n, []]));
  const versions = {};
  for (let i = 0; i < RUNS; i++) {
    for (const name of BROWSERS) {
      const r = await run(name, server);
      versions[name] = r.version;
      samples[name].push(r.figures);
      console.error(`${name} run ${i + 1}/${RUNS}: SmolLM2 cold ${fmt(r.figures.smollm2ColdMs, 's')}, cached ${fmt(r.figures.smollm2CachedMs, 's')}`);
    }
  }
  for (const name of BROWSERS) {
    const version = versions[name];
    const summary = {};
    for (const [key, , unit] of ROWS) {
      const xs = samples[name].map((s) => s[key]).filter((x) => x !== undefined);
      // p95: the slow end, so for a rate the 5th percentile.
      if (xs.length) summary[key] = { median: median(xs), p95: percentile(xs, unit === 'tok/s' ? 5 : 95), samples: xs };
    }
    results[name] = { version, runs: RUNS, summary, chatPromptTokens: samples[name][0].chatPromptTokens, decodeTokens: samples[name][0].decodeTokens };
  }
} finally {
  await server.close();
}

const stamp = transpiledComponent();
console.log(`component ${stamp.sha256.slice(0, 12)} (${(stamp.bytes / 2 ** 20).toFixed(1)} MiB), 1 worker thread, ${RUNS} runs per browser, each with a fresh profile; median and p95 (nearest rank, the slow end)`);
const w = Math.max(...ROWS.map((r) => r[1].length));
for (const [name, r] of Object.entries(results)) {
  console.log(`\n${r.version}${r.decodeTokens ? `  (chat prompt ${r.chatPromptTokens} tokens, decode ${r.decodeTokens} tokens)` : ''}`);
  console.log(`${'figure'.padEnd(w)}  ${'median'.padStart(12)}  ${'p95'.padStart(12)}`);
  for (const [key, label, unit] of ROWS) {
    const s = r.summary[key];
    if (s) console.log(`${label.padEnd(w)}  ${fmt(s.median, unit).padStart(12)}  ${fmt(s.p95, unit).padStart(12)}`);
  }
}
const loadAtEnd = loadNow();
console.log(`\nload average (1, 5, 15 min): ${loadAtStart} at the start, ${loadAtEnd} at the end`);
const json = { component: stamp.sha256, runs: RUNS, date: new Date().toISOString(), loadAverage: { start: loadAtStart, end: loadAtEnd }, browsers: results };
if (process.argv.includes('--json')) console.log(JSON.stringify(json));
if (JSON_FILE) writeFileSync(JSON_FILE, `${JSON.stringify(json, null, 2)}\n`);
