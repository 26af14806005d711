// Capability detection, and the component built without SIMD128 (dist/node-nosimd) against the
// SIMD build: same greedy text, embeddings within cosine 0.9999.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { totalmem } from 'node:os';
import { Engine } from '../src/index.js';
import { MINILM, SMOLLM2, cosine, modelSpec, pkgRoot, requireModels } from './helpers.js';

requireModels();

/** Engine.capabilities() in a fresh Node started with these V8 flags. */
function capabilitiesUnder(flags) {
  const script = "import('./src/index.js').then((m) => console.log(JSON.stringify(m.Engine.capabilities())))";
  return JSON.parse(execFileSync(process.execPath, [...flags, '--input-type=module', '-e', script], { cwd: pkgRoot, encoding: 'utf8' }));
}

describe('Engine.capabilities() in Node', () => {
  test('reports SIMD128, shared memory, no WebGPU, the worker kind, memory and cores', () => {
    const c = Engine.capabilities();
    assert.equal(c.runtime, 'node');
    assert.equal(c.simd128, true);
    assert.equal(c.build, 'simd');
    assert.equal(c.sharedArrayBuffer, true);
    assert.equal(c.crossOriginIsolated, null); // not a Node concept
    assert.equal(c.webgpu, false);
    assert.equal(c.worker, 'in-process');
    assert.equal(Engine.capabilities({ worker: true }).worker, 'worker-threads');
    assert.equal(c.deviceMemory, totalmem() / 2 ** 30);
    assert.ok(Number.isInteger(c.hardwareConcurrency) && c.hardwareConcurrency >= 1, `hardwareConcurrency ${c.hardwareConcurrency}`);
  });

  test('relaxed SIMD is reported as the runtime has it (V8 flag on, then off)', () => {
    assert.equal(capabilitiesUnder(['--experimental-wasm-relaxed-simd']).relaxedSimd, true);
    assert.equal(capabilitiesUnder(['--no-experimental-wasm-relaxed-simd']).relaxedSimd, false);
  });
});

const CHATS = ['What is the capital of France?', 'Name three primary colors.', 'Write one sentence about the ocean.'];
const PROMPTS = ['The capital of France is', 'Once upon a time, in a small village,'];
const SENTENCES = ['The cat sits on the mat.', 'A kitten rests on a rug.', 'Paris is the capital of France.', 'Quantum chromodynamics describes the strong force.'];

describe('the no-SIMD build against the SIMD build', () => {
  let simd;
  let nosimd;

  before(async () => {
    simd = await Engine.create();
    nosimd = await Engine.create({ simd: false });
    for (const e of [simd, nosimd]) {
      await e.loadModel(modelSpec(SMOLLM2));
      await e.loadModel(modelSpec(MINILM));
    }
  });
  after(() => {
    simd?.close();
    nosimd?.close();
  });

  test('Engine.create picks the SIMD build where SIMD128 validates; { simd: false } forces the fallback', async () => {
    assert.equal(simd.build, 'simd');
    assert.equal((await simd.buildInfo()).simd128, true);
    assert.equal(nosimd.build, 'nosimd');
    const b = await nosimd.buildInfo();
    assert.equal(b.simd128, false);
    assert.equal(b.relaxedSimd, false);
    assert.equal(b.target, 'wasm32-wasip2');
  });

  test('both builds hold the models the same way', async () => {
    const [a, b] = [await simd.listModels(), await nosimd.listModels()];
    assert.deepEqual(b, a);
  });

  test('greedy chat: identical answers, "Paris" for the capital of France', async () => {
    for (const q of CHATS) {
      const [a, b] = [await simd.chat(q, { maxTokens: 48 }), await nosimd.chat(q, { maxTokens: 48 })];
      assert.equal(b.text, a.text, `chat ${JSON.stringify(q)}`);
      assert.equal(b.completionTokens, a.completionTokens);
      if (q === CHATS[0]) assert.match(b.text, /Paris/);
    }
  });

  test('greedy generate: identical tokens', async () => {
    for (const prompt of PROMPTS) {
      const [a, b] = [await simd.generate({ prompt, maxTokens: 32 }), await nosimd.generate({ prompt, maxTokens: 32 })];
      assert.deepEqual(await nosimd.tokenize(b.text), await simd.tokenize(a.text), `generate ${JSON.stringify(prompt)}`);
      assert.equal(b.completionTokens, a.completionTokens);
    }
  });

  test('MiniLM embeddings agree within cosine 0.9999 (and still tell sentences apart)', async () => {
    const [a, b] = [await simd.embed(SENTENCES), await nosimd.embed(SENTENCES)];
    for (let i = 0; i < SENTENCES.length; i++) {
      const c = cosine(a[i], b[i]);
      assert.ok(c >= 0.9999, `${JSON.stringify(SENTENCES[i])}: cosine ${c} between the builds`);
    }
    assert.ok(cosine(b[0], b[1]) > cosine(b[0], b[3]) + 0.3, 'the no-SIMD vectors keep their meaning');
  });

  test('the no-SIMD build runs in a worker_threads Worker too', async () => {
    const w = await Engine.create({ simd: false, worker: true });
    try {
      assert.equal(w.inWorker, true);
      assert.equal((await w.buildInfo()).simd128, false);
      await w.loadModel(modelSpec(SMOLLM2));
      const [a, b] = [await simd.chat(CHATS[0], { maxTokens: 24 }), await w.chat(CHATS[0], { maxTokens: 24 })];
      assert.equal(b.text, a.text);
    } finally {
      w.close();
    }
  });
});
