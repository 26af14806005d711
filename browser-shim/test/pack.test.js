// The installable package, as a user gets it: `npm pack`, then in an empty folder outside the
// repository `npm install <the tarball>` and the README's quickstart script, taken verbatim from
// README.md; and `tsc` over examples/typecheck.ts against the installed package's types.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { modelsDir, pkgRoot, requireModels } from './helpers.js';

/** The README's quickstart: the ```js block that starts with `// node quickstart.mjs`. */
const QUICKSTART = /```js\n(\/\/ node quickstart\.mjs[^\n]*\n[\s\S]*?)```/;

/** What a user's shell passes on: no LLMKG_* or cargo variables that could point back here. */
const USER_ENV = { PATH: process.env.PATH, HOME: process.env.HOME };

function npm(args, cwd) {
  return execFileSync('npm', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 300_000 });
}

test('the packed tarball installs into an empty folder, runs the README quickstart and type-checks', { timeout: 900_000 }, async (t) => {
  requireModels();
  const readme = readFileSync(join(pkgRoot, 'README.md'), 'utf8');
  const script = readme.match(QUICKSTART)?.[1];
  assert.ok(script, 'README.md has the quickstart block (```js starting with `// node quickstart.mjs`)');
  assert.equal(script, readFileSync(join(pkgRoot, 'examples', 'quickstart.mjs'), 'utf8'), 'the README block is examples/quickstart.mjs');
  assert.ok(script.trimEnd().split('\n').length <= 10, 'the quickstart is at most 10 lines');

  const tmp = mkdtempSync(join(tmpdir(), 'llmkg-pack-'));
  t.after(() => rmSync(tmp, { recursive: true, force: true }));

  // `prepack` (scripts/build.js --package) has nothing to do when dist/ is current.
  const [packed] = JSON.parse(npm(['pack', '--json', '--pack-destination', tmp], pkgRoot));
  const files = packed.files.map((f) => f.path);
  console.log(`${packed.filename}: ${packed.size} bytes (${(packed.size / 2 ** 20).toFixed(2)} MiB), ` +
    `${packed.unpackedSize} unpacked (${(packed.unpackedSize / 2 ** 20).toFixed(2)} MiB), ${packed.entryCount} files`);
  for (const f of ['src/index.js', 'src/index.d.ts', 'src/models.js', 'src/fetch.js', 'dist/models.js',
    'dist/node/llmkg.js', 'dist/node/modules.js', 'dist/web/llmkg.js', 'dist/web/llmkg.core.wasm',
    'dist/web/shim/cli.js', 'dist/app-node/llmkg-app.js', 'dist/types/interfaces/llmkg-engine-types.d.ts']) {
    assert.ok(files.includes(f), `the tarball holds ${f}`);
  }
  const extra = files.filter((f) => /^(test|bench|demo|scripts|node_modules)\/|\.(gguf|safetensors)$|^dist\/component\.json$|^tsconfig/.test(f));
  assert.deepEqual(extra, [], 'no tests, benches, demo, build scripts or models in the tarball');

  // An empty folder, outside the repository: npm install of the tarball is all there is.
  const app = join(tmp, 'app');
  mkdirSync(app);
  npm(['install', '--prefer-offline', '--no-audit', '--no-fund', join(tmp, packed.filename)], app);
  const installed = readdirSync(join(app, 'node_modules', '@bytecodealliance'));
  assert.ok(installed.includes('preview2-shim') && !installed.includes('jco'), `the one dependency (and its own), no build tools: ${installed}`);

  writeFileSync(join(app, 'quickstart.mjs'), script);
  const run = spawnSync(process.execPath, ['quickstart.mjs', modelsDir], { cwd: app, env: USER_ENV, encoding: 'utf8', timeout: 300_000 });
  assert.equal(run.status, 0, `quickstart.mjs failed (${run.signal ?? run.status}):\n${run.stderr}`);
  console.log(run.stdout.trim());
  const [answer, ...rest] = run.stdout.trim().split('\ncosine ');
  assert.match(answer, /Paris/);
  assert.equal(rest.length, 1, `one cosine line in ${JSON.stringify(run.stdout)}`);
  const cosine = Number(rest[0]);
  assert.ok(cosine > 0.5 && cosine <= 1, `cosine ${rest[0]} in (0.5, 1]`);

  // The installed types: the example, as an application's own ES module, with the repository's
  // pinned TypeScript.
  copyFileSync(join(pkgRoot, 'examples', 'typecheck.ts'), join(app, 'typecheck.mts'));
  const tsconfig = JSON.parse(readFileSync(join(pkgRoot, 'tsconfig.json'), 'utf8'));
  writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({ compilerOptions: tsconfig.compilerOptions, files: ['typecheck.mts'] }));
  const tsc = spawnSync(process.execPath, [join(pkgRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: app, env: USER_ENV, encoding: 'utf8', timeout: 120_000 });
  assert.equal(tsc.status, 0, `tsc over the installed package's types failed:\n${tsc.stdout}${tsc.stderr}`);
});
