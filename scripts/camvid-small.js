#!/usr/bin/env node
'use strict';
// The camvid-small study (experiments/camvid-small/README.md): runs its variants and seeds, and
// writes the results table from their metrics.jsonl files.
//   node scripts/camvid-small.js run [variant ...] [--seeds 0,1,2] [--parallel 2] [--threads 1]
//   node scripts/camvid-small.js table [--write]   (--write: into the README between its markers)
// A variant is a folder under experiments/camvid-small with a config.yaml (`u2pl`, `study/pad255`);
// a run lives in <variant>/checkpoints/seed-<seed>/ and resumes where it stopped (saver.auto_resume).
const { spawn } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '../experiments/camvid-small');
const cli = path.resolve(__dirname, '../dist/cli/train.js');

function variants() {
  const out = [];
  const walk = (dir, prefix) => {
    for (const name of fs.readdirSync(dir).sort()) {
      const sub = path.join(dir, name);
      if (name === 'checkpoints' || !fs.statSync(sub).isDirectory()) continue;
      if (fs.existsSync(path.join(sub, 'config.yaml'))) out.push(prefix + name);
      walk(sub, `${prefix}${name}/`);
    }
  };
  walk(root, '');
  return out;
}

function option(args, name, fallback) {
  const i = args.indexOf(name);
  if (i < 0) return fallback;
  const v = args[i + 1];
  args.splice(i, 2);
  return v;
}

function runDir(variant, seed) {
  return path.join(root, variant, 'checkpoints', `seed-${seed}`);
}

function readRecords(file) {
  if (!fs.existsSync(file)) return [];
  return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

function finished(variant, seed) {
  const epochs = readRecords(path.join(runDir(variant, seed), 'metrics.jsonl')).filter((r) => r.type === 'epoch');
  const text = fs.readFileSync(path.join(root, variant, 'config.yaml'), 'utf8');
  const total = Number(/^ {2}epochs: (\d+)/m.exec(text)[1]);
  return epochs.length >= total;
}

async function run(args) {
  const seeds = option(args, '--seeds', '0').split(',').map(Number);
  const parallel = Number(option(args, '--parallel', '1'));
  const threads = option(args, '--threads', undefined);
  const chosen = args.length ? args : variants();
  for (const v of chosen) if (!fs.existsSync(path.join(root, v, 'config.yaml'))) throw new Error(`no experiments/camvid-small/${v}/config.yaml`);
  const queue = [];
  for (const seed of seeds) for (const v of chosen) if (!finished(v, seed)) queue.push({ v, seed });
  process.stdout.write(`${queue.length} runs to do (${parallel} at a time${threads ? `, ${threads} threads each` : ''})\n`);
  const worker = async () => {
    for (let job = queue.shift(); job; job = queue.shift()) {
      const { v, seed } = job;
      const dir = runDir(v, seed);
      fs.mkdirSync(dir, { recursive: true });
      const log = fs.openSync(path.join(dir, 'train.log'), 'a');
      const start = Date.now();
      process.stdout.write(`start ${v} seed ${seed}\n`);
      const code = await new Promise((resolve) => {
        const argv = [cli, path.join(root, v), '--quiet', ...(threads ? ['--threads', threads] : [])];
        spawn(process.execPath, argv, { stdio: ['ignore', log, log], env: { ...process.env, U2PL_SEED: String(seed) } }).on('exit', resolve);
      });
      fs.closeSync(log);
      process.stdout.write(`${code === 0 ? 'done' : `FAILED (exit ${code})`} ${v} seed ${seed} in ${((Date.now() - start) / 60000).toFixed(1)} min\n`);
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
}

const pct = (x) => (x === null || x === undefined ? '–' : (100 * x).toFixed(1));

function summary(variant, seed) {
  const records = readRecords(path.join(runDir(variant, seed), 'metrics.jsonl'));
  const epochs = records.filter((r) => r.type === 'epoch');
  if (!epochs.length) return undefined;
  const steps = records.filter((r) => r.type === 'step');
  const last = epochs[epochs.length - 1];
  const semi = epochs.filter((e) => e.pseudo_label_accuracy !== undefined);
  return {
    variant, seed, epochs, last, done: finished(variant, seed),
    final: last.miou, best: last.best_miou, iou: last.iou,
    minutes: epochs.reduce((a, e) => a + e.seconds, 0) / 60,
    stepSeconds: steps.length ? steps.map((s) => s.step_s).sort((a, b) => a - b)[steps.length >> 1] : null,
    plAccuracy: semi.length ? semi[semi.length - 1].pseudo_label_accuracy : null,
    plAccuracyFirst: semi.length ? semi[0].pseudo_label_accuracy : null,
    kept: semi.length ? semi[semi.length - 1].kept_share : null,
  };
}

function mean(xs) {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

function std(xs) {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1));
}

const CLASSES = ['Sky', 'Building', 'Pole', 'Road', 'Sidewalk', 'Tree', 'Sign', 'Fence', 'Car', 'Pedestrian', 'Bicyclist'];

function table() {
  const rows = [];
  const seedsOf = (v) => {
    const dir = path.join(root, v, 'checkpoints');
    return fs.existsSync(dir) ? fs.readdirSync(dir).filter((d) => /^seed-\d+$/.test(d)).map((d) => Number(d.slice(5))).sort((a, b) => a - b) : [];
  };
  const runs = [];
  for (const v of variants()) for (const s of seedsOf(v)) { const r = summary(v, s); if (r) runs.push(r); }
  const lines = [];
  lines.push('| variant | seed | val mIoU (end) | best | mIoU per epoch | pseudo-label acc. (first → last U2PL epoch) | kept share (last) | median step | wall |');
  lines.push('|---|---|---|---|---|---|---|---|---|');
  for (const r of runs) {
    const perEpoch = r.epochs.filter((e) => e.miou !== null).map((e) => pct(e.miou));
    const curve = perEpoch.length > 8 ? `${perEpoch.slice(0, 3).join(' ')} … ${perEpoch.slice(-3).join(' ')}` : perEpoch.join(' ');
    lines.push(`| ${r.variant}${r.done ? '' : ' (running)'} | ${r.seed} | ${pct(r.final)} | ${pct(r.best)} | ${curve} | ${r.plAccuracy === null ? '–' : `${pct(r.plAccuracyFirst)} → ${pct(r.plAccuracy)}`} | ${pct(r.kept)} | ${r.stepSeconds === null ? '–' : `${r.stepSeconds.toFixed(2)} s`} | ${r.minutes.toFixed(0)} min |`);
  }
  lines.push('');
  lines.push(`| variant | seed | ${CLASSES.join(' | ')} |`);
  lines.push(`|---|---|${CLASSES.map(() => '---').join('|')}|`);
  for (const r of runs.filter((x) => x.done)) lines.push(`| ${r.variant} | ${r.seed} | ${r.iou.map(pct).join(' | ')} |`);
  const groups = {};
  for (const r of runs.filter((x) => x.done)) (groups[r.variant] = groups[r.variant] || []).push(r.final);
  const multi = Object.entries(groups).filter(([, xs]) => xs.length > 1);
  if (multi.length) {
    lines.push('');
    lines.push('| variant | seeds | val mIoU mean ± std (end) | per seed |');
    lines.push('|---|---|---|---|');
    for (const [v, xs] of multi) lines.push(`| ${v} | ${xs.length} | ${pct(mean(xs))} ± ${pct(std(xs))} | ${xs.map(pct).join(', ')} |`);
  }
  return lines.join('\n');
}

async function main() {
  const [command, ...args] = process.argv.slice(2);
  if (command === 'run') return run(args);
  if (command === 'table') {
    const text = table();
    if (!args.includes('--write')) return process.stdout.write(`${text}\n`);
    const readme = path.join(root, 'README.md');
    const old = fs.readFileSync(readme, 'utf8');
    const begin = '<!-- results: node scripts/camvid-small.js table --write -->';
    const end = '<!-- end of results -->';
    const a = old.indexOf(begin);
    const b = old.indexOf(end);
    if (a < 0 || b < a) throw new Error(`${readme} lacks the markers ${begin} ... ${end}`);
    fs.writeFileSync(readme, `${old.slice(0, a + begin.length)}\n${text}\n${old.slice(b)}`);
    return process.stdout.write(`wrote the results into ${readme}\n`);
  }
  process.stderr.write('usage: node scripts/camvid-small.js run [variant ...] [--seeds 0,1,2] [--parallel N] [--threads N] | table [--write]\n');
  process.exit(2);
}

main().catch((e) => {
  process.stderr.write(`${e.message}\n`);
  process.exit(1);
});
