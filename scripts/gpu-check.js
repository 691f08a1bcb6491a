#!/usr/bin/env node
'use strict';
// The parts of the GPU check, run by scripts/gpu-check.sh on the bundle's Node.js from the unpacked
// package (this script's parent folder). Each part is timed and logged to OUT/<part>.log; one that
// fails is reported and the next runs (a part that needs the addon is skipped when the build failed).
//   build        CMake build of the addon and the C++ tests against $PYTHON's torch; info() shows
//                CUDA, cuDNN and cudaKernels: true
//   kernels      the C++ tests (CTest): loss kernels against their references, CUDA against CPU
//   distributed  u2pl-train --nproc 1 with runtime.dist_backend nccl (gloo with --cpu-only): one rank
//                drives every collective of training and validation
//   resume       N steps against N/2 + resume + N/2 (GPU: 100 under bf16 autocast), compared value by value
//   bench        the step bench: our U2PL step against the reference's PyTorch step
//   node scripts/gpu-check.js --out DIR --work DIR [--cpu-only] [--only PARTS] [--jobs N] [--budget S]
//                             [--bench-args "ARGS"]
// OUT/summary.json and summary.txt are rewritten after every part, so a check cut off by its caller
// still leaves what it found.
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawn, spawnSync } = require('child_process');

const PARTS = ['build', 'kernels', 'distributed', 'resume', 'bench'];
const pkg = path.resolve(__dirname, '..');
const python = process.env.PYTHON || 'python3';

function parseArgs(argv) {
  const a = { out: null, work: null, cpuOnly: false, only: PARTS, jobs: os.availableParallelism(), budget: 480, benchArgs: null };
  for (let i = 0; i < argv.length; i++) {
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${argv[i]} needs a value`);
      return argv[++i];
    };
    switch (argv[i]) {
      case '--out': a.out = path.resolve(value()); break;
      case '--work': a.work = path.resolve(value()); break;
      case '--cpu-only': a.cpuOnly = true; break;
      case '--only': a.only = value().split(','); break;
      case '--jobs': a.jobs = Number(value()); break;
      case '--budget': a.budget = Number(value()); break;
      case '--bench-args': a.benchArgs = value().split(/\s+/).filter(Boolean); break;
      default: throw new Error(`unknown argument '${argv[i]}'`);
    }
  }
  const unknown = a.only.filter((p) => !PARTS.includes(p));
  if (unknown.length) throw new Error(`--only: unknown part ${unknown.join(', ')} (parts: ${PARTS.join(', ')})`);
  if (!(a.jobs >= 1) || !(a.budget > 0)) throw new Error('--jobs and --budget must be positive numbers');
  if (!a.out || !a.work) throw new Error('--out and --work are required (scripts/gpu-check.sh passes them)');
  return a;
}

let args;
try {
  args = parseArgs(process.argv.slice(2));
} catch (e) {
  process.stderr.write(`gpu-check: ${e.message}\n`);
  process.exit(2);
}
const gpu = !args.cpuOnly;
const started = Date.now();
const deadline = started + args.budget * 1000;
const build = path.join(pkg, 'build');
fs.mkdirSync(args.out, { recursive: true });

function say(message) {
  process.stdout.write(`gpu-check: ${message}\n`);
}

function secondsLeft() {
  return Math.max(0, Math.round((deadline - Date.now()) / 1000));
}

// Runs a command with its output appended to `log`; kills its whole process group after timeoutS.
function run(command, argv, { log, env = process.env, cwd = pkg, timeoutS }) {
  return new Promise((resolve) => {
    const fd = fs.openSync(log, 'a');
    fs.writeSync(fd, `\n$ ${command} ${argv.join(' ')}\n`);
    const t0 = Date.now();
    const child = spawn(command, argv, { cwd, env, stdio: ['ignore', fd, fd], detached: true });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ }
    }, Math.max(1, timeoutS) * 1000);
    const done = (status, error) => {
      clearTimeout(timer);
      fs.closeSync(fd);
      resolve({ status, timedOut, error, seconds: (Date.now() - t0) / 1000 });
    };
    child.on('error', (e) => done(null, e.message));
    child.on('exit', (code, signal) => done(code ?? (signal ? 128 : 1), null));
  });
}

/** Throws with the command, its status and the end of its log when it did not exit 0. */
async function must(command, argv, options) {
  const r = await run(command, argv, options);
  if (r.status === 0) return r;
  const tail = fs.readFileSync(options.log, 'utf8').trim().split('\n').slice(-15).join('\n');
  const why = r.timedOut ? `ran past ${options.timeoutS} s` : r.error ? `could not start: ${r.error}` : `exited with ${r.status}`;
  throw new Error(`${path.basename(command)} ${argv.slice(0, 3).join(' ')} ${why}\n${tail}`);
}

function check(ok, message) {
  if (!ok) throw new Error(message);
}

// ---- The parts -----------------------------------------------------------------------------------
const state = { info: null, built: false, bench: [] };

async function partBuild(log) {
  const env = { ...process.env, PYTHON: python, CCACHE_BASEDIR: pkg };
  delete env.LIBTORCH;  // the machine's PyTorch, found through python (scripts/find-libtorch.js)
  delete env.Torch_DIR;
  const found = JSON.parse(spawnSync(process.execPath, [path.join(pkg, 'scripts/find-libtorch.js')], { env, encoding: 'utf8' }).stdout || 'null');
  check(found, `no LibTorch found through ${python} or the system (node scripts/find-libtorch.js)`);
  if (gpu) check(found.cuda, `${python}'s torch (${found.cmakePrefix}) is not a CUDA build`);
  const defines = ['-DCMAKE_BUILD_TYPE=Release', '-DU2PL_NATIVE_TESTS=ON'];
  if (found.cuda) {
    // Only this machine's GPUs' architectures (none visible: the default list): a fraction of the compile time.
    const caps = spawnSync(python, ['-c', 'import torch\nprint(";".join(sorted({"%d%d" % torch.cuda.get_device_capability(i) for i in range(torch.cuda.device_count())})))'],
      { encoding: 'utf8' }).stdout.trim();
    if (caps) {
      defines.push(`-DCMAKE_CUDA_ARCHITECTURES=${caps}`);
      delete env.TORCH_CUDA_ARCH_LIST;  // container images set several; it would win over this GPU's
    }
  }
  const ninja = spawnSync('sh', ['-c', 'command -v ninja'], { stdio: 'ignore' }).status === 0;
  const timeoutS = Math.min(360, secondsLeft());
  await must('cmake', ['-S', pkg, '-B', build, ...(ninja ? ['-G', 'Ninja'] : []), ...defines], { log, env, timeoutS });
  // Keep going past a failing file: one call then shows every compile error, not the first.
  await must('cmake', ['--build', build, '-j', String(args.jobs), '--', ...(ninja ? ['-k', '0'] : ['-k'])],
    { log, env, timeoutS: Math.min(360, secondsLeft()) });
  const text = fs.readFileSync(log, 'utf8');
  const warnings = text.split('\n').filter((l) => /warning[: #]/.test(l) && !/^CMake Warning/.test(l)).length;
  // bin/ wrappers: the installed package's commands on the bundle's Node.js.
  const bin = path.join(args.work, 'bin');
  fs.mkdirSync(bin, { recursive: true });
  for (const [name, file] of Object.entries(JSON.parse(fs.readFileSync(path.join(pkg, 'package.json'), 'utf8')).bin)) {
    fs.writeFileSync(path.join(bin, name), `#!/bin/sh\nexec "${process.execPath}" "${path.join(pkg, file)}" "$@"\n`, { mode: 0o755 });
  }
  const probe = spawnSync(process.execPath, ['-e', 'process.stdout.write(JSON.stringify(require(process.argv[1]).info()))', pkg], { encoding: 'utf8', env });
  check(probe.status === 0, `the built addon does not load:\n${probe.stderr}`);
  const info = JSON.parse(probe.stdout);
  state.info = info;
  state.built = true;
  const summary = `LibTorch ${info.libtorchVersion} (${info.libtorch.source}), CUDA ${info.cudaAvailable ? 'yes' : 'no'}, cuDNN ${info.cudnnAvailable ? 'yes' : 'no'}, ` +
    `cudaKernels ${info.cudaKernels}, distributed [${info.distributed.join(', ')}], ${warnings} compiler warnings`;
  if (gpu) {
    check(info.cudaAvailable && info.cudnnAvailable && info.cudaKernels, `info() does not show CUDA, cuDNN and the CUDA kernels: ${summary}`);
    check(info.distributed.includes('nccl'), `the build has no NCCL (no nccl.h beside torch or in the CUDA toolkit; see ${log}): ${summary}`);
  }
  // Which CUDA runtime the addon loads: the toolkit's, whose minor may be older than torch's.
  const ldd = spawnSync('ldd', [path.join(build, 'Release/u2pl.node')], { encoding: 'utf8' }).stdout ?? '';
  const cudart = ldd.split('\n').filter((l) => /libcudart/.test(l)).map((l) => l.trim()).join('; ');
  return { summary: `${summary}${cudart ? `; ${cudart}` : ''}`, details: { libtorch: info.libtorch, libtorchVersion: info.libtorchVersion, cudaAvailable: info.cudaAvailable,
    cudnnAvailable: info.cudnnAvailable, cudaKernels: info.cudaKernels, cudaDevices: info.cudaDevices, distributed: info.distributed, warnings, cudart } };
}

async function partKernels(log) {
  await must('ctest', ['-V', '--timeout', '120'], { log, cwd: build, timeoutS: Math.min(240, secondsLeft()) });
  const lines = fs.readFileSync(log, 'utf8').split('\n');
  const ok = lines.filter((l) => /: ok /.test(l)).length;
  const cuda = lines.filter((l) => /: ok .*CUDA/.test(l)).length;
  const skipped = lines.filter((l) => /: skip CUDA/.test(l));
  if (gpu) check(cuda > 0 && skipped.length === 0, `the CUDA kernel checks did not run: ${skipped[0] ?? 'no CUDA lines in the output'}`);
  return { summary: `${ok} checks passed (${cuda} of them CUDA against CPU)${skipped.length ? `; ${skipped[0].replace(/^.*: skip /, 'skipped: ')}` : ''}`, details: { checks: ok, cudaChecks: cuda } };
}

/** A small U2PL experiment on the procedural data (generated on first use). */
function experiment(dir, overrides) {
  const device = gpu ? 'cuda' : 'cpu';
  // GPU: the demo's scale (96 px scenes, 64 px crops, batch 4); CPU: the tests' tiny one.
  const config = {
    seed: 3,
    dataset: {
      type: 'folder_semi',
      procedural: gpu ? { seed: 7, train: 200, labeled: 12, val: 40, size: 96 } : { seed: 1, train: 16, labeled: 4, val: 4, size: 40 },
      label_dir: 'labels',
      train: { data_root: 'data', data_list: `data/splits/${gpu ? 12 : 4}/labeled.txt`, flip: true, rand_resize: [0.75, 1.25], crop: { type: 'rand', size: gpu ? [64, 64] : [32, 32] } },
      val: { data_root: 'data', data_list: 'data/val.txt', crop: { type: 'center', size: gpu ? [96, 96] : [40, 40] } },
      batch_size: gpu ? 4 : 2,
      cache_mb: 64,
    },
    trainer: {
      epochs: 3,
      sup_only_epoch: 1,
      optimizer: { type: 'SGD', kwargs: { lr: 0.01, momentum: 0.9, weight_decay: 0.0001 } },
      lr_scheduler: { mode: 'poly', kwargs: { power: 0.9 } },
      unsupervised: { drop_percent: 80, apply_aug: 'cutmix' },
      contrastive: { low_rank: 1, high_rank: 3, num_queries: gpu ? 64 : 16, num_negatives: 8, temperature: 0.5, loss_weight: 0.1, low_entropy_threshold: 20,
        queue_size: gpu ? [4000, 2000, 2000, 2000] : [500, 300, 300, 300] },
    },
    saver: { snapshot_dir: 'checkpoints', auto_resume: true },
    criterion: { type: 'CELoss' },
    net: {
      num_classes: 4,
      ema_decay: 0.99,
      sync_bn: true,
      encoder: { type: 'resnet18', kwargs: { deep_stem: false, replace_stride_with_dilation: [false, false, true] } },
      decoder: { type: 'dec_deeplabv3_plus', kwargs: { inner_planes: gpu ? 64 : 16, head_planes: gpu ? 64 : 16, dilations: [1, 2, 3], rep_head: true } },
    },
    runtime: { device, threads: gpu ? 4 : 2 },
    ...overrides,
  };
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'config.yaml'), `${JSON.stringify(config, null, 2)}\n`);  // JSON is YAML
  return dir;
}

function metrics(dir) {
  const file = path.join(dir, 'checkpoints/metrics.jsonl');
  return fs.existsSync(file) ? fs.readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [];
}

const train = (argv, log, timeoutS) => must(process.execPath, [path.join(pkg, 'dist/cli/train.js'), ...argv], { log, timeoutS });

/** One run of the resume part: at most 150 s, and never past the budget (each run's limit taken when it starts). */
function trainInBudget(argv, log) {
  const left = secondsLeft();
  check(left >= 10, `the ${args.budget} s budget is spent (${left} s left) before a run of the resume part`);
  return train(argv, log, Math.min(150, left));
}

async function partDistributed(log) {
  const backend = gpu ? 'nccl' : 'gloo';
  check(state.info.distributed.includes(backend), `this build has no ${backend} backend (it has: ${state.info.distributed.join(', ') || 'none'})`);
  // Two epochs of 4 steps (warm-up, then U2PL), each validated: the initial broadcast, SyncBN, the
  // bucketed gradient all-reduce, the memory banks' all-gather, the stop flag and the validation sums.
  const dir = experiment(path.join(args.work, 'runs/distributed'), {});
  const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.yaml'), 'utf8'));
  config.trainer.epochs = 2;
  config.trainer.steps_per_epoch = 4;
  config.runtime.dist_backend = backend;
  fs.writeFileSync(path.join(dir, 'config.yaml'), JSON.stringify(config, null, 2));
  await train([dir, '--nproc', '1'], log, Math.min(180, secondsLeft()));
  check(new RegExp(`rank 0 of 1 \\(${backend},`).test(fs.readFileSync(log, 'utf8')), `the run does not say it joined a ${backend} process group of 1`);
  const m = metrics(dir);
  const steps = m.filter((x) => x.type === 'step');
  const epochs = m.filter((x) => x.type === 'epoch' && typeof x.miou === 'number');
  check(steps.length === 8 && epochs.length === 2, `expected 8 steps and 2 validated epochs, metrics.jsonl has ${steps.length} and ${epochs.length}`);
  check(steps.every((s) => Number.isFinite(s.loss)), 'a step loss is not finite');
  return { summary: `${backend}, world size 1: ${steps.length} steps (warm-up and U2PL), ${epochs.length} validations, mIoU ${epochs[1].miou.toFixed(3)}`, details: { backend, steps: steps.length } };
}

// Max |a - b| over every tensor and number of two checkpoint values, and whether all are bit-equal.
function compare(a, b, where, out) {
  if (ArrayBuffer.isView(a?.data) && Array.isArray(a.shape)) {
    const same = ArrayBuffer.isView(b?.data) && JSON.stringify(a.shape) === JSON.stringify(b.shape) && a.data.length === b.data.length;
    if (!same) return out.push({ where, diff: Infinity, bitwise: false });
    const bytes = (t) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    const bitwise = bytes(a).equals(bytes(b));
    let diff = 0;
    if (!bitwise) for (let i = 0; i < a.data.length; i++) diff = Math.max(diff, Math.abs(Number(a.data[i]) - Number(b.data[i])));
    return out.push({ where, diff, bitwise });
  }
  if (Array.isArray(a) || (a && typeof a === 'object')) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b ?? {})]);
    for (const k of keys) compare(a[k], b?.[k], where ? `${where}.${k}` : k, out);
    return out;
  }
  const bitwise = Object.is(a, b);
  out.push({ where, diff: bitwise ? 0 : typeof a === 'number' && typeof b === 'number' ? Math.abs(a - b) : Infinity, bitwise });
  return out;
}

async function partResume(log) {
  const { readCheckpoint } = require(path.join(pkg, 'dist/checkpoint.js'));
  const n = gpu ? 100 : 8;
  const runs = path.join(args.work, 'runs');
  // On the GPU under bf16 autocast (channels-last): the precision a GPU run would use.
  const overrides = gpu ? { runtime: { device: 'cuda', threads: 4, autocast: 'bfloat16' } } : {};
  const once = experiment(path.join(runs, 'straight'), overrides);
  const split = experiment(path.join(runs, 'split'), overrides);
  await trainInBudget([once, '--max-steps', String(n), '--quiet'], log);
  await trainInBudget([split, '--max-steps', String(n / 2), '--quiet'], log);
  await trainInBudget([split, '--max-steps', String(n), '--quiet'], log);
  check(/resumed from/.test(fs.readFileSync(log, 'utf8')), 'the second half did not resume from the checkpoint');
  const ckpt = (dir) => readCheckpoint(path.join(dir, 'checkpoints/ckpt.pth'));
  const a = await ckpt(once);
  const b = await ckpt(split);
  check(a.epoch === b.epoch && a.step_in_epoch === b.step_in_epoch, `the runs ended at different steps: ${a.epoch}/${a.step_in_epoch} and ${b.epoch}/${b.step_in_epoch}`);
  const ab = compare(a, b, '', []);
  const differing = ab.filter((d) => !d.bitwise);
  const steps = (dir) => metrics(dir).filter((x) => x.type === 'step').map((x) => x.loss);
  const la = steps(once);
  const lb = steps(split);
  check(la.length === n && lb.length === n, `metrics.jsonl holds ${la.length} and ${lb.length} steps, expected ${n} each`);
  const firstLoss = la.findIndex((x, i) => x !== lb[i]);
  if (differing.length === 0) {
    return { summary: `${n} steps = ${n / 2} + resume + ${n / 2}: every weight, buffer, bank, optimizer and generator state bit-equal`, details: { steps: n, bitwise: true } };
  }
  // Not bit-equal: is the device itself non-deterministic (atomics in CUDA backward passes)? A second
  // straight run measures that floor; the resumed run must stay within it.
  const again = experiment(path.join(runs, 'straight-again'), overrides);
  await trainInBudget([again, '--max-steps', String(n), '--quiet'], log);
  const floor = compare(a, await ckpt(again), '', []);
  const worst = differing.reduce((m, d) => (d.diff > m.diff ? d : m));
  const floorMax = Math.max(0, ...floor.map((d) => d.diff));
  const floorDiffers = floor.some((d) => !d.bitwise);
  const detail = `${differing.length} values differ (largest ${worst.where}: ${worst.diff.toExponential(2)}; first differing step loss: ${firstLoss})`;
  check(floorDiffers, `${n} steps != ${n / 2} + resume + ${n / 2} while two straight runs are bit-equal: ${detail}`);
  check(Number.isFinite(worst.diff) && worst.diff <= 10 * floorMax + 1e-6,
    `resume differs more than the run-to-run noise (${floorMax.toExponential(2)}): ${detail}`);
  return { summary: `${n} steps vs ${n / 2} + resume + ${n / 2}: not bit-equal, but within this device's run-to-run noise (two straight runs differ by up to ${floorMax.toExponential(2)}); ${detail}`,
    details: { steps: n, bitwise: false, resumeMaxDiff: worst.diff, noiseMaxDiff: floorMax, firstDifferingStep: firstLoss } };
}

async function partBench(log) {
  // GPU: the VOC recipe per GPU and camvid-small, fp32 and bf16 + channels-last. CPU: the smoke recipe,
  // so that both sides' code runs. A bench that runs out of time writes no JSON file: its log's
  // measurement lines (without the comparisons) still say what it measured.
  const json = path.join(args.out, 'bench.json');
  fs.rmSync(json, { force: true });
  const flags = gpu ? ['--only', 'step', '--device', 'cuda'] : ['--only', 'step', '--device', 'cpu', '--recipe', 'smoke', '--precision', 'fp32', '--quick'];
  // --bench-args narrows the GPU bench to fit a short call: "--recipe camvid-small --precision bf16+cl --quick".
  // First: the bench reads the first of a repeated flag.
  if (args.benchArgs) flags.unshift(...args.benchArgs);
  const env = { ...process.env, U2PL_BENCH_PYTHON: python };
  const r = await run(process.execPath, [path.join(pkg, 'dist-bench/bench/run.js'), ...flags, '--json', json], { log, env, timeoutS: secondsLeft() });
  const results = fs.existsSync(json) ? JSON.parse(fs.readFileSync(json, 'utf8'))
    : fs.readFileSync(log, 'utf8').split('\n').filter((l) => l.startsWith('{"name":"step.')).map((l) => JSON.parse(l));
  state.bench = results;
  const ours = results.filter((m) => m.impl === 'u2pl' && !m.name.includes('.floor.'));
  const theirs = (m) => results.find((p) => p.name === m.name && p.precision === m.precision && String(p.impl).startsWith('python'));
  const lines = ours.map((m) => `${m.recipe} ${m.precision} ${m.median_s} s, x${m.vs_python ?? '?'} vs PyTorch` +
    `${m.peak_gpu_mb !== undefined ? `, peak GPU ${m.peak_gpu_mb} MB vs ${theirs(m)?.peak_gpu_mb ?? '?'} MB` : ''}`);
  const why = r.timedOut ? `ran past the budget (${lines.length} lines measured)` : r.status !== 0 ? `exited with ${r.status}` : '';
  check(!why, `the bench ${why}: ${lines.join('; ')}\n${fs.readFileSync(log, 'utf8').trim().split('\n').slice(-8).join('\n')}`);
  check(ours.length > 0 && ours.every((m) => theirs(m)), `not every line has the reference's PyTorch step beside it (${python} with torch${gpu ? ' and CUDA' : ''}): see ${log}`);
  return { summary: lines.join('; '), details: { lines: results.length } };
}

// ---- Run, summarise ---------------------------------------------------------------------------------
const needsBuild = new Set(['kernels', 'distributed', 'resume', 'bench']);
const fns = { build: partBuild, kernels: partKernels, distributed: partDistributed, resume: partResume, bench: partBench };

let bundle = {};
try { bundle = JSON.parse(fs.readFileSync(path.join(pkg, '../BUNDLE.json'), 'utf8')); } catch { /* run from a checkout */ }
const torchVersion = spawnSync(python, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' }).stdout?.trim() ?? '';

/** Writes OUT/summary.json and summary.txt for the parts run so far; `waiting` names those not reached yet. */
function writeSummary(results, waiting) {
  const summary = {
    mode: gpu ? 'gpu' : 'cpu-only', bundle, host: os.hostname(), cpus: os.availableParallelism(), python, torch: torchVersion,
    gpus: state.info?.cudaDevices ?? [], passed: waiting.length === 0 && results.every((r) => r.status === 'passed'),
    finished: waiting.length === 0, waiting, seconds: Math.round((Date.now() - started) / 1000), parts: results,
  };
  fs.writeFileSync(path.join(args.out, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  const width = Math.max(4, ...results.map((r) => r.name.length));
  const rows = results.map((r) => `${r.name.padEnd(width)}  ${r.status.padEnd(7)}  ${String(r.seconds).padStart(6)} s  ${r.summary.replace(/\n/g, '\n' + ' '.repeat(width + 21))}`);
  const benchRows = state.bench.length ? ['', 'bench (median s per step; peak memory of each side)', ...state.bench.map((m) =>
    `  ${m.name.padEnd(28)} ${String(m.precision).padEnd(8)} ${String(m.impl).padEnd(26)} ${String(m.median_s).padStart(8)} s` +
    `${m.peak_gpu_mb !== undefined ? `  GPU ${m.peak_gpu_mb} MB` : ''}${m.peak_rss_mb !== undefined ? `  RSS ${m.peak_rss_mb} MB` : ''}${m.vs_python !== undefined ? `  x${m.vs_python} vs PyTorch` : ''}`)] : [];
  const verdict = waiting.length ? `RUNNING (not reached yet: ${waiting.join(', ')})` : summary.passed ? 'PASSED' : 'FAILED';
  const text = [`u2pl ${bundle.version ?? ''} ${bundle.commit ?? ''} ${summary.mode} check on ${summary.host}: torch ${torchVersion}` +
    `${summary.gpus.length ? `, ${summary.gpus.map((g) => g.name).join(', ')}` : ''}; ${verdict} after ${summary.seconds} s`, '', ...rows, ...benchRows].join('\n');
  fs.writeFileSync(path.join(args.out, 'summary.txt'), `${text}\n`);
  return { summary, text };
}

async function main() {
  const results = [];
  say(`${gpu ? 'GPU' : 'CPU-only'} check of ${pkg}, parts: ${args.only.join(', ')}; ${args.budget} s budget`);
  if (!args.only.includes('build') && fs.existsSync(path.join(build, 'Release/u2pl.node'))) {
    state.info = JSON.parse(spawnSync(process.execPath, ['-e', 'process.stdout.write(JSON.stringify(require(process.argv[1]).info()))', pkg], { encoding: 'utf8' }).stdout || 'null');
    state.built = state.info !== null;
  }
  let written = writeSummary(results, args.only);
  for (const [i, name] of args.only.entries()) {
    const log = path.join(args.out, `${name}.log`);
    fs.writeFileSync(log, '');
    const t0 = Date.now();
    let r;
    if (needsBuild.has(name) && !state.built) r = { name, status: 'skipped', summary: 'needs the addon, which was not built' };
    else if (secondsLeft() < 5) r = { name, status: 'skipped', summary: `the ${args.budget} s budget is spent` };
    else {
      try {
        const { summary, details } = await fns[name](log);
        r = { name, status: 'passed', summary, details };
      } catch (e) {
        r = { name, status: 'failed', summary: e.message };
      }
    }
    r.seconds = Math.round((Date.now() - t0) / 100) / 10;
    r.log = log;
    results.push(r);
    say(`${r.status.toUpperCase()} ${name} (${r.seconds} s): ${r.summary.split('\n')[0]}`);
    written = writeSummary(results, args.only.slice(i + 1));
  }
  const { summary, text } = written;  // after the last part: nothing waiting
  process.stdout.write(`\n${text}\n\ngpu-check: ${path.join(args.out, 'summary.json')}, summary.txt and one log per part\n`);
  process.exit(summary.passed ? 0 : 1);
}

main().catch((e) => {
  process.stderr.write(`gpu-check: ${e.stack ?? e}\n`);
  process.exit(1);
});
