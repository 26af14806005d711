// Shared by the tests and the benchmark: where the models, the component and the CLI are.
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { defaultModelIds, models } from '../src/models.js';

export const pkgRoot = resolve(import.meta.dirname, '..');
export const repoRoot = resolve(pkgRoot, '..');
export const modelsDir = process.env.LLMKG_MODELS || join(homedir(), '.cache', 'llmkg', 'models');

/** A catalog model (data/models.json) as the tests use it: files in <models dir>/<dir>/. */
function catalogModel(id) {
  const m = models.find((x) => x.id === id);
  return { id: m.id, kind: m.kind, dir: m.id, files: m.files.map((f) => f.name) };
}
export const SMOLLM2 = catalogModel(defaultModelIds['text-generation']);
export const MINILM = catalogModel(defaultModelIds.embedding);

/** A loadModel spec with file paths (Node) or `/models/...` URLs (the demo server). */
export function modelSpec(m, base = null) {
  return {
    id: m.id,
    kind: m.kind,
    files: m.files.map((name) => ({ name, url: base ? `${base}/${m.dir}/${name}` : join(modelsDir, m.dir, name) })),
  };
}

export function requireModels() {
  for (const m of [SMOLLM2, MINILM]) {
    for (const f of m.files) {
      const p = join(modelsDir, m.dir, f);
      if (!existsSync(p)) throw new Error(`model file missing: ${p} (run scripts/fetch-models at the repository root)`);
    }
  }
}

/** The component dist/ was transpiled from (so the CLI runs the very same bytes). */
export function transpiledComponent() {
  const stamp = join(pkgRoot, 'dist', 'component.json');
  if (!existsSync(stamp)) throw new Error('dist/ is missing: run `npm run build`');
  return JSON.parse(readFileSync(stamp, 'utf8'));
}

/** The native Wasmtime host's CLI: $CARGO_TARGET_DIR/release/llmkg, else ../target, else the
 * shared cache target dir. */
export function llmkgCli() {
  const dirs = [process.env.CARGO_TARGET_DIR, join(repoRoot, 'target'), join(homedir(), '.cache', 'llmkg', 'target')].filter(Boolean);
  for (const d of dirs) {
    const p = join(d, 'release', 'llmkg');
    if (existsSync(p)) return p;
  }
  throw new Error(`the llmkg CLI is missing (looked in ${dirs.map((d) => join(d, 'release')).join(', ')}); build it with scripts/build`);
}

export function cosine(a, b) {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return dot / Math.sqrt(na * nb);
}
