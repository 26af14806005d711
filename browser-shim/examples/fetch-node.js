// The llmkg HTTP front as a fetch handler under Node: `node examples/fetch-node.js`.
// Node 20 has fetch's Request and Response but no fetch server, so node:http is adapted here.
// PORT (default 8080), LLMKG_MODELS (model cache), LLMKG_DATA (graph data directory, optional).
import { createServer } from 'node:http';
import { Readable } from 'node:stream';
import { createFetchHandler } from '../src/fetch.js';

const handler = await createFetchHandler({ dataDir: process.env.LLMKG_DATA });
const port = Number(process.env.PORT ?? 8080);
createServer(async (req, res) => {
  const body = req.method === 'GET' || req.method === 'HEAD' ? undefined : Readable.toWeb(req);
  const request = new Request(`http://${req.headers.host ?? '127.0.0.1'}${req.url}`, { method: req.method, headers: req.headers, body, duplex: 'half' });
  const response = await handler(request);
  res.writeHead(response.status, Object.fromEntries(response.headers));
  if (!response.body) return res.end();
  const reader = response.body.getReader();
  res.on('close', () => reader.cancel().catch(() => {}));
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    res.write(value);
  }
  res.end();
}).listen(port, '127.0.0.1', () => console.error(`listening on http://127.0.0.1:${port}`));
