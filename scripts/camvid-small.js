#!/usr/bin/env node
'use strict';
// The camvid-small study (experiments/camvid-small/README.md): runs its variants and seeds, and
// writes the results table from their metrics.jsonl files.
//   node scripts/camvid-small.js run [variant ...] [--seeds 0,1,2] [--parallel 2] [--threads 1] [--sharing N]
//   node scripts/camvid-small.js collect [--paused FILE]   (finished runs -> experiments/camvid-small/results/)
//   node scripts/camvid-small.js table [--write]   (--write: into the README between its markers)
//   node scripts/camvid-small.js hold -- COMMAND [ARG ...]   (runs COMMAND with the study's runs held)
// A variant is a folder under experiments/camvid-small with a config.yaml (`u2pl`, `study/pad255`);
// a run lives in <variant>/checkpoints/seed-<seed>/ and resumes where it stopped (saver.auto_resume).
// A variant named reference-* runs its config.yaml through the original U2PL code
// (scripts/reference/train_sup.py, with U2PL_PYTHON or Debian's python3 and U2PL_REFERENCE) instead of u2pl-train.
// `collect` keeps what the table needs of each finished run (its epoch lines, step times, the
// commit and threads) in results/<variant>.seed-<seed>.json, a small file meant to be committed.
const { spawn } = require('child_process');
const fs = require('fs');
const path = require('path');

// U2PL_STUDY_ROOT: another study folder of the same layout (tests).
const root = path.resolve(process.env.U2PL_STUDY_ROOT || path.join(__dirname, '../experiments/camvid-small'));
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

function commitOf() {
  const r = require('child_process').spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: __dirname, encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : 'unknown';
}

// The machine type (instruction set) runs go on, named as the bench names it; read once per command.
let isa;
function machineIsa() {
  isa ??= require('../dist/model/precision').cpuIsaName(require('../dist/native').native().info().cpu);
  return isa;
}

// The precision and layout u2pl-train chose, from the line it logs at the start of each (resumed)
// run: "precision fp32 (...), channels-last layout (...)"; several if a resumed run changed them.
function precisionOf(dir) {
  const log = path.join(dir, 'train.log');
  const text = fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : '';
  const found = [...text.matchAll(/precision (\S+) .*?, (channels-last|contiguous) layout/g)].map((m) => `${m[1]} ${m[2]}`);
  return found.length ? [...new Set(found)].join(' then ') : null;
}

// Debian's python3 has python3-torch; a pyenv or venv python3 earlier on PATH may not.
function python() {
  return process.env.U2PL_PYTHON || (fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
}

function runDir(variant, seed) {
  return path.join(root, variant, 'checkpoints', `seed-${seed}`);
}

function readRecords(file) {
  if (!fs.existsSync(file)) return [];
  return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

// How and when each run ran (threads, runs sharing the machine, commit, start and end), beside its metrics.
const STUDY_RECORD = 'study-run.json';

function collected(variant, seed) {
  return fs.existsSync(path.join(root, 'results', `${variant.replace(/\//g, '.')}.seed-${seed}.json`));
}

function finished(variant, seed) {
  const epochs = readRecords(path.join(runDir(variant, seed), 'metrics.jsonl')).filter((r) => r.type === 'epoch');
  const text = fs.readFileSync(path.join(root, variant, 'config.yaml'), 'utf8');
  const total = Number(/^ {2}epochs: (\d+)/m.exec(text)[1]);
  return epochs.length >= total;
}

// When a run last wrote its metrics, checkpoint or log (ms), or null when it has none.
function lastActive(dir) {
  if (!fs.existsSync(dir)) return null;
  const times = ['metrics.jsonl', 'ckpt.pth', 'train.log'].map((f) => path.join(dir, f)).filter((f) => fs.existsSync(f)).map((f) => fs.statSync(f).mtimeMs);
  return times.length ? Math.max(...times) : null;
}

async function run(args) {
  const seeds = option(args, '--seeds', '0').split(',').map(Number);
  const parallel = Number(option(args, '--parallel', '1'));
  const threads = option(args, '--threads', undefined);
  // Runs that share the machine, for the record (default: this command's own --parallel).
  const sharing = Number(option(args, '--sharing', String(parallel)));
  const chosen = args.length ? args : variants();
  for (const v of chosen) if (!fs.existsSync(path.join(root, v, 'config.yaml'))) throw new Error(`no experiments/camvid-small/${v}/config.yaml`);
  const queue = [];
  // A run is done when its result is collected (results/) or its metrics hold every epoch.
  for (const seed of seeds) for (const v of chosen) if (!collected(v, seed) && !finished(v, seed)) queue.push({ v, seed });
  process.stdout.write(`${queue.length} runs to do (${parallel} at a time${threads ? `, ${threads} threads each` : ''})\n`);
  const worker = async () => {
    for (let job = queue.shift(); job; job = queue.shift()) {
      const { v, seed } = job;
      const dir = runDir(v, seed);
      const last = lastActive(dir);  // before the log is opened
      fs.mkdirSync(dir, { recursive: true });
      const log = fs.openSync(path.join(dir, 'train.log'), 'a');
      const start = Date.now();
      // Not run.json: that is u2pl-train's own record of the run (the report reads it) and would replace this one.
      const about = path.join(dir, STUDY_RECORD);
      const previous = fs.existsSync(about) ? JSON.parse(fs.readFileSync(about, 'utf8')) : {};
      // A run resumed after it stopped (a session's end, a lost machine): the time since it last
      // wrote anything was not its wall time. Recorded per run: others may have run meanwhile.
      const gaps = [...(previous.gaps ?? [])];
      if (previous.started && !previous.finished && last !== null && start > last) gaps.push([new Date(last).toISOString(), new Date(start).toISOString()]);
      fs.writeFileSync(about, JSON.stringify({
        ...previous, variant: v, seed, threads: threads ? Number(threads) : require('os').availableParallelism(), parallel: sharing,
        // A run resumed on another machine type says so; one resumed on the same type does not repeat it.
        isa: !previous.isa ? machineIsa() : previous.isa.split(' then ').at(-1) === machineIsa() ? previous.isa : `${previous.isa} then ${machineIsa()}`,
        commit: previous.commit ?? commitOf(), started: previous.started ?? new Date(start).toISOString(), ...(gaps.length ? { gaps } : {}),
      }, null, 1));
      process.stdout.write(`start ${v} seed ${seed}\n`);
      const code = await new Promise((resolve) => {
        const reference = path.basename(v).startsWith('reference-');
        const [exe, ...argv] = reference
          ? [python(), path.join(__dirname, 'reference/train_sup.py'), path.join(root, v), ...(threads ? ['--threads', threads] : [])]
          : [process.execPath, cli, path.join(root, v), '--quiet', ...(threads ? ['--threads', threads] : [])];
        spawn(exe, argv, { stdio: ['ignore', log, log], env: { ...process.env, U2PL_SEED: String(seed) } }).on('exit', resolve);
      });
      fs.closeSync(log);
      if (code === 0) fs.writeFileSync(about, JSON.stringify({ ...JSON.parse(fs.readFileSync(about, 'utf8')), finished: new Date().toISOString() }, null, 1));
      process.stdout.write(`${code === 0 ? 'done' : `FAILED (exit ${code})`} ${v} seed ${seed} in ${((Date.now() - start) / 60000).toFixed(1)} min\n`);
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
}

const pct = (x) => (x === null || x === undefined ? '–' : (100 * x).toFixed(1));
const resultsDir = path.join(root, 'results');

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[s.length >> 1] : null;
}

// What the table needs of a finished run: its epoch lines, median step seconds by phase, and how it ran.
function collectRun(variant, seed, paused) {
  const dir = runDir(variant, seed);
  const records = readRecords(path.join(dir, 'metrics.jsonl'));
  const epochs = records.filter((r) => r.type === 'epoch');
  const steps = records.filter((r) => r.type === 'step');
  const about = fs.existsSync(path.join(dir, STUDY_RECORD)) ? JSON.parse(fs.readFileSync(path.join(dir, STUDY_RECORD), 'utf8')) : {};
  const stepSeconds = {};
  for (const phase of new Set(steps.map((r) => r.phase))) stepSeconds[phase] = median(steps.filter((r) => r.phase === phase).map((r) => r.step_s));
  const trainMinutes = steps.reduce((a, r) => a + r.step_s + r.data_s, 0) / 60;
  const [from, to] = [Date.parse(about.started), Date.parse(about.finished)];
  const wallMinutes = about.started && about.finished ? (to - from - pausedMs(paused, about.gaps ?? [], from, to)) / 60000 : epochs.reduce((a, e) => a + e.seconds, 0) / 60;
  const precision = precisionOf(dir);
  return {
    variant, seed, commit: about.commit ?? 'unknown', threads: about.threads ?? null, parallel: about.parallel ?? null,
    ...(about.isa ? { isa: about.isa } : {}), ...(precision ? { precision } : {}),
    steps: steps.length, median_step_s: stepSeconds, train_minutes: Number(trainMinutes.toFixed(1)), wall_minutes: Number(wallMinutes.toFixed(1)),
    epochs: epochs.map(({ type, ...e }) => e),
  };
}

// Intervals the runs were held (SIGSTOP) to keep the machine quiet for something else: lines of
// "<ISO start> <ISO end>" in results/pauses.txt (what `hold` appends to) or a file given to collect
// with --paused FILE; they are not wall time.
const PAUSES = path.join(resultsDir, 'pauses.txt');

// The time within [from, to] covered by the file's intervals or the run's own gaps (each instant once).
function pausedMs(file, gaps, from, to) {
  const lines = file && fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => l.trim().split(/\s+/)) : [];
  const spans = [...lines, ...gaps].map(([a, b]) => [Math.max(Date.parse(a), from), Math.min(Date.parse(b), to)]).filter(([a, b]) => b > a).sort((x, y) => x[0] - y[0]);
  let ms = 0;
  let end = -Infinity;
  for (const [a, b] of spans) {
    if (b <= end) continue;
    ms += b - Math.max(a, end);
    end = b;
  }
  return ms;
}

function collect(args) {
  const paused = option(args, '--paused', PAUSES);
  fs.mkdirSync(resultsDir, { recursive: true });
  let n = 0;
  for (const v of variants()) {
    const dir = path.join(root, v, 'checkpoints');
    if (!fs.existsSync(dir)) continue;
    for (const d of fs.readdirSync(dir).filter((x) => /^seed-\d+$/.test(x))) {
      const seed = Number(d.slice(5));
      if (!finished(v, seed)) continue;
      fs.writeFileSync(path.join(resultsDir, `${v.replace(/\//g, '.')}.seed-${seed}.json`), `${JSON.stringify(collectRun(v, seed, paused))}\n`);
      n++;
    }
  }
  process.stdout.write(`collected ${n} finished runs into ${path.relative(process.cwd(), resultsDir)}\n`);
}

function loadResults() {
  if (!fs.existsSync(resultsDir)) return [];
  const order = variants();
  return fs.readdirSync(resultsDir).filter((f) => f.endsWith('.json')).map((f) => JSON.parse(fs.readFileSync(path.join(resultsDir, f), 'utf8')))
    .sort((a, b) => order.indexOf(a.variant) - order.indexOf(b.variant) || a.seed - b.seed);
}

function mean(xs) {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

function std(xs) {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1));
}

// The per-class columns: the study's dataset.class_names (facade-small), else CamVid's.
function classNames() {
  for (const v of variants()) {
    const m = /^ {2}class_names: \[(.*)\]$/m.exec(fs.readFileSync(path.join(root, v, 'config.yaml'), 'utf8'));
    if (m) return m[1].split(', ');
  }
  return ['Sky', 'Building', 'Pole', 'Road', 'Sidewalk', 'Tree', 'Sign', 'Fence', 'Car', 'Pedestrian', 'Bicyclist'];
}

function table() {
  const runs = loadResults();
  const lines = [];
  // Runs with a held-out test list (dataset.test, since the val list was split) show its mIoU beside val's.
  lines.push('| variant | seed | val mIoU (end) | best | test mIoU (end) | mIoU after each epoch | pseudo-label acc. (first → last U2PL epoch) | kept share (last) | step (warm-up / U2PL) | wall |');
  lines.push('|---|---|---|---|---|---|---|---|---|---|');
  for (const r of runs) {
    const last = r.epochs[r.epochs.length - 1];
    const perEpoch = r.epochs.filter((e) => e.miou !== null).map((e) => pct(e.miou));
    const curve = perEpoch.length > 8 ? `${perEpoch.slice(0, 2).join(' ')} … ${perEpoch.slice(-4).join(' ')}` : perEpoch.join(' ');
    const semi = r.epochs.filter((e) => e.pseudo_label_accuracy !== undefined);
    const pl = semi.length ? `${pct(semi[0].pseudo_label_accuracy)} → ${pct(semi[semi.length - 1].pseudo_label_accuracy)}` : '–';
    const kept = semi.length ? pct(semi[semi.length - 1].kept_share) : '–';
    const s = r.median_step_s;
    const step = s.semi ? `${s.warmup ? s.warmup.toFixed(2) : '–'} / ${s.semi.toFixed(2)} s` : s.ael ? `– / ${s.ael.toFixed(2)} s` : `${(s.supervised ?? 0).toFixed(2)} s`;
    lines.push(`| ${r.variant} | ${r.seed} | ${pct(last.miou)} | ${pct(last.best_miou)} | ${pct(last.test_miou)} | ${curve} | ${pl} | ${kept} | ${step} | ${r.wall_minutes.toFixed(0)} min |`);
  }
  lines.push('');
  // Per class on the held-out test list where the runs have one, else on val.
  const classes = classNames();
  const tested = runs.some((r) => r.epochs[r.epochs.length - 1].test_iou);
  lines.push(`Per-class IoU at the end (%, ${tested ? 'test list; val where a run has none' : 'val'}):`);
  lines.push('');
  lines.push(`| variant | seed | ${classes.join(' | ')} |`);
  lines.push(`|---|---|${classes.map(() => '---').join('|')}|`);
  for (const r of runs) {
    const last = r.epochs[r.epochs.length - 1];
    lines.push(`| ${r.variant} | ${r.seed} | ${(last.test_iou ?? last.iou).map(pct).join(' | ')} |`);
  }
  const groups = {};
  for (const r of runs) (groups[r.variant] = groups[r.variant] || []).push(r.epochs[r.epochs.length - 1]);
  const multi = Object.entries(groups).filter(([, es]) => es.length > 1);
  if (multi.length) {
    const spread = (xs) => (xs.every((x) => x !== undefined && x !== null) ? `${pct(mean(xs))} ± ${pct(std(xs))}` : '–');
    lines.push('');
    lines.push('| variant | seeds | val mIoU at the end, mean ± std | test mIoU at the end, mean ± std | per seed (val / test) |');
    lines.push('|---|---|---|---|---|');
    for (const [v, es] of multi) {
      lines.push(`| ${v} | ${es.length} | ${spread(es.map((e) => e.miou))} | ${spread(es.map((e) => e.test_miou))} | ${es.map((e) => `${pct(e.miou)} / ${pct(e.test_miou)}`).join(', ')} |`);
    }
  }
  // The full-label bound (issue #37): the share of the gap between supervised-only on the 46 labels and
  // on all 367 that each semi-supervised variant closes, per criterion, on the test list (val without one).
  const endOf = (v) => (groups[v] ?? []).map((e) => e.test_miou ?? e.miou);
  const bounds = [['suponly', 'suponly-full'], ['suponly-mfw', 'suponly-full-mfw']].filter(([a, b]) => endOf(a).length && endOf(b).length);
  const semiVariants = Object.keys(groups).filter((v) => runs.some((r) => r.variant === v && r.epochs.some((e) => e.phase === 'semi' || e.phase === 'ael')));
  if (bounds.length && semiVariants.length) {
    lines.push('');
    lines.push(`| variant | mIoU, mean | ${bounds.map(([a, b]) => `share of the gap ${a} → ${b} closed`).join(' | ')} |`);
    lines.push(`|---|---|${bounds.map(() => '---').join('|')}|`);
    for (const v of semiVariants) {
      const m = mean(endOf(v));
      // A gap within the seeds' spread is no gap to close: a share of it would be noise over noise.
      const shares = bounds.map(([a, b]) => {
        const [lo, hi] = [mean(endOf(a)), mean(endOf(b))];
        const noise = Math.max(std(endOf(a)), std(endOf(b)));
        return hi - lo > noise ? `${Math.round((100 * (m - lo)) / (hi - lo))} % (${pct(lo)} → ${pct(hi)})` : `– (no gap beyond the seed spread: ${pct(lo)} → ${pct(hi)} ± ${pct(noise)})`;
      });
      lines.push(`| ${v} | ${pct(m)} | ${shares.join(' | ')} |`);
    }
  }
  // The margin (issue #37): each semi-supervised variant against the strongest supervised-only baseline
  // on the 46 labels (ours plain, class-weighted, or class-weighted scored with an EMA model as U2PL is
  // with its teacher, or the original code's), by mean on the test list.
  const baselines = ['suponly', 'suponly-mfw', 'suponly-mfw-ema', 'reference-suponly'].filter((v) => endOf(v).length);
  if (baselines.length && semiVariants.length) {
    // The strongest among the baselines with the most seeds: one lucky seed of a baseline still
    // running does not set the bar (the others are listed with their seed count).
    const n = (v) => endOf(v).length;
    const most = Math.max(...baselines.map(n));
    const strongest = baselines.filter((v) => n(v) === most).reduce((a, b) => (mean(endOf(b)) > mean(endOf(a)) ? b : a));
    const seeds = (v) => `${n(v)} seed${n(v) === 1 ? '' : 's'}`;
    const spread = (v) => `${pct(mean(endOf(v)))} ± ${pct(std(endOf(v)))} (${seeds(v)})`;
    lines.push('');
    lines.push(`| variant | mIoU, mean ± std | baselines, mean | margin over the strongest (${strongest}, ${spread(strongest)}) |`);
    lines.push('|---|---|---|---|');
    for (const v of semiVariants) {
      const margin = 100 * (mean(endOf(v)) - mean(endOf(strongest)));
      lines.push(`| ${v} | ${spread(v)} | ${baselines.map((b) => `${b} ${pct(mean(endOf(b)))}${n(b) < most ? ` (${seeds(b)})` : ''}`).join(', ')} | ${margin >= 0 ? '+' : '−'}${Math.abs(margin).toFixed(1)} |`);
    }
  }
  // Precision and machine type where the run recorded them (runs from before they were recorded say nothing).
  const how = [...new Set(runs.map((r) => `${r.threads ?? '?'} thread(s), ${r.parallel ?? '?'} run(s) at a time, ` +
    `${r.precision ? `${r.precision}${r.isa ? ` on ${r.isa}` : ''}, ` : r.isa ? `on ${r.isa}, ` : ''}commit ${r.commit}`))];
  lines.push('');
  lines.push(`Runs: ${how.join('; ')}.`);
  return lines.join('\n');
}

// The study's training processes now running: u2pl-train and the reference runner, each given a
// variant folder under the study root.
function studyProcesses() {
  const inside = `${root}${path.sep}`;
  const pids = [];
  for (const name of fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    let args;
    try {
      args = fs.readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;  // gone meanwhile
    }
    if (Number(name) !== process.pid && args.some((a) => a.startsWith(inside))) pids.push(Number(name));
  }
  return pids;
}

// Runs a command with the study's runs held (SIGSTOP, then SIGCONT), e.g. `npm test` or the bench,
// so that neither slows the other, and records the interval in results/pauses.txt for the wall times.
function hold(args) {
  const at = args.indexOf('--');
  const [exe, ...argv] = at < 0 ? args : args.slice(at + 1);
  if (!exe) throw new Error('hold: give the command after --, e.g. hold -- npm test');
  const pids = studyProcesses();
  const signal = (sig) => pids.forEach((pid) => { try { process.kill(pid, sig); } catch { /* ended */ } });
  const from = new Date();
  signal('SIGSTOP');
  let status;
  try {
    status = require('child_process').spawnSync(exe, argv, { stdio: 'inherit' }).status;
  } finally {
    signal('SIGCONT');
    fs.mkdirSync(resultsDir, { recursive: true });
    fs.appendFileSync(PAUSES, `${from.toISOString()} ${new Date().toISOString()}\n`);
  }
  process.stderr.write(`held ${pids.length} run process(es) of ${root}; the interval is in ${path.relative(process.cwd(), PAUSES)}\n`);
  process.exitCode = status ?? 1;
}

async function main() {
  const [command, ...args] = process.argv.slice(2);
  if (command === 'run') return run(args);
  if (command === 'collect') return collect(args);
  if (command === 'hold') return hold(args);
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
  process.stderr.write('usage: node scripts/camvid-small.js run [variant ...] [--seeds 0,1,2] [--parallel N] [--threads N] [--sharing N] | collect [--paused FILE] | table [--write] | hold -- COMMAND [ARG ...]\n');
  process.exit(2);
}

main().catch((e) => {
  process.stderr.write(`${e.message}\n`);
  process.exit(1);
});
