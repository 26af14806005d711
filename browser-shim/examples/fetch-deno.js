// The llmkg HTTP front as a fetch handler under Deno: `deno run -A examples/fetch-deno.js`.
// PORT (default 8080), LLMKG_MODELS (model cache), LLMKG_DATA (graph data directory, optional).
import { createFetchHandler } from '../src/fetch.js';

const handler = await createFetchHandler({ dataDir: Deno.env.get('LLMKG_DATA') });
Deno.serve({ hostname: '127.0.0.1', port: Number(Deno.env.get('PORT') ?? 8080) }, handler);
