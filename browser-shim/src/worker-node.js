// worker_threads entry: the component runs here, off Node's main thread (see serve.js).
import { parentPort } from 'node:worker_threads';
import * as platform from './platform-node.js';
import { serve } from './serve.js';

serve({ post: (m) => parentPort.postMessage(m), onMessage: (fn) => parentPort.on('message', fn) }, platform);
