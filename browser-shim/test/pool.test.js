// The worker pool in Node (`workers: 2`, worker_threads) with the real models: a batch split
// across the workers gives the vectors one instance gives, concurrent loads of one id share one
// read (counted by an HTTP server) and upload once into each worker, the embedding cache answers
// a repeat without a worker call, and an aborted generation replaces only its own worker.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { Engine, LlmkgError } from '../src/index.js';
import { MAX_AUTO_WORKERS, resolveWorkers } from '../src/pool.js';
import { startServer } from '../demo/server.js';
import { SENTENCES } from '../demo/pool-bench.js';
import { MINILM, SMOLLM2, modelSpec, requireModels } from './helpers.js';

const FRANCE = 'What is the capital of France?';

requireModels();

describe('Engine.create({ workers })', () => {
  test("'auto' is the machine's parallelism, capped", async () => {
    assert.equal(await resolveWorkers('auto', true), Math.min(MAX_AUTO_WORKERS, availableParallelism()));
    assert.equal(await resolveWorkers(undefined, true), 1);
  });

  test('a worker count that is not a positive integer, or workers with worker: false, is invalid input', async () => {
    for (const workers of [0, -1, 1.5, 'two']) await assert.rejects(Engine.create({ workers }), { code: 'invalid-input' });
    await assert.rejects(Engine.create({ workers: 2, worker: false }), { code: 'invalid-input' });
    await assert.rejects(Engine.create({ embeddingCache: -3 }), { code: 'invalid-input' });
  });
});

describe('a pool of two workers', () => {
  let server;
  let pool;
  let single;
  const events = [];
  const served = (m) => server.requests.filter((p) => p.startsWith(`/models/${m.dir}/`)).length;
  const embedCalls = () => pool.stats().pool.workers.map((w) => w.calls.embed ?? 0);

  before(async () => {
    server = await startServer({ port: 0 });
    pool = await Engine.create({ workers: 2, embeddingCache: 256 });
    for (const type of ['respawn', 'reload']) pool.addEventListener(type, (e) => events.push({ type, ...e.detail }));
    single = await Engine.create();
  });
  after(async () => {
    pool?.close();
    single?.close();
    await server?.close();
  });

  test('runs in two workers', () => {
    assert.equal(pool.workers, 2);
    assert.equal(pool.inWorker, true);
    assert.equal(single.workers, 1);
    assert.equal(single.stats().pool, null);
  });

  test('two concurrent loadModel calls for one id: one promise, one read of each file, one upload per worker', async () => {
    const a = pool.loadModel(modelSpec(MINILM, `${server.url}/models`));
    const b = pool.loadModel(modelSpec(MINILM, `${server.url}/models`));
    assert.equal(a, b);
    // A caller with a signal gets its own promise, on the same load.
    const c = pool.loadModel(modelSpec(MINILM, `${server.url}/models`), { signal: new AbortController().signal });
    const [ia, ib, ic] = await Promise.all([a, b, c]);
    assert.equal(ia.id, MINILM.id);
    assert.deepEqual(ib, ia);
    assert.deepEqual(ic, ia);
    assert.equal(served(MINILM), MINILM.files.length, 'HTTP requests for the model files');
    const s = pool.stats().pool;
    assert.equal(s.fileReads, MINILM.files.length);
    assert.deepEqual(s.workers.map((w) => [w.uploads, w.calls.loadModel, w.models]), [
      [1, 1, [MINILM.id]],
      [1, 1, [MINILM.id]],
    ]);
    // A load of the same id from other files, while one is in progress, is refused.
    const d = pool.loadModel(modelSpec(MINILM));
    await assert.rejects(pool.loadModel(modelSpec(MINILM, `${server.url}/models`)), { code: 'invalid-input' });
    await d;
  });

  test('a batch of 32 split across the workers gives exactly the vectors of one instance', async () => {
    await single.loadModel(modelSpec(MINILM));
    const before = embedCalls();
    const [one, two] = await Promise.all([single.embed(SENTENCES), pool.embed(SENTENCES)]);
    assert.deepEqual(
      embedCalls().map((n, i) => n - before[i]),
      [1, 1],
      'each worker embedded one slice',
    );
    assert.equal(two.length, 32);
    for (let i = 0; i < 32; i++) {
      assert.ok(two[i] instanceof Float32Array && two[i].length === 384);
      assert.deepEqual(two[i], one[i], `sentence ${i}`);
    }
  });

  test('the embedding cache answers a repeat without a worker call', async () => {
    const before = embedCalls();
    const hits = pool.stats().embeddingCache.hits;
    const again = await pool.embed(SENTENCES);
    assert.deepEqual(embedCalls(), before, 'no worker call');
    assert.equal(pool.stats().embeddingCache.hits - hits, 32);
    const one = await single.embed(SENTENCES.slice(0, 2));
    assert.deepEqual(again[0], one[0]);
    // A vector handed out is a copy: writing into it leaves the cache alone.
    again[1].fill(0);
    assert.deepEqual((await pool.embed(SENTENCES[1]))[0], one[1]);
    // A batch with one new text makes one call, for that text.
    await pool.embed([SENTENCES[2], 'A sentence the cache has not seen.']);
    assert.equal(
      embedCalls().reduce((a, n) => a + n, 0) - before.reduce((a, n) => a + n, 0),
      1,
    );
  });

  test('an aborted generation replaces only its worker; the other keeps serving and answers "Paris"', async () => {
    await pool.loadModel(modelSpec(SMOLLM2));
    const readsBefore = pool.stats().pool.fileReads;
    const ac = new AbortController();
    const story = pool.stream({ prompt: 'Once upon a time', maxTokens: 2000 }, { signal: ac.signal });
    const busy = pool.stats().pool.workers.findIndex((w) => w.inFlight === 1);
    const other = 1 - busy;
    // Sent while the story runs: the least busy worker takes it.
    const chat = pool.chat(FRANCE, { maxTokens: 48 });
    assert.equal(pool.stats().pool.workers[other].inFlight, 1);
    let pieces = 0;
    const reloaded = new Promise((resolve) => pool.addEventListener('reload', (e) => resolve(e.detail), { once: true }));
    await assert.rejects(
      (async () => {
        for await (const _ of story) if (++pieces === 2) ac.abort();
      })(),
      (e) => {
        assert.equal(e.name, 'AbortError');
        assert.equal(e.respawned, true);
        assert.deepEqual(e.lostModels, [], 'the pool keeps its models');
        return true;
      },
    );
    assert.deepEqual(events.find((e) => e.type === 'respawn'), {
      type: 'respawn',
      reason: 'abort',
      lostModels: [],
      error: events.find((e) => e.type === 'respawn').error,
      worker: busy,
      reloading: [MINILM.id, SMOLLM2.id],
    });
    // Sent while the new worker has no models yet: the other one takes it, behind the first chat.
    const calls = pool.stats().pool.workers[other].calls.chat;
    const during = pool.chat(FRANCE, { maxTokens: 48 });
    assert.equal(pool.stats().pool.workers[other].calls.chat, calls + 1);
    assert.match((await chat).text, /Paris/);
    assert.match((await during).text, /Paris/);

    // The new worker gets the models again from their files (read once more, on this thread).
    assert.deepEqual(await reloaded, { worker: busy, models: [MINILM.id, SMOLLM2.id], error: null });
    const s = pool.stats().pool;
    assert.equal(s.fileReads - readsBefore, MINILM.files.length + SMOLLM2.files.length);
    assert.deepEqual(s.workers[busy].models, [MINILM.id, SMOLLM2.id]);
    assert.equal(s.workers[busy].respawns, 1);
    assert.equal(s.workers[other].respawns, 0);
    assert.deepEqual((await pool.listModels()).map((m) => m.id).sort(), [MINILM.id, SMOLLM2.id]);
    // Both serve again: two chats at once run one on each worker.
    const before = s.workers.map((w) => w.calls.chat ?? 0);
    const both = await Promise.all([pool.chat(FRANCE, { maxTokens: 48 }), pool.chat(FRANCE, { maxTokens: 48 })]);
    for (const c of both) assert.match(c.text, /Paris/);
    assert.deepEqual(pool.stats().pool.workers.map((w, i) => (w.calls.chat ?? 0) - before[i]), [1, 1]);
  });

  test('unloadModel unloads from every worker', async () => {
    await pool.unloadModel(SMOLLM2.id);
    assert.deepEqual(pool.stats().pool.workers.map((w) => w.models), [[MINILM.id], [MINILM.id]]);
    await assert.rejects(pool.chat(FRANCE, { model: SMOLLM2.id }), (e) => e instanceof LlmkgError && e.code === 'not-found');
    const m = await pool.memoryStats();
    assert.deepEqual(m.models.map((x) => x.id), [MINILM.id]);
    assert.ok(m.linearMemoryBytes > 0);
  });
});
