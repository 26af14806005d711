// The worker pool (`Engine.create({ workers: N })`, N >= 2): N workers, each with its own
// component instance. A batch `embed` is split into contiguous slices across the least busy
// workers; any other call that names a model goes to the least busy worker holding it; the rest
// (the knowledge graph, whose state lives in one instance) go to worker 0. A model is read once
// on this thread (Cache API / network in browsers, the file in Node) and its bytes are pushed to
// every worker (src/serve.js), so no worker fetches anything. A worker that is replaced (abort,
// trap, crash) gets the pool's models again, read once more from their source, while the others
// keep serving.
import { LlmkgError } from './errors.js';

/** `workers: 'auto'` uses the hardware's threads, at most this many (each holds its own models). */
export const MAX_AUTO_WORKERS = 8;

/** Bytes a worker may have been sent but not yet written into its upload: the pool reads a file
 * only as fast as the slowest worker takes it, and never holds a whole file. */
const UPLOAD_WINDOW = 8 << 20;

/** Calls that only read a model, and where their model id is: any worker holding it may run them. */
const MODEL_OF = {
  generate: (a) => a[0]?.model,
  stream: (a) => a[0]?.model,
  chat: (a) => a[0]?.model,
  streamChat: (a) => a[0]?.model,
  embed: (a) => a[0],
  tokenize: (a) => a[0],
  detokenize: (a) => a[0],
  score: (a) => a[0],
};

/** The number of workers `workers` asks for: a positive integer, or 'auto'. */
export async function resolveWorkers(option, isNode) {
  if (option === undefined) return 1;
  if (option === 'auto') {
    const threads = isNode ? (await import('node:os')).availableParallelism() : globalThis.navigator?.hardwareConcurrency;
    return Math.max(1, Math.min(MAX_AUTO_WORKERS, Number(threads) || 1));
  }
  if (!Number.isInteger(option) || option < 1) throw new LlmkgError('invalid-input', `workers must be a positive integer or 'auto', not ${JSON.stringify(option)}`);
  return option;
}

class Member {
  /** Calls sent to this worker, by method (the tests count them). */
  calls = {};
  inFlight = 0;
  /** Completed model uploads into this worker (first loads and reloads). */
  uploads = 0;
  respawns = 0;
  /** Models this worker holds. */
  models = new Set();
  /** While the pool loads its models into a respawned worker: that promise, and which models. */
  reload = null;
  reloading = new Set();

  constructor(index) {
    this.index = index;
  }

  call(method, args, opts) {
    this.calls[method] = (this.calls[method] ?? 0) + 1;
    this.inFlight++;
    const c = this.backend.call(method, args, opts);
    c.result.then(
      () => this.inFlight--,
      () => this.inFlight--,
    );
    return c;
  }
}

export class PoolBackend {
  #platform;
  #emit;
  #members = [];
  #models = new Map(); // id -> load request, in load order: what a respawned worker gets again
  #loads = Promise.resolve(); // loads, unloads and reloads run one at a time
  #nextStream = 1;
  #fileReads = 0;
  #closed = false;

  /**
   * @param {object} platform src/platform-*.js: opens model files on this thread
   * @param {number} size
   * @param {(onRespawn: (reason: string, error: string) => string[]) => object} makeWorker a WorkerBackend
   * @param {(type: string, detail: object) => void} emit dispatches an event on the engine
   */
  constructor(platform, size, makeWorker, emit) {
    this.#platform = platform;
    this.#emit = emit;
    for (let i = 0; i < size; i++) {
      const m = new Member(i);
      m.backend = makeWorker((reason, error) => this.#respawned(m, reason, error));
      this.#members.push(m);
    }
  }

  get size() {
    return this.#members.length;
  }

  async start() {
    const methods = await Promise.all(this.#members.map((m) => m.backend.start()));
    return methods[0];
  }

  call(method, args, opts = {}) {
    if (this.#closed) return failed(new LlmkgError('aborted', 'the engine was closed'));
    switch (method) {
      case 'loadModel':
        return this.#load(args[0], opts);
      case 'unloadModel':
        return handle(this.#unload(args[0]));
      case 'memoryStats':
        return handle(this.#memoryStats());
      case 'embed':
        return this.#embed(args, opts);
    }
    const model = MODEL_OF[method]?.(args);
    if (model === undefined) return this.#members[0].call(method, args, opts);
    return this.#callOn(this.#leastBusy(this.#serving(model))[0], model, method, args, opts);
  }

  /** What the tests and a status panel read: per worker, calls by method, calls in flight,
   * uploads, respawns and models; model files read on this thread. */
  stats() {
    return {
      fileReads: this.#fileReads,
      workers: this.#members.map((m) => ({
        calls: { ...m.calls },
        inFlight: m.inFlight,
        uploads: m.uploads,
        respawns: m.respawns,
        models: [...m.models],
        reloading: [...m.reloading],
      })),
    };
  }

  close() {
    this.#closed = true;
    for (const m of this.#members) m.backend.close();
  }

  // --- routing -------------------------------------------------------------------------------

  /** Workers holding `model`; else those about to hold it again (a reload); else all of them
   * (the worker then answers `not-found`, with the engine's message). */
  #serving(model) {
    const holding = this.#members.filter((m) => m.models.has(model));
    if (holding.length) return holding;
    const reloading = this.#members.filter((m) => m.reloading.has(model));
    return reloading.length ? reloading : this.#members;
  }

  /** Those of `members` with the fewest calls in flight (all of them when equally busy). */
  #leastBusy(members) {
    const least = Math.min(...members.map((m) => m.inFlight));
    return members.filter((m) => m.inFlight === least);
  }

  /** Calls `member`, after its reload when it is getting `model` back. */
  #callOn(member, model, method, args, opts) {
    if (!member.reloading.has(model)) return member.call(method, args, opts);
    let call = null;
    let cancelled = false;
    const result = member.reload.then(() => {
      call = member.call(method, args, opts);
      if (cancelled) call.cancel();
      return call.result;
    });
    return { result, cancel: () => (call ? call.cancel() : (cancelled = true)) };
  }

  /** A batch in contiguous slices, one per least busy worker holding the model, re-assembled in order. */
  #embed(args, opts) {
    const [model, texts] = args;
    const members = this.#leastBusy(this.#serving(model));
    const n = Array.isArray(texts) ? Math.min(members.length, texts.length) : 1;
    if (n <= 1) return this.#callOn(members[0], model, 'embed', args, opts);
    const calls = [];
    for (let i = 0, start = 0; i < n; i++) {
      const end = start + Math.floor(texts.length / n) + (i < texts.length % n ? 1 : 0);
      calls.push(this.#callOn(members[i], model, 'embed', [model, texts.slice(start, end)], opts));
      start = end;
    }
    return {
      result: Promise.all(calls.map((c) => c.result)).then((parts) => parts.flat()),
      cancel: () => calls.forEach((c) => c.cancel()),
    };
  }

  // --- models --------------------------------------------------------------------------------

  #enqueue(job) {
    const run = this.#loads.then(job, job);
    this.#loads = run.catch(() => {});
    return run;
  }

  #load(request, { signal, onPiece }) {
    const control = { cancel: null, cancelled: false };
    const job = this.#enqueue(async () => {
      const info = await this.#upload(this.#members, request, { signal, onPiece, control });
      this.#models.delete(request.id);
      this.#models.set(request.id, request);
      return info;
    });
    job.catch(() => {});
    // An abort while the load still waits for the one before it fails it at once.
    const result = signal ? Promise.race([job, new Promise((_, reject) => signal.addEventListener('abort', () => reject(abortError(signal)), { once: true }))]) : job;
    return { result, cancel: () => ((control.cancelled = true), control.cancel?.()) };
  }

  async #unload(id) {
    return this.#enqueue(async () => {
      const results = await Promise.allSettled(this.#members.map((m) => m.call('unloadModel', [id]).result));
      this.#models.delete(id);
      for (const m of this.#members) m.models.delete(id);
      const ok = results.find((r) => r.status === 'fulfilled');
      if (!ok) throw results[0].reason;
    });
  }

  /**
   * Reads each file of `request` once and pushes its bytes to every target worker, each of which
   * streams them into its own `model-upload`. Resolves with the model info once every target has
   * the model; a target replaced meanwhile gets it back by its reload.
   */
  async #upload(targets, request, { signal, onPiece, control = {} } = {}) {
    const stream = this.#nextStream++;
    const sources = [];
    const uploads = [];
    const aborted = () => (signal?.aborted ? abortError(signal) : control.cancelled ? new LlmkgError('aborted', `loadModel(${request.id}) was cancelled`) : null);
    const stopAll = (message) => {
      for (const u of uploads) if (u.live) u.member.backend.postData(u.epoch, { type: 'chunk-abort', stream, message });
    };
    const onAbort = () => stopAll('the load was aborted');
    signal?.addEventListener('abort', onAbort, { once: true });
    control.cancel = onAbort;
    try {
      if (aborted()) throw aborted();
      for (const f of request.files) {
        sources.push(await this.#platform.openFile(f, { cache: request.cache }));
        this.#fileReads++;
      }
      const files = request.files.map((f, i) => ({ name: f.name, url: f.url, pushed: stream, fileIndex: i, size: sources[i].size, fromCache: sources[i].fromCache }));
      const pushed = { ...request, files, cache: undefined };
      for (const member of targets) {
        const u = { member, epoch: member.backend.epoch, sent: 0, written: 0, live: true, wake: null };
        const wake = () => {
          const w = u.wake;
          u.wake = null;
          w?.();
        };
        // Progress reports say how much the worker has written: that paces the sending.
        u.call = member.call('loadModel', [pushed], {
          onPiece: (p) => {
            u.written = p.loaded;
            wake();
            if (uploads.find((x) => x.live) === u) onPiece?.(p);
          },
        });
        u.done = u.call.result.then(
          (info) => ({ info }),
          (error) => ({ error }),
        );
        u.done.then(() => ((u.live = false), wake()));
        u.drained = async () => {
          while (u.live && u.sent - u.written > UPLOAD_WINDOW) await new Promise((r) => (u.wake = r));
        };
        uploads.push(u);
      }
      sending: for (let i = 0; i < sources.length; i++) {
        for await (const chunk of sources[i].chunks()) {
          if (aborted()) throw aborted();
          const live = uploads.filter((u) => u.live);
          if (!live.length) break sending; // every target failed: their results say why
          for (const u of live) {
            // A copy each: Node's reader reuses its buffer, the browser's chunk is shared with
            // the Cache API's copy; the copy is transferred, not cloned again.
            const bytes = chunk.slice();
            u.member.backend.postData(u.epoch, { type: 'chunk', stream, file: i, bytes }, [bytes.buffer]);
            u.sent += bytes.byteLength;
          }
          await Promise.all(live.map((u) => u.drained()));
        }
        for (const u of uploads) if (u.live) u.member.backend.postData(u.epoch, { type: 'chunk-end', stream, file: i });
      }
      const results = await Promise.all(uploads.map((u) => u.done));
      if (aborted()) throw aborted();
      const done = results.filter((r) => r.info);
      // A worker replaced during the load gets the model from its reload; any other failure
      // fails the load everywhere, so that every worker holds the same models.
      const failure = results.find((r) => r.error && !(r.error.respawned && done.length));
      if (failure) {
        await Promise.allSettled(uploads.filter((u, i) => results[i].info).map((u) => u.member.call('unloadModel', [request.id]).result));
        throw failure.error;
      }
      uploads.forEach((u, i) => {
        if (!results[i].info || u.member.backend.epoch !== u.epoch) return;
        u.member.models.add(request.id);
        u.member.uploads++;
      });
      return done[0].info;
    } catch (e) {
      // The workers drop what they got (a worker still busy with another call does so when it
      // reaches this load); the caller need not wait for that.
      stopAll(e.message);
      throw e;
    } finally {
      signal?.removeEventListener('abort', onAbort);
      for (const s of sources) s.close?.();
    }
  }

  /** A worker was replaced: its calls failed (the error says `respawned`), and it gets the
   * pool's models back from their sources while the other workers keep serving. */
  #respawned(member, reason, error) {
    member.models.clear();
    const respawn = ++member.respawns;
    const models = [...this.#models.keys()];
    member.reloading = new Set(models);
    this.#emit('respawn', { reason, lostModels: [], error, worker: member.index, reloading: models });
    if (!this.#closed && models.length) {
      // After the WorkerBackend has started the new worker (it does so right after this returns).
      member.reload = Promise.resolve().then(() =>
        this.#enqueue(async () => {
          const reloaded = [];
          let failure = null;
          for (const request of this.#models.values()) {
            try {
              await this.#upload([member], request);
              reloaded.push(request.id);
            } catch (e) {
              failure ??= e;
            }
          }
          if (member.respawns === respawn) member.reloading.clear(); // else a newer reload is on its way
          this.#emit('reload', { worker: member.index, models: reloaded, error: failure?.message ?? null });
        }),
      );
    } else {
      member.reloading.clear();
    }
    return [];
  }

  /** The pool's memory: byte counts summed over the workers, each model's bytes summed too. */
  async #memoryStats() {
    const all = await Promise.all(this.#members.map((m) => m.call('memoryStats', []).result));
    const sum = (k) => all.reduce((a, s) => a + BigInt(s[k]), 0n);
    const models = new Map();
    for (const s of all) {
      for (const m of s.models) {
        const t = models.get(m.id) ?? { id: m.id, weightBytes: 0n, cacheBytes: 0n };
        t.weightBytes += BigInt(m.weightBytes);
        t.cacheBytes += BigInt(m.cacheBytes);
        models.set(m.id, t);
      }
    }
    return { linearMemoryBytes: sum('linearMemoryBytes'), allocatedBytes: sum('allocatedBytes'), peakAllocatedBytes: sum('peakAllocatedBytes'), models: [...models.values()] };
  }
}

function handle(promise) {
  return { result: promise, cancel() {} };
}

function failed(error) {
  const result = Promise.reject(error);
  result.catch(() => {});
  return { result, cancel() {} };
}

function abortError(signal) {
  const why = signal?.reason instanceof Error ? `: ${signal.reason.message}` : '';
  return new LlmkgError('aborted', `the call was aborted${why}`);
}
