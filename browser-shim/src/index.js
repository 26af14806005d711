// llmkg for JavaScript: the llmkg component (jco-transpiled) behind one small API, the same in
// Node and browsers. The component runs in a module Web Worker (browsers, by default), a
// worker_threads Worker (Node, `worker: true`) or in-process (Node, by default); with
// `workers: N` in a pool of N workers (src/pool.js).
import { EmbeddingCache } from './embedding-cache.js';
import { LlmkgError, fromWire, toWire } from './errors.js';
import { Host, IMMEDIATE } from './host.js';
import { PoolBackend, resolveWorkers } from './pool.js';

export { LlmkgError };
export { models, defaultModelIds, catalogSpec } from './models.js';

const isNode = typeof process !== 'undefined' && !!process.versions?.node && typeof window === 'undefined';

export const DEFAULT_MAX_TOKENS = 256;

const platformPromise = isNode ? import('./platform-node.js') : import('./platform-web.js');
// build ('simd' | 'nosimd') -> Promise<{ [core module name]: WebAssembly.Module }>, shared by every Engine
const compiled = new Map();

export class Engine extends EventTarget {
  #backend;
  #models = new Map(); // id -> kind, in load order: what a respawn loses, and the default models
  #loading = new Map(); // id -> the load in progress, which concurrent loadModel calls share
  #embeddings = null; // EmbeddingCache, with `embeddingCache: size`
  /** The calls the loaded component supports (e.g. 'query' once it exports `knowledge`). */
  methods = [];
  /** Which component runs: 'simd' (SIMD128 kernels) or 'nosimd' (the same sources built without SIMD). */
  build = 'simd';

  /**
   * @param {{ worker?: boolean, simd?: boolean, workers?: number | 'auto', embeddingCache?: number, testHooks?: boolean,
   *           onProgress?: (p: { file: string, loaded: number, total: number | null }) => void }} [options]
   */
  static async create(options = {}) {
    const platform = await platformPromise;
    const workers = await resolveWorkers(options.workers, isNode);
    if (workers > 1 && options.worker === false) throw new LlmkgError('invalid-input', `workers: ${options.workers} runs the component in workers; it cannot be combined with worker: false`);
    const embeddings = EmbeddingCache.fromOption(options.embeddingCache);
    const useWorker = options.worker ?? !isNode;
    // The SIMD build where this runtime validates SIMD128, else the build without it.
    const build = (options.simd ?? WebAssembly.validate(SIMD128_PROBE)) ? 'simd' : 'nosimd';
    if (!compiled.has(build)) {
      compiled.set(build, platform.compileComponent(options.onProgress, build).catch((e) => {
        compiled.delete(build);
        throw e;
      }));
    }
    const modules = await compiled.get(build);
    const engine = new Engine();
    engine.build = build;
    engine.#embeddings = embeddings;
    const backendOptions = { ...options, build };
    if (workers > 1) {
      const emit = (type, detail) => engine.dispatchEvent(new CustomEvent(type, { detail }));
      engine.#backend = new PoolBackend(platform, workers, (onRespawn) => new WorkerBackend(platform, modules, backendOptions, onRespawn), emit);
    } else {
      const Backend = useWorker ? WorkerBackend : InProcessBackend;
      engine.#backend = new Backend(platform, modules, backendOptions, (reason, error) => engine.#respawned(reason, error));
    }
    engine.methods = await engine.#backend.start();
    // Calls beyond the core set (the knowledge graph's `query`, `search`, `ask`, ...) appear on
    // the engine only when the component exports them. Arguments go to the component as the WIT
    // has them (records in camelCase); u64 results come back as numbers.
    for (const m of engine.methods) {
      if (!(m in engine)) engine[m] = async (...args) => numbers(await engine.#call(m, args));
    }
    if (options.testHooks) engine.simulateTrap = () => engine.#call('__simulateTrap', []);
    return engine;
  }

  /**
   * What this runtime offers, probed without loading the component. `worker` is where
   * `Engine.create(options)` would run the component with these options.
   * @param {{ worker?: boolean }} [options]
   */
  static capabilities(options = {}) {
    const nav = globalThis.navigator;
    const simd128 = WebAssembly.validate(SIMD128_PROBE);
    const useWorker = options.worker ?? !isNode;
    return {
      runtime: isNode ? 'node' : 'browser',
      simd128,
      relaxedSimd: WebAssembly.validate(RELAXED_SIMD_PROBE),
      // The build `Engine.create` picks here unless `simd` says otherwise.
      build: simd128 ? 'simd' : 'nosimd',
      // Browsers hide the constructor unless the page is cross-origin isolated (COOP + COEP).
      sharedArrayBuffer: typeof SharedArrayBuffer === 'function',
      crossOriginIsolated: typeof globalThis.crossOriginIsolated === 'boolean' ? globalThis.crossOriginIsolated : null,
      webgpu: !!nav?.gpu,
      worker: !useWorker ? 'in-process' : isNode ? 'worker-threads' : 'module-worker',
      // GiB: the browser's rounded hint (Chromium, secure contexts only), Node's total memory.
      deviceMemory: isNode ? nodeOs.totalmem() / 2 ** 30 : (nav?.deviceMemory ?? null),
      hardwareConcurrency: nav?.hardwareConcurrency ?? (isNode ? nodeOs.availableParallelism() : null),
    };
  }

  /** True when the component runs in a worker (and an abort or a trap replaces the worker). */
  get inWorker() {
    return this.#backend instanceof WorkerBackend || this.#backend instanceof PoolBackend;
  }

  /** How many component instances (workers) serve this engine. */
  get workers() {
    return this.#backend instanceof PoolBackend ? this.#backend.size : 1;
  }

  /** Counters: the embedding cache's (null when off) and the pool's (null without one). */
  stats() {
    return {
      embeddingCache: this.#embeddings?.stats() ?? null,
      pool: this.#backend instanceof PoolBackend ? this.#backend.stats() : null,
    };
  }

  /**
   * Loads a model by streaming its files into the component chunk by chunk. Calls for an id
   * that is already loading share that load (without a signal: the very same promise).
   * @param {{ id: string, kind: 'text-generation' | 'embedding', files: { name?: string, url: string | URL }[],
   *           conversion?: string, contextLength?: number }} spec
   * @param {{ onProgress?: (p: object) => void, signal?: AbortSignal, cache?: string | false }} [opts]
   */
  loadModel(spec, { onProgress, signal, cache } = {}) {
    try {
      if (signal?.aborted) throw abortError(signal);
      return this.#loadShared(spec, onProgress, signal, cache);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  #loadShared(spec, onProgress, signal, cache) {
    const files = (spec.files ?? []).map((f) => {
      const url = resolveUrl(f.url);
      return { name: f.name ?? basename(url), url };
    });
    const request = {
      id: spec.id,
      kind: spec.kind,
      files,
      options: { conversion: spec.conversion ?? 'auto', contextLength: spec.contextLength },
      cache,
    };
    const key = JSON.stringify([request.kind, files, request.options]);
    let load = this.#loading.get(request.id);
    if (load && load.key !== key) {
      return Promise.reject(new LlmkgError('invalid-input', `loadModel(${request.id}): this id is being loaded from other files or with other options; await that load first`));
    }
    if (!load) {
      load = new SharedLoad(key, (loadSignal, onPiece) => this.#call('loadModel', [request], { signal: loadSignal, onPiece }));
      this.#loading.set(request.id, load);
      load.promise = load.promise.then(
        (info) => {
          this.#loading.delete(request.id);
          this.#embeddings?.forget(info.id);
          this.#models.delete(info.id);
          this.#models.set(info.id, info.kind);
          return modelInfo(info);
        },
        (e) => {
          this.#loading.delete(request.id);
          throw e;
        },
      );
    }
    return load.join(onProgress, signal);
  }

  async unloadModel(id) {
    await this.#call('unloadModel', [id]);
    this.#embeddings?.forget(id);
    this.#models.delete(id);
  }

  async listModels() {
    return (await this.#call('listModels', [])).map(modelInfo);
  }

  /** @param {GenerateOptions & { prompt: string }} req */
  generate(req, { signal } = {}) {
    return this.#callWith('generate', () => [this.#generateRequest(req)], { signal });
  }

  /** `for await (const piece of engine.stream(req))`; `await s.completion` afterwards. */
  stream(req, { signal } = {}) {
    return new TokenStream((onPiece) => this.#startWith('stream', () => [this.#generateRequest(req)], { signal, onPiece }));
  }

  /** @param {string | { role: string, content: string }[]} messages */
  chat(messages, opts = {}) {
    return this.#callWith('chat', () => [this.#chatRequest(messages, opts)], { signal: opts.signal });
  }

  streamChat(messages, opts = {}) {
    return new TokenStream((onPiece) => this.#startWith('streamChat', () => [this.#chatRequest(messages, opts)], { signal: opts.signal, onPiece }));
  }

  /** @param {string | string[]} texts  @returns {Promise<Float32Array[]>} */
  embed(texts, { model, signal } = {}) {
    const list = typeof texts === 'string' ? [texts] : texts;
    if (this.#embeddings && Array.isArray(list)) return this.#cachedEmbed(list, model, signal);
    return this.#callWith('embed', () => [model ?? this.#defaultModel('embedding'), list], { signal });
  }

  /** Texts the cache holds are answered from it; the others go to the component in one call. */
  async #cachedEmbed(list, model, signal) {
    const id = model ?? this.#defaultModel('embedding');
    const cache = this.#embeddings;
    const out = list.map((t) => cache.get(id, t));
    const missing = [...new Set(list.filter((_, i) => !out[i]))];
    if (missing.length) {
      const version = cache.version;
      const vectors = await this.#call('embed', [id, missing], { signal });
      const got = new Map(missing.map((t, i) => [t, vectors[i]]));
      for (const [t, v] of got) cache.set(id, t, v, version);
      list.forEach((t, i) => (out[i] ??= got.get(t)));
    }
    // Copies: a caller that writes into a vector must not change the cached one.
    return out.map((v) => new Float32Array(v));
  }

  tokenize(text, { model, addSpecialTokens = false } = {}) {
    return this.#callWith('tokenize', () => [model ?? this.#defaultModel('text-generation'), text, addSpecialTokens]);
  }

  detokenize(tokens, { model } = {}) {
    return this.#callWith('detokenize', () => [model ?? this.#defaultModel('text-generation'), Uint32Array.from(tokens)]);
  }

  /** Teacher-forced scoring: per-token log-probabilities and the perplexity of `text`. */
  score(text, { model } = {}) {
    return this.#callWith('score', () => [model ?? this.#defaultModel('text-generation'), text]);
  }

  /** Memory the component holds; byte counts are numbers (all are far below 2^53). */
  async memoryStats() {
    const s = await this.#call('memoryStats', []);
    return {
      linearMemoryBytes: Number(s.linearMemoryBytes),
      allocatedBytes: Number(s.allocatedBytes),
      peakAllocatedBytes: Number(s.peakAllocatedBytes),
      models: s.models.map((m) => ({ id: m.id, weightBytes: Number(m.weightBytes), cacheBytes: Number(m.cacheBytes) })),
    };
  }

  buildInfo() {
    return this.#call('buildInfo', []);
  }

  /** Stops the worker (or drops the instance). The engine cannot be used afterwards. */
  close() {
    this.#backend.close();
  }

  // --- internals --------------------------------------------------------------------------

  #call(method, args, opts = {}) {
    return this.#start(method, args, opts).result;
  }

  #callWith(method, makeArgs, opts = {}) {
    return this.#startWith(method, makeArgs, opts).result;
  }

  #start(method, args, opts) {
    return this.#backend.call(method, args, opts);
  }

  /** Builds the arguments, then starts the call; a failure to build them rejects the result. */
  #startWith(method, makeArgs, opts) {
    try {
      return this.#start(method, makeArgs(), opts);
    } catch (e) {
      return { result: Promise.reject(e), cancel() {} };
    }
  }

  /** The backend replaced the instance: every model is gone. Returns what was lost. */
  #respawned(reason, error) {
    const lostModels = [...this.#models.keys()];
    for (const id of lostModels) this.#embeddings?.forget(id);
    this.#models.clear();
    this.dispatchEvent(new CustomEvent('respawn', { detail: { reason, lostModels, error } }));
    return lostModels;
  }

  #defaultModel(kind) {
    let last;
    for (const [id, k] of this.#models) if (k === kind) last = id;
    if (last === undefined) throw new LlmkgError('not-found', `no ${kind} model is loaded: call loadModel first, or pass \`model\``);
    return last;
  }

  #generateRequest(req) {
    return {
      model: req.model ?? this.#defaultModel('text-generation'),
      prompt: req.prompt,
      maxTokens: req.maxTokens ?? DEFAULT_MAX_TOKENS,
      sampling: sampling(req),
      stop: req.stop ?? [],
    };
  }

  #chatRequest(messages, opts) {
    let list = typeof messages === 'string' ? [{ role: 'user', content: messages }] : [...messages];
    // A model's default system message (if it needs one) is the engine's business.
    if (opts.system && !list.some((m) => m.role === 'system')) list = [{ role: 'system', content: opts.system }, ...list];
    return {
      model: opts.model ?? this.#defaultModel('text-generation'),
      messages: list.map((m) => ({ role: m.role, content: m.content })),
      maxTokens: opts.maxTokens ?? DEFAULT_MAX_TOKENS,
      sampling: sampling(opts),
      stop: opts.stop ?? [],
    };
  }
}

/** The smallest module with one function `() -> v128` whose body is `code`: WebAssembly.validate
 * of it says whether the runtime has the proposal `code` uses (nothing is compiled). */
function probeModule(code) {
  const body = [0x00, ...code, 0x0b]; // no locals, the code, end
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // \0asm, version 1
    0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, //       type section: one type, () -> v128
    0x03, 0x02, 0x01, 0x00, //                         function section: one function of type 0
    0x0a, body.length + 2, 0x01, body.length, ...body, // code section: one body
  ]);
}
const SPLAT_ZERO = [0x41, 0x00, 0xfd, 0x0f]; // i32.const 0; i8x16.splat
const SIMD128_PROBE = probeModule(SPLAT_ZERO);
const RELAXED_SIMD_PROBE = probeModule([...SPLAT_ZERO, ...SPLAT_ZERO, 0xfd, 0x80, 0x02]); // i8x16.relaxed_swizzle

/** Browsers: drops the cached model files (the Cache API entry `loadModel` fills). */
export async function clearModelCache(name = 'llmkg-models') {
  return typeof caches === 'undefined' ? false : caches.delete(name);
}

/** Sampling settings, or undefined (greedy) when none is given. */
function sampling(o) {
  const keys = ['temperature', 'topP', 'topK', 'repeatPenalty', 'seed'];
  if (!keys.some((k) => o[k] !== undefined)) return undefined;
  return {
    temperature: o.temperature ?? 0,
    topP: o.topP ?? 1,
    topK: o.topK ?? 0,
    repeatPenalty: o.repeatPenalty ?? 1,
    seed: BigInt(o.seed ?? 0),
  };
}

/** BigInts (WIT u64) to numbers, deeply, where that loses nothing. */
function numbers(v) {
  if (typeof v === 'bigint') return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= -BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  if (Array.isArray(v)) return v.map(numbers);
  if (v && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, numbers(x)]));
  }
  return v;
}

function modelInfo(i) {
  return { ...i, parameters: Number(i.parameters), weightBytes: Number(i.weightBytes) };
}

function resolveUrl(url) {
  if (url instanceof URL) return url.href;
  if (!isNode && typeof location !== 'undefined') return new URL(url, globalThis.document?.baseURI ?? location.href).href;
  return String(url); // Node: a path (resolved against the cwd where it is opened) or a URL
}

function basename(url) {
  return decodeURIComponent(String(url).split(/[?#]/)[0].split(/[\\/]/).pop());
}

/** One load that concurrent `loadModel` calls for an id share: each caller's progress callback
 * gets the reports; an aborted caller leaves it, and the last one to leave aborts the load. */
class SharedLoad {
  #listeners = new Set();
  #callers = 0;
  #controller = new AbortController();

  constructor(key, start) {
    this.key = key;
    this.promise = start(this.#controller.signal, (p) => this.#listeners.forEach((fn) => fn(p)));
  }

  join(onProgress, signal) {
    if (onProgress) this.#listeners.add(onProgress);
    this.#callers++;
    const leave = () => {
      this.#listeners.delete(onProgress);
      this.#callers--;
    };
    if (!signal) {
      this.promise.then(leave, leave);
      return this.promise;
    }
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        leave();
        // The last caller aborts the load itself and gets its error (with `respawned`); an
        // earlier one leaves it running for the others.
        if (this.#callers === 0) this.#controller.abort(signal.reason);
        else reject(abortError(signal));
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      this.promise.then(
        (v) => (signal.removeEventListener('abort', onAbort), leave(), resolve(v)),
        (e) => (signal.removeEventListener('abort', onAbort), signal.aborted || leave(), reject(e)),
      );
    });
  }
}

/** A streamed generation: async-iterable pieces of text, then `completion`. Leaving the loop
 * early (`break`) ends the generation after the current token, keeping the models. */
export class TokenStream {
  #queue = [];
  #waiting = null;
  #done = false;
  #error = null;
  #call;

  constructor(start) {
    this.#call = start((piece) => this.#push({ value: piece, done: false }));
    /** @type {Promise<{ text: string, promptTokens: number, completionTokens: number, finishReason: string }>} */
    this.completion = this.#call.result.then(
      (c) => {
        this.#done = true;
        this.#push({ value: undefined, done: true });
        return c;
      },
      (e) => {
        this.#error = e;
        this.#done = true;
        this.#push(null);
        throw e;
      },
    );
    this.completion.catch(() => {}); // reported through the iterator too
  }

  #push(item) {
    if (item) this.#queue.push(item);
    if (this.#waiting) {
      const w = this.#waiting;
      this.#waiting = null;
      w();
    }
  }

  async *[Symbol.asyncIterator]() {
    try {
      for (;;) {
        if (this.#queue.length) {
          const item = this.#queue.shift();
          if (item.done) return;
          yield item.value;
        } else if (this.#error) {
          throw this.#error;
        } else if (this.#done) {
          return;
        } else {
          await new Promise((r) => (this.#waiting = r));
        }
      }
    } finally {
      if (!this.#done) this.#call.cancel();
    }
  }

  /** Ends the generation after the current token. */
  cancel() {
    this.#call.cancel();
  }
}

// --- backends: where the Host runs -------------------------------------------------------------

const closedError = () => new LlmkgError('aborted', 'the engine was closed');

function abortError(signal, extra) {
  const why = signal?.reason instanceof Error ? `: ${signal.reason.message}` : '';
  return new LlmkgError('aborted', `the call was aborted${why}`, extra);
}

/** Runs the component on this thread. An abort or a cancel ends a call between two pieces
 * (tokens, file chunks); a single `generate` runs to its end. After a trap the component is
 * instantiated again. */
class InProcessBackend {
  #platform;
  #modules;
  #options;
  #onRespawn;
  #host = null; // Promise<Host | null>: null once closed
  #queue = Promise.resolve();

  constructor(platform, modules, options, onRespawn) {
    this.#platform = platform;
    this.#modules = modules;
    this.#options = options;
    this.#onRespawn = onRespawn;
  }

  async start() {
    this.#host = Host.create(this.#platform, this.#modules, this.#options);
    return (await this.#host).methods();
  }

  call(method, args, { signal, onPiece } = {}) {
    let cancelled = false;
    const run = async () => {
      if (signal?.aborted) throw abortError(signal);
      const current = this.#host;
      const host = await current;
      if (!host) throw closedError();
      try {
        const it = host.run(method, args, { cancelled: () => cancelled || !!signal?.aborted });
        for (;;) {
          const { done, value } = await it.next();
          if (done) {
            if (signal?.aborted) throw abortError(signal);
            return value;
          }
          onPiece?.(value);
        }
      } catch (e) {
        const wire = toWire(e);
        if (wire.code !== 'trap') throw fromWire(wire);
        // The instance is dead: instantiate the component again (once, however many calls saw it).
        let lostModels = [];
        if (this.#host === current) {
          this.#host = Host.create(this.#platform, this.#modules, this.#options);
          lostModels = this.#onRespawn('trap', wire.message);
          await this.#host;
        }
        throw fromWire(wire, { respawned: true, lostModels });
      }
    };
    const result = IMMEDIATE.has(method) ? run() : (this.#queue = this.#queue.then(run, run));
    return { result, cancel: () => (cancelled = true) };
  }

  close() {
    this.#host = Promise.resolve(null);
  }
}

/** Runs the component in a worker. An abort terminates the worker and starts a new one; so does
 * a trap. Either way the models are gone, and the engine says so (a `respawn` event, and
 * `respawned` / `lostModels` on the error). */
class WorkerBackend {
  #platform;
  #modules;
  #options;
  #onRespawn;
  #worker = null;
  #ready = null;
  #pending = new Map(); // id -> { onPiece, resolve, reject }
  #nextId = 1;
  #closed = false;
  #epoch = 0; // which worker: one more after each respawn

  constructor(platform, modules, options, onRespawn) {
    this.#platform = platform;
    this.#modules = modules;
    this.#options = options;
    this.#onRespawn = onRespawn;
  }

  async start() {
    return (await this.#spawn()).methods;
  }

  get epoch() {
    return this.#epoch;
  }

  /** Posts a message that is not a call (a pool's model bytes, src/pool.js) to the worker of
   * `epoch`, once it is ready; dropped when that worker has been replaced. */
  postData(epoch, message, transfer = []) {
    this.#ready.then(() => epoch === this.#epoch && this.#worker?.post(message, transfer)).catch(() => {});
  }

  #spawn() {
    this.#epoch++;
    const w = isNode ? new NodeWorkerAdapter(new URL('./worker-node.js', import.meta.url)) : new WebWorkerAdapter(new URL('./worker.js', import.meta.url));
    this.#worker = w;
    let started = false;
    this.#ready = new Promise((resolve, reject) => {
      w.onMessage((m) => {
        if (this.#worker !== w) return;
        if (m.type === 'ready') {
          started = true;
          resolve(m);
        } else if (m.id === null && m.type === 'error') reject(fromWire(m.error));
        else this.#dispatch(m);
      });
      w.onError((message) => {
        if (this.#worker !== w || this.#closed) return;
        const err = new LlmkgError('internal', `the worker failed: ${message}`);
        // A worker that never started would fail again: no respawn then, calls get this error.
        if (!started) return reject(err);
        this.#replace('crash', err);
      });
    });
    this.#ready.catch(() => {});
    w.post({ type: 'init', modules: this.#modules, build: this.#options.build, testHooks: !!this.#options.testHooks });
    return this.#ready;
  }

  #dispatch(m) {
    const p = this.#pending.get(m.id);
    if (!p) return;
    if (m.type === 'piece') return p.onPiece?.(m.piece);
    this.#settle(m.id);
    if (m.type === 'result') return p.resolve(m.value);
    if (m.error.code === 'trap') {
      // The instance is dead: a fresh worker replaces it; this call and those queued behind it fail.
      this.#replace('trap', fromWire(m.error), p);
    } else {
      p.reject(fromWire(m.error));
    }
  }

  #settle(id) {
    this.#pending.delete(id);
    if (this.#pending.size === 0) this.#worker?.unref();
  }

  /** Terminates the worker, fails every pending call, starts a new worker. */
  #replace(reason, error, first) {
    this.#worker.terminate();
    this.#worker = null;
    const lostModels = this.#onRespawn(reason, error.message);
    const failed = [...(first ? [first] : []), ...this.#pending.values()];
    this.#pending.clear();
    for (const p of failed) {
      const e = p === first ? error : new LlmkgError(error.code, `${error.message} (while this call was pending)`);
      e.respawned = true;
      e.lostModels = lostModels;
      p.reject(e);
    }
    if (!this.#closed) this.#spawn();
  }

  call(method, args, { signal, onPiece } = {}) {
    const id = this.#nextId++;
    let entry;
    const result = new Promise((resolve, reject) => {
      entry = { onPiece, resolve, reject };
    });
    if (this.#closed || signal?.aborted) {
      entry.reject(this.#closed ? closedError() : abortError(signal));
      return { result, cancel() {} };
    }
    const onAbort = () => {
      if (this.#pending.get(id) !== entry) return;
      this.#pending.delete(id);
      this.#replace('abort', abortError(signal), entry);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    result.finally(() => signal?.removeEventListener('abort', onAbort)).catch(() => {});
    this.#pending.set(id, entry);
    this.#worker?.ref();
    this.#ready.then(
      () => this.#pending.get(id) === entry && this.#worker.post({ type: 'call', id, method, args }),
      (e) => this.#pending.get(id) === entry && (this.#settle(id), entry.reject(e)),
    );
    return {
      result,
      cancel: () => this.#pending.get(id) === entry && this.#worker?.post({ type: 'cancel', id }),
    };
  }

  close() {
    this.#closed = true;
    this.#worker?.terminate();
    this.#worker = null;
    for (const p of this.#pending.values()) p.reject(closedError());
    this.#pending.clear();
  }
}

class WebWorkerAdapter {
  constructor(url) {
    this.w = new Worker(url, { type: 'module', name: 'llmkg' });
  }
  post(m, transfer) {
    this.w.postMessage(m, transfer);
  }
  onMessage(fn) {
    this.w.addEventListener('message', (e) => fn(e.data));
  }
  onError(fn) {
    this.w.addEventListener('error', (e) => {
      e.preventDefault();
      fn(e.message || 'error in the worker script');
    });
    this.w.addEventListener('messageerror', () => fn('a message could not be deserialized'));
  }
  terminate() {
    this.w.terminate();
  }
  ref() {}
  unref() {}
}

let NodeWorker = null;
let nodeOs = null;
if (isNode) {
  ({ Worker: NodeWorker } = await import('node:worker_threads'));
  nodeOs = await import('node:os');
}

/** worker_threads: unref'd while idle, so an idle engine does not keep Node running. */
class NodeWorkerAdapter {
  constructor(url) {
    this.w = new NodeWorker(url);
    this.w.unref();
  }
  post(m, transfer) {
    this.w.postMessage(m, transfer);
  }
  onMessage(fn) {
    this.w.on('message', fn);
  }
  onError(fn) {
    this.w.on('error', (e) => fn(e.message));
    this.w.on('exit', (code) => fn(`the worker exited (code ${code})`));
  }
  terminate() {
    this.w.removeAllListeners('exit');
    this.w.terminate();
  }
  ref() {
    this.w.ref();
  }
  unref() {
    this.w.unref();
  }
}
