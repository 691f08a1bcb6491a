import { spawn } from 'child_process';
import fs from 'fs';
import path from 'path';
import { loadConfig } from '../../lib/config/config';
import { Model, readCheckpoint } from '../../lib';
import { train } from '../../lib/train/train';
import { tinyConfig, writeExperiment } from '../helpers/experiment';
import { asNumbers, maxAbsDiff } from '../helpers/tensors';

const cli = (name: string) => path.join(__dirname, `../../lib/cli/${name}.ts`);
const tsNode = [require.resolve('ts-node/dist/bin.js')];

function readMetrics(dir: string) {
  return fs.readFileSync(path.join(dir, 'checkpoints/metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
}

/** Reads two runs' last checkpoints: the same step, and student and teacher equal (to 1e-4); returns both. */
async function sameStepSameNetworks(dirA: string, dirB: string) {
  const a = (await readCheckpoint(path.join(dirA, 'checkpoints/ckpt.pth'))) as Record<string, any>;
  const b = (await readCheckpoint(path.join(dirB, 'checkpoints/ckpt.pth'))) as Record<string, any>;
  expect([b.epoch, b.step_in_epoch]).toEqual([a.epoch, a.step_in_epoch]);
  for (const key of ['model_state', 'teacher_state']) {
    for (const name of Object.keys(a[key])) {
      const diff = maxAbsDiff(asNumbers(a[key][name].data), asNumbers(b[key][name].data));
      expect([key, name, diff < 1e-4]).toEqual([key, name, true]);
    }
  }
  return [a, b];
}

describe('train()', () => {
  test('supervised-only: checkpoints, metrics.jsonl and report.html', async () => {
    const dir = writeExperiment(tinyConfig(false));
    const result = await train(loadConfig(dir));
    expect(result.globalStep).toBe(4); // 4 labeled images, batch 2, 2 epochs
    for (const f of ['ckpt.pth', 'ckpt_best.pth', 'metrics.jsonl', 'report.html']) expect(fs.existsSync(path.join(dir, 'checkpoints', f))).toBe(true);
    const metrics = readMetrics(dir);
    expect(metrics.filter((m) => m.type === 'step')).toHaveLength(4);
    const epochs = metrics.filter((m) => m.type === 'epoch');
    expect(epochs.map((e) => e.epoch)).toEqual([0, 1]);
    expect(epochs[1].iou).toHaveLength(4);
    const ckpt = (await readCheckpoint(path.join(dir, 'checkpoints/ckpt.pth'))) as Record<string, unknown>;
    expect(ckpt.epoch).toBe(2);
    expect(Object.keys(ckpt)).toEqual(expect.arrayContaining(['model_state', 'optimizer_state', 'best_miou', 'config', 'rng_state']));
    const report = fs.readFileSync(path.join(dir, 'checkpoints/report.html'), 'utf8');
    expect(report).toContain('<svg');
    expect(report).toContain('data:image/png;base64,');
  });

  test('supervised-only with n = 1 (mod batch): the last image joins the batch before and the epoch completes', async () => {
    const base = tinyConfig(false);
    const dataset = base.dataset as Record<string, any>;
    const dir = writeExperiment({
      ...base,
      dataset: { ...dataset, procedural: { ...dataset.procedural, labeled: 9 }, train: { ...dataset.train, data_list: 'data/splits/9/labeled.txt' }, batch_size: 4 },
      trainer: { ...(base.trainer as object), epochs: 1 },
    });
    const result = await train(loadConfig(dir));
    expect(result.globalStep).toBe(2); // batches of 4 and 5
    expect(readMetrics(dir).filter((m) => m.type === 'step')).toHaveLength(2);
  });

  test('a batch of one image is refused before training, naming the key', async () => {
    const base = tinyConfig(false);
    const dir = writeExperiment({ ...base, dataset: { ...(base.dataset as object), batch_size: 1 } });
    await expect(train(loadConfig(dir))).rejects.toThrow('dataset.batch_size: must be at least 2 to train, got 1');
  });

  test('U2PL: warm-up then semi-supervised steps with all three losses; memory banks saved', async () => {
    const dir = writeExperiment(tinyConfig(true));
    const result = await train(loadConfig(dir));
    expect(result.globalStep).toBe(12); // 12 unlabeled / batch 2 = 6 steps, 2 epochs
    const steps = readMetrics(dir).filter((m) => m.type === 'step');
    expect(steps.slice(0, 6).every((s) => s.phase === 'warmup' && s.unsupervised === 0)).toBe(true);
    expect(steps.slice(6).every((s) => s.phase === 'semi' && s.unsupervised > 0)).toBe(true);
    expect(steps.slice(6).some((s) => s.contrastive > 0)).toBe(true);
    const ckpt = (await readCheckpoint(path.join(dir, 'checkpoints/ckpt.pth'))) as Record<string, any>;
    expect(ckpt.teacher_state).toBeDefined();
    expect(ckpt.memory_bank.keys).toHaveLength(4);
    expect(ckpt.memory_bank.capacity).toEqual([500, 300, 300, 300]);
    // The evaluated model loads into a fresh Model (teacher_state preferred).
    const model = Model.fromNetConfig(loadConfig(dir).raw.net);
    const report = await model.load(path.join(dir, 'checkpoints/ckpt_best.pth'));
    expect(report.key).toBe('teacher_state');
    expect(report.missing).toEqual([]);
  });

  test('N steps at once equal N/2, resume, N/2 (same weights, optimizer, teacher, banks, alignment state with a running share; strong views)', async () => {
    const trainer = tinyConfig(true).trainer as Record<string, any>;
    const cfg = tinyConfig(true, { trainer: { ...trainer, sup_only_epoch: 0, unsupervised: { ...trainer.unsupervised, distribution_alignment: 'hard', alignment_max_ratio: 1.1, alignment_share: 'running', strong_augment: true }, pseudo_label_metrics: true } });
    const once = writeExperiment(cfg);
    await train(loadConfig(once), { maxSteps: 8 });
    const split = writeExperiment(cfg);
    const first = await train(loadConfig(split), { maxSteps: 4 });
    expect(first.interrupted).toBe(true);
    const mid = (await readCheckpoint(path.join(split, 'checkpoints/ckpt.pth'))) as Record<string, any>;
    expect([mid.epoch, mid.step_in_epoch]).toEqual([0, 4]);
    // The epoch's pseudo-label counts so far, per class too, travel in the checkpoint.
    const stats = JSON.parse(mid.epoch_stats);
    const sum = (v: number[]) => v.reduce((x, y) => x + y, 0);
    expect([stats.plPixels > 0, sum(stats.plClassTruth), sum(stats.plClassRight)]).toEqual([true, stats.plPixels, stats.plCorrect]);
    await train(loadConfig(split), { maxSteps: 8 });
    const [a, b] = await sameStepSameNetworks(once, split);
    // The banks hold the same keys in the same order (oldest first), class by class.
    const banks = (x: Record<string, any>) => x.memory_bank.keys as { data: Float32Array; shape: number[] }[];
    expect(banks(a).some((k) => k.shape[0] > 0)).toBe(true);
    banks(a).forEach((k, c) => {
      const other = banks(b)[c];
      expect([c, other.shape]).toEqual([c, k.shape]);
      expect([c, maxAbsDiff(Array.from(k.data), Array.from(other.data)) < 1e-4]).toEqual([c, true]);
    });
    // Distribution alignment resumes with the class statistics it had, and its epoch line says what it did.
    expect(JSON.parse(b.class_distributions)).toEqual(JSON.parse(a.class_distributions));
    expect(JSON.parse(a.class_distributions).updates).toBe(8);
    // alignment_share: running reaches the run: the running pseudo-label counts are kept (and resumed, above).
    expect(sum(JSON.parse(a.class_distributions).pseudo as number[])).toBeGreaterThan(0);
    // alignment_max_ratio reaches the run, resumed or not: the spread of the factors is at its bound.
    const logScale = JSON.parse(a.class_distributions).logScale as number[];
    expect(Math.max(...logScale) - Math.min(...logScale)).toBeCloseTo(Math.log(1.1), 9);
    const epoch = readMetrics(split).find((m) => m.type === 'epoch');
    for (const key of ['labeled_class_share', 'teacher_class_share', 'pseudo_label_class_share', 'alignment_scale']) expect([key, epoch[key]]).toEqual([key, expect.any(Array)]);
    expect(epoch.alignment_scale).toHaveLength(4);
    const straight = readMetrics(once).find((m) => m.type === 'epoch');
    expect(epoch.pseudo_label_iou).toHaveLength(4);
    epoch.pseudo_label_iou.forEach((v: number | null, c: number) => expect([c, Math.abs((v ?? -1) - (straight.pseudo_label_iou[c] ?? -1)) < 0.01]).toEqual([c, true]));
    // metrics.jsonl holds each step once.
    expect(readMetrics(split).filter((m) => m.type === 'step').map((m) => m.global_step)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });

  test('saver.save_every_steps: a run lost mid-epoch resumes from the last periodic checkpoint, as if never stopped', async () => {
    const trainer = tinyConfig(true).trainer as Record<string, any>;
    const cfg = tinyConfig(true, { trainer: { ...trainer, sup_only_epoch: 0 } });  // 2 epochs of 6 U2PL steps
    const once = writeExperiment(cfg);
    await train(loadConfig(once));
    const lost = writeExperiment({ ...cfg, saver: { ...(cfg.saver as object), save_every_steps: 4 } });
    // The process dies after global step 10: the last checkpoints were at steps 4, 6 (epoch end) and 8.
    const crash = (p: { globalStep: number }) => { if (p.globalStep === 10) throw new Error('machine lost'); };
    await expect(train(loadConfig(lost), { onProgress: crash })).rejects.toThrow('machine lost');
    const mid = (await readCheckpoint(path.join(lost, 'checkpoints/ckpt.pth'))) as Record<string, number>;
    expect([mid.epoch, mid.step_in_epoch]).toEqual([1, 2]);
    await train(loadConfig(lost));
    await sameStepSameNetworks(once, lost);
    expect(readMetrics(lost).filter((m) => m.type === 'step').map((m) => m.global_step)).toEqual([...Array(12).keys()]);
    const bad = writeExperiment({ ...cfg, saver: { ...(cfg.saver as object), save_every_steps: 0 } });
    expect(() => loadConfig(bad)).toThrow(/saver\.save_every_steps.*0/);
  });
});

describe('the command line', () => {
  test('SIGINT mid-run saves a checkpoint and exits; the next run resumes', async () => {
    const cfg = tinyConfig(false, { trainer: { ...(tinyConfig(false).trainer as object), epochs: 200 } });
    const dir = writeExperiment(cfg);
    const child = spawn(process.execPath, [...tsNode, '--transpile-only', cli('train'), dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    await new Promise<void>((resolve) => {
      child.stderr.on('data', (d: Buffer) => {
        err += d.toString();
        if (/epoch 2\/200 step/.test(err) && !child.killed) child.kill('SIGINT');
      });
      child.on('exit', () => resolve());
    });
    expect(child.exitCode).toBe(130);
    expect(err).toContain('interrupted, saving a checkpoint');
    const ckpt = (await readCheckpoint(path.join(dir, 'checkpoints/ckpt.pth'))) as Record<string, number>;
    expect(ckpt.global_step).toBeGreaterThan(2);
    const again = await train(loadConfig(dir), { maxSteps: ckpt.global_step + 2, onLog: (m) => { err += `${m}\n`; } });
    expect(err).toMatch(/resumed from .*ckpt\.pth/);
    expect(again.globalStep).toBe(ckpt.global_step + 2);
  }, 180000);
});

describe('u2pl-eval, u2pl-infer and u2pl-data on a trained run', () => {
  const run = (name: string, args: string[]) => new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
    const child = spawn(process.execPath, [...tsNode, '--transpile-only', cli(name), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    child.on('exit', (code) => resolve({ code, out, err }));
  });

  test('evaluation table, predictions written, dataset check summary; a held-out test list scored each epoch', async () => {
    const base = tinyConfig(false, { trainer: { ...(tinyConfig(false).trainer as object), epochs: 1 } });
    const dataset = base.dataset as Record<string, any>;
    // The procedural val list halved: val picks the best checkpoint, test is only scored.
    const dir = writeExperiment({
      ...base,
      dataset: { ...dataset, val: { ...dataset.val, data_list: 'val-select.txt' }, test: { ...dataset.val, data_list: 'val-report.txt' } },
    });
    fs.writeFileSync(path.join(dir, 'val-select.txt'), 'images/val_0016.png\nimages/val_0017.png\n');
    fs.writeFileSync(path.join(dir, 'val-report.txt'), 'images/val_0018.png\nimages/val_0019.png\n');
    await train(loadConfig(dir));
    const [epoch] = readMetrics(dir).filter((m) => m.type === 'epoch');
    expect(epoch.test_iou).toHaveLength(4);
    expect(epoch.test_miou).toBeCloseTo(epoch.test_iou.reduce((a: number, b: number) => a + b, 0) / 4, 12);
    expect(epoch.best_miou).toBe(epoch.miou);
    expect(fs.readFileSync(path.join(dir, 'checkpoints/report.html'), 'utf8')).toContain('test mIoU (held out)');
    // u2pl-eval --split test scores the same two images with the same model (one at a time, whole).
    const held = await run('eval', [dir, '--split', 'test']);
    expect(held.code).toBe(0);
    expect(held.err).toContain('u2pl-eval: 2 images');
    expect(Math.abs(Number(/mIoU\s+(\d+\.\d\d)/.exec(held.out)?.[1]) - 100 * epoch.test_miou)).toBeLessThan(0.5);
    const saveDir = path.join(dir, 'eval');
    const ev = await run('eval', [dir, '--save-dir', saveDir, '--scales', '1,1.25', '--flip']);
    expect(ev.code).toBe(0);
    expect(ev.out).toMatch(/^class\s+IoU %/);
    expect(ev.out).toMatch(/mIoU\s+\d+\.\d\d/);
    expect(fs.readdirSync(saveDir).filter((f) => f.endsWith('_colour.png'))).toHaveLength(2);
    const slide = await run('eval', [dir, '--mode', 'slide', '--crop', '32']);
    expect(slide.code).toBe(0);
    const out = path.join(dir, 'pred');
    const inf = await run('infer', [path.join(dir, 'data/images/val_0016.png'), '--config', path.join(dir, 'config.yaml'), '--out', out]);
    expect(inf.code).toBe(0);
    expect(fs.readdirSync(out).sort()).toEqual(['val_0016.png', 'val_0016_overlay.png']);
    const check = await run('data', ['check', dir]);
    expect(check.code).toBe(0);
    expect(check.out).toContain('labeled: 4 images, sizes 40x40 x4');
    expect(check.out).toContain('test: 2 images, sizes 40x40 x2');
    expect(check.out).toContain('no problems found');
    const bad = await run('train', [path.join(dir, 'nope')]);
    expect(bad.code).toBe(2);
    expect(bad.err).toBe(`u2pl-train: ${path.join(dir, 'nope')}: no such file or folder\n`);
  }, 180000);
});

describe('loadModel()', () => {
  test('takes the layout runtime.channels_last chooses (auto: per instruction set) and predicts the same classes either way', async () => {
    const { loadModel, predict } = await import('../../lib/eval/api');
    const { runtimePrecision } = await import('../../lib/train/train');
    const dir = writeExperiment(tinyConfig(false, { trainer: { ...(tinyConfig(false).trainer as object), epochs: 1 } }));
    const config = loadConfig(dir);
    await train(config);
    const auto = await loadModel(config);
    expect(auto.channelsLast).toBe(runtimePrecision(config).channelsLast);
    const channelsLast = await loadModel({ ...config, runtime: { ...config.runtime, channelsLast: true } });
    expect(channelsLast.channelsLast).toBe(true);
    const contiguous = await loadModel({ ...config, runtime: { ...config.runtime, channelsLast: false } });
    expect(contiguous.channelsLast).toBe(false);
    const image = path.join(dir, 'data/images/val_0016.png');
    const [a, b] = [await predict(channelsLast, image), await predict(contiguous, image)];
    expect(Array.from(a.prediction.data)).toEqual(Array.from(b.prediction.data));
    expect(maxAbsDiff(a.confidence.data, b.confidence.data)).toBeLessThan(1e-4);
  }, 120000);
});

describe('AddonTrainer.dispose()', () => {
  test('releases the native memory at once; the trainer and its models refuse work after', async () => {
    const { native } = await import('../../lib/native');
    const trainer = new (native().AddonTrainer)({ model: { depth: 18, deepStem: false, numClasses: 3, innerPlanes: 8, headPlanes: 8, dilations: [1, 2, 3], repHead: false }, semi: false });
    const student = trainer.student();
    const images = { data: new Float32Array(2 * 3 * 32 * 32).fill(0.5), shape: [2, 3, 32, 32] };
    const labels = { data: new Uint8Array(2 * 32 * 32).fill(1), shape: [2, 32, 32] };
    const r = await trainer.step({ phase: 'supervised', labeledImages: images, labels, lrBackbone: 0.01, lrHead: 0.01 });
    expect(Number.isFinite(r.loss)).toBe(true);
    expect(Object.values(r.phases).reduce((a, b) => a + b, 0)).toBeCloseTo(r.seconds, 2);
    trainer.dispose();
    expect(() => trainer.step({ phase: 'supervised', labeledImages: images, labels, lrBackbone: 0.01, lrHead: 0.01 })).toThrow('this AddonTrainer was disposed');
    expect(() => student.forward(images)).toThrow("this model's memory was released");
    trainer.dispose(); // twice is fine
  });
});
