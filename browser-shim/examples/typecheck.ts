// Uses the public API as an application would, so that `tsc --noEmit` (npm run typecheck)
// checks the hand-written declarations in src/index.d.ts and the WIT types they reuse. It
// is compiled, never run; a wrong field name or type below is a compile error.
import { Engine, LlmkgError, catalogSpec, defaultModelIds, models } from 'llmkg';
import type { Completion, FinishReason, MemoryStats, ModelInfo, ErrorCode, CatalogModel } from 'llmkg';

const engine: Engine = await Engine.create({ worker: false });
const text: CatalogModel | undefined = models.find((m) => m.id === defaultModelIds['text-generation']);
const info: ModelInfo = await engine.loadModel(catalogSpec(text!.id, '/models'), {
  onProgress: (p) => console.log(p.phase, p.file, p.loaded, p.total ?? '?', p.fromCache),
});
const params: number = info.parameters; // a WIT u64, returned as a number
const bytes: number = info.weightBytes;

const stream = engine.streamChat([{ role: 'user', content: 'What is the capital of France?' }], { maxTokens: 32, temperature: 0 });
for await (const piece of stream) console.log(piece.toUpperCase());
const done: Completion = await stream.completion;
const why: FinishReason = done.finishReason;
const tokens: number = done.promptTokens + done.completionTokens;

const [a, b]: Float32Array[] = await engine.embed(['a cat', 'a kitten'], { model: defaultModelIds.embedding });
let dot = 0;
for (let i = 0; i < a.length; i++) dot += a[i] * b[i];

const stats: MemoryStats = await engine.memoryStats();
const held: number = stats.linearMemoryBytes + stats.models.reduce((n, m) => n + m.weightBytes + m.cacheBytes, 0);
const simd: boolean = (await engine.buildInfo()).simd128;

try {
  await engine.generate({ prompt: 'x', maxTokens: -1 });
} catch (e) {
  if (e instanceof LlmkgError) {
    const code: ErrorCode = e.code;
    if (code === 'invalid-input' || code === 'trap') console.log(e.message, e.respawned, e.lostModels.length);
  }
}

if (engine.insert && engine.query && engine.graphStats) {
  const change = await engine.insert([{ subject: 'Veltrania', predicate: 'capital', object: { tag: 'entity', val: 'Quorvik' } }]);
  const changed: number = change.changed;
  const result = await engine.query('SELECT ?o WHERE { ?s ?p ?o }', 10);
  if (result.tag === 'solutions') console.log(result.val.variables, result.val.rows.length);
  const triples: number = (await engine.graphStats()).triples;
  console.log(changed, triples);
}

engine.addEventListener('respawn', (e) => console.log(e.detail.reason, e.detail.lostModels));
console.log(params, bytes, why, tokens, dot, held, simd);
engine.close();
