// The worker side of the protocol: one component instance (a Host) answering messages, one call
// at a time, in order:
//   in:  { type: 'init', modules, build, testHooks } -> { type: 'ready', methods }
//        { type: 'call', id, method, args }          -> { type: 'piece', id, piece }*,
//                                                       then { type: 'result', id, value }
//                                                       or   { type: 'error', id, error }
//        { type: 'cancel', id }                      (ends a call between two pieces)
//        { type: 'chunk', stream, file, bytes }      bytes of a model file the main thread pushes
//        { type: 'chunk-end', stream, file }         (a pool reads each file once and sends every
//        { type: 'chunk-abort', stream, message }    worker the bytes; see src/pool.js)
// A `loadModel` whose files carry `pushed: stream` reads them from those messages instead of
// opening them itself; its progress reports tell the sender how far the upload got.
// A trap is reported as an error with code 'trap'; the main thread then replaces the worker.
// Entry points: src/worker.js (module Web Worker), src/worker-node.js (worker_threads).
import { LlmkgError, toWire } from './errors.js';
import { Host, IMMEDIATE } from './host.js';

/**
 * @param {{ post: (m: object) => void, onMessage: (fn: (m: any) => void) => void }} port
 * @param {object} platform src/platform-web.js or src/platform-node.js
 */
export function serve(port, platform) {
  let host = null;
  let queue = Promise.resolve();
  const cancelled = new Set();
  const inboxes = new PushedFiles();
  const hostPlatform = { ...platform, openFile: (f, o) => (f.pushed === undefined ? platform.openFile(f, o) : inboxes.open(f)) };

  async function call({ id, method, args }) {
    try {
      const it = host.run(method, args, { cancelled: () => cancelled.has(id) });
      for (;;) {
        const { done, value } = await it.next();
        if (done) {
          port.post({ type: 'result', id, value });
          break;
        }
        port.post({ type: 'piece', id, piece: value });
      }
    } catch (e) {
      port.post({ type: 'error', id, error: toWire(e) });
    } finally {
      cancelled.delete(id);
      // Bytes pushed for a load that failed before it opened its files are dropped too.
      if (method === 'loadModel') for (const f of args[0]?.files ?? []) if (f.pushed !== undefined) inboxes.close(f.pushed);
    }
  }

  port.onMessage((msg) => {
    switch (msg.type) {
      case 'init':
        Host.create(hostPlatform, msg.modules, { testHooks: msg.testHooks, build: msg.build }).then(
          (h) => {
            host = h;
            port.post({ type: 'ready', methods: h.methods() });
          },
          (e) => port.post({ type: 'error', id: null, error: toWire(e) }),
        );
        break;
      case 'call':
        if (IMMEDIATE.has(msg.method)) call(msg);
        else queue = queue.then(() => call(msg));
        break;
      case 'cancel':
        cancelled.add(msg.id);
        break;
      case 'chunk':
        inboxes.inbox(msg.stream, msg.file)?.push(msg.bytes);
        break;
      case 'chunk-end':
        inboxes.inbox(msg.stream, msg.file)?.push(null);
        break;
      case 'chunk-abort':
        inboxes.abort(msg.stream, msg.message);
        break;
    }
  });
}

/** Model files whose bytes arrive as messages, by stream (one per load) and file index. Chunks
 * may arrive before the load call runs (it can be queued behind another call): they wait here. */
class PushedFiles {
  #streams = new Map(); // stream -> { files: Map<index, Inbox>, error }
  #closed = new Set(); // streams whose load is over: late chunks are dropped

  #stream(stream) {
    if (this.#closed.has(stream)) return null;
    let s = this.#streams.get(stream);
    if (!s) this.#streams.set(stream, (s = { files: new Map(), error: null }));
    return s;
  }

  inbox(stream, file) {
    const s = this.#stream(stream);
    if (!s) return null;
    let box = s.files.get(file);
    if (!box) s.files.set(file, (box = new Inbox(s)));
    return box;
  }

  abort(stream, message) {
    const s = this.#stream(stream);
    if (!s) return;
    s.error = message;
    for (const box of s.files.values()) box.wake();
  }

  close(stream) {
    this.#streams.delete(stream);
    this.#closed.add(stream);
  }

  /** A source as platform.openFile returns it. */
  open({ name, pushed, size, fromCache, fileIndex }) {
    const box = this.inbox(pushed, fileIndex);
    if (!box) throw new LlmkgError('aborted', `${name}: the load was already ended`);
    return {
      size: size ?? null,
      fromCache: !!fromCache,
      chunks: () => box.chunks(name),
      close: () => this.close(pushed),
    };
  }
}

class Inbox {
  #chunks = [];
  #waiting = null;
  #stream;

  constructor(stream) {
    this.#stream = stream;
  }

  push(chunk) {
    this.#chunks.push(chunk);
    this.wake();
  }

  wake() {
    const w = this.#waiting;
    this.#waiting = null;
    w?.();
  }

  async *chunks(name) {
    for (;;) {
      if (this.#stream.error !== null) throw new LlmkgError('aborted', `${name}: ${this.#stream.error}`);
      if (this.#chunks.length) {
        const c = this.#chunks.shift();
        if (c === null) return;
        yield c;
      } else {
        await new Promise((r) => (this.#waiting = r));
      }
    }
  }
}
