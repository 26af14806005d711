// The fetch handler (src/fetch.js) in Node, Deno and Bun: each runtime serves the examples/
// script, and the same requests get the same answers the Rust front gives under llmkg serve
// (it is the same front, transpiled). Deno and Bun come from npm (devDependencies).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = (name) => join(root, 'node_modules', '.bin', name);
const RUNTIMES = [
  { name: 'node', cmd: process.execPath, args: ['examples/fetch-node.js'] },
  { name: 'deno', cmd: bin('deno'), args: ['run', '-A', 'examples/fetch-deno.js'] },
  { name: 'bun', cmd: bin('bun'), args: ['examples/fetch-bun.js'] },
];
const QUESTION = 'What is the capital of France?';

function freePort() {
  return new Promise((ok) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

async function start(runtime) {
  const port = await freePort();
  const child = spawn(runtime.cmd, runtime.args, { cwd: root, env: { ...process.env, PORT: String(port), NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout.on('data', (d) => (log += d));
  child.stderr.on('data', (d) => (log += d));
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 600; i++) {
    if (child.exitCode !== null) throw new Error(`${runtime.name} exited: ${log}`);
    try {
      if ((await fetch(`${url}/health`)).status === 200) return { url, stop: () => child.kill('SIGTERM'), version: () => log };
    } catch {}
    await new Promise((r) => setTimeout(r, 250));
  }
  child.kill('SIGKILL');
  throw new Error(`${runtime.name} was not ready after 150 s: ${log}`);
}

const post = (url, path, body) => fetch(url + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

for (const runtime of RUNTIMES) {
  test(`the fetch handler serves the OpenAI routes under ${runtime.name}`, { skip: !existsSync(runtime.cmd) && `${runtime.cmd} is not installed` }, async () => {
    const server = await start(runtime);
    try {
      const plain = await (await post(server.url, '/v1/chat/completions', { messages: [{ role: 'user', content: QUESTION }], max_tokens: 48 })).json();
      const answer = plain.choices[0].message.content;
      assert.match(answer, /Paris/);
      assert.equal(plain.object, 'chat.completion');

      const streamed = await post(server.url, '/v1/chat/completions', { messages: [{ role: 'user', content: QUESTION }], max_tokens: 48, stream: true });
      assert.equal(streamed.headers.get('content-type'), 'text/event-stream');
      const events = (await streamed.text()).split('\n\n').filter(Boolean).map((e) => e.replace(/^data: /, ''));
      assert.equal(events.at(-1), '[DONE]');
      const pieces = events.slice(0, -1).map((e) => JSON.parse(e)).flatMap((c) => c.choices.map((ch) => ch.delta.content ?? ''));
      assert.ok(pieces.filter(Boolean).length > 1, 'streamed in more than one piece');
      assert.equal(pieces.join(''), answer);

      const completion = await (await post(server.url, '/v1/completions', { prompt: 'The capital of France is', max_tokens: 8 })).json();
      assert.match(completion.choices[0].text, /Paris/);

      const emb = await (await post(server.url, '/v1/embeddings', { input: ['a cat sat on the mat', 'a kitten on a rug'] })).json();
      assert.deepEqual(emb.data.map((d) => [d.index, d.embedding.length]), [[0, 384], [1, 384]]);

      const models = await (await fetch(`${server.url}/v1/models`)).json();
      assert.deepEqual(models.data.map((m) => m.id).sort(), ['all-minilm-l6-v2', 'smollm2-135m-instruct']);

      const missing = await post(server.url, '/v1/chat/completions', { model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] });
      assert.equal(missing.status, 404);
      assert.equal((await missing.json()).error.code, 'model_not_found');

      const big = await fetch(`${server.url}/v1/embeddings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: new Uint8Array(17 << 20) });
      assert.equal(big.status, 413);
    } finally {
      server.stop();
    }
  });
}
