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
  /** Models that were loaded and are gone. Nothing is reloaded automatically. In a pool this is
   * empty: the pool loads its models into the new worker itself (see `reloading`). */
  lostModels: string[];
  error: string;
  /** Pool only: which worker was replaced (0-based). */
  worker?: number;
  /** Pool only: the models the pool is loading into the new worker (a `reload` event follows). */
  reloading?: string[];
}

/** Pool only: a replaced worker holds the pool's models again (or `error` says why not all). */
export interface ReloadDetail {
  worker: number;
  models: string[];
  error: string | null;
}

export interface EngineStats {
  /** null unless `embeddingCache` is set. `hits`/`misses` count texts. */
  embeddingCache: { capacity: number; entries: number; hits: number; misses: number } | null;
  /** null unless `workers` > 1. */
  pool: {
    /** Model files opened on the main thread (each is read once per load, whatever the pool size). */
    fileReads: number;
    workers: {
      /** Calls sent to this worker, by method ('embed' counts slices). */
      calls: Record<string, number>;
      inFlight: number;
      /** Models uploaded into this worker (loads and reloads). */
      uploads: number;
      respawns: number;
      models: string[];
      reloading: string[];
    }[];
  } | null;
}

export interface EngineOptions {
  /** Run the component in a worker: a module Web Worker (browsers, default true) or a
   * worker_threads Worker (Node, default false: in-process). */
  worker?: boolean;
  /** Component instances, each in its own worker (default 1: as `worker` says). 'auto': the
   * hardware's threads (navigator.hardwareConcurrency / os.availableParallelism()), at most 8.
   * Above 1, Node uses worker_threads too (`worker: false` is then an error). */
  workers?: number | 'auto';
  /** Keep this many recent embeddings (keyed by model id and text) and answer repeats from
   * them. Default 0: off. */
  embeddingCache?: number;
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
  /** The calls this component supports (the knowledge calls appear when it exports `knowledge`). */
  readonly methods: string[];
  /** True when the component runs in a worker (or a pool of them). */
  readonly inWorker: boolean;
  /** How many component instances serve this engine (`workers`). */
  readonly workers: number;
  stats(): EngineStats;

  /** Concurrent calls for one id share one load (without a signal: the same promise); a call for
   * an id being loaded from other files or options is `invalid-input`. */
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
  addEventListener(type: 'reload', listener: (e: CustomEvent<ReloadDetail>) => void, options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions): void;
}

/** Browsers: drops the cached model files (default cache name 'llmkg-models'). */
export function clearModelCache(name?: string): Promise<boolean>;
