// Host: one instance of the component and the calls the API makes on it. Runs inside a worker
// (src/serve.js) or in-process; either way a call is `run(method, args)`, an async generator
// that yields pieces (tokens, progress) and returns the result. Nothing here knows about
// workers or messages.
import { LlmkgError } from './errors.js';

/**
 * The calls, one line each: name -> [interface, function (jco's name), runner]. A call is
 * available when the component exports its interface and function, so the `knowledge` lines
 * switch on by themselves in a component that has the knowledge graph. Without a runner the
 * function is called once with the args and its value returned.
 */
export const METHODS = {
  loadModel:         ['models', 'ModelUpload', loadModel],
  unloadModel:       ['models', 'unloadModel'],
  listModels:        ['models', 'listModels'],
  generate:          ['inference', 'generate'],
  stream:            ['inference', 'stream', tokens],
  chat:              ['inference', 'chat'],
  streamChat:        ['inference', 'streamChat', tokens],
  embed:             ['inference', 'embed'],
  tokenize:          ['inference', 'tokenize'],
  detokenize:        ['inference', 'detokenize'],
  score:             ['inference', 'score'],
  memoryStats:       ['introspect', 'memoryStats'],
  buildInfo:         ['introspect', 'buildInfo'],
  query:             ['knowledge', 'query'],
  search:            ['knowledge', 'search'],
  ask:               ['knowledge', 'ask'],
  insert:            ['knowledge', 'insert'],
  remove:            ['knowledge', 'remove'],
  neighbors:         ['knowledge', 'neighbors'],
  matchPattern:      ['knowledge', 'matchPattern'],
  importGraph:       ['knowledge', 'import', importGraph],
  exportGraph:       ['knowledge', 'export'],
  graphStats:        ['knowledge', 'stats'],
  setEmbeddingModel: ['knowledge', 'setEmbeddingModel'],
  exportIndex:       ['knowledge', 'exportIndex'],
  importIndex:       ['knowledge', 'importIndex'],
};

/** Cheap read-only calls that need not wait for the call in progress: they run between two of
 * its pieces (so a memory panel stays live during a generation). */
export const IMMEDIATE = new Set(['memoryStats', 'buildInfo', 'listModels', 'graphStats']);

/** Test hook: behaves as if the component trapped (no input may make it trap for real). */
const SIMULATE_TRAP = '__simulateTrap';

export class Host {
  /** @param {object} platform src/platform-node.js or src/platform-web.js */
  static async create(platform, modules, { testHooks = false, build = 'simd' } = {}) {
    const root = await platform.instantiate(modules, build);
    return new Host(platform, root, testHooks);
  }

  constructor(platform, root, testHooks) {
    this.platform = platform;
    this.root = root;
    this.testHooks = testHooks;
  }

  /** The calls this component supports (those whose interface and function it exports). */
  methods() {
    return Object.keys(METHODS).filter((m) => this.#fn(m) !== undefined);
  }

  #fn(method) {
    const entry = METHODS[method];
    return entry && this.root[entry[0]]?.[entry[1]];
  }

  /**
   * @param {string} method a key of METHODS
   * @param {unknown[]} args
   * @param {{ cancelled?: () => boolean }} ctx checked between pieces: a cancelled call ends early
   */
  async *run(method, args, ctx = {}) {
    if (method === SIMULATE_TRAP && this.testHooks) throw new WebAssembly.RuntimeError('unreachable (simulated by a test hook)');
    const fn = this.#fn(method);
    if (!fn) {
      const iface = METHODS[method]?.[0];
      throw new LlmkgError('unsupported', iface ? `this component does not export the \`${iface}\` interface (${method})` : `unknown call ${method}`);
    }
    const runner = METHODS[method][2];
    if (!runner) return fn(...args);
    return yield* runner.call(this, fn, args, ctx);
  }
}

/** Drains a `token-stream` resource piece by piece; returns its completion. */
async function* tokens(fn, args, ctx) {
  const stream = fn(...args);
  try {
    for (;;) {
      const piece = stream.next();
      if (piece === undefined) break;
      yield piece;
      await this.platform.yieldToEventLoop();
      if (ctx.cancelled?.()) break;
    }
    return stream.completion();
  } finally {
    stream[Symbol.dispose ?? Symbol.for('dispose')]?.();
  }
}

/** `importGraph(format, data, options?)`: `options` ({ baseIri, graph }, both optional) is the
 * WIT `import-options` record, which jco needs whole. */
async function* importGraph(fn, [format, data, options = {}]) {
  return fn(format, data, { baseIri: options.baseIri ?? undefined, graph: options.graph ?? undefined });
}

const PROGRESS_STEP = 1 << 20;

/**
 * Streams each file into a `model-upload` chunk by chunk. Pieces are progress reports:
 * { phase: 'download' | 'finish', file, fileIndex, fileCount, fileLoaded, fileTotal,
 *   loaded, total, fromCache }; `finish` is sent before the engine builds the model
 * (weight conversion happens there), and the result is the model-info.
 */
async function* loadModel(ModelUpload, [spec], ctx) {
  const { id, kind, files, options = {}, cache } = spec;
  if (!Array.isArray(files) || files.length === 0) throw new LlmkgError('invalid-input', `loadModel(${id}): \`files\` must list at least one { name, url }`);
  const sources = [];
  try {
    // Open every file first (headers only): the totals are known before the first byte moves.
    for (const f of files) sources.push(await this.platform.openFile(f, { cache }));
    const sizes = sources.map((s) => s.size);
    const total = sizes.every((s) => s !== null) ? sizes.reduce((a, b) => a + b, 0) : null;
    const report = (phase, i, fileLoaded, loaded) => ({
      phase, model: id, file: files[i].name, fileIndex: i, fileCount: files.length,
      fileLoaded, fileTotal: sizes[i], loaded, total, fromCache: sources[i].fromCache,
    });
    const upload = new ModelUpload(id, kind, { conversion: options.conversion ?? 'auto', contextLength: options.contextLength ?? undefined });
    try {
      let loaded = 0;
      for (let i = 0; i < files.length; i++) {
        upload.beginFile(files[i].name, sizes[i] === null ? undefined : BigInt(sizes[i]));
        yield report('download', i, 0, loaded);
        let fileLoaded = 0;
        let reported = 0;
        for await (const chunk of sources[i].chunks()) {
          upload.write(chunk);
          fileLoaded += chunk.byteLength;
          loaded += chunk.byteLength;
          if (fileLoaded - reported >= PROGRESS_STEP) {
            reported = fileLoaded;
            yield report('download', i, fileLoaded, loaded);
            if (ctx.cancelled?.()) throw new LlmkgError('aborted', `loadModel(${id}) was cancelled`);
          }
        }
        yield report('download', i, fileLoaded, loaded);
      }
      yield report('finish', files.length - 1, sizes[files.length - 1], loaded);
      return upload.finish();
    } finally {
      upload[Symbol.dispose ?? Symbol.for('dispose')]?.();
    }
  } finally {
    for (const s of sources) s.close?.();
  }
}
