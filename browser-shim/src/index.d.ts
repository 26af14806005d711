// Types for the llmkg JavaScript API (src/index.js), written by hand. The WIT world
// (wit/llmkg.wit) is the contract underneath: its records, enums and variants are not retyped
// here but taken from jco's declarations for it (`jco types`, generated into dist/types/ by
// scripts/build.js), with WIT u64s as numbers where the API returns numbers.
import type * as WitTypes from '../dist/types/interfaces/llmkg-engine-types.js';
import type * as WitModels from '../dist/types/interfaces/llmkg-engine-models.js';
import type * as WitInference from '../dist/types/interfaces/llmkg-engine-inference.js';
import type * as WitKnowledge from '../dist/types/interfaces/llmkg-engine-knowledge.js';
import type * as WitIntrospect from '../dist/types/interfaces/llmkg-engine-introspect.js';

/** A WIT value as the API returns it: u64s (bigint in jco's types) become numbers (a value
 * beyond 2^53 would stay a bigint; no byte count or triple count gets there). */
export type U64AsNumber<T> = T extends bigint
  ? number
  : T extends ArrayBufferView
    ? T
    : T extends readonly (infer U)[]
      ? U64AsNumber<U>[]
      : T extends object
        ? { [K in keyof T]: U64AsNumber<T[K]> }
        : T;

/** Tags of the WIT `error` variant, plus the shim's own codes. */
export type ErrorCode =
  | WitTypes.Error['tag']
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

export type ModelKind = WitTypes.ModelKind;
export type TokenScore = WitInference.TokenScore;
export type ScoreReport = WitInference.ScoreReport;
export type WeightConversion = WitModels.WeightConversion;
export type FinishReason = WitInference.FinishReason;

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

/** The WIT `model-info` record (`quantization`: the block type the weights are held in after
 * loading, e.g. "Q8_0"; `sourceQuantization`: the file's, e.g. "Q4_1"). */
export type ModelInfo = U64AsNumber<WitTypes.ModelInfo>;

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

export interface ChatMessage extends WitInference.ChatMessage {
  role: 'system' | 'user' | 'assistant' | (string & {});
}

export interface ChatOptions extends GenerateOptions {
  /** Added as the first message when the messages have no system message. Without one the
   * engine uses the model's default (for SmolLM2: "You are a helpful assistant."). */
  system?: string;
  signal?: AbortSignal;
}

export type Completion = WitInference.Completion;

/** Pieces of text as they are decoded. Leaving the loop early (`break`) or `cancel()` ends the
 * generation after the current token and keeps the models; an AbortSignal terminates the worker. */
export class TokenStream implements AsyncIterable<string> {
  [Symbol.asyncIterator](): AsyncIterator<string>;
  /** The whole completion, once the stream has ended. */
  readonly completion: Promise<Completion>;
  cancel(): void;
}

/** The WIT `memory-report` record: linear memory (it never shrinks), allocator bytes now and
 * at peak, and each model's weight and cache bytes. */
export type MemoryStats = U64AsNumber<WitIntrospect.MemoryReport>;

/** The WIT `build-report` record: engine version, target, whether SIMD128 / relaxed SIMD are on. */
export type BuildInfo = WitIntrospect.BuildReport;

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
  /** Probes the runtime (nothing is loaded). `worker`: as for `create`. */
  static capabilities(options?: { worker?: boolean }): Capabilities;
  /** The component this engine runs (its `buildInfo().simd128` says the same from inside). */
  readonly build: 'simd' | 'nosimd';
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
  query?: (sparql: string, rowLimit: number) => Promise<U64AsNumber<WitKnowledge.QueryResult>>;
  search?: (text: string, k: number) => Promise<WitKnowledge.SearchHit[]>;
  ask?: (question: string, options: WitKnowledge.AskOptions) => Promise<WitKnowledge.Answer>;
  insert?: (facts: WitKnowledge.Fact[]) => Promise<U64AsNumber<WitKnowledge.ChangeReport>>;
  remove?: (facts: WitKnowledge.Fact[]) => Promise<U64AsNumber<WitKnowledge.ChangeReport>>;
  neighbors?: (entity: string, hops: number, limit: number) => Promise<WitKnowledge.Triple[]>;
  matchPattern?: (subject: string | undefined, predicate: string | undefined, object: WitKnowledge.FactObject | undefined, limit: number) => Promise<WitKnowledge.Triple[]>;
  /** `baseIri`: what relative IRIs resolve against; `graph`: the named graph for the default-graph triples. */
  importGraph?: (format: WitKnowledge.RdfFormat, data: Uint8Array, options?: WitKnowledge.ImportOptions) => Promise<U64AsNumber<WitKnowledge.ChangeReport>>;
  /** Formats with named graphs (N-Quads, TriG) hold every graph; the others the default graph. */
  exportGraph?: (format: WitKnowledge.RdfFormat) => Promise<Uint8Array>;
  graphStats?: () => Promise<U64AsNumber<WitKnowledge.GraphStats>>;
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

/** One model of the catalog (data/models.json): what the `llmkg` CLI and scripts/fetch-models
 * know by id. Its files live in `<models dir>/<id>/<name>`. */
export interface CatalogModel {
  id: string;
  kind: ModelKind;
  label: string;
  files: { name: string; size: number; sha256: string }[];
  /** scripts/fetch-models' `--only` name. */
  fetch: string;
  /** The PyPI packages the files come from. */
  source: Record<string, unknown>;
}

/** The catalog's models, in its order. */
export const models: CatalogModel[];
/** The ids used when nothing names a model. */
export const defaultModelIds: Record<ModelKind, string>;
/** A `loadModel` spec for catalog model `id` with its files at `${base}/${id}/${name}`: `base` is
 * a directory in Node (e.g. ~/.cache/llmkg/models) or a URL prefix in browsers ('/models').
 * An id not in the catalog is a `not-found` LlmkgError. */
export function catalogSpec(id: string, base: string | URL): ModelSpec;
