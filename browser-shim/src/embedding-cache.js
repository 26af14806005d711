// The embedding cache (`Engine.create({ embeddingCache: size })`): the `size` most recently used
// vectors, keyed by model id and text, so a repeated text is answered without a component call.
// Entries of a model are dropped when it is loaded again, unloaded, or lost in a respawn.
import { LlmkgError } from './errors.js';

export class EmbeddingCache {
  #entries = new Map(); // `${model}\0${text}` -> Float32Array, least recently used first
  #capacity;
  #hits = 0;
  #misses = 0;
  /** Bumped by `forget`: a vector computed before is not stored after (its model may be gone). */
  version = 0;

  /** null when the option is absent or 0 (the default: off). */
  static fromOption(size) {
    if (size === undefined || size === 0 || size === false) return null;
    if (!Number.isInteger(size) || size < 0) throw new LlmkgError('invalid-input', `embeddingCache must be a number of entries (a non-negative integer), not ${JSON.stringify(size)}`);
    return new EmbeddingCache(size);
  }

  constructor(capacity) {
    this.#capacity = capacity;
  }

  get(model, text) {
    const key = `${model}\0${text}`;
    const v = this.#entries.get(key);
    if (v === undefined) {
      this.#misses++;
      return undefined;
    }
    this.#hits++;
    this.#entries.delete(key);
    this.#entries.set(key, v);
    return v;
  }

  set(model, text, vector, version) {
    if (version !== this.version) return;
    const key = `${model}\0${text}`;
    this.#entries.delete(key);
    this.#entries.set(key, new Float32Array(vector));
    while (this.#entries.size > this.#capacity) this.#entries.delete(this.#entries.keys().next().value);
  }

  /** Drops every vector of `model`. */
  forget(model) {
    this.version++;
    const prefix = `${model}\0`;
    for (const k of this.#entries.keys()) if (k.startsWith(prefix)) this.#entries.delete(k);
  }

  stats() {
    return { capacity: this.#capacity, entries: this.#entries.size, hits: this.#hits, misses: this.#misses };
  }
}
