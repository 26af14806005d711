// One runtime of the side-by-side bench, chosen by the query string:
//   ?system=llmkg&workers=N   llmkg: one Engine (one module Web Worker, one instance) for one
//                             thread, and N workers for all cores (the shim's pool when it has
//                             one, else N Engines with the batch split here)
//   ?system=tjs&threads=N     transformers.js, wasm backend (onnxruntime-web) with N threads
//   ?system=wllama&threads=N  wllama (llama.cpp in wasm) with N threads
// Every file is served by bench/sidebyside.js from this machine; nothing is fetched from
// elsewhere (transformers.js: allowRemoteModels = false and local wasm paths; wllama: no
// compat build, which would come from a CDN). Timings are taken here with performance.now(),
// so the driver's round trips are not in them. window.sbs is the driver's interface.

const params = new URLSearchParams(location.search);
const system = params.get('system');
const pageThreads = Number(params.get('threads') ?? params.get('workers') ?? 1);

// The default models of the catalog (data/models.json), served from the models dir at /models.
const { catalogSpec, defaultModelIds } = await import('/src/models.js');
const MINILM = catalogSpec(defaultModelIds.embedding, '/models');
const SMOLLM2 = catalogSpec(defaultModelIds['text-generation'], '/models');
const GGUF = SMOLLM2.files.find((f) => f.name.endsWith('.gguf')).url;
const status = (text) => (document.getElementById('status').textContent = text);

/** Splits `xs` into `k` contiguous parts of near-equal size (the order is kept). */
function split(xs, k) {
  const parts = [];
  for (let i = 0, start = 0; i < k; i++) {
    const end = start + Math.ceil((xs.length - start) / (k - i));
    if (end > start) parts.push(xs.slice(start, end));
    start = end;
  }
  return parts;
}

const systems = {
  llmkg: {
    one: null, // one Engine, one worker: the one-thread figures and the generation
    all: null, // a pool of N workers, or null: then `separate` holds N Engines
    separate: [],
    async setup({ embed, generate }) {
      const { Engine } = await import('/src/index.js');
      const load = async (engine) => embed && (await engine.loadModel(MINILM, { cache: false }));
      this.one = await Engine.create();
      await load(this.one);
      // One generation runs in one instance (the component is single-threaded).
      if (generate) await this.one.loadModel(SMOLLM2, { cache: false });
      if (pageThreads > 1) {
        // The shim's worker pool where it has one (Engine.create({ workers }) and engine.workers);
        // an Engine without it ignores the option, and then N Engines split the batch here.
        const pool = await Engine.create({ workers: pageThreads });
        if (pool.workers === pageThreads) {
          this.all = pool;
          await load(pool);
        } else {
          pool.close();
          for (let i = 0; i < pageThreads; i++) {
            const engine = i === 0 ? this.one : await Engine.create();
            if (i > 0) await load(engine);
            this.separate.push(engine);
          }
        }
      }
      return { allCores: this.all ? `Engine.create({ workers: ${pageThreads} })` : `${pageThreads} separate Engines, batch split by the bench`, build: await this.one.buildInfo() };
    },
    /** Tokens the encoder sees: each text at its own length (llmkg packs, never pads). */
    async batchTokens(texts) {
      let n = 0;
      for (const t of texts) n += (await this.one.tokenize(t, { model: MINILM.id, addSpecialTokens: true })).length;
      return n;
    },
    async embed(texts, threads) {
      if (threads === 1) return this.one.embed(texts);
      if (threads !== pageThreads) throw new Error(`this page has ${pageThreads} workers, not ${threads}`);
      if (this.all) return this.all.embed(texts);
      if (texts.length === 1) return this.one.embed(texts);
      const parts = await Promise.all(split(texts, threads).map((part, i) => this.separate[i].embed(part)));
      return parts.flat();
    },
    async generate(prompt, maxTokens) {
      const t0 = performance.now();
      let first = null;
      const s = this.one.stream({ prompt, maxTokens });
      let text = '';
      for await (const piece of s) {
        first ??= performance.now();
        text += piece;
      }
      const end = performance.now();
      const c = await s.completion;
      return { promptTokens: c.promptTokens, completionTokens: c.completionTokens, firstMs: first - t0, totalMs: end - t0, decodeMs: end - first, text, finishReason: c.finishReason };
    },
  },

  tjs: {
    extractor: null,
    async setup() {
      const { env, pipeline } = await import('/tjs/transformers.js');
      env.allowRemoteModels = false;
      env.allowLocalModels = true;
      env.localModelPath = '/tjs-models/';
      env.useBrowserCache = false;
      // onnxruntime-web's wasm from here: by default the build transformers.js picks itself
      // (asyncify, the one with its WebGPU support); ?ort=plain is the CPU-only build.
      const ort = { asyncify: 'ort-wasm-simd-threaded.asyncify', plain: 'ort-wasm-simd-threaded' }[params.get('ort') ?? 'asyncify'];
      if (!ort) throw new Error(`ort=${params.get('ort')}: use asyncify or plain`);
      env.backends.onnx.wasm.wasmPaths = {
        mjs: new URL(`/ort/${ort}.mjs`, location.href).href,
        wasm: new URL(`/ort/${ort}.wasm`, location.href).href,
      };
      // onnxruntime-web's default is min(4, ceil(cores / 2)): one thread on two cores.
      env.backends.onnx.wasm.numThreads = pageThreads;
      // dtype 'fp32' names the file onnx/model.onnx (transformers.js picks files by dtype); its
      // weights are int8, dequantized inside the graph.
      this.extractor = await pipeline('feature-extraction', 'all-minilm-l6-v2-int8', { device: 'wasm', dtype: 'fp32' });
      return {
        transformers: env.version,
        onnxruntimeWeb: env.backends.onnx.versions?.web,
        numThreads: env.backends.onnx.wasm.numThreads,
        wasm: env.backends.onnx.wasm.wasmPaths.wasm,
      };
    },
    /** Tokens the model sees: the batch padded to its longest text (what the pipeline does). */
    async batchTokens(texts) {
      const { input_ids } = await this.extractor.tokenizer(texts, { padding: true, truncation: true });
      return input_ids.dims[0] * input_ids.dims[1];
    },
    async embed(texts, threads) {
      if (threads !== pageThreads) throw new Error(`this page runs onnxruntime-web with ${pageThreads} threads, not ${threads}`);
      const out = await this.extractor(texts, { pooling: 'mean', normalize: true });
      const [n, d] = out.dims;
      const data = out.data;
      return Array.from({ length: n }, (_, i) => data.subarray(i * d, (i + 1) * d));
    },
  },

  wllama: {
    w: null,
    async setup() {
      const { Wllama } = await import('/wllama/index.js');
      const quiet = { debug() {}, log() {}, warn: console.warn, error: console.error };
      this.w = new Wllama({ default: new URL('/wllama/wasm/wllama.wasm', location.href).href }, { suppressNativeLog: true, logger: quiet });
      // The compat build (for browsers without JSPI or Memory64) would come from a CDN; Chromium
      // needs none, and with null a missing feature fails here instead of reaching out.
      this.w.setCompat(null);
      const res = await fetch(GGUF);
      if (!res.ok) throw new Error(`${GGUF}: HTTP ${res.status}`);
      const file = new File([await res.blob()], GGUF.split('/').pop());
      // n_gpu_layers 0: CPU only (wllama 3 offloads to WebGPU by default where there is one).
      await this.w.loadModel([file], { n_threads: pageThreads, n_gpu_layers: 0, n_ctx: 1024 });
      return { libllama: Wllama.getLibllamaVersion(), multithread: this.w.isMultithread(), numThreads: this.w.getNumThreads() };
    },
    async generate(prompt, maxTokens) {
      const t0 = performance.now();
      let first = null;
      let text = '';
      let timings = null;
      let usage = null;
      // Greedy, every token generated (ignore_eos), and no prompt cache, so each run prefills.
      const stream = await this.w.createCompletion({ prompt, max_tokens: maxTokens, temperature: 0, top_k: 1, ignore_eos: true, cache_prompt: false, stream: true });
      for await (const chunk of stream) {
        if (chunk.choices?.length) {
          first ??= performance.now();
          text += chunk.choices[0].text ?? '';
        }
        timings = chunk.timings ?? timings;
        usage = chunk.usage ?? usage;
      }
      const end = performance.now();
      return {
        promptTokens: timings?.prompt_n ?? usage?.prompt_tokens,
        completionTokens: timings?.predicted_n ?? usage?.completion_tokens,
        firstMs: first - t0,
        totalMs: end - t0,
        decodeMs: end - first,
        text,
        timings,
      };
    },
  },
};

const impl = systems[system];

window.sbs = {
  system,
  threads: pageThreads,
  async setup(opts = {}) {
    if (!impl) throw new Error(`unknown system ${system}: use llmkg, tjs or wllama`);
    status(`loading ${system}…`);
    const info = await impl.setup(opts);
    status(`${system} ready`);
    return { system, threads: pageThreads, crossOriginIsolated, hardwareConcurrency: navigator.hardwareConcurrency, visibility: document.visibilityState, ...info };
  },
  /** The vectors, as plain arrays (for the driver's cosines). */
  async embed(texts, threads) {
    return (await impl.embed(texts, threads)).map((v) => Array.from(v));
  },
  batchTokens(texts) {
    return impl.batchTokens(texts);
  },
  /** Milliseconds of one embed call per text, one text at a time. */
  async timeSingles(texts, threads) {
    const ms = [];
    for (const t of texts) {
      const t0 = performance.now();
      const [v] = await impl.embed([t], threads);
      ms.push(performance.now() - t0);
      if (v.length !== 384) throw new Error(`${system}: a ${v.length}-dimensional embedding`);
    }
    return ms;
  },
  /** Milliseconds of each of `reps` embed calls of the whole batch. */
  async timeBatches(texts, reps, threads) {
    const ms = [];
    for (let r = 0; r < reps; r++) {
      const t0 = performance.now();
      const out = await impl.embed(texts, threads);
      ms.push(performance.now() - t0);
      if (out.length !== texts.length) throw new Error(`${system}: ${out.length} vectors for ${texts.length} texts`);
    }
    return ms;
  },
  generate(prompt, maxTokens) {
    return impl.generate(prompt, maxTokens);
  },
};
