// Node: where the transpiled component, its WASI imports and model file bytes come from.
import { open, readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WASIShim } from '@bytecodealliance/preview2-shim/instantiation';
import { LlmkgError, fetchModelFile } from './errors.js';

const CHUNK = 1 << 20;

export const name = 'node';

/** dist/node/ holds the SIMD build, dist/node-nosimd/ the one without SIMD128. */
const distDir = (build) => new URL(build === 'nosimd' ? '../dist/node-nosimd/' : '../dist/node/', import.meta.url);

async function dist(file, build) {
  try {
    return await import(new URL(file, distDir(build)).href);
  } catch (e) {
    const how = build === 'nosimd' ? 'build the no-SIMD component (scripts/build at the repository root), then run `npm run build`' : 'run `npm run build` in browser-shim/ first';
    throw new LlmkgError('internal', `cannot load ${fileURLToPath(new URL(file, distDir(build)))}: ${how} (${e.message})`);
  }
}

/** Compiles every core module of the transpiled component: { 'llmkg.core.wasm': Module, ... }. */
export async function compileComponent(onProgress, build = 'simd') {
  const { default: names, files } = await dist('modules.js', build);
  const modules = {};
  for (const n of names) {
    const bytes = await readFile(new URL(files?.[n] ?? n, distDir(build))); // shared modules are read from dist/web*
    onProgress?.({ file: n, loaded: bytes.length, total: bytes.length });
    modules[n] = await WebAssembly.compile(bytes);
  }
  return modules;
}

export async function instantiate(modules, build = 'simd') {
  const { instantiate } = await dist('llmkg.js', build);
  // The component sees no host files, no environment and no arguments.
  const imports = new WASIShim({ sandbox: { preopens: {}, env: {}, args: ['llmkg'] } }).getImportObject();
  return instantiate((path) => modules[path], imports);
}

/** A model file given as a path, a file: URL, or an http(s) URL. */
export async function openFile({ name, url }) {
  const s = String(url);
  if (/^https?:/i.test(s)) return openHttp(name, s);
  const path = /^file:/i.test(s) ? fileURLToPath(s) : resolve(s);
  let fh;
  try {
    fh = await open(path);
  } catch (e) {
    throw new LlmkgError(e.code === 'ENOENT' ? 'not-found' : 'fetch-failed', `${name}: cannot open ${path}: ${e.message}`);
  }
  const size = (await fh.stat()).size;
  return {
    size,
    fromCache: false,
    async *chunks() {
      // One buffer, reused: model-upload.write copies each chunk into the component.
      const buf = new Uint8Array(Math.min(CHUNK, Math.max(size, 1)));
      try {
        for (;;) {
          const { bytesRead } = await fh.read(buf, 0, buf.length);
          if (bytesRead === 0) return;
          yield buf.subarray(0, bytesRead);
        }
      } finally {
        await fh.close();
      }
    },
    close: () => fh.close().catch(() => {}),
  };
}

async function openHttp(name, url) {
  const res = await fetchModelFile(name, url);
  const len = res.headers.get('content-length');
  return {
    size: len === null ? null : Number(len),
    fromCache: false,
    async *chunks() {
      for await (const c of res.body) yield c;
    },
    close: () => res.body?.cancel().catch(() => {}),
  };
}

/** Lets timers and I/O run between two pieces of a long call. */
export const yieldToEventLoop = () => new Promise((r) => setImmediate(r));
