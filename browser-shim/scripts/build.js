#!/usr/bin/env node
// Transpiles the workspace's own component (no second guest build) with jco, twice:
//   dist/node/  for Node (WASI imports come from @bytecodealliance/preview2-shim at run time)
//   dist/web/   for browsers (--no-nodejs-compat, WASI imports mapped to ./shim/*.js, which are
//               the preview2-shim browser files copied beside it; works in module workers)
// the same component built without SIMD128 (scripts/build, $LLMKG_COMPONENT_NOSIMD) the same
// two ways, for runtimes that do not validate SIMD:
//   dist/node-nosimd/, dist/web-nosimd/
// and the composed HTTP component (front + engine, `llmkg compose`) once more:
//   dist/app-node/  for src/fetch.js, the fetch handler for Deno, Bun and Node
// Both are `--instantiation async`: src/platform-*.js compile the core modules themselves
// (streaming, with progress, off the main thread) and pass the imports in.
// Skips the work when dist/ already holds a transpile of the same component bytes.
// Then, from the repository's own files (no component needed), every time:
//   dist/types/     TypeScript declarations of the WIT world (`jco types` on ../wit), which
//                   src/index.d.ts reuses for the WIT-shaped records
//   dist/models.js  the model catalog, ../data/models.json, as an ES module (src/models.js)
// `--package` (npm's prepack) also requires dist/app-node, so a packed tarball is complete.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync, rmSync, mkdirSync, readdirSync, copyFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const pkgRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const repoRoot = resolve(pkgRoot, '..');
const dist = join(pkgRoot, 'dist');
const require = createRequire(import.meta.url);
const RELATIVE = join('wasm32-wasip2', 'component', 'llmkg_component.wasm');
const WIT_DIR = join(repoRoot, 'wit');
const CATALOG = join(repoRoot, 'data', 'models.json');

/** The component the Wasmtime host runs: $LLMKG_COMPONENT, else under $CARGO_TARGET_DIR,
 *  else the workspace's target/, else the shared cache target dir that .ci/run uses. */
export function locateComponent(env = process.env) {
  const candidates = [];
  if (env.LLMKG_COMPONENT) candidates.push(['$LLMKG_COMPONENT', resolve(env.LLMKG_COMPONENT)]);
  if (env.CARGO_TARGET_DIR) candidates.push(['$CARGO_TARGET_DIR', resolve(env.CARGO_TARGET_DIR, RELATIVE)]);
  candidates.push(['../target', join(repoRoot, 'target', RELATIVE)]);
  candidates.push(['~/.cache/llmkg/target', join(homedir(), '.cache', 'llmkg', 'target', RELATIVE)]);
  // An explicitly given $LLMKG_COMPONENT that does not exist is an error, not a reason to guess.
  if (env.LLMKG_COMPONENT && !existsSync(candidates[0][1])) {
    throw new Error(`$LLMKG_COMPONENT is ${env.LLMKG_COMPONENT}, which does not exist; build it with scripts/build (repo root)`);
  }
  for (const [, path] of candidates) if (existsSync(path)) return path;
  throw new Error(
    'llmkg_component.wasm not found; looked at\n' +
      candidates.map(([how, p]) => `  ${p}  (${how})`).join('\n') +
      '\nBuild it with scripts/build at the repository root, or set LLMKG_COMPONENT to its path.',
  );
}

/** The component built without SIMD128 (scripts/build): $LLMKG_COMPONENT_NOSIMD, else in the
 *  target dir beside the SIMD build's (`<target>-nosimd`, as scripts/env.sh names it); null when
 *  it was not built (dist/ then has no *-nosimd transpile). */
export function locateNoSimdComponent(env = process.env) {
  if (env.LLMKG_COMPONENT_NOSIMD) {
    const p = resolve(env.LLMKG_COMPONENT_NOSIMD);
    if (!existsSync(p)) throw new Error(`$LLMKG_COMPONENT_NOSIMD is ${env.LLMKG_COMPONENT_NOSIMD}, which does not exist; build it with scripts/build (repo root)`);
    return p;
  }
  const dirs = [env.CARGO_TARGET_DIR && `${resolve(env.CARGO_TARGET_DIR)}-nosimd`, join(repoRoot, 'target-nosimd'), join(homedir(), '.cache', 'llmkg', 'target-nosimd')];
  return dirs.filter(Boolean).map((d) => join(d, RELATIVE)).find((p) => existsSync(p)) ?? null;
}

const WASI_PACKAGES = ['cli', 'clocks', 'io', 'random', 'filesystem'];

/** The directory of an installed package (some do not export ./package.json). */
function packageDir(name) {
  let dir = dirname(require.resolve(name));
  while (!existsSync(join(dir, 'package.json')) || JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).name !== name) {
    const up = dirname(dir);
    if (up === dir) throw new Error(`cannot find the package directory of ${name}`);
    dir = up;
  }
  return dir;
}
const packageVersion = (name) => JSON.parse(readFileSync(join(packageDir(name), 'package.json'), 'utf8')).version;

function jco(args) {
  const bin = join(packageDir('@bytecodealliance/jco'), 'dist', 'jco.js');
  const r = spawnSync(process.execPath, [bin, ...args], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) throw new Error(`jco ${args.join(' ')} failed (exit ${r.status})`);
}

/** The `llmkg` CLI (for `llmkg compose`): $LLMKG_BIN, else next to the component's target dir. */
function locateCli(component, env = process.env) {
  const candidates = [env.LLMKG_BIN, join(dirname(dirname(dirname(component))), 'release', 'llmkg')].filter(Boolean);
  return candidates.find((p) => existsSync(p));
}

/** Composes the HTTP front with the engine into dist/app.wasm; null when either is missing. */
function composeApp(component) {
  const front = process.env.LLMKG_FRONT ?? join(dirname(component), 'llmkg_http.wasm');
  const cli = locateCli(component);
  if (!existsSync(front) || !cli) {
    console.error(`not building dist/app-node (the fetch handler): ${!existsSync(front) ? `no ${front}` : 'no llmkg CLI'}; run scripts/build`);
    return null;
  }
  mkdirSync(dist, { recursive: true });
  const out = join(dist, 'app.wasm');
  const r = spawnSync(cli, ['--quiet', '--component', component, 'compose', '--front', front, '-o', out], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0) throw new Error(`llmkg compose failed (exit ${r.status})`);
  return { front, out };
}

/** Transpiles one engine component into dist/node<suffix> and dist/web<suffix>. */
function transpileEngine(component, suffix) {
  // --strict: jco checks numbers against their WIT types (a negative u32 is an error, not 2^32-1).
  const common = ['transpile', component, '--name', 'llmkg', '--instantiation', 'async', '--strict', '--quiet'];

  jco([...common, '-o', join(dist, `node${suffix}`)]);

  const web = join(dist, `web${suffix}`);
  const maps = WASI_PACKAGES.flatMap((p) => ['--map', `wasi:${p}/*=./shim/${p}.js#*`]);
  jco([...common, '-o', web, '--no-nodejs-compat', ...maps]);
  const shimSrc = join(packageDir('@bytecodealliance/preview2-shim'), 'dist', 'browser');
  mkdirSync(join(web, 'shim'), { recursive: true });
  for (const f of readdirSync(shimSrc)) if (f.endsWith('.js')) copyFileSync(join(shimSrc, f), join(web, 'shim', f));
  return [`node${suffix}`, `web${suffix}`];
}

const sha256Of = (path) => (path && existsSync(path) ? createHash('sha256').update(readFileSync(path)).digest('hex') : null);

function transpile() {
  const component = locateComponent();
  const bytes = readFileSync(component);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const nosimd = locateNoSimdComponent();
  const nosimdSha = sha256Of(nosimd);
  const frontPath = process.env.LLMKG_FRONT ?? join(dirname(component), 'llmkg_http.wasm');
  const frontSha = sha256Of(frontPath);
  const jcoVersion = packageVersion('@bytecodealliance/jco');
  const shimVersion = packageVersion('@bytecodealliance/preview2-shim');
  const stampPath = join(dist, 'component.json');
  const stamp = { component, sha256, nosimd, nosimdSha, frontSha, bytes: bytes.length, jco: jcoVersion, preview2Shim: shimVersion };
  if (existsSync(stampPath) && !process.argv.includes('--force')) {
    const old = JSON.parse(readFileSync(stampPath, 'utf8'));
    if (old.sha256 === sha256 && old.nosimdSha === nosimdSha && old.frontSha === frontSha && old.jco === jcoVersion && old.preview2Shim === shimVersion) {
      console.error(`dist/ is up to date with ${component} (sha256 ${sha256.slice(0, 12)})${nosimd ? ` and ${nosimd} (sha256 ${nosimdSha.slice(0, 12)})` : ''}`);
      return;
    }
  }
  console.error(`transpiling ${component} (${(bytes.length / 2 ** 20).toFixed(1)} MiB, sha256 ${sha256.slice(0, 12)})`);
  rmSync(dist, { recursive: true, force: true });
  const targets = transpileEngine(component, '');
  if (nosimd) {
    console.error(`transpiling the no-SIMD build ${nosimd} (sha256 ${nosimdSha.slice(0, 12)})`);
    targets.push(...transpileEngine(nosimd, '-nosimd'));
  } else {
    console.error('not building dist/*-nosimd (the fallback without SIMD128): no no-SIMD component; run scripts/build or set LLMKG_COMPONENT_NOSIMD');
  }

  const app = composeApp(component);
  if (app) {
    jco(['transpile', app.out, '--name', 'llmkg-app', '--instantiation', 'async', '--strict', '--quiet', '-o', join(dist, 'app-node')]);
    rmSync(app.out);
    targets.push('app-node');
  }

  // The core modules jco emitted (llmkg.core.wasm, llmkg.core2.wasm, ...) and their sizes, so
  // src/platform-*.js can compile them all up front (and report download progress) without
  // listing a directory, which a browser cannot do. A build's core module comes out
  // byte-identical in every transpile of it (and the engine's inside the composed app): the web
  // targets keep theirs, and the other targets' `files` point there, so the package holds one
  // copy of each build, not three.
  const webCores = new Map(); // sha256 -> path of the kept copy, relative to dist/
  const webTargets = targets.filter((t) => t.startsWith('web'));
  for (const target of [...webTargets, ...targets.filter((t) => !t.startsWith('web'))]) {
    const dir = join(dist, target);
    const modules = readdirSync(dir).filter((f) => /^llmkg(-app)?\.core\d*\.wasm$/.test(f)).sort();
    const sizes = Object.fromEntries(modules.map((f) => [f, statSync(join(dir, f)).size]));
    const files = {};
    for (const f of modules) {
      const hash = createHash('sha256').update(readFileSync(join(dir, f))).digest('hex');
      const kept = webCores.get(hash);
      if (kept && !webTargets.includes(target)) {
        rmSync(join(dir, f));
        files[f] = `../${kept}`;
      } else {
        if (!kept) webCores.set(hash, `${target}/${f}`);
        files[f] = f;
      }
    }
    writeFileSync(join(dir, 'modules.js'), `// Generated by scripts/build.js.\nexport default ${JSON.stringify(modules)};\nexport const sizes = ${JSON.stringify(sizes)};\n// Where each module's bytes are, relative to this directory.\nexport const files = ${JSON.stringify(files)};\n`);
  }
  stamp.transpiledAt = new Date().toISOString();
  stamp.coreWasmBytes = statSync(join(dist, 'web', 'llmkg.core.wasm')).size;
  writeFileSync(stampPath, JSON.stringify(stamp, null, 2) + '\n');
  console.error(`wrote dist/${targets.join(', dist/')} (core wasm ${(stamp.coreWasmBytes / 2 ** 20).toFixed(2)} MiB)`);
}

/** dist/types/: `jco types` of the world `engine` in ../wit (the records the API hands out). */
async function writeWitTypes() {
  // jco's type generator is itself a component that reads the WIT through WASI; preview2-shim
  // 0.26 gives a component no host directories unless told, so open the wit/ directory to it.
  const { _setPreopens } = await import('@bytecodealliance/preview2-shim/filesystem');
  const { types } = await import('@bytecodealliance/jco');
  _setPreopens({ [WIT_DIR]: WIT_DIR });
  const out = join(dist, 'types');
  const files = await types(WIT_DIR, { name: 'llmkg', worldName: 'engine', instantiation: 'async', outDir: out + sep });
  rmSync(out, { recursive: true, force: true });
  for (const [path, bytes] of Object.entries(files)) {
    mkdirSync(dirname(path), { recursive: true });
    // jco 1.35 declares the functions renamed from WIT keywords (`%import` -> `_import`, then
    // `export { _import as import }`) without `declare`, which tsc rejects in a .d.ts (TS1046).
    writeFileSync(path, new TextDecoder().decode(bytes).replace(/^function /gm, 'declare function '));
  }
}

/** dist/models.js: the model catalog as an ES module (browsers and Node import it alike). */
function writeCatalog() {
  const catalog = JSON.parse(readFileSync(CATALOG, 'utf8'));
  mkdirSync(dist, { recursive: true });
  writeFileSync(join(dist, 'models.js'), `// Generated by scripts/build.js from data/models.json (the model catalog).\nexport default ${JSON.stringify(catalog, null, 2)};\n`);
}

async function build() {
  transpile();
  if (process.argv.includes('--package') && !existsSync(join(dist, 'app-node', 'llmkg-app.js'))) {
    throw new Error('a package needs dist/app-node (the fetch handler, llmkg/fetch): build the llmkg CLI and the HTTP front with scripts/build, then run this again with --force');
  }
  await writeWitTypes();
  writeCatalog();
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    await build();
  } catch (e) {
    console.error(`build: ${e.message}`);
    process.exit(1);
  }
}
