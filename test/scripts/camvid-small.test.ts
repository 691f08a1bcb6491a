/**
 * scripts/camvid-small.js on a study folder of its own: collect keeps what the table needs of each
 * finished run (not of unfinished ones), wall time leaves out the pauses, and the table reads it.
 */
import { spawn, spawnSync } from 'child_process';
import fs from 'fs';
import path from 'path';
import { tempDir } from '../helpers/temp';

const script = path.join(__dirname, '../../scripts/camvid-small.js');

function study(root: string, args: string[]) {
  const r = spawnSync(process.execPath, [script, ...args], { env: { ...process.env, U2PL_STUDY_ROOT: root }, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`camvid-small.js ${args.join(' ')} exited with ${r.status}: ${r.stderr}`);
  return r.stdout;
}

function writeRun(root: string, variant: string, epochs: number, done: number, about: Record<string, unknown>, phase = 'semi', testMiou = (e: number) => 0.15 * (e + 1), seed = 0) {
  fs.mkdirSync(path.join(root, variant), { recursive: true });
  fs.writeFileSync(path.join(root, variant, 'config.yaml'), `seed: 0\ntrainer:\n  epochs: ${epochs}\n`);
  const dir = path.join(root, variant, 'checkpoints', `seed-${seed}`);
  fs.mkdirSync(dir, { recursive: true });
  const lines: unknown[] = [];
  for (let e = 0; e < done; e++) {
    for (let s = 0; s < 3; s++) lines.push({ type: 'step', epoch: e, step: s, phase, step_s: 1 + s, data_s: 0 });
    lines.push({
      type: 'epoch', epoch: e, phase, miou: 0.1 * (e + 1), best_miou: 0.1 * (e + 1), iou: Array(11).fill(0.5), test_miou: testMiou(e), test_iou: Array(11).fill(0.25),
      seconds: 60, pseudo_label_accuracy: 0.5 + 0.1 * e, kept_share: 0.8,
    });
  }
  fs.writeFileSync(path.join(dir, 'metrics.jsonl'), lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
  fs.writeFileSync(path.join(dir, 'study-run.json'), JSON.stringify(about));
  // u2pl-train's first lines, as it logs the precision and layout it chose.
  fs.writeFileSync(path.join(dir, 'train.log'), 'u2pl-train: x (camvid, 2 epochs) -> y\nu2pl-train: precision fp32 (runtime.autocast), channels-last layout (auto: fp32 on AVX-512) on cpu\n');
}

test('collect: finished runs only, their epochs, median step time and wall time without the pauses; table reads them', () => {
  const root = tempDir('study');
  writeRun(root, 'u2pl', 2, 2, { commit: 'abc1234', threads: 1, parallel: 2, isa: 'amx-bf16', started: '2026-01-01T10:00:00.000Z', finished: '2026-01-01T11:00:00.000Z' });
  writeRun(root, 'study/unfinished', 2, 1, { started: '2026-01-01T10:00:00.000Z' });
  const paused = path.join(root, 'paused.txt');
  fs.writeFileSync(paused, '2026-01-01T10:20:00.000Z 2026-01-01T10:35:00.000Z\n2026-01-01T12:00:00.000Z 2026-01-01T12:10:00.000Z\n');
  expect(study(root, ['collect', '--paused', paused])).toContain('collected 1 finished runs');
  const files = fs.readdirSync(path.join(root, 'results'));
  expect(files).toEqual(['u2pl.seed-0.json']);
  const r = JSON.parse(fs.readFileSync(path.join(root, 'results', files[0]), 'utf8'));
  expect(r).toMatchObject({ variant: 'u2pl', seed: 0, commit: 'abc1234', threads: 1, parallel: 2, isa: 'amx-bf16', precision: 'fp32 channels-last', steps: 6, median_step_s: { semi: 2 }, wall_minutes: 45 });
  expect(r.epochs.map((e: { miou: number }) => e.miou)).toEqual([0.1, 0.2]);
  const table = study(root, ['table']);
  expect(table).toMatch(/\| u2pl \| 0 \| 20\.0 \| 20\.0 \| 30\.0 \| 10\.0 20\.0 \| 50\.0 → 60\.0 \| 80\.0 \| – \/ 2\.00 s \| 45 min \|/);
  expect(table).toContain('Per-class IoU at the end (%, test list; val where a run has none):');
  expect(table).toContain(`| u2pl | 0 | ${Array(11).fill('25.0').join(' | ')} |`);
  expect(table).not.toContain('unfinished');
  expect(table).toContain('Runs: 1 thread(s), 2 run(s) at a time, fp32 channels-last on amx-bf16, commit abc1234.');
  // `run` skips what is collected: nothing is left to do for u2pl.
  expect(study(root, ['run', 'u2pl', '--parallel', '1'])).toContain('0 runs to do');
});

test("run: a reference-* variant goes to the original code's runner (scripts/reference/train_sup.py) with its folder and threads", () => {
  const root = tempDir('study');
  fs.mkdirSync(path.join(root, 'reference-suponly'), { recursive: true });
  fs.writeFileSync(path.join(root, 'reference-suponly', 'config.yaml'), 'seed: 0\ntrainer:\n  epochs: 2\n');
  // /bin/echo in place of python3 writes the command line it was given into the run's train.log.
  const r = spawnSync(process.execPath, [script, 'run', 'reference-suponly', '--threads', '1'], { env: { ...process.env, U2PL_STUDY_ROOT: root, U2PL_PYTHON: '/bin/echo' }, encoding: 'utf8' });
  expect(r.stdout).toContain('done reference-suponly seed 0');
  const dir = path.join(root, 'reference-suponly/checkpoints/seed-0');
  const log = fs.readFileSync(path.join(dir, 'train.log'), 'utf8');
  expect(log.trim()).toBe(`${path.join(__dirname, '../../scripts/reference/train_sup.py')} ${path.join(root, 'reference-suponly')} --threads 1`);
  // The study's record of the run sits apart from u2pl-train's run.json, which would otherwise replace it.
  const about = JSON.parse(fs.readFileSync(path.join(dir, 'study-run.json'), 'utf8'));
  expect(about).toMatchObject({ variant: 'reference-suponly', seed: 0, threads: 1, parallel: 1, isa: expect.stringMatching(/^(amx-bf16|avx512-bf16|avx512|avx2|sse)$/) });
  expect(Date.parse(about.finished)).toBeGreaterThanOrEqual(Date.parse(about.started));
  expect(fs.existsSync(path.join(dir, 'run.json'))).toBe(false);
});

test('run: a run resumed after it stopped records the gap since it last wrote anything, and collect leaves it out of the wall time', () => {
  const root = tempDir('study');
  const hour = 3600e3;
  const started = Date.now() - 3 * hour;
  // Started three hours ago, stopped (session over) two hours ago after its first epoch of two.
  writeRun(root, 'reference-suponly', 2, 1, { started: new Date(started).toISOString(), isa: 'sse' });
  const dir = path.join(root, 'reference-suponly/checkpoints/seed-0');
  const stopped = Math.floor((Date.now() - 2 * hour) / 1000);  // whole seconds: a fraction would come back from the file system rounded
  for (const f of ['metrics.jsonl', 'train.log']) fs.utimesSync(path.join(dir, f), stopped, stopped);
  const r = spawnSync(process.execPath, [script, 'run', 'reference-suponly'], { env: { ...process.env, U2PL_STUDY_ROOT: root, U2PL_PYTHON: '/bin/echo' }, encoding: 'utf8' });
  expect(r.stdout).toContain('done reference-suponly seed 0');
  const about = JSON.parse(fs.readFileSync(path.join(dir, 'study-run.json'), 'utf8'));
  expect(about.started).toBe(new Date(started).toISOString());
  // It stopped on one machine type and resumed on this one: the record says both.
  expect(about.isa).toMatch(/^sse then (amx-bf16|avx512-bf16|avx512|avx2)$/);
  expect(about.gaps).toHaveLength(1);
  expect(Date.parse(about.gaps[0][0])).toBe(stopped * 1000);
  expect(Date.parse(about.gaps[0][1]) - Date.now()).toBeLessThan(60e3);
  // The second epoch "ran" (the stand-in wrote nothing): collect counts one hour, not three, also
  // with a held interval inside the gap (counted once).
  const records = fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8');
  fs.writeFileSync(path.join(dir, 'metrics.jsonl'), records + records.split('\n').filter(Boolean).map((l) => l.replace('"epoch":0', '"epoch":1')).join('\n') + '\n');
  const paused = path.join(root, 'paused.txt');
  fs.writeFileSync(paused, `${new Date(Date.now() - 1.5 * hour).toISOString()} ${new Date(Date.now() - 1.4 * hour).toISOString()}\n`);
  study(root, ['collect', '--paused', paused]);
  const wall = JSON.parse(fs.readFileSync(path.join(root, 'results/reference-suponly.seed-0.json'), 'utf8')).wall_minutes;
  expect(Math.abs(wall - 60)).toBeLessThan(1.5);
});

/** Writes finished one-epoch runs ([variant, phase, test mIoU, seed]) under `root`, collects them and returns the table. */
function tableOf(root: string, runs: [string, string, number, number?][]): string {
  for (const [variant, phase, miou, seed] of runs) writeRun(root, variant, 1, 1, { commit: 'abc1234', threads: 1, parallel: 2 }, phase, () => miou, seed);
  study(root, ['collect']);
  return study(root, ['table']);
}

test('table: the share of the gap between 46 and all labels that each U2PL variant closes, on the test list', () => {
  const table = tableOf(tempDir('study'), [['suponly', 'supervised', 0.2], ['suponly-full', 'supervised', 0.4], ['u2pl-preset', 'semi', 0.35]]);
  expect(table).toContain('| variant | mIoU, mean | share of the gap suponly → suponly-full closed |');
  expect(table).toContain('| u2pl-preset | 35.0 | 75 % (20.0 → 40.0) |');
  // A gap within the seeds' spread (two seeds of the bound, 19 and 23) is not a gap: no share of it.
  const noisy = tableOf(tempDir('study'), [['suponly', 'supervised', 0.2], ['suponly-full', 'supervised', 0.19], ['suponly-full', 'supervised', 0.23, 1], ['u2pl-preset', 'semi', 0.35]]);
  expect(noisy).toContain('| u2pl-preset | 35.0 | – (no gap beyond the seed spread: 20.0 → 21.0 ± 2.8) |');
});

test('table: each U2PL variant against the strongest supervised-only baseline on the test list', () => {
  const table = tableOf(tempDir('study'), [
    ['suponly', 'supervised', 0.2], ['suponly-mfw', 'supervised', 0.24], ['reference-suponly', 'supervised', 0.22], ['u2pl-preset', 'semi', 0.27],
  ]);
  expect(table).toContain('| variant | mIoU, mean ± std | baselines, mean | margin over the strongest (suponly-mfw, 24.0 ± 0.0 (1 seed)) |');
  expect(table).toContain('| u2pl-preset | 27.0 ± 0.0 (1 seed) | suponly 20.0, suponly-mfw 24.0, reference-suponly 22.0 | +3.0 |');
});

test('table: the class-weighted baseline scored with an EMA model is a baseline too, and the margin is taken over it when it is the strongest', () => {
  const root = tempDir('study');
  const table = tableOf(root, [['suponly-mfw', 'supervised', 0.24], ['suponly-mfw-ema', 'supervised', 0.255], ['u2pl-preset', 'semi', 0.27]]);
  expect(table).toContain('| u2pl-preset | 27.0 ± 0.0 (1 seed) | suponly-mfw 24.0, suponly-mfw-ema 25.5 | +1.5 |');
  // A baseline with fewer seeds than the others (still running) is listed, but does not set the bar.
  const partial = tableOf(root, [['suponly-mfw', 'supervised', 0.22, 1]]);
  expect(partial).toContain('margin over the strongest (suponly-mfw, 23.0 ± 1.4 (2 seeds))');
  expect(partial).toContain('| u2pl-preset | 27.0 ± 0.0 (1 seed) | suponly-mfw 23.0, suponly-mfw-ema 25.5 (1 seed) | +4.0 |');
});

test("hold: the study's runs are stopped while the command runs, continue after, and the interval goes into results/pauses.txt, which collect reads", async () => {
  const root = tempDir('study');
  fs.mkdirSync(path.join(root, 'u2pl'), { recursive: true });
  // A stand-in for a run: a process given a variant folder under the study root, as u2pl-train is.
  const run = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', path.join(root, 'u2pl')], { stdio: 'ignore' });
  const state = () => fs.readFileSync(`/proc/${run.pid}/stat`, 'utf8').replace(/^.*\) /, '')[0];
  try {
    await new Promise((resolve) => setTimeout(resolve, 200));
    // The held command reads the run's state: T (stopped).
    const held = study(root, ['hold', '--', process.execPath, '-e', `process.stdout.write(require('fs').readFileSync('/proc/${run.pid}/stat', 'utf8').replace(/^.*\\) /, '')[0])`]);
    expect(held).toBe('T');
    expect(state()).not.toBe('T');
  } finally {
    run.kill('SIGKILL');
  }
  const lines = fs.readFileSync(path.join(root, 'results/pauses.txt'), 'utf8').trim().split('\n');
  expect(lines).toHaveLength(1);
  const [a, b] = lines[0].split(' ').map(Date.parse);
  expect(b).toBeGreaterThanOrEqual(a);
  // collect leaves out the intervals of results/pauses.txt without being told.
  fs.writeFileSync(path.join(root, 'results/pauses.txt'), '2026-01-01T10:20:00.000Z 2026-01-01T10:35:00.000Z\n');
  const about = { commit: 'abc1234', threads: 1, parallel: 2, started: '2026-01-01T10:00:00.000Z', finished: '2026-01-01T11:00:00.000Z' };
  writeRun(root, 'u2pl', 1, 1, about);
  study(root, ['collect']);
  expect(JSON.parse(fs.readFileSync(path.join(root, 'results/u2pl.seed-0.json'), 'utf8')).wall_minutes).toBe(45);
  // A command that fails passes its status on; the runs are continued all the same.
  expect(spawnSync(process.execPath, [script, 'hold', '--', 'false'], { env: { ...process.env, U2PL_STUDY_ROOT: root } }).status).toBe(1);
});
