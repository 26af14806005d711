#!/usr/bin/env node
// Size of the web core wasm: raw and `gzip -9`, its sections, and (when it has a name section)
// code bytes per crate, from mangled Rust function names. Usage: node scripts/size.js [file.wasm]
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';

const file = process.argv[2] ?? join(import.meta.dirname, '..', 'dist', 'web', 'llmkg.core.wasm');
const buf = readFileSync(file);
const LIMIT = 2.5e6;
const gz = gzipSync(buf, { level: 9 }).length;
const mb = (n) => `${(n / 1e6).toFixed(2)} MB`;
console.log(`${file}\n  raw ${mb(buf.length)} (${buf.length} bytes), gzip -9 (zlib) ${mb(gz)} (${gz} bytes); limit ${mb(LIMIT)}: ${gz <= LIMIT ? 'within' : `over by ${mb(gz - LIMIT)}`}`);

let pos = 8;
const leb = () => {
  let r = 0, shift = 0, b;
  do { b = buf[pos++]; r += (b & 0x7f) * 2 ** shift; shift += 7; } while (b & 0x80);
  return r;
};
const str = () => { const n = leb(); const s = buf.toString('utf8', pos, pos + n); pos += n; return s; };
const NAMES = ['custom', 'type', 'import', 'function', 'table', 'memory', 'global', 'export', 'start', 'element', 'code', 'data', 'data count'];
const sections = [];
let imports = 0, code = null, names = null;
const sectionStarts = [];
while (pos < buf.length) {
  const headerStart = pos;
  const id = buf[pos++];
  const size = leb();
  const start = pos;
  let name = NAMES[id] ?? `#${id}`;
  if (id === 0) { name = `custom "${str()}"`; if (name === 'custom "name"') names = [pos, start + size]; }
  if (id === 2) { const n = leb(); for (let i = 0; i < n; i++) { str(); str(); const kind = buf[pos++]; if (kind === 0) { leb(); imports++; } else if (kind === 1) { pos++; const f = leb(); leb(); if (f & 1) leb(); } else if (kind === 2) { const f = leb(); leb(); if (f & 1) leb(); } else if (kind === 3) { pos += 2; } } }
  if (id === 10) code = [start, start + size];
  sections.push([name, size]);
  sectionStarts.push([name, headerStart, start + size]);
  pos = start + size;
}
if (names) {
  // What leaving out the name section (function names for stack traces) would give.
  const at = sectionStarts.find(([n]) => n === 'custom "name"');
  const without = Buffer.concat([buf.subarray(0, at[1]), buf.subarray(at[2])]);
  console.log(`  without the name section: raw ${mb(without.length)}, gzip -9 ${mb(gzipSync(without, { level: 9 }).length)}`);
}
for (const [n, s] of sections.sort((a, b) => b[1] - a[1])) if (s > 1000) console.log(`  ${n.padEnd(28)} ${mb(s)}`);

if (code && names) {
  pos = names[0];
  const fnNames = new Map();
  while (pos < names[1]) {
    const sub = buf[pos++]; const size = leb(); const end = pos + size;
    if (sub === 1) { const n = leb(); for (let i = 0; i < n; i++) { const idx = leb(); fnNames.set(idx, str()); } }
    pos = end;
  }
  pos = code[0];
  const count = leb();
  const byCrate = new Map();
  for (let i = 0; i < count; i++) {
    const size = leb();
    const nm = fnNames.get(imports + i) ?? '?';
    const crate = crateOf(nm);
    byCrate.set(crate, (byCrate.get(crate) ?? 0) + size);
    pos += size;
  }
  console.log('  code by crate (from the name section):');
  for (const [c, s] of [...byCrate].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(`    ${c.padEnd(26)} ${mb(s)}`);
} else if (code) {
  console.log('  (no name section: code cannot be attributed to crates)');
}

/** The crate of a legacy-mangled Rust symbol (_ZN<len><ident>...), or of an `<impl>` path. */
function crateOf(nm) {
  let m = nm.match(/^_ZN(\d+)/);
  if (!m) return nm.match(/^<?([A-Za-z_][A-Za-z0-9_]*)::/)?.[1] ?? nm.split(/[:<( ]/)[0] ?? '?';
  let first = nm.substr(3 + m[1].length, Number(m[1]));
  // `_$LT$Type$u20$as$u20$Trait$GT$`: the crate of the type.
  if (first.startsWith('_$LT$')) first = first.slice(5).replace(/^\$RF\$|^\$BP\$/, '');
  return first.split(/\.\.|\$/)[0] || '?';
}
