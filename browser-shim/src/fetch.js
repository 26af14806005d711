// A WinterCG fetch handler, `(request: Request) => Promise<Response>`, that answers with the HTTP
// front: the same routes, checks, limits and errors as `llmkg serve` (OpenAI API, SPARQL 1.1
// Protocol, graph routes), because it is the same code. The composed component (front + engine,
// `llmkg compose`), transpiled by jco, runs in this process and is called through its plain
// `http-handler` export: the request goes in whole (read no further than the front's body
// limit), a streamed answer comes out as a ReadableStream pulled event by event.
//
// It runs unchanged in Deno (`Deno.serve(handler)`), Bun (`Bun.serve({ fetch: handler })`) and
// Node (examples/fetch-node.js adapts node:http). One instance answers every request, one call
// at a time; a token is decoded when the stream is read, so a client that stops reading stops
// the generation.
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WASIShim } from '@bytecodealliance/preview2-shim/instantiation';
import { LlmkgError } from './errors.js';
import { defaultModelIds, models } from './models.js';

const DIST = new URL('../dist/app-node/', import.meta.url);

/** The default models (the catalog's defaults), as `scripts/fetch-models` lays them out: a text
 * model by its .gguf, an embedding model by its directory. */
export function defaultModels(dir = process.env.LLMKG_MODELS ?? join(homedir(), '.cache', 'llmkg', 'models')) {
  return [defaultModelIds['text-generation'], defaultModelIds.embedding].map((id) => {
    const { kind, files } = models.find((m) => m.id === id);
    return { id, path: kind === 'text-generation' ? join(dir, id, files[0].name) : join(dir, id) };
  });
}

async function loadApp() {
  let transpiled;
  try {
    transpiled = await import(new URL('llmkg-app.js', DIST).href);
  } catch (e) {
    throw new LlmkgError('internal', `cannot load ${fileURLToPath(new URL('llmkg-app.js', DIST))}: run \`npm run build\` in browser-shim/ (it needs the composed component) (${e.message})`);
  }
  const { default: names, files } = await import(new URL('modules.js', DIST).href);
  const modules = {};
  for (const n of names) modules[n] = await WebAssembly.compile(await readFile(new URL(files?.[n] ?? n, DIST)));
  return { instantiate: transpiled.instantiate, modules };
}

/**
 * @param {object} [options]
 * @param {{ id: string, path: string }[]} [options.models] a `.gguf` file is a text model, a
 *   directory (model.safetensors, tokenizer.json, config.json) an embedding model; default:
 *   the two default models in ~/.cache/llmkg/models ($LLMKG_MODELS)
 * @param {string} [options.dataDir] the graph's data directory (snapshot + change log, shared
 *   with the CLI and `llmkg serve`); without one the graph is read-only
 * @param {Record<string, string>} [options.settings] the front's settings (LLMKG_API_KEYS,
 *   LLMKG_GRAPH_WRITES, LLMKG_MAX_BODY, ... as in docs/SERVE.md)
 * @returns {Promise<(request: Request) => Promise<Response>>}
 */
export async function createFetchHandler({ models = defaultModels(), dataDir, settings = {} } = {}) {
  const preopens = {};
  const specs = [];
  models.forEach((m, i) => {
    // Each model's directory is mapped in read-only style under /models/<i>.
    const isGguf = m.path.endsWith('.gguf');
    preopens[`/models/${i}`] = isGguf ? dirname(m.path) : m.path;
    specs.push(`${m.id}=${isGguf ? `/models/${i}/${m.path.split(/[\\/]/).pop()}` : `/models/${i}`}`);
  });
  const env = { ...settings, LLMKG_MODELS: specs.join(';') };
  if (dataDir) {
    preopens['/data'] = dataDir;
    env.LLMKG_DATA = '/data';
  }
  const { instantiate, modules } = await loadApp();
  const imports = new WASIShim({ sandbox: { preopens, env, args: ['llmkg'] } }).getImportObject();
  const app = await instantiate((name) => modules[name], imports);
  const handler = app.httpHandler ?? app['llmkg:engine/http-handler@0.1.0'];
  const limit = Number(handler.bodyLimit());
  // Load the models now rather than on the first request.
  handler.handle({ method: 'GET', pathWithQuery: '/health', headers: [], body: new Uint8Array() });

  return async function fetch(request) {
    const body = await readCapped(request, limit + 1);
    const url = new URL(request.url);
    const reply = handler.handle({
      method: request.method,
      pathWithQuery: url.pathname + url.search,
      headers: [...request.headers],
      body,
    });
    const headers = new Headers(reply.headers);
    if (reply.body.tag === 'bytes') return new Response(reply.body.val, { status: reply.status, headers });
    const events = reply.body.val;
    const done = () => events[Symbol.dispose]?.();
    return new Response(
      new ReadableStream({
        pull(controller) {
          const chunk = events.next();
          if (chunk === undefined) {
            done();
            controller.close();
          } else {
            controller.enqueue(chunk);
          }
        },
        cancel: done,
      }),
      { status: reply.status, headers },
    );
  };
}

/** The body, but never more than `max` bytes of it (the front answers 413 past its limit). */
async function readCapped(request, max) {
  if (!request.body) return new Uint8Array();
  const parts = [];
  let size = 0;
  const reader = request.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(value);
    size += value.length;
    if (size >= max) {
      await reader.cancel().catch(() => {});
      break;
    }
  }
  const out = new Uint8Array(Math.min(size, max));
  let at = 0;
  for (const p of parts) {
    const take = Math.min(p.length, out.length - at);
    out.set(p.subarray(0, take), at);
    at += take;
    if (at === out.length) break;
  }
  return out;
}
