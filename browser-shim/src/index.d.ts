// Types for the llmkg JavaScript API (src/index.js). The WIT world (wit/llmkg.wit) is the
// contract underneath; jco's generated types for it are in dist/*/interfaces/.

/** Tags of the WIT `error` variant, plus the shim's own codes. */
export type ErrorCode =
  | 'invalid-model'
  | 'unsupported'
  | 'invalid-input'
  | 'not-found'
  | 'resource-exhausted'
  | 'query-syntax'
  | 'internal'
  /** An AbortSignal fired (the error's `name` is then 'AbortError'). */
  | 'aborted'
  /** The component trapped; a fresh instance replaced it. */
  | 'trap'
  /** A model file could not be fetched or read. */
  | 'fetch-failed';

export class LlmkgError extends Error {
  constructor(code: ErrorCode, message: string, extra?: { respawned?: boolean; lostModels?: string[]; cause?: unknown });
  name: 'LlmkgError' | 'AbortError';
  code: ErrorCode;
  /** True when the engine started a fresh instance because of this error (models are gone). */
  respawned: boolean;
  /** Models loaded before the respawn; load them again to use them. */
  lostModels: string[];
}

export const DEFAULT_MAX_TOKENS: 256;

export type ModelKind = 'text-generation' | 'embedding';
export interface TokenScore {
  token: number;
  /** Natural log of the probability the model gave this token after the ones before it. */
  logprob: number;
  /** The token the model found most likely at this position. */
  topToken: number;
}

export interface ScoreReport {
  /** Every token after the first. */
  tokens: TokenScore[];
  perplexity: number;
}

export type WeightConversion = 'auto' | 'keep' | 'q8' | 'q4' | 'f16' | 'dequantize';
export type FinishReason = 'end-of-text' | 'stop-string' | 'length' | 'context-full';

export interface ModelFileSpec {
  /** The file name the engine sees (e.g. "model.safetensors"); default: the URL's last segment. */
  name?: string;
  /** Browsers: a URL (relative to the page). Node: a path, a file: URL, or an http(s) URL. */
  url: string | URL;
}

export interface ModelSpec {
  id: string;
  kind: ModelKind;
  /** Text generation: one .gguf. Embedding: model.safetensors, tokenizer.json, config.json. */
  files: ModelFileSpec[];
  /** Default 'auto' (block types without a SIMD kernel, e.g. Q4_1, become Q8_0). */
  conversion?: WeightConversion;
  /** Cap the KV cache at this many tokens (default: the model's context length). */
  contextLength?: number;
}

export interface LoadProgress {
  /** 'download': bytes moved into the component; 'finish': the engine is building the model
   * (weight conversion happens here). */
  phase: 'download' | 'finish';
  model: string;
  file: string;
  fileIndex: number;
  fileCount: number;
  fileLoaded: number;
  fileTotal: number | null;
  /** Bytes of all files so far, and their total (null when a size is unknown). */
  loaded: number;
  total: number | null;
  /** Served from the Cache API (browsers) rather than the network. */
  fromCache: boolean;
}

export interface ModelInfo {
  id: string;
  kind: ModelKind;
  architecture: string;
  parameters: number;
  /** Block type the weights are held in after loading, e.g. "Q8_0". */
  quantization: string;
  /** Block type of the file as given, e.g. "Q4_1". */
  sourceQuantization: string;
  weightBytes: number;
  contextLength: number;
  embeddingLength: number;
  vocabSize: number;
}

/** Sampling: give none of these for greedy decoding. */
export interface SamplingOptions {
  /** 0 = greedy. */
  temperature?: number;
  /** 1 disables nucleus sampling. */
  topP?: number;
  /** 0 disables top-k. */
  topK?: number;
  /** 1 disables the penalty. */
  repeatPenalty?: number;
  seed?: number | bigint;
}

export interface GenerateOptions extends SamplingOptions {
  /** Default: the text-generation model loaded last. */
  model?: string;
  /** Default 256. */
  maxTokens?: number;
  /** Generation ends before the first of these strings. */
  stop?: string[];
}

export interface GenerateRequest extends GenerateOptions {
  prompt: string;
}

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | (string & {});
  content: string;
}

export interface ChatOptions extends GenerateOptions {
  /** Added as the first message when the messages have no system message. Without one the
   * engine uses the model's default (for SmolLM2: "You are a helpful assistant."). */
  system?: string;
  signal?: AbortSignal;
}

export interface Completion {
  text: string;
  promptTokens: number;
  completionTokens: number;
  finishReason: FinishReason;
}

/** Pieces of text as they are decoded. Leaving the loop early (`break`) or `cancel()` ends the
 * generation after the current token and keeps the models; an AbortSignal terminates the worker. */
export class TokenStream implements AsyncIterable<string> {
  [Symbol.asyncIterator](): AsyncIterator<string>;
  /** The whole completion, once the stream has ended. */
  readonly completion: Promise<Completion>;
  cancel(): void;
}

export interface MemoryStats {
  /** Size of the component's linear memory (it never shrinks). */
  linearMemoryBytes: number;
  allocatedBytes: number;
  peakAllocatedBytes: number;
  models: { id: string; weightBytes: number; cacheBytes: number }[];
}

export interface BuildInfo {
  engineVersion: string;
  target: string;
  simd128: boolean;
  relaxedSimd: boolean;
}

export interface RespawnDetail {
  reason: 'abort' | 'trap' | 'crash';
  /** Models that were loaded and are gone. Nothing is reloaded automatically. */
  lostModels: string[];
  error: string;
}

/** What `Engine.capabilities()` found in this runtime. */
export interface Capabilities {
  runtime: 'node' | 'browser';
  /** WebAssembly.validate of a module with a SIMD128 instruction. */
  simd128: boolean;
  /** The same with a relaxed-SIMD instruction (the engine does not use it yet). */
  relaxedSimd: boolean;
  /** The component `Engine.create()` picks here: 'simd' where SIMD128 validates, else 'nosimd'. */
  build: 'simd' | 'nosimd';
  /** Browsers expose SharedArrayBuffer only to cross-origin isolated pages (COOP + COEP). */
  sharedArrayBuffer: boolean;
  /** `crossOriginIsolated` of the page or worker; null in Node, where it does not apply. */
  crossOriginIsolated: boolean | null;
  /** `navigator.gpu` exists (no adapter is requested). */
  webgpu: boolean;
  /** Where `Engine.create(options)` runs the component with the options given. */
  worker: 'module-worker' | 'worker-threads' | 'in-process';
  /** GiB: `navigator.deviceMemory` (a rounded hint, Chromium only, else null); Node: total memory. */
  deviceMemory: number | null;
  /** `navigator.hardwareConcurrency`; Node: `os.availableParallelism()`. */
  hardwareConcurrency: number | null;
}

export interface EngineOptions {
  /** Run the component in a worker: a module Web Worker (browsers, default true) or a
   * worker_threads Worker (Node, default false: in-process). */
  worker?: boolean;
  /** Which component: by default the SIMD128 build where the runtime validates SIMD128, else the
   * same engine built without it (dist/*-nosimd). `false` forces the fallback; `true` the SIMD
   * build (which then fails to compile where SIMD128 is missing). */
  simd?: boolean;
  /** Progress of the component's own download and compile (first Engine only). */
  onProgress?: (p: { file: string; loaded: number; total: number | null }) => void;
  /** Adds `simulateTrap()`, for tests of trap recovery. */
  testHooks?: boolean;
}

export interface CallOptions {
  signal?: AbortSignal;
}

export class Engine extends EventTarget {
  static create(options?: EngineOptions): Promise<Engine>;
  /** Probes the runtime (nothing is loaded). `worker`: as for `create`. */
  static capabilities(options?: { worker?: boolean }): Capabilities;
  /** The component this engine runs (its `buildInfo().simd128` says the same from inside). */
  readonly build: 'simd' | 'nosimd';
  /** The calls this component supports (the knowledge calls appear when it exports `knowledge`). */
  readonly methods: string[];
  /** True when the component runs in a worker. */
  readonly inWorker: boolean;

  loadModel(spec: ModelSpec, opts?: { onProgress?: (p: LoadProgress) => void; signal?: AbortSignal; cache?: string | false }): Promise<ModelInfo>;
  unloadModel(id: string): Promise<void>;
  listModels(): Promise<ModelInfo[]>;

  generate(req: GenerateRequest, opts?: CallOptions): Promise<Completion>;
  stream(req: GenerateRequest, opts?: CallOptions): TokenStream;
  chat(messages: string | ChatMessage[], opts?: ChatOptions): Promise<Completion>;
  streamChat(messages: string | ChatMessage[], opts?: ChatOptions): TokenStream;
  /** Sentence embeddings, L2-normalised (a dot product is the cosine). */
  embed(texts: string | string[], opts?: { model?: string; signal?: AbortSignal }): Promise<Float32Array[]>;
  tokenize(text: string, opts?: { model?: string; addSpecialTokens?: boolean }): Promise<Uint32Array>;
  detokenize(tokens: ArrayLike<number>, opts?: { model?: string }): Promise<string>;
  /** Teacher-forced scoring: how likely the model finds `text`, token by token. */
  score(text: string, opts?: { model?: string }): Promise<ScoreReport>;

  memoryStats(): Promise<MemoryStats>;
  buildInfo(): Promise<BuildInfo>;
  close(): void;

  // Present only when the component exports the `knowledge` interface (see `methods`).
  // Arguments are as in wit/llmkg.wit (records in camelCase, enums as strings, u64 as bigint);
  // u64 results come back as numbers.
  query?: (sparql: string, rowLimit: number) => Promise<unknown>;
  search?: (text: string, k: number) => Promise<{ iri: string; label: string; score: number }[]>;
  ask?: (question: string, options: Record<string, unknown>) => Promise<unknown>;
  insert?: (facts: unknown[]) => Promise<{ changed: number; total: number }>;
  remove?: (facts: unknown[]) => Promise<{ changed: number; total: number }>;
  neighbors?: (entity: string, hops: number, limit: number) => Promise<unknown[]>;
  matchPattern?: (subject: string | undefined, predicate: string | undefined, object: unknown, limit: number) => Promise<unknown[]>;
  /** `baseIri`: what relative IRIs resolve against; `graph`: the named graph for the default-graph triples. */
  importGraph?: (
    format: 'n-triples' | 'n-quads' | 'turtle' | 'trig' | 'rdf-xml' | 'json-ld',
    data: Uint8Array,
    options?: { baseIri?: string; graph?: string },
  ) => Promise<{ changed: number; total: number }>;
  exportGraph?: (format: 'n-triples' | 'n-quads' | 'turtle') => Promise<Uint8Array>;
  graphStats?: () => Promise<Record<string, unknown>>;
  setEmbeddingModel?: (model: string) => Promise<void>;
  exportIndex?: () => Promise<Uint8Array>;
  importIndex?: (data: Uint8Array) => Promise<number>;
  /** With `testHooks`: behaves as if the component trapped. */
  simulateTrap?: () => Promise<never>;

  addEventListener(type: 'respawn', listener: (e: CustomEvent<RespawnDetail>) => void, options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions): void;
}

/** Browsers: drops the cached model files (default cache name 'llmkg-models'). */
export function clearModelCache(name?: string): Promise<boolean>;
