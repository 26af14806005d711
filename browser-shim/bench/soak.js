#!/usr/bin/env node
// The browser soak: one Engine (one module Web Worker, one instance of the component) in
// headless Chromium takes the same cycle of mixed calls as the native soak
// (tests/fixtures/soak-mix.json) on SmolLM2, MiniLM and the demo graph, and every --every calls
// a CSV row goes out: the component's memoryStats, the RSS of Chromium's whole process tree
// (VmRSS summed over the browser and its children; read here, from /proc), respawns, failed
// calls, graph triples, and the JS heap in use (page + worker). Before each sample both JS
// heaps are garbage-collected over the DevTools protocol: model files pass through JS on every
// reload, and without a collection RSS swings by tens of MiB with the collector's timing. `scripts/soak --browser` runs this and judges the CSV with the native
// soak's checks; run alone it only writes the CSV.
// Usage: node bench/soak.js [--calls 1000 | --duration SECONDS] [--every 100] [--max-tokens 8] [--csv soak-browser.csv]
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync, appendFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { startServer } from '../demo/server.js';
import { launch } from '../test/chromium.js';
import { MINILM, SMOLLM2, repoRoot, requireModels } from '../test/helpers.js';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const CALLS = Number(arg('--calls', 1000));
const DURATION = arg('--duration') === undefined ? null : Number(arg('--duration'));
const EVERY = Number(arg('--every', 100));
const MAX_TOKENS = Math.max(2, Number(arg('--max-tokens', 8)));
const CSV = arg('--csv', 'soak-browser.csv');
const MIX = JSON.parse(readFileSync(arg('--mix', join(repoRoot, 'tests', 'fixtures', 'soak-mix.json')), 'utf8'));
const CYCLE = MIX.cycle.length;
if (!(EVERY > 0 && EVERY % CYCLE === 0)) throw new Error(`--every ${EVERY} is not a multiple of the cycle length ${CYCLE}`);
// rss_bytes is the whole tree; renderer_rss_bytes the renderer processes in it (the page and
// the engine's worker live in one), to tell the engine's side from the browser's.
const HEADER = 'calls,elapsed_s,allocated_bytes,peak_allocated_bytes,linear_memory_bytes,model_bytes,rss_bytes,restarts,errors,triples,js_heap_bytes,renderer_rss_bytes';

requireModels();

/** VmRSS over `root` and all its descendants (Chromium: browser, zygotes, renderers, GPU,
 * utility), in total and by process type (`--type=`, "browser" for the root). */
function treeRss(root) {
  const children = new Map();
  const procs = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const status = readFileSync(`/proc/${name}/status`, 'utf8');
      const ppid = Number(status.match(/^PPid:\s+(\d+)/m)?.[1]);
      const type = readFileSync(`/proc/${name}/cmdline`, 'utf8').match(/--type=([\w-]+)/)?.[1] ?? 'browser';
      procs.set(Number(name), { rss: Number(status.match(/^VmRSS:\s+(\d+)/m)?.[1] ?? 0) * 1024, type });
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(name));
    } catch {
      // the process ended while we looked
    }
  }
  const byType = {};
  let total = 0;
  const todo = [root];
  while (todo.length) {
    const pid = todo.pop();
    const p = procs.get(pid);
    if (p) {
      total += p.rss;
      byType[p.type] = (byType[p.type] ?? 0) + p.rss;
    }
    todo.push(...(children.get(pid) ?? []));
  }
  return { total, byType };
}

/** The browser process: the one whose command line names our fresh profile directory. */
function browserPid(profile) {
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cmd = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
      if (cmd.includes(`--user-data-dir=${profile}`) && !cmd.some((a) => a.startsWith('--type='))) return Number(name);
    } catch {
      // gone
    }
  }
  throw new Error(`no Chromium process with --user-data-dir=${profile}`);
}

/** The label index the native soak cached (same component, same vectors), so a short run does
 * not spend a minute embedding ~6k labels; the engine re-embeds any entry that does not match. */
function cachedIndex() {
  const dir = join(homedir(), '.cache', 'llmkg', 'soak');
  if (!existsSync(dir)) return null;
  const files = readdirSync(dir).filter((f) => f.startsWith(`index-${MINILM.id}-`) && f.endsWith('.bin'));
  files.sort((a, b) => statSync(join(dir, b)).mtimeMs - statSync(join(dir, a)).mtimeMs);
  return files.length ? join(dir, files[0]) : null;
}

const server = await startServer({ port: 0 });
const browser = await launch();
const pid = browserPid(browser.profile);
const page = await browser.context.newPage();
page.on('pageerror', (e) => console.error(`page error: ${e.message}`));
// A blank page on the demo server's origin (the shim's module worker needs one): no demo UI
// polling the engine beside the soak.
await page.route(`${server.url}/soak.html`, (r) => r.fulfill({ contentType: 'text/html', body: '<!doctype html><title>llmkg soak</title>' }));
const indexFile = cachedIndex();
if (indexFile) await page.route(`${server.url}/soak-index.bin`, (r) => r.fulfill({ contentType: 'application/octet-stream', body: readFileSync(indexFile) }));
await page.goto(`${server.url}/soak.html`);

// The DevTools protocol on the page and, through it, on the engine's worker (a child target;
// a respawned worker attaches anew).
const cdp = await browser.context.newCDPSession(page);
let worker = null;
let nextId = 1;
const replies = new Map();
cdp.on('Target.attachedToTarget', (e) => {
  if (e.targetInfo.type === 'worker') worker = e.sessionId;
});
cdp.on('Target.detachedFromTarget', (e) => {
  if (e.sessionId === worker) worker = null;
});
cdp.on('Target.receivedMessageFromTarget', (e) => {
  const m = JSON.parse(e.message);
  replies.get(m.id)?.(m);
  replies.delete(m.id);
});
await cdp.send('Target.setAutoAttach', { autoAttach: true, waitForDebuggerOnStart: false, flatten: false });
const inWorker = (method) =>
  new Promise((ok, fail) => {
    if (!worker) return fail(new Error('the engine has no worker attached'));
    const id = nextId++;
    replies.set(id, (m) => (m.error ? fail(new Error(`${method}: ${m.error.message}`)) : ok(m.result)));
    cdp.send('Target.sendMessageToTarget', { sessionId: worker, message: JSON.stringify({ id, method }) }).catch(fail);
  });
/** Collects garbage in the page and the worker; returns the JS heap bytes both still use. */
async function collectedJsHeap() {
  await cdp.send('HeapProfiler.collectGarbage');
  await inWorker('HeapProfiler.collectGarbage');
  const [p, w] = [await cdp.send('Runtime.getHeapUsage'), await inWorker('Runtime.getHeapUsage')];
  return p.usedSize + w.usedSize;
}

const spec = (m) => ({ id: m.id, kind: m.kind, files: m.files.map((name) => ({ name, url: `/models/${m.dir}/${name}` })) });
const t0 = Date.now();
const setup = await page.evaluate(
  async ({ models, mix, maxTokens, withIndex }) => {
    const { Engine } = await import('/src/index.js');
    const engine = await Engine.create();
    const state = { engine, restarts: 0, mix, maxTokens, text: models[0].id, embedding: models[1].id, models };
    engine.addEventListener('respawn', () => state.restarts++);
    for (const m of models) await engine.loadModel(m);
    const kb = new Uint8Array(await (await fetch('/data/demo-kb.ttl')).arrayBuffer());
    const imported = await engine.importGraph('turtle', kb);
    if (withIndex) await engine.importIndex(new Uint8Array(await (await fetch('/soak-index.bin')).arrayBuffer()));
    const t = performance.now();
    await engine.search('warm up the label index', 1);
    const indexSeconds = (performance.now() - t) / 1000;

    const sub = (s, c) => String(s).replaceAll('{c}', String(c));
    const half = Math.max(1, Math.floor(maxTokens / 2));
    const system = { role: 'system', content: 'You are a helpful assistant.' };
    const fact = (v, c) => ({
      subject: sub(v.subject, c),
      predicate: sub(v.predicate, c),
      object: { tag: 'entity', val: sub(v.object, c) },
      confidence: v.confidence,
      source: v.source === undefined ? undefined : sub(v.source, c),
    });
    const generateRequest = (v, c, n) => ({
      prompt: sub(v.prompt, c),
      maxTokens: n,
      ...(v.temperature === undefined ? {} : { temperature: v.temperature, topP: 0.9, topK: 40, repeatPenalty: 1.1, seed: Number(sub(v.seed, c)) }),
    });
    async function cancelHalfway(stream) {
      let pieces = 0;
      for await (const _ of stream) if (++pieces >= half) break; // leaving the loop cancels
      return pieces;
    }
    // One step of the mix, as tests/soak.rs runs it: an error, or an answer that makes no sense, throws.
    state.call = async (call, v, c) => {
      switch (call) {
        case 'generate': {
          const r = await engine.generate(generateRequest(v, c, maxTokens));
          if (!r.completionTokens) throw new Error('generate: no tokens');
          return;
        }
        case 'stream-cancel':
          await cancelHalfway(engine.stream(generateRequest(v, c, 2 * maxTokens)));
          return;
        case 'stream-chat-cancel':
          await cancelHalfway(engine.streamChat([system, { role: 'user', content: sub(v.message, c) }], { maxTokens: 2 * maxTokens }));
          return;
        case 'chat': {
          const r = await engine.chat([system, { role: 'user', content: sub(v.message, c) }], { maxTokens });
          if (!r.completionTokens) throw new Error('chat: no tokens');
          return;
        }
        case 'embed': {
          const texts = v.texts.map((t) => sub(t, c));
          const r = await engine.embed(texts, { model: state.embedding });
          if (r.length !== texts.length || r.some((x) => x.length !== 384)) throw new Error(`embed: ${r.length} vectors for ${texts.length} texts`);
          return;
        }
        case 'search': {
          const hits = await engine.search(sub(v.text, c), v.k ?? 5);
          if (hits.length !== (v.k ?? 5)) throw new Error(`search: ${hits.length} hits`);
          return;
        }
        case 'ask': {
          const a = await engine.ask(sub(v.question, c), { model: state.text, entities: 3, hops: 1, maxFacts: 6, maxTokens, sampling: undefined });
          if (!a.facts.length) throw new Error('ask: no facts retrieved');
          return;
        }
        case 'query':
          await engine.query(sub(v.sparql, c), 100);
          return;
        case 'insert':
        case 'remove': {
          const r = await engine[call]([fact(v, c)]);
          if (!r.changed) throw new Error(`${call}: nothing changed`);
          return;
        }
        case 'unload':
          await engine.unloadModel(v.model === 'embedding' ? state.embedding : state.text);
          return;
        case 'reload':
          await engine.loadModel(models[v.model === 'embedding' ? 1 : 0]);
          return;
        default:
          throw new Error(`the mix: unknown call ${call}`);
      }
    };
    window.soak = state;
    return { triples: imported.total, indexSeconds };
  },
  { models: [spec(SMOLLM2), spec(MINILM)], mix: MIX, maxTokens: MAX_TOKENS, withIndex: !!indexFile },
);
console.error(
  `soak (browser): setup ${((Date.now() - t0) / 1000).toFixed(1)} s (${setup.triples} triples; label index ${indexFile ? 'from the native soak\'s cache, checked' : 'embedded'} in ${setup.indexSeconds.toFixed(1)} s); ` +
    `${DURATION === null ? `${CALLS} calls` : `${DURATION} s`}, a sample every ${EVERY}, ${MAX_TOKENS} tokens per generation`,
);

/** Runs calls [from, from + n) in the page; returns the failures and the memory sample after them. */
const runCalls = (from, n) =>
  page.evaluate(
    async ({ from, n }) => {
      const s = window.soak;
      const failures = [];
      for (let i = from; i < from + n; i++) {
        const c = Math.floor(i / s.mix.cycle.length);
        const step = s.mix.cycle[i % s.mix.cycle.length];
        try {
          await s.call(step.call, step.variants[c % step.variants.length], c);
        } catch (e) {
          failures.push(`call ${i} (${step.call}, cycle ${c}) failed: ${e.code ?? e.name}: ${e.message}`);
        }
      }
      const m = await s.engine.memoryStats();
      const g = await s.engine.graphStats();
      return { failures, memory: m, restarts: s.restarts, triples: g.triples };
    },
    { from, n },
  );

writeFileSync(CSV, HEADER + '\n');
const start = Date.now();
let calls = 0;
let errors = 0;
let sample = await runCalls(0, 0);
for (;;) {
  const m = sample.memory;
  const modelBytes = m.models.reduce((a, x) => a + x.weightBytes + x.cacheBytes, 0);
  const elapsed = (Date.now() - start) / 1000;
  const jsHeap = await collectedJsHeap();
  const { total: rss, byType } = treeRss(pid);
  appendFileSync(CSV, [calls, elapsed.toFixed(3), m.allocatedBytes, m.peakAllocatedBytes, m.linearMemoryBytes, modelBytes, rss, sample.restarts, errors, sample.triples, jsHeap, byType.renderer ?? 0].join(',') + '\n');
  process.stderr.write(`\r${calls}${DURATION === null ? `/${CALLS}` : ''} calls, ${elapsed.toFixed(0)} s: allocated ${(m.allocatedBytes / 2 ** 20).toFixed(1)} MiB, linear ${(m.linearMemoryBytes / 2 ** 20).toFixed(0)} MiB, Chromium RSS ${(rss / 2 ** 20).toFixed(0)} MiB (${Object.entries(byType).map(([t, b]) => `${t} ${(b / 2 ** 20).toFixed(0)}`).join(', ')}), JS heap ${(jsHeap / 2 ** 20).toFixed(1)} MiB  `);
  if (DURATION === null ? calls >= CALLS : elapsed >= DURATION) break;
  sample = await runCalls(calls, EVERY);
  calls += EVERY;
  errors += sample.failures.length;
  for (const f of sample.failures) process.stderr.write(`\nsoak (browser): ${f}\n`);
}
const seconds = (Date.now() - start) / 1000;
const version = (await page.evaluate(() => navigator.userAgent)).match(/Chrome\/[\d.]+/)?.[0];
process.stderr.write(`\nsoak (browser): ${calls} calls in ${seconds.toFixed(1)} s (${(calls / seconds).toFixed(2)} calls/s) in headless ${version ?? 'Chromium'}, ${errors} failed, ${sample.restarts} respawns; wrote ${CSV}\n`);
await browser.close();
await server.close();
