// Module Web Worker entry: the component runs here, off the page's main thread (see serve.js).
import * as platform from './platform-web.js';
import { serve } from './serve.js';

serve({ post: (m) => self.postMessage(m), onMessage: (fn) => self.addEventListener('message', (e) => fn(e.data)) }, platform);
