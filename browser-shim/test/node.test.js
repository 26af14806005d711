// The shim in Node with the real models: in-process by default, and in a worker_threads Worker.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Engine, LlmkgError } from '../src/index.js';
import { MINILM, SMOLLM2, cosine, llmkgCli, modelSpec, modelsDir, repoRoot, requireModels, transpiledComponent } from './helpers.js';

const FRANCE = 'What is the capital of France?';
const SENTENCES = ['The cat sits on the mat.', 'A kitten rests on a rug.', 'Paris is the capital of France.', 'Quantum chromodynamics describes the strong force.'];

requireModels();

describe('in-process engine (the default in Node)', () => {
  let engine;
  const progress = [];

  before(async () => {
    engine = await Engine.create();
    await engine.loadModel(modelSpec(SMOLLM2), { onProgress: (p) => progress.push(p) });
    // file: URLs work as well as paths.
    const minilm = modelSpec(MINILM);
    minilm.files = minilm.files.map((f) => ({ ...f, url: pathToFileURL(f.url) }));
    await engine.loadModel(minilm);
  });
  after(() => engine?.close());

  test('runs in-process by default and reports the build', async () => {
    assert.equal(engine.inWorker, false);
    const b = await engine.buildInfo();
    assert.equal(b.target, 'wasm32-wasip2');
    assert.equal(b.simd128, true);
  });

  test('loadModel reports streamed bytes up to the file size, then the finish phase', () => {
    const size = progress[0].total;
    assert.ok(size > 90e6, `total ${size}`);
    const downloads = progress.filter((p) => p.phase === 'download');
    assert.ok(downloads.length > 10, `${downloads.length} progress reports`);
    for (let i = 1; i < downloads.length; i++) assert.ok(downloads[i].loaded >= downloads[i - 1].loaded);
    assert.equal(downloads.at(-1).loaded, size);
    assert.equal(progress.at(-1).phase, 'finish');
  });

  test('greedy chat answers "Paris" for the capital of France', async () => {
    const c = await engine.chat(FRANCE, { maxTokens: 48 });
    assert.match(c.text, /Paris/);
    assert.equal(c.finishReason, 'end-of-text');
  });

  test('streamed chat yields pieces that add up to the completion', async () => {
    const s = engine.streamChat([{ role: 'user', content: FRANCE }], { maxTokens: 48 });
    let text = '';
    let pieces = 0;
    for await (const piece of s) {
      text += piece;
      pieces++;
    }
    const c = await s.completion;
    assert.ok(pieces > 1);
    assert.equal(text, c.text);
    assert.match(text, /Paris/);
  });

  test('without a system message the engine gives the model its default one', async () => {
    const implicit = await engine.chat(FRANCE, { maxTokens: 24 });
    const explicit = await engine.chat([{ role: 'system', content: 'You are a helpful assistant.' }, { role: 'user', content: FRANCE }], { maxTokens: 24 });
    assert.equal(implicit.promptTokens, explicit.promptTokens);
    assert.equal(implicit.text, explicit.text);
    const other = await engine.chat(FRANCE, { maxTokens: 4, system: 'You are a pirate.' });
    assert.notEqual(other.promptTokens, implicit.promptTokens);
  });

  test('generate and stream give the same greedy text', async () => {
    const req = { prompt: 'The capital of France is', maxTokens: 8 };
    const whole = await engine.generate(req);
    let streamed = '';
    for await (const p of engine.stream(req)) streamed += p;
    assert.equal(streamed, whole.text);
    assert.equal(whole.finishReason, 'length');
    assert.equal(whole.completionTokens, 8);
  });

  test('score gives log-probabilities and a perplexity that prefers sense to scrambled words', async () => {
    const sense = await engine.score('The capital of France is Paris, a city on the river Seine.');
    const noise = await engine.score('Seine river the Paris on France city capital is a of the.');
    assert.equal(sense.tokens.length > 8, true);
    assert.ok(sense.tokens.every((t) => t.logprob <= 0 && Number.isInteger(t.topToken)));
    assert.ok(sense.perplexity < noise.perplexity, `${sense.perplexity} vs ${noise.perplexity}`);
  });

  test('leaving a stream early stops it and keeps the models', async () => {
    let n = 0;
    for await (const _ of engine.stream({ prompt: 'Once upon a time', maxTokens: 200 })) if (++n === 3) break;
    assert.equal(n, 3);
    assert.deepEqual((await engine.listModels()).map((m) => m.id).sort(), [MINILM.id, SMOLLM2.id]);
  });

  test('embeddings match the fp32 reference vectors (cosine >= 0.999)', async () => {
    const fx = JSON.parse(readFileSync(join(repoRoot, 'tests/fixtures/minilm_embeddings.json'), 'utf8'));
    const got = await engine.embed(fx.sentences);
    assert.equal(got.length, fx.sentences.length);
    for (let i = 0; i < got.length; i++) {
      assert.ok(got[i] instanceof Float32Array);
      assert.equal(got[i].length, fx.dim);
      const c = cosine(got[i], fx.embeddings[i]);
      assert.ok(c >= 0.999, `sentence ${i} (${JSON.stringify(fx.sentences[i])}): cosine ${c}`);
    }
  });

  test('embeddings equal those of the Wasmtime host (cosine >= 0.9999)', async () => {
    const cli = llmkgCli();
    const out = execFileSync(cli, ['embed', '--json', '--quiet', '--component', transpiledComponent().component, '--model', join(modelsDir, MINILM.dir), ...SENTENCES], {
      encoding: 'utf8',
      maxBuffer: 64 << 20,
    });
    const host = JSON.parse(out).embeddings;
    const ours = await engine.embed(SENTENCES);
    assert.equal(host.length, SENTENCES.length);
    for (let i = 0; i < SENTENCES.length; i++) {
      const c = cosine(ours[i], host[i]);
      assert.ok(c >= 0.9999, `sentence ${i}: cosine ${c}`);
    }
  });

  test('an unknown model id is a not-found error', async () => {
    await assert.rejects(engine.generate({ model: 'no-such-model', prompt: 'hi' }), (e) => {
      assert.ok(e instanceof LlmkgError);
      assert.equal(e.code, 'not-found');
      assert.match(e.message, /no-such-model/);
      return true;
    });
    await assert.rejects(engine.embed(['x'], { model: 'no-such-model' }), { code: 'not-found' });
  });

  test('max-tokens 0 is an invalid-input error', async () => {
    await assert.rejects(engine.generate({ prompt: 'hi', maxTokens: 0 }), (e) => {
      assert.ok(e instanceof LlmkgError);
      assert.equal(e.code, 'invalid-input');
      assert.match(e.message, /max-tokens/);
      return true;
    });
  });

  test('a value outside its WIT type (a negative u32) is an invalid-input error', async () => {
    await assert.rejects(engine.generate({ prompt: 'hi', maxTokens: -1 }), { code: 'invalid-input' });
  });

  test('a missing model file is a not-found error naming the file', async () => {
    await assert.rejects(engine.loadModel({ id: 'x', kind: 'embedding', files: [{ url: join(modelsDir, 'nope.safetensors') }] }), (e) => {
      assert.equal(e.code, 'not-found');
      assert.match(e.message, /nope\.safetensors/);
      return true;
    });
  });

  test('knowledge calls exist exactly when the component exports the knowledge interface', async () => {
    const exported = /\bknowledge:/.test(readFileSync(new URL('../dist/node/llmkg.d.ts', import.meta.url), 'utf8'));
    assert.equal(engine.methods.includes('query'), exported);
    assert.equal(typeof engine.query, exported ? 'function' : 'undefined');
    if (!exported) return;
    const r = await engine.insert([{ subject: 'Veltrania', predicate: 'capital', object: { tag: 'entity', val: 'Quorvik' } }]);
    assert.ok(r.changed >= 1 && typeof r.total === 'number');
    const q = await engine.query('SELECT ?o WHERE { <urn:llmkg:Veltrania> <urn:llmkg:capital> ?o }', 10);
    assert.equal(q.tag, 'solutions');
    assert.deepEqual(q.val.rows, [[{ tag: 'iri', val: 'urn:llmkg:Quorvik' }]]);
    await assert.rejects(engine.query('SELEKT nothing', 10), { code: 'query-syntax' });
  });

  test('importGraph resolves relative IRIs against baseIri and loads into the named graph', async () => {
    if (!engine.methods.includes('importGraph')) return;
    const turtle = new TextEncoder().encode('<a> <p> <b> .');
    await assert.rejects(engine.importGraph('turtle', turtle), { code: 'invalid-input' });
    const r = await engine.importGraph('turtle', turtle, { baseIri: 'http://example.org/dir/doc.ttl', graph: 'urn:g' });
    assert.equal(r.changed, 1);
    const q = await engine.query('SELECT ?o WHERE { GRAPH <urn:g> { <http://example.org/dir/a> <http://example.org/dir/p> ?o } }', 10);
    assert.deepEqual(q.val.rows, [[{ tag: 'iri', val: 'http://example.org/dir/b' }]]);
  });

  test('memoryStats reports the loaded models with byte counts as numbers', async () => {
    const s = await engine.memoryStats();
    assert.equal(typeof s.linearMemoryBytes, 'number');
    assert.ok(s.peakAllocatedBytes >= s.allocatedBytes);
    assert.deepEqual(s.models.map((m) => m.id).sort(), [MINILM.id, SMOLLM2.id]);
  });
});

describe('in-process trap recovery', () => {
  test('after a trap the in-process engine instantiates the component again and says so', async () => {
    const engine = await Engine.create({ testHooks: true });
    await engine.loadModel(modelSpec(MINILM));
    const respawns = [];
    engine.addEventListener('respawn', (e) => respawns.push(e.detail));
    await assert.rejects(engine.simulateTrap(), { code: 'trap', respawned: true, lostModels: [MINILM.id] });
    assert.deepEqual(respawns.map((r) => [r.reason, r.lostModels]), [['trap', [MINILM.id]]]);
    assert.deepEqual(await engine.listModels(), []);
    await engine.loadModel(modelSpec(MINILM));
    assert.equal((await engine.embed('hello'))[0].length, 384);
    engine.close();
  });
});

describe('worker_threads engine (worker: true)', () => {
  let engine;
  const respawns = [];

  before(async () => {
    engine = await Engine.create({ worker: true, testHooks: true });
    engine.addEventListener('respawn', (e) => respawns.push(e.detail));
    await engine.loadModel(modelSpec(SMOLLM2));
  });
  after(() => engine?.close());

  test('runs in a worker and answers "Paris"', async () => {
    assert.equal(engine.inWorker, true);
    const c = await engine.chat(FRANCE, { maxTokens: 48 });
    assert.match(c.text, /Paris/);
  });

  test('errors from the worker carry the WIT variant', async () => {
    await assert.rejects(engine.chat(FRANCE, { model: 'no-such-model' }), { name: 'LlmkgError', code: 'not-found' });
    await assert.rejects(engine.chat(FRANCE, { maxTokens: 0 }), { code: 'invalid-input' });
  });

  test('an AbortSignal terminates the worker, a new one starts, and the lost models are reported', async () => {
    const ac = new AbortController();
    const s = engine.stream({ prompt: 'Once upon a time', maxTokens: 2000 }, { signal: ac.signal });
    let pieces = 0;
    await assert.rejects(
      (async () => {
        for await (const _ of s) if (++pieces === 2) ac.abort();
      })(),
      (e) => {
        assert.equal(e.name, 'AbortError');
        assert.equal(e.code, 'aborted');
        assert.equal(e.respawned, true);
        assert.deepEqual(e.lostModels, [SMOLLM2.id]);
        return true;
      },
    );
    assert.deepEqual(respawns.at(-1), { reason: 'abort', lostModels: [SMOLLM2.id], error: respawns.at(-1).error });
    // The new worker works; the model has to be loaded again.
    await assert.rejects(engine.chat(FRANCE, { model: SMOLLM2.id }), { code: 'not-found' });
    await engine.loadModel(modelSpec(SMOLLM2));
    assert.match((await engine.chat(FRANCE, { maxTokens: 48 })).text, /Paris/);
  });

  test('after a trap the engine respawns and says so', async () => {
    const before = respawns.length;
    await assert.rejects(engine.simulateTrap(), (e) => {
      assert.equal(e.code, 'trap');
      assert.equal(e.respawned, true);
      assert.deepEqual(e.lostModels, [SMOLLM2.id]);
      return true;
    });
    assert.equal(respawns.length, before + 1);
    assert.equal(respawns.at(-1).reason, 'trap');
    assert.deepEqual(await engine.listModels(), []);
    assert.equal((await engine.buildInfo()).target, 'wasm32-wasip2');
  });
});
