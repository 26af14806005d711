// Browsers (window or worker): where the transpiled component, its WASI imports and model file
// bytes come from. Model files are streamed from `fetch` and kept in the Cache API.
import { LlmkgError, fetchModelFile } from './errors.js';

/** dist/web/ holds the SIMD build, dist/web-nosimd/ the one without SIMD128. */
const distDir = (build) => new URL(build === 'nosimd' ? '../dist/web-nosimd/' : '../dist/web/', import.meta.url);
const WASI = ['cli', 'clocks', 'io', 'random', 'filesystem'];

export const name = 'web';
export const DEFAULT_CACHE = 'llmkg-models';

/** Compiles every core module of the transpiled component with `compileStreaming` (off the main
 * thread, while it downloads), reporting bytes as they arrive. */
export async function compileComponent(onProgress, build = 'simd') {
  const DIST = distDir(build);
  const { default: names, sizes } = await import(new URL('modules.js', DIST).href).catch((e) => {
    throw new LlmkgError('fetch-failed', `loading ${new URL('modules.js', DIST).href}: ${e.message} (did \`npm run build\` run${build === 'nosimd' ? ' with the no-SIMD component built' : ''}?)`);
  });
  const modules = {};
  await Promise.all(
    names.map(async (n) => {
      const url = new URL(n, DIST).href;
      const res = await fetch(url);
      if (!res.ok) throw new LlmkgError('fetch-failed', `fetching ${url}: HTTP ${res.status} (did \`npm run build\` run?)`);
      const total = Number(res.headers.get('content-length')) || sizes[n] || null;
      let loaded = 0;
      const counted = res.body.pipeThrough(
        new TransformStream({
          transform(chunk, ctl) {
            loaded += chunk.byteLength;
            onProgress?.({ file: n, loaded, total });
            ctl.enqueue(chunk);
          },
        }),
      );
      modules[n] = await WebAssembly.compileStreaming(new Response(counted, { headers: { 'content-type': 'application/wasm' } }));
    }),
  );
  return modules;
}

export async function instantiate(modules, build = 'simd') {
  const DIST = distDir(build);
  const { instantiate } = await import(new URL('llmkg.js', DIST).href);
  // The web transpile maps each `wasi:<pkg>/*` import to `./shim/<pkg>.js` (see scripts/build.js);
  // with async instantiation those specifiers are the keys of the import object.
  const imports = {};
  await Promise.all(WASI.map(async (p) => (imports[`./shim/${p}.js`] = await import(new URL(`shim/${p}.js`, DIST).href))));
  return instantiate((path) => modules[path], imports);
}

/**
 * A model file by URL. With a cache name, a cached copy is used when there is one, and a network
 * response is written to the cache while it is read (the body is teed, chunk objects are shared,
 * so the page never holds a whole second copy).
 */
export async function openFile({ name, url }, { cache } = {}) {
  const cacheName = cache === undefined || cache === true ? DEFAULT_CACHE : cache;
  const store = cacheName && typeof caches !== 'undefined' ? await caches.open(cacheName) : null;
  const cached = store ? await store.match(url) : undefined;
  if (cached) return source(cached, true, null);
  const res = await fetchModelFile(name, url);
  return source(res, false, store ? (copy) => store.put(url, copy) : null);
}

function source(res, fromCache, save) {
  const len = res.headers.get('content-length');
  return {
    size: len === null ? null : Number(len),
    fromCache,
    async *chunks() {
      let saved = null;
      if (save) saved = save(res.clone()).catch((e) => console.warn(`llmkg: not cached: ${e.message}`));
      const reader = res.body.getReader();
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          yield value;
        }
      } finally {
        reader.releaseLock();
      }
      // A file counts as loaded once the cache holds it too (a reload then fetches nothing).
      await saved;
    },
    close: () => res.body?.cancel().catch(() => {}),
  };
}

/** Lets other messages and events run between two pieces of a long call (a macrotask, but
 * without the 4 ms clamp of nested timers). */
export function yieldToEventLoop() {
  return new Promise((r) => {
    const ch = new MessageChannel();
    ch.port1.onmessage = () => {
      ch.port1.close();
      r();
    };
    ch.port2.postMessage(0);
  });
}
