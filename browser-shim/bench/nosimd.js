#!/usr/bin/env node
// The component built without SIMD128 against the SIMD build, in the same run, rounds
// interleaved (simd, nosimd, simd, ...): SmolLM2 decode tokens/s (streamed, first token to last)
// and MiniLM latency for one sentence and for a batch of 32. Node in-process by default;
// --browser runs both engines in module Web Workers of one headless Chromium page.
// Usage: npm run bench:nosimd [-- --browser --rounds 3 --decode-tokens 64 --json]
import { loadavg } from 'node:os';
import { Engine } from '../src/index.js';
import { startServer } from '../demo/server.js';
import { launch } from '../test/chromium.js';
import { MINILM, SMOLLM2, modelSpec, requireModels } from '../test/helpers.js';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const ROUNDS = Number(arg('--rounds', 3));
const DECODE_TOKENS = Number(arg('--decode-tokens', 64));
const BROWSER = process.argv.includes('--browser');
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const SENTENCE = 'The quick brown fox jumps over the lazy dog near the river bank.';
const BATCH = Array.from({ length: 32 }, (_, i) => `Sentence number ${i} is about ${['cats', 'rivers', 'Paris', 'physics'][i % 4]} and nothing else.`);

/** One round on one engine: runs in Node or, as source, inside the page. */
async function round(engine, { decodeTokens, sentence, batch }) {
  const t = () => performance.now();
  const times = [];
  let pieces = 0;
  for await (const _ of engine.stream({ prompt: 'Once upon a time', maxTokens: decodeTokens })) {
    times.push(t());
    pieces++;
  }
  const decodeTokPerS = (pieces - 1) / ((times.at(-1) - times[0]) / 1000);
  const single = [];
  for (let i = 0; i < 5; i++) {
    const t0 = t();
    await engine.embed([sentence]);
    single.push(t() - t0);
  }
  const t0 = t();
  await engine.embed(batch);
  const batchMs = t() - t0;
  single.sort((a, b) => a - b);
  return { decodeTokPerS, decodePieces: pieces, embedOneMs: single[2], embedBatch32Ms: batchMs };
}

requireModels();
const load = loadavg().map((x) => x.toFixed(2)).join(' ');
const results = { simd: [], nosimd: [] };
const params = { decodeTokens: DECODE_TOKENS, sentence: SENTENCE, batch: BATCH };

if (!BROWSER) {
  const engines = {};
  for (const build of ['simd', 'nosimd']) {
    engines[build] = await Engine.create({ simd: build === 'simd' });
    await engines[build].loadModel(modelSpec(SMOLLM2));
    await engines[build].loadModel(modelSpec(MINILM));
    await round(engines[build], { ...params, decodeTokens: 8 }); // warm-up
  }
  for (let r = 0; r < ROUNDS; r++) for (const build of ['simd', 'nosimd']) results[build].push(await round(engines[build], params));
  for (const e of Object.values(engines)) e.close();
} else {
  const server = await startServer({ port: 0 });
  const browser = await launch();
  try {
    const page = await browser.context.newPage();
    await page.goto(`${server.url}/`);
    await page.evaluate(() => window.llmkgDemo.ready);
    await page.evaluate(async ({ smollm2, minilm, roundSrc }) => {
      const { Engine } = await import('/src/index.js');
      const spec = (m) => ({ id: m.id, kind: m.kind, files: m.files.map((name) => ({ name, url: `/models/${m.dir}/${name}` })) });
      window.benchRound = (0, eval)(`(${roundSrc})`);
      window.benchEngines = {};
      for (const build of ['simd', 'nosimd']) {
        const e = await Engine.create({ simd: build === 'simd' });
        await e.loadModel(spec(smollm2));
        await e.loadModel(spec(minilm));
        window.benchEngines[build] = e;
      }
    }, { smollm2: SMOLLM2, minilm: MINILM, roundSrc: round.toString() });
    for (const build of ['simd', 'nosimd']) await page.evaluate(([b, p]) => window.benchRound(window.benchEngines[b], p), [build, { ...params, decodeTokens: 8 }]);
    for (let r = 0; r < ROUNDS; r++) {
      for (const build of ['simd', 'nosimd']) results[build].push(await page.evaluate(([b, p]) => window.benchRound(window.benchEngines[b], p), [build, params]));
    }
  } finally {
    await browser.close();
    await server.close();
  }
}

const summary = {};
for (const build of ['simd', 'nosimd']) {
  const rs = results[build];
  summary[build] = {
    decodeTokPerS: median(rs.map((r) => r.decodeTokPerS)),
    embedOneMs: median(rs.map((r) => r.embedOneMs)),
    embedBatch32Ms: median(rs.map((r) => r.embedBatch32Ms)),
  };
}
const where = BROWSER ? `headless Chromium (${(await import('../test/chromium.js')).CHROMIUM}), module Web Workers` : `Node ${process.version}, in-process`;
if (process.argv.includes('--json')) {
  console.log(JSON.stringify({ where, loadavgAtStart: load, rounds: ROUNDS, decodeTokens: DECODE_TOKENS, summary, results }, null, 2));
} else {
  const s = summary.simd;
  const n = summary.nosimd;
  console.log(`${where}; ${ROUNDS} interleaved rounds, medians; load average at start ${load}`);
  console.log(`                          SIMD build   no-SIMD build   no-SIMD / SIMD`);
  console.log(`decode tok/s (SmolLM2)   ${s.decodeTokPerS.toFixed(1).padStart(10)}   ${n.decodeTokPerS.toFixed(1).padStart(13)}   ${(n.decodeTokPerS / s.decodeTokPerS).toFixed(2).padStart(14)}x`);
  console.log(`embed 1 sentence ms      ${s.embedOneMs.toFixed(1).padStart(10)}   ${n.embedOneMs.toFixed(1).padStart(13)}   ${(n.embedOneMs / s.embedOneMs).toFixed(2).padStart(14)}x`);
  console.log(`embed batch of 32 ms     ${s.embedBatch32Ms.toFixed(0).padStart(10)}   ${n.embedBatch32Ms.toFixed(0).padStart(13)}   ${(n.embedBatch32Ms / s.embedBatch32Ms).toFixed(2).padStart(14)}x`);
}
