// demo/pool.html: the worker-pool comparison in a page; also what test/pool-browser.test.js and
// bench/pool.js drive (window.llmkgPool).
import { Engine } from '/src/index.js';
import { SENTENCES, compareEngines } from '/demo/pool-bench.js';

const MINILM = { id: 'all-minilm-l6-v2', kind: 'embedding', files: ['model.safetensors', 'tokenizer.json', 'config.json'] };
const SMOLLM2 = { id: 'smollm2-135m-instruct', kind: 'text-generation', files: ['SmolLM2-135M-Instruct.Q4_1.gguf'] };
const spec = (m) => ({ id: m.id, kind: m.kind, files: m.files.map((name) => ({ name, url: `/models/${m.id}/${name}` })) });

/** Creates the two engines, loads MiniLM into both, and compares them. */
async function compare({ workers = 2, rounds = 5, batches = 3 } = {}) {
  const engines = { 'workers: 1': await Engine.create({ workers: 1 }), [`workers: ${workers}`]: await Engine.create({ workers }) };
  try {
    for (const e of Object.values(engines)) await e.loadModel(spec(MINILM));
    return await compareEngines(engines, { rounds, batches });
  } finally {
    for (const e of Object.values(engines)) e.close();
  }
}

window.llmkgPool = { Engine, SENTENCES, MINILM, SMOLLM2, spec, compare, compareEngines };

const auto = Math.min(8, navigator.hardwareConcurrency || 1);
document.getElementById('n').textContent = String(Math.max(2, auto));
const button = document.getElementById('run');
button.disabled = false;
button.addEventListener('click', async () => {
  button.disabled = true;
  const out = document.getElementById('out');
  out.textContent = 'running…';
  try {
    const r = await compare({ workers: Math.max(2, auto), rounds: Number(document.getElementById('rounds').value) || 5 });
    const [a, b] = Object.entries(r.results);
    out.textContent = `${a[0]}: ${a[1].sentencesPerS.toFixed(1)} sentences/s\n${b[0]}: ${b[1].sentencesPerS.toFixed(1)} sentences/s\nratio ${(b[1].sentencesPerS / a[1].sentencesPerS).toFixed(2)}x, vectors ${r.identical ? 'identical' : `differ (max ${r.maxAbsDiff})`}`;
  } catch (e) {
    out.textContent = `failed: ${e.message}`;
  } finally {
    button.disabled = false;
  }
});
