// The llmkg HTTP front as a fetch handler under Bun: `bun examples/fetch-bun.js`.
// PORT (default 8080), LLMKG_MODELS (model cache), LLMKG_DATA (graph data directory, optional).
import { createFetchHandler } from '../src/fetch.js';

const handler = await createFetchHandler({ dataDir: process.env.LLMKG_DATA });
const server = Bun.serve({ hostname: '127.0.0.1', port: Number(process.env.PORT ?? 8080), fetch: handler, idleTimeout: 0 });
console.error(`listening on http://127.0.0.1:${server.port}`);
