#!/usr/bin/env node
// A tiny static server for the demo page (no framework):
//   /              demo/index.html          /demo/*   this directory
//   /src/*, /dist/*  the package (the API and the transpiled component)
//   /models/*      $LLMKG_MODELS (default ~/.cache/llmkg/models), sent with `no-store` so only
//                  the page's Cache API can keep them
//   /data/*        the repository's data/ (the demo knowledge graph), when present
// Usage: node demo/server.js [--port 8080] [--host 127.0.0.1] [--isolated]
//   --isolated: every response carries COOP same-origin + COEP require-corp, so the page is
//               cross-origin isolated (SharedArrayBuffer exists)
import { createServer } from 'node:http';
import { createReadStream, existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const pkgRoot = resolve(fileURLToPath(import.meta.url), '..', '..');
const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ttl': 'text/turtle; charset=utf-8',
  '.nt': 'application/n-triples',
};

/**
 * @param {{ port?: number, host?: string, modelsDir?: string, quiet?: boolean, isolated?: boolean }} [opts]
 * @returns {Promise<{ url: string, close: () => Promise<void>, requests: string[] }>}
 */
export function startServer({ port = 8080, host = '127.0.0.1', modelsDir, quiet = true, isolated = false } = {}) {
  const models = modelsDir ?? process.env.LLMKG_MODELS ?? join(homedir(), '.cache', 'llmkg', 'models');
  const mounts = [
    ['/models/', models, 'no-store'],
    ['/data/', resolve(pkgRoot, '..', 'data'), 'no-cache'],
    ['/dist/', join(pkgRoot, 'dist'), 'no-cache'],
    ['/src/', join(pkgRoot, 'src'), 'no-cache'],
    ['/demo/', join(pkgRoot, 'demo'), 'no-cache'],
  ];
  /** Every path requested, in order (the tests count model-file requests). */
  const requests = [];

  const server = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    requests.push(path);
    if (!quiet) console.log(req.method, path);
    if (isolated) {
      res.setHeader('cross-origin-opener-policy', 'same-origin');
      res.setHeader('cross-origin-embedder-policy', 'require-corp');
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'method not allowed');
    if (path === '/' || path === '/index.html') return serveFile(req, res, join(pkgRoot, 'demo', 'index.html'), 'no-cache');
    if (path === '/favicon.ico') return send(res, 204, '');
    for (const [prefix, dir, cache] of mounts) {
      if (!path.startsWith(prefix)) continue;
      const file = normalize(join(dir, path.slice(prefix.length)));
      if (file !== dir && !file.startsWith(dir + sep)) return send(res, 403, 'forbidden');
      return serveFile(req, res, file, cache);
    }
    send(res, 404, 'not found');
  });

  return new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(port, host, () => {
      const { port: p } = server.address();
      ok({
        url: `http://${host}:${p}`,
        requests,
        close: () => new Promise((r) => (server.closeAllConnections(), server.close(() => r()))),
      });
    });
  });
}

async function serveFile(req, res, file, cache) {
  let st;
  try {
    st = await stat(file);
  } catch {
    return send(res, 404, 'not found');
  }
  if (!st.isFile()) return send(res, 404, 'not found');
  const etag = `"${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`;
  const headers = {
    'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
    'cache-control': cache,
    etag,
  };
  if (cache !== 'no-store' && req.headers['if-none-match'] === etag) {
    res.writeHead(304, headers);
    return res.end();
  }
  res.writeHead(200, { ...headers, 'content-length': st.size });
  if (req.method === 'HEAD') return res.end();
  createReadStream(file).pipe(res);
}

function send(res, status, text) {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
  res.end(text);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const arg = (name, dflt) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? process.argv[i + 1] : dflt;
  };
  if (!existsSync(join(pkgRoot, 'dist', 'web', 'llmkg.js'))) {
    console.error('dist/web is missing: run `npm run build` first');
    process.exit(1);
  }
  const { url } = await startServer({ port: Number(arg('--port', process.env.PORT ?? 8080)), host: arg('--host', '127.0.0.1'), quiet: !process.argv.includes('--verbose'), isolated: process.argv.includes('--isolated') });
  console.log(`llmkg demo: ${url}/   (models from ${process.env.LLMKG_MODELS ?? '~/.cache/llmkg/models'}; Ctrl-C stops)`);
}
