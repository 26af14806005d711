// node quickstart.mjs [models dir]: stream a chat answer, then compare two sentence embeddings.
import { Engine, catalogSpec } from 'llmkg';
const dir = process.argv[2] ?? process.env.LLMKG_MODELS ?? `${process.env.HOME}/.cache/llmkg/models`;
const engine = await Engine.create();
await engine.loadModel(catalogSpec('smollm2-135m-instruct', dir));
await engine.loadModel(catalogSpec('all-minilm-l6-v2', dir));
for await (const piece of engine.streamChat('What is the capital of France?')) process.stdout.write(piece);
const [a, b] = await engine.embed(['A cat sits on the mat.', 'A kitten sits on the mat.']);
console.log(`\ncosine ${a.reduce((sum, x, i) => sum + x * b[i], 0).toFixed(4)}`); // unit vectors: dot = cosine
engine.close();
