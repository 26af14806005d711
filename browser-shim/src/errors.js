// LlmkgError: the one error type the API throws. `code` is the WIT `error` variant's tag for
// failures reported by the component (`invalid-model`, `unsupported`, `invalid-input`,
// `not-found`, `resource-exhausted`, `query-syntax`, `internal`), or one of the shim's own:
// `aborted` (an AbortSignal fired), `trap` (the component trapped) and `fetch-failed`.

export class LlmkgError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   * @param {{ respawned?: boolean, lostModels?: string[], cause?: unknown }} [extra]
   */
  constructor(code, message, extra = {}) {
    super(message, extra.cause === undefined ? undefined : { cause: extra.cause });
    this.name = code === 'aborted' ? 'AbortError' : 'LlmkgError';
    this.code = code;
    /** True when the engine started a fresh instance because of this error (models are gone). */
    this.respawned = extra.respawned ?? false;
    /** Models that were loaded before the respawn and must be loaded again. */
    this.lostModels = extra.lostModels ?? [];
  }
}

/** What crosses the worker boundary: plain data, rebuilt with `fromWire`. */
export function toWire(e) {
  if (e instanceof WebAssembly.RuntimeError) {
    return { code: 'trap', message: `the component trapped (${e.message})` };
  }
  if (e instanceof LlmkgError) return { code: e.code, message: e.message };
  // jco throws a WIT `result` error as ComponentError with `.payload` = { tag, val }.
  const p = e?.payload;
  if (p && typeof p.tag === 'string') return { code: p.tag, message: typeof p.val === 'string' ? p.val : String(p.val) };
  // jco rejects values that do not fit the WIT types (a negative u32, a missing field) while
  // lowering them, before the component sees them: that is invalid input too.
  if (e instanceof TypeError || e instanceof RangeError) return { code: 'invalid-input', message: e.message };
  return { code: 'internal', message: String(e?.message ?? e) };
}

export function fromWire(w, extra) {
  return new LlmkgError(w.code, w.message, extra);
}

export function toLlmkgError(e) {
  return e instanceof LlmkgError ? e : fromWire(toWire(e));
}

/** `fetch(url)` that fails with an LlmkgError naming the file: 'not-found' for a 404,
 * 'fetch-failed' for anything else. Shared by the Node and web platforms. */
export async function fetchModelFile(name, url) {
  let res;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new LlmkgError('fetch-failed', `${name}: fetching ${url}: ${e.message}`);
  }
  if (!res.ok) throw new LlmkgError(res.status === 404 ? 'not-found' : 'fetch-failed', `${name}: fetching ${url}: HTTP ${res.status}`);
  return res;
}
