// The worker side of the protocol: one component instance (a Host) answering messages, one call
// at a time, in order:
//   in:  { type: 'init', modules, build, testHooks } -> { type: 'ready', methods }
//        { type: 'call', id, method, args }          -> { type: 'piece', id, piece }*,
//                                                       then { type: 'result', id, value }
//                                                       or   { type: 'error', id, error }
//        { type: 'cancel', id }                      (ends a call between two pieces)
// A trap is reported as an error with code 'trap'; the main thread then replaces the worker.
// Entry points: src/worker.js (module Web Worker), src/worker-node.js (worker_threads).
import { toWire } from './errors.js';
import { Host, IMMEDIATE } from './host.js';

/**
 * @param {{ post: (m: object) => void, onMessage: (fn: (m: any) => void) => void }} port
 * @param {object} platform src/platform-web.js or src/platform-node.js
 */
export function serve(port, platform) {
  let host = null;
  let queue = Promise.resolve();
  const cancelled = new Set();

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
    }
  }

  port.onMessage((msg) => {
    switch (msg.type) {
      case 'init':
        Host.create(platform, msg.modules, { testHooks: msg.testHooks, build: msg.build }).then(
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
    }
  });
}
