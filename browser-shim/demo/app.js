// The demo page: the llmkg API in a module Web Worker, driven from plain DOM code.
import { Engine, models } from '/src/index.js';

// The catalog's models (data/models.json), text generation first; each row says what it is for.
const WHAT = { 'text-generation': 'chat', embedding: 'sentence embeddings' };
const MODELS = ['text-generation', 'embedding']
  .flatMap((kind) => models.filter((m) => m.kind === kind))
  .map((m) => ({ id: m.id, kind: m.kind, label: m.label, what: WHAT[m.kind], files: m.files.map((f) => f.name) }));

const $ = (id) => document.getElementById(id);
const el = (tag, props = {}, ...children) => {
  const e = Object.assign(document.createElement(tag), props);
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
};

/** State the tests and the benchmark read (window.llmkgDemo). */
const demo = {
  engine: null,
  progress: [], // every loadModel progress report, as given
  loaded: {}, // id -> model info
  respawns: [],
  readyAt: null, // performance.now() when the engine became ready
  ready: null, // resolves once the engine exists
  loadModels,
};
window.llmkgDemo = demo;

// --- main-thread heartbeat: frames drawn per second --------------------------------------------
{
  let frames = 0;
  const tick = () => {
    frames++;
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
  setInterval(() => {
    $('heartbeat').textContent = `UI ${frames} fps`;
    frames = 0;
  }, 1000);
}

// --- engine -----------------------------------------------------------------------------------
// One chat model at a time, picked in the models card (SmolLM2 unless the page says otherwise).
const chatModels = MODELS.filter((m) => m.kind === 'text-generation');
const picker = $('chat-model');
for (const m of chatModels) picker.append(el('option', { value: m.id, textContent: m.label }));
picker.value = new URLSearchParams(location.search).get('chat') ?? chatModels[0].id;
const chatModel = () => chatModels.find((m) => m.id === picker.value) ?? chatModels[0];
const showChatModel = () => {
  $('chat-model-name').textContent = chatModel().label;
  $('chat-input').placeholder = `Ask ${chatModel().label}…`;
};
picker.addEventListener('change', () => {
  showChatModel();
  // The picked model still has to be loaded.
  if (!demo.loaded[chatModel().id]) {
    $('load-models').disabled = false;
    $('load-models').textContent = 'Load models';
    $('chat-send').disabled = true;
  }
});
showChatModel();
/** The models "Load models" loads: the picked chat model and every other kind. */
const modelsToLoad = () => MODELS.filter((m) => m.kind !== 'text-generation' || m.id === chatModel().id);

const modelRows = new Map();
for (const m of MODELS) {
  const status = el('span', { className: 'model-status', textContent: 'not loaded' });
  const fill = el('span');
  const row = el(
    'li',
    { className: 'model' },
    el('div', { className: 'model-top' }, el('div', {}, el('span', { className: 'model-name', textContent: m.label }), el('span', { className: 'model-kind', textContent: m.what })), status),
    el('div', { className: 'bar' }, fill),
  );
  row.dataset.model = m.id;
  modelRows.set(m.id, { row, status, fill });
  $('model-list').append(row);
}

demo.ready = (async () => {
  const t0 = performance.now();
  $('build-badge').textContent = 'loading runtime…';
  const engine = await Engine.create({
    // ?simd=0: the component built without SIMD128 (what a browser without it gets).
    simd: new URLSearchParams(location.search).get('simd') === '0' ? false : undefined,
    onProgress: (p) => p.total && ($('build-badge').textContent = `runtime ${Math.round((100 * p.loaded) / p.total)}%`),
  });
  demo.engine = engine;
  demo.readyAt = performance.now();
  engine.addEventListener('respawn', (e) => onRespawn(e.detail));
  const b = await engine.buildInfo();
  const badge = $('build-badge');
  badge.textContent = `llmkg ${b.engineVersion} · ${b.target} · SIMD128 ${b.simd128 ? 'on' : 'off'} · ${engine.inWorker ? 'Web Worker' : 'main thread'}`;
  badge.classList.add('ok');
  $('foot-info').textContent = `Runtime ready in ${((performance.now() - t0) / 1000).toFixed(2)} s · calls: ${engine.methods.join(', ')}`;
  $('load-models').disabled = false;
  if (engine.methods.includes('query')) enableSparql();
  setInterval(refreshMemory, 1000);
  refreshMemory();
  if (new URLSearchParams(location.search).has('autoload')) loadModels();
  return engine;
})().catch((e) => {
  $('build-badge').textContent = `failed: ${e.message}`;
  throw e;
});

async function loadModels() {
  const engine = await demo.ready;
  $('load-models').disabled = true;
  const results = [];
  for (const m of modelsToLoad()) {
    if (demo.loaded[m.id]) continue;
    const ui = modelRows.get(m.id);
    ui.row.className = 'model';
    const t0 = performance.now();
    try {
      const info = await engine.loadModel(
        { id: m.id, kind: m.kind, files: m.files.map((name) => ({ name, url: `/models/${m.id}/${name}` })) },
        { onProgress: (p) => onProgress(m, p) },
      );
      const secs = (performance.now() - t0) / 1000;
      demo.loaded[m.id] = { ...info, loadSeconds: secs };
      ui.row.className = 'model ready';
      ui.fill.style.width = '100%';
      ui.status.textContent = `ready in ${secs.toFixed(1)} s · ${info.quantization}${info.sourceQuantization !== info.quantization ? ` (from ${info.sourceQuantization})` : ''} · ${fmtBytes(info.weightBytes)}`;
      results.push(info);
    } catch (e) {
      ui.row.className = 'model failed';
      ui.status.textContent = `${e.code ?? 'error'}: ${e.message}`;
      $('load-models').disabled = false;
      throw e;
    }
  }
  $('chat-send').disabled = false;
  $('embed-run').disabled = false;
  $('load-models').textContent = 'Loaded';
  $('chat-empty').innerHTML = 'Ask something — e.g. <em>What is the capital of France?</em>';
  return results;
}
$('load-models').addEventListener('click', () => loadModels().catch(() => {}));

function onProgress(m, p) {
  demo.progress.push(p);
  const ui = modelRows.get(m.id);
  if (p.phase === 'finish') {
    ui.row.className = 'model busy';
    ui.fill.style.width = '100%';
    ui.status.textContent = m.kind === 'text-generation' ? 'building the model (converting weights)…' : 'building the model…';
    return;
  }
  const frac = p.total ? p.loaded / p.total : 0;
  ui.fill.style.width = `${(100 * frac).toFixed(1)}%`;
  ui.status.textContent = `${p.fromCache ? 'from cache' : 'downloading'} · ${fmtBytes(p.loaded)}${p.total ? ` / ${fmtBytes(p.total)}` : ''}`;
}

function onRespawn(detail) {
  demo.respawns.push(detail);
  for (const id of detail.lostModels) {
    delete demo.loaded[id];
    const ui = modelRows.get(id);
    if (!ui) continue;
    ui.row.className = 'model failed';
    ui.fill.style.width = '0';
    ui.status.textContent = `unloaded: the engine restarted (${detail.reason})`;
  }
  if (detail.lostModels.length) {
    $('load-models').disabled = false;
    $('load-models').textContent = 'Load models';
    $('chat-send').disabled = true;
    $('embed-run').disabled = true;
  }
}

// --- memory -----------------------------------------------------------------------------------
const spark = [];
async function refreshMemory() {
  const engine = demo.engine;
  if (!engine) return;
  let s;
  try {
    s = await engine.memoryStats();
  } catch {
    return; // the engine is restarting
  }
  $('mem-linear').textContent = fmtBytes(s.linearMemoryBytes);
  $('mem-allocated').textContent = fmtBytes(s.allocatedBytes);
  $('mem-peak').textContent = fmtBytes(s.peakAllocatedBytes);
  spark.push(s.allocatedBytes);
  if (spark.length > 120) spark.shift();
  const max = Math.max(...spark, 1);
  const pts = spark.map((v, i) => `${((i / Math.max(spark.length - 1, 1)) * 300).toFixed(1)},${(46 - (v / max) * 42).toFixed(1)}`);
  $('mem-spark').querySelector('polyline').setAttribute('points', pts.join(' '));
  const list = $('mem-models');
  list.replaceChildren(
    ...s.models.map((m) => {
      const fill = el('span');
      fill.style.width = `${Math.min(100, (100 * (m.weightBytes + m.cacheBytes)) / Math.max(s.linearMemoryBytes, 1)).toFixed(1)}%`;
      return el(
        'li',
        {},
        el('span', { textContent: m.id }),
        el('span', { className: 'num', textContent: `weights ${fmtBytes(m.weightBytes)} · cache ${fmtBytes(m.cacheBytes)}` }),
        el('div', { className: 'bar' }, fill),
      );
    }),
  );
  if (!s.models.length) list.append(el('li', { className: 'muted', textContent: 'no models loaded' }));
}

// --- chat -------------------------------------------------------------------------------------
const history = [];
let current = null; // the TokenStream in progress

$('chat-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const text = $('chat-input').value.trim();
  if (text && !current) sendChat(text);
});
$('chat-stop').addEventListener('click', () => current?.cancel());
$('chat-clear').addEventListener('click', () => {
  history.length = 0;
  $('messages').replaceChildren($('chat-empty') ?? el('div', { className: 'empty', id: 'chat-empty', textContent: 'Ask something.' }));
});

async function sendChat(text) {
  const engine = demo.engine;
  $('chat-empty')?.remove();
  const messages = $('messages');
  messages.append(el('div', { className: 'msg user', textContent: text }));
  history.push({ role: 'user', content: text });
  $('chat-input').value = '';
  const bubble = el('div', { className: 'msg assistant streaming' });
  const body = el('span');
  bubble.append(body);
  messages.append(bubble);
  $('chat-send').disabled = true;
  $('chat-stop').hidden = false;

  const t0 = performance.now();
  let first = null;
  let reply = '';
  const stream = engine.streamChat(history, { maxTokens: 256, model: chatModel().id });
  current = stream;
  try {
    for await (const piece of stream) {
      first ??= performance.now();
      reply += piece;
      body.textContent = reply;
      messages.scrollTop = messages.scrollHeight;
    }
    const c = await stream.completion;
    const end = performance.now();
    const decode = c.completionTokens > 1 && first ? ((c.completionTokens - 1) / ((end - first) / 1000)).toFixed(1) : '—';
    history.push({ role: 'assistant', content: reply });
    bubble.append(
      el('span', {
        className: 'meta',
        textContent: `${c.completionTokens} tokens · first token ${(((first ?? end) - t0) / 1000).toFixed(2)} s · ${decode} tok/s · ${c.finishReason}`,
      }),
    );
    bubble.dataset.done = 'true';
  } catch (e) {
    bubble.remove();
    history.pop();
    messages.append(el('div', { className: 'msg error', textContent: `${e.code ?? 'error'}: ${e.message}` }));
  } finally {
    bubble.classList.remove('streaming');
    current = null;
    $('chat-send').disabled = false;
    $('chat-stop').hidden = true;
  }
}

// --- embeddings -------------------------------------------------------------------------------
$('embed-run').addEventListener('click', async () => {
  const sentences = $('embed-input').value.split('\n').map((s) => s.trim()).filter(Boolean);
  if (!sentences.length) return;
  const out = $('embed-out');
  try {
    const t0 = performance.now();
    const v = await demo.engine.embed(sentences);
    const ms = performance.now() - t0;
    const sim = (a, b) => a.reduce((s, x, i) => s + x * b[i], 0); // unit vectors: dot = cosine
    const head = el('tr', {}, el('th'), ...sentences.map((_, j) => el('th', { textContent: `#${j + 1}` })));
    const rows = sentences.map((s, i) =>
      el(
        'tr',
        {},
        el('th', { textContent: `#${i + 1} ${s}`, title: s }),
        ...sentences.map((_, j) => {
          const c = sim(v[i], v[j]);
          const td = el('td', { textContent: c.toFixed(2) });
          const a = Math.max(0, c);
          td.style.background = `rgba(79, 70, 229, ${(0.08 + 0.8 * a * a).toFixed(3)})`;
          td.style.color = a > 0.75 ? '#fff' : 'inherit';
          return td;
        }),
      ),
    );
    out.replaceChildren(el('table', {}, head, ...rows), el('p', { className: 'muted small', textContent: `${sentences.length} sentences embedded in ${ms.toFixed(0)} ms (384 dimensions, cosine similarity)` }));
  } catch (e) {
    out.replaceChildren(el('p', { className: 'msg error', textContent: `${e.code ?? 'error'}: ${e.message}` }));
  }
});

// --- knowledge graph (only when the component exports `knowledge`) ----------------------------
function enableSparql() {
  $('sparql-slot').hidden = true;
  $('sparql-box').hidden = false;
  $('sparql-actions').hidden = false;
  $('sparql-run').addEventListener('click', runSparql);
  $('kg-load').addEventListener('click', async () => {
    const status = $('sparql-status');
    try {
      status.textContent = 'loading /data/demo-kb.ttl…';
      const res = await fetch('/data/demo-kb.ttl');
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const bytes = new Uint8Array(await res.arrayBuffer());
      const r = await demo.engine.importGraph('turtle', bytes);
      status.textContent = `imported ${r.changed} triples (${r.total} in the graph)`;
    } catch (e) {
      status.textContent = `${e.code ?? 'error'}: ${e.message}`;
    }
  });
}

const shortIri = (iri) => iri.replace(/^urn:llmkg:/, 'kg:').replace(/^http:\/\/www\.w3\.org\/2000\/01\/rdf-schema#/, 'rdfs:');

function termCell(t) {
  if (!t) return el('td', { className: 'muted', textContent: '—' });
  if (t.tag === 'iri') return el('td', { className: 'iri', textContent: shortIri(t.val), title: t.val });
  if (t.tag === 'blank-node') return el('td', { textContent: `_:${t.val}` });
  return el('td', { textContent: t.val.language ? `${t.val.value}@${t.val.language}` : t.val.value });
}

async function runSparql() {
  const out = $('sparql-out');
  const status = $('sparql-status');
  const t0 = performance.now();
  try {
    const r = await demo.engine.query($('sparql-input').value, 1000);
    const ms = (performance.now() - t0).toFixed(0);
    if (r.tag === 'solutions') {
      const { variables, rows, truncated } = r.val;
      out.replaceChildren(el('tr', {}, ...variables.map((v) => el('th', { textContent: `?${v}` }))), ...rows.map((row) => el('tr', {}, ...row.map(termCell))));
      status.textContent = `${rows.length} rows${truncated ? ' (truncated)' : ''} in ${ms} ms`;
    } else if (r.tag === 'triples') {
      out.replaceChildren(el('tr', {}, ...['subject', 'predicate', 'object'].map((v) => el('th', { textContent: v }))), ...r.val.map((t) => el('tr', {}, termCell(t.subject), termCell(t.predicate), termCell(t.object))));
      status.textContent = `${r.val.length} triples in ${ms} ms`;
    } else if (r.tag === 'boolean') {
      out.replaceChildren();
      status.textContent = `${r.val ? 'yes' : 'no'} (${ms} ms)`;
    } else {
      out.replaceChildren();
      status.textContent = `updated: ${r.val.changed} triples changed, ${r.val.total} in the graph (${ms} ms)`;
    }
  } catch (e) {
    out.replaceChildren();
    status.textContent = `${e.code ?? 'error'}: ${e.message}`;
  }
}

function fmtBytes(n) {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB'];
  let i = -1;
  do {
    n /= 1024;
    i++;
  } while (n >= 1024 && i < units.length - 1);
  return `${n.toFixed(n < 10 ? 2 : 1)} ${units[i]}`;
}
