#!/usr/bin/env node
// The worker pool's throughput: a batch of 32 sentences embedded (all-MiniLM-L6-v2) with
// `workers: 1` and `workers: 2` in the same run, interleaved rounds (demo/pool-bench.js), in
// Node (worker_threads; the in-process engine too, for reference) and in headless Chromium
// (demo/pool.html). Prints each engine's sentences/s (median of the rounds), the ratio, whether
// the vectors are identical, and the load average before and after (the machine is shared).
// Usage: npm run bench:pool [-- --rounds 7 --batches 3 --workers 2 --only node|chromium --json]
import { execFileSync } from 'node:child_process';
import { Engine } from '../src/index.js';
import { startServer } from '../demo/server.js';
import { compareEngines } from '../demo/pool-bench.js';
import { CHROMIUM, launch } from '../test/chromium.js';
import { MINILM, modelSpec, requireModels } from '../test/helpers.js';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const ROUNDS = Number(arg('--rounds', 7));
const BATCHES = Number(arg('--batches', 3));
const WORKERS = Number(arg('--workers', 2));
const ONLY = arg('--only', null);
const uptime = () => execFileSync('uptime', { encoding: 'utf8' }).trim();

requireModels();
const report = { date: new Date().toISOString(), rounds: ROUNDS, batches: BATCHES, workers: WORKERS, uptimeBefore: uptime(), runs: {} };

if (ONLY !== 'chromium') {
  const engines = {
    'workers: 1': await Engine.create({ workers: 1, worker: true }),
    [`workers: ${WORKERS}`]: await Engine.create({ workers: WORKERS }),
    'in-process': await Engine.create(),
  };
  for (const e of Object.values(engines)) await e.loadModel(modelSpec(MINILM));
  report.runs.node = await compareEngines(engines, { rounds: ROUNDS, batches: BATCHES });
  for (const e of Object.values(engines)) e.close();
}

if (ONLY !== 'node') {
  report.chromiumVersion = execFileSync(CHROMIUM, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  const server = await startServer({ port: 0 });
  const browser = await launch();
  try {
    const page = await browser.context.newPage();
    page.on('pageerror', (e) => console.error(`page error: ${e.message}`));
    await page.goto(`${server.url}/demo/pool.html`);
    await page.waitForFunction(() => window.llmkgPool, null, { timeout: 60_000 });
    report.runs.chromium = await page.evaluate((o) => window.llmkgPool.compare(o), { workers: WORKERS, rounds: ROUNDS, batches: BATCHES });
  } finally {
    await browser.close();
    await server.close();
  }
}
report.uptimeAfter = uptime();

if (process.argv.includes('--json')) {
  console.log(JSON.stringify(report, null, 2));
} else {
  console.log(`pool bench ${report.date}: a batch of 32 sentences, all-MiniLM-L6-v2, ${ROUNDS} rounds x ${BATCHES} batches each, interleaved`);
  console.log(`before: ${report.uptimeBefore}`);
  for (const [where, r] of Object.entries(report.runs)) {
    const base = r.results['workers: 1'].sentencesPerS;
    const pool = r.results[`workers: ${WORKERS}`].sentencesPerS;
    console.log(`${where}${where === 'chromium' && report.chromiumVersion ? ` ${report.chromiumVersion}` : ''}:`);
    for (const [name, x] of Object.entries(r.results)) console.log(`  ${name.padEnd(12)} ${x.sentencesPerS.toFixed(1).padStart(7)} sentences/s   rounds: ${x.rounds.map((v) => v.toFixed(0)).join(' ')}`);
    const perRound = r.results[`workers: ${WORKERS}`].rounds.map((v, i) => v / r.results['workers: 1'].rounds[i]);
    console.log(`  ratio workers: ${WORKERS} / workers: 1 = ${(pool / base).toFixed(2)}x (of the medians; per round: ${perRound.map((x) => x.toFixed(2)).join(' ')}); vectors ${r.identical ? 'identical' : `differ (max |diff| ${r.maxAbsDiff})`}`);
  }
  console.log(`after:  ${report.uptimeAfter}`);
}
