#!/usr/bin/env node
'use strict';
// The package as users get it: `npm pack`, then a fresh project outside this checkout installs the
// tarball (its install script builds the addon from the packed sources) and uses it the way the
// README says: require('u2pl').info(), the README's API example type-checked by tsc (node16 and
// bundler resolution), npx u2pl-train --help, u2pl-data check on a generated dataset, a 3-step
// u2pl-train run, u2pl-eval and u2pl-infer on its checkpoint, u2pl-report on its folder, and the
// CLI's error contract (one line, exit 2, no stack). Also checks that every command and flag the README names exists.
//   node scripts/check-package.js [--keep]     (--keep leaves the temporary project in place)
// Needs the npm registry for the consumer's typescript; reuses ccache when present.
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');

const root = path.resolve(__dirname, '..');
const keep = process.argv.includes('--keep');
const started = Date.now();

function log(message) {
  process.stdout.write(`check-package: ${message}\n`);
}

function fail(message) {
  process.stderr.write(`check-package: FAILED: ${message}\n`);
  process.exit(1);
}

// Runs a command; returns { status, stdout, stderr }. `expect` (default 0) is the exit code wanted.
function run(command, args, { cwd, env, expect = 0, quiet = false } = {}) {
  const t0 = Date.now();
  const r = spawnSync(command, args, { cwd, env: env ?? process.env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const shown = `${command} ${args.join(' ')}`;
  if (r.error) fail(`${shown}: ${r.error.message}`);
  if (expect !== null && r.status !== expect) {
    fail(`${shown} (in ${cwd}) exited with ${r.status}, expected ${expect}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
  }
  if (!quiet) log(`ok (${((Date.now() - t0) / 1000).toFixed(1)} s): ${shown}`);
  return r;
}

const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');

// ---- 1. The tarball --------------------------------------------------------------------------
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'u2pl-consumer-'));
const pack = run('npm', ['pack', '--json', '--pack-destination', work], { cwd: root });
const packed = JSON.parse(pack.stdout)[0];
const tarball = path.join(work, packed.filename);
const files = packed.files.map((f) => f.path);
log(`${packed.filename}: ${(packed.size / 1024).toFixed(0)} KiB packed, ${(packed.unpackedSize / 1024).toFixed(0)} KiB unpacked, ${files.length} files`);
const forbidden = files.filter((f) => /^(test|build|dist-bench|node_modules)\//.test(f) || /(^|\/)checkpoints?\//.test(f) ||
  /^experiments\/.*\/data\//.test(f) || /\.(pth|pt|png|jpe?g|npy|node|o|a|tgz)$/i.test(f));
if (forbidden.length) fail(`the tarball holds test fixtures, checkpoints, data or build output: ${forbidden.slice(0, 10).join(', ')}`);
for (const needed of ['package.json', 'dist/index.js', 'dist/index.d.ts', 'dist/cli/train.js', 'CMakeLists.txt', 'binding.gyp', 'scripts/setup.js', 'scripts/find-libtorch.js', 'native/addon/module.cc']) {
  if (!files.includes(needed)) fail(`the tarball lacks ${needed}`);
}

// ---- 2. A fresh project installs it -----------------------------------------------------------
const project = path.join(work, 'project');
fs.mkdirSync(project);
fs.writeFileSync(path.join(project, 'package.json'), `${JSON.stringify({ name: 'u2pl-consumer', version: '1.0.0', private: true }, null, 2)}\n`);
// npm 11 runs a dependency's install script only when the project allows it: the README's command.
const allow = /^npm pkg set allowScripts\.u2pl=true --json/m.exec(readme);
if (!allow) fail("README.md no longer gives 'npm pkg set allowScripts.u2pl=true --json'");
run('npm', ['pkg', 'set', 'allowScripts.u2pl=true', '--json'], { cwd: project });
// setup.js points ccache at the package folder, so the checkout's compiled objects are reused.
const pkgDir = path.join(project, 'node_modules', 'u2pl');
const installEnv = { ...process.env };
delete installEnv.CCACHE_BASEDIR;  // (CI sets it to the checkout)
run('npm', ['install', '--no-audit', '--no-fund', tarball, 'typescript@5.9.3', '@types/node@20.19.0'], { cwd: project, env: installEnv });
if (!fs.existsSync(path.join(pkgDir, 'build', 'Release', 'u2pl.node'))) fail('the install did not build node_modules/u2pl/build/Release/u2pl.node');

const node = (code) => run(process.execPath, ['-e', code], { cwd: project });
const i = JSON.parse(node("process.stdout.write(JSON.stringify(require('u2pl').info()))").stdout);
log(`require('u2pl').info(): u2pl ${i.addonVersion}, LibTorch ${i.libtorchVersion} from ${i.libtorch.library} (${i.libtorch.source}), ${i.threads} threads`);
if (!i.libtorch || !fs.existsSync(i.libtorch.library)) fail('info().libtorch.library does not name a file');
node("const u=require('u2pl'); for (const k of ['train','evaluate','loadConfig','loadModel','predict','info','setThreads','Model','losses']) if (!u[k]) throw new Error('missing export '+k)");
node("import('u2pl').then((u) => { if (typeof u.train !== 'function' || typeof u.info !== 'function') throw new Error('ESM import lacks named exports'); })");

// ---- 3. The README's API example compiles unchanged (TypeScript, node16 and bundler) -------------
const api = /## API\s+```ts\n([\s\S]*?)```/.exec(readme);
if (!api) fail('README.md has no ```ts block under "## API"');
fs.writeFileSync(path.join(project, 'example.mts'), api[1]);
fs.writeFileSync(path.join(project, 'example-bundler.ts'), api[1]);
const base = { strict: true, noEmit: true, skipLibCheck: false, target: 'ES2022', types: ['node'] };
fs.writeFileSync(path.join(project, 'tsconfig.node16.json'), JSON.stringify({ compilerOptions: { ...base, module: 'node16', moduleResolution: 'node16' }, files: ['example.mts'] }));
fs.writeFileSync(path.join(project, 'tsconfig.bundler.json'), JSON.stringify({ compilerOptions: { ...base, module: 'esnext', moduleResolution: 'bundler' }, files: ['example-bundler.ts'] }));
const tsc = path.join(project, 'node_modules', 'typescript', 'bin', 'tsc');
run(process.execPath, [tsc, '-p', 'tsconfig.node16.json'], { cwd: project });
run(process.execPath, [tsc, '-p', 'tsconfig.bundler.json'], { cwd: project });

// ---- 4. The commands ---------------------------------------------------------------------------
const npx = (args, options = {}) => run('npx', ['--no-install', ...args], { cwd: project, ...options });
const help = npx(['u2pl-train', '--help']).stdout;
if (!/--max-steps/.test(help)) fail(`u2pl-train --help does not describe its flags:\n${help}`);

// Every command the README names is a bin of the installed package or an npm script of u2pl, and
// every flag in the README's command table is in that command's --help.
const bins = Object.keys(JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8')).bin);
// Commands appear in backticks or after npx ("u2pl-method" the spec's name, is prose).
const named = [...new Set([...readme.matchAll(/(?:`|npx )(u2pl-[a-z]+)/g)].map((m) => m[1]))];
for (const n of named) if (!bins.includes(n)) fail(`README.md names ${n}, which the package does not install (bins: ${bins.join(', ')})`);
const scripts = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).scripts;
for (const [, s] of readme.matchAll(/npm run ([a-z:-]+)/g)) if (!scripts[s]) fail(`README.md names 'npm run ${s}', which package.json does not define`);
const table = /## Command line\n([\s\S]*?)\n\n/.exec(readme);
if (!table) fail('README.md has no "## Command line" table');
for (const row of table[1].split('\n').filter((l) => l.startsWith('| `u2pl-'))) {
  const words = /^\| `([^`]+)`/.exec(row)[1].split(/\s+/);
  const command = words[0] === 'u2pl-data' ? [words[0], words[1]] : [words[0]];
  const text = npx([...command, '--help'], { quiet: true }).stdout;
  for (const [flag] of row.matchAll(/--[a-z][a-z-]*/g)) if (!text.includes(flag)) fail(`README.md gives ${command.join(' ')} ${flag}, which its --help does not list`);
}
log(`README.md: ${named.length} commands and the command table's flags exist`);

// A tiny generated experiment: procedural data, ResNet-18, one epoch of 3 steps.
const exp = path.join(project, 'exp');
fs.mkdirSync(exp);
const config = `seed: 1
dataset:
  type: folder_semi
  procedural: { seed: 1, train: 12, labeled: 4, val: 3, size: 40 }
  label_dir: labels
  train: { data_root: data, data_list: data/splits/4/labeled.txt, flip: true, crop: { type: rand, size: [32, 32] } }
  val: { data_root: data, data_list: data/val.txt }
  batch_size: 2
trainer:
  epochs: 1
  steps_per_epoch: 3
  sup_only_epoch: 0
  optimizer: { type: SGD, kwargs: { lr: 0.01, momentum: 0.9, weight_decay: 0.0001 } }
  unsupervised: { drop_percent: 80, apply_aug: cutmix }
  contrastive: { low_rank: 1, high_rank: 3, num_queries: 8, num_negatives: 4, loss_weight: 0.1, queue_size: [100, 100, 100, 100] }
saver: { snapshot_dir: checkpoints }
net:
  num_classes: 4
  encoder: { type: resnet18, kwargs: { deep_stem: false, replace_stride_with_dilation: [false, false, true] } }
  decoder: { type: dec_deeplabv3_plus, kwargs: { inner_planes: 16, head_planes: 16, dilations: [1, 2, 3] } }
`;
fs.writeFileSync(path.join(exp, 'config.yaml'), config);
const check = npx(['u2pl-data', 'check', 'exp']).stdout;
if (!/no problems found/.test(check)) fail(`u2pl-data check found problems:\n${check}`);
const trained = npx(['u2pl-train', 'exp', '--quiet']);
const steps = fs.readFileSync(path.join(exp, 'checkpoints', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((r) => r.type === 'step');
if (steps.length !== 3 || !fs.existsSync(path.join(exp, 'checkpoints', 'ckpt.pth'))) fail(`u2pl-train did not run 3 steps and save a checkpoint:\n${trained.stderr}`);
log(`u2pl-train: ${trained.stdout.trim()}`);
const evaluated = npx(['u2pl-eval', 'exp']).stdout;
if (!/mIoU/.test(evaluated)) fail(`u2pl-eval printed no mIoU:\n${evaluated}`);
npx(['u2pl-infer', '--config', 'exp/config.yaml', '--out', 'masks', 'exp/data/images']);
if (!fs.readdirSync(path.join(project, 'masks')).some((f) => f.endsWith('_overlay.png'))) fail('u2pl-infer wrote no masks');
if (!fs.existsSync(path.join(exp, 'checkpoints', 'report.html'))) fail('u2pl-train wrote no report.html');
npx(['u2pl-report', 'exp', '--out', 'compare.html']);
if (!/<svg/.test(fs.readFileSync(path.join(project, 'compare.html'), 'utf8'))) fail('u2pl-report wrote no comparison with charts');

// ---- 5. Errors: one line naming the problem, exit 2, no yargs help, no stack ------------------------
function expectInputError(args, pattern) {
  const r = npx(args, { expect: 2, quiet: true });
  const lines = r.stderr.trim().split('\n');
  if (lines.length !== 1 || !pattern.test(lines[0]) || /^\s+at /m.test(r.stderr) || /Options:/.test(r.stderr + r.stdout)) {
    fail(`${args.join(' ')}: expected one line matching ${pattern} and exit 2, got:\n${r.stderr}${r.stdout}`);
  }
  log(`ok: ${args.join(' ')} -> ${lines[0]}`);
}
fs.mkdirSync(path.join(project, 'bad'));
fs.writeFileSync(path.join(project, 'bad', 'config.yaml'), config.replace('num_classes: 4', 'num_classes: four'));
expectInputError(['u2pl-data', 'check', 'bad'], /net\.num_classes: expected an integer, got the string 'four'/);
expectInputError(['u2pl-train', 'exp', '--threads', 'abc'], /--threads: expected an integer >= 1, got 'abc'/);
expectInputError(['u2pl-train', 'exp', '--bogus-flag'], /Unknown argument: bogus-flag/);
expectInputError(['u2pl-train', 'missing-folder'], /missing-folder: no such file or folder/);
expectInputError(['u2pl-eval', 'exp', '--checkpoint', 'nope.pth'], /nope\.pth: --checkpoint: no such file/);
expectInputError(['u2pl-report', 'bad'], /bad.*metrics\.jsonl/);

if (!keep) fs.rmSync(work, { recursive: true, force: true });
else log(`kept ${work}`);
log(`passed in ${((Date.now() - started) / 1000).toFixed(0)} s`);
