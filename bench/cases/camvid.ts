/**
 * The camvid-small step (experiments/camvid-small: 240x180 CamVid, crop 161, batch 2 + 2, R50
 * deep stem OS16, 11 classes) beside the reference's step in plain torch.nn (bench/python/
 * u2pl_step.py) on the same LibTorch and threads: U2PL, warm-up and supervised-only steps and their
 * network floors, fp32 and bf16 + channels-last, each side in its own process from the same
 * initial weights, full memory banks and CamVid batches. Ratios, a per-phase breakdown and the
 * peak RSS of each process.
 */
import { spawnSync } from 'child_process';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { readCheckpoint, writeCheckpoint } from '../../lib/checkpoint';
import { loadConfig } from '../../lib/config/config';
import { BatchLoader } from '../../lib/data/loader';
import { prepareData } from '../../lib/data/prepare';
import { SemiSupervisedSampler } from '../../lib/data/sampler';
import { native, packageRoot } from '../../lib/native';
import { trainerOptions } from '../../lib/train/train';
import { BenchContext, pythonWithTorch, record } from '../harness';

const STEPS = 6;

/** Real batches of the camvid-small recipe and initial weights with full banks, in files both sides read. */
async function prepareInputs(dir: string, semiConfig: string): Promise<{ init: string; batches: string }> {
  const c = loadConfig(semiConfig);
  const data = await prepareData(c.dataset, c.net.model.numClasses);
  const sampler = new SemiSupervisedSampler(data.labeled.length, data.unlabeled.length, 2, 0);
  const plan = sampler.epoch(0);
  const base = { augment: c.dataset.train.augment, train: true, labelOptions: data.info.labelOptions, classes: 11, ignoreLabel: 255, seed: 0 };
  const labeled = new BatchLoader({ ...base, samples: data.labeled, withLabels: true });
  const unlabeled = new BatchLoader({ ...base, samples: data.unlabeled, withLabels: false });
  const steps = [];
  for (let k = 0; k < STEPS; k++) {
    const l = await labeled.loadBatch(plan.labeled[k], 0, k);
    const u = await unlabeled.loadBatch(plan.unlabeled[k], 0, k);
    steps.push({
      labeled_images: { data: l.images, shape: [2, 3, l.height, l.width] },
      labels: { data: l.labels as Uint8Array, shape: [2, l.height, l.width] },
      unlabeled_images: { data: u.images, shape: [2, 3, u.height, u.width] },
    });
  }
  const batches = path.join(dir, 'batches.pth');
  await writeCheckpoint(batches, { steps });
  // Weights from the config's initialisation, banks filled to capacity (the steady state of a run).
  const trainer = new (native().AddonTrainer)(trainerOptions(c));
  const init = path.join(dir, 'init.pth');
  await trainer.save(init);
  const state = (await readCheckpoint(init)) as Record<string, any>;
  const capacity = state.memory_bank.capacity as number[];
  let seed = 1;
  state.memory_bank.keys = capacity.map((n) => {
    const keys = new Float32Array(n * 256);
    for (let i = 0; i < keys.length; i++) keys[i] = ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
    return { data: keys, shape: [n, 256] };
  });
  await writeCheckpoint(init, state);
  return { init, batches };
}

function child(command: string, args: string[], what: string): Record<string, any> {
  const r = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, env: { ...process.env, OMP_NUM_THREADS: undefined } });
  if (r.status !== 0) throw new Error(`${what} failed:\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop() as string) as Record<string, any>;
}

export async function benchCamvid(ctx: BenchContext): Promise<void> {
  const root = packageRoot();
  const semiConfig = path.join(root, 'experiments/camvid-small/u2pl/config.yaml');
  const supervisedConfig = path.join(root, 'experiments/camvid-small/suponly/config.yaml');
  const camvid = path.resolve(root, '../shared/data/camvid');
  if (!process.env.U2PL_DATA_ROOT && !fs.existsSync(camvid)) {
    process.stdout.write(`# camvid: CamVid not found at ${camvid} (set U2PL_DATA_ROOT); skipped\n`);
    return;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'u2pl-bench-camvid-'));
  try {
    const { init, batches } = await prepareInputs(dir, semiConfig);
    if (process.env.U2PL_BENCH_PREPARE_ONLY) {
      process.stdout.write(`# inputs prepared in ${dir}\n`);
      return;
    }
    const runs = ctx.quick ? 2 : 5;
    const warmup = ctx.quick ? 1 : 2;
    const python = pythonWithTorch();
    const contrastive = loadConfig(semiConfig).raw.trainer as Record<string, any>;
    const pythonKinds = ['u2pl', 'floor.u2pl', 'warmup', 'supervised'];
    for (const [precision, autocast, channelsLast] of [['fp32', false, false], ['bf16+cl', true, true]] as const) {
      const fields = { recipe: 'camvid-small', size: 161, batch: '2+2', depth: 50, os: 16, classes: 11, precision };
      const kinds = ['u2pl', 'floor.u2pl', 'warmup', 'floor.warmup', 'supervised', 'floor.supervised'];
      // One process per side and step kind: each peak RSS is that step's alone.
      const ours: Record<string, any> = {};
      const py: Record<string, any> = {};
      for (const kind of kinds) {
        ours[kind] = child(process.execPath, [path.join(root, 'dist-bench/bench/child/camvid-step.js'), JSON.stringify({
          semiConfig, supervisedConfig, init, batches, autocast, channelsLast, warmup, runs, kinds: [kind], threads: ctx.threads,
        })], `the u2pl camvid step (${kind})`);
        if (python && pythonKinds.includes(kind)) {
          py[kind] = child(python, [path.join(root, 'bench/python/u2pl_step.py'), JSON.stringify({
            init, batches, autocast, channels_last: channelsLast, warmup, runs, threads: ctx.threads, classes: 11, lr: 0.01,
            kinds: [kind], contrastive: contrastive.contrastive,
          })], `the Python reference step (${kind})`);
        }
      }
      for (const kind of kinds) {
        const mine = ours[kind];
        const m = record(ctx, `step.camvid.${kind}`, mine.steps[kind].seconds, { ...fields, impl: 'u2pl' });
        m.peak_rss_mb = Math.round(mine.peak_rss_mb as number);
        const floor = ours[`floor.${kind}`];
        if (floor) m.overhead_vs_floor = Number((m.median_s / median(floor.steps[`floor.${kind}`].seconds)).toFixed(3));
        const theirs = py[kind];
        if (theirs) {
          const p = record(ctx, `step.camvid.${kind}`, theirs.steps[kind].seconds, { ...fields, impl: `python-torch-${theirs.torch as string}` });
          p.peak_rss_mb = Math.round(theirs.peak_rss_mb as number);
          m.vs_python = Number((p.median_s / m.median_s).toFixed(3));
        }
        if (!kind.startsWith('floor.')) {
          process.stdout.write(`# ${precision} ${kind}: u2pl ${fmt(mine.steps[kind].phases)}\n`);
          if (theirs) process.stdout.write(`# ${precision} ${kind}: python ${fmt(theirs.steps[kind].phases)}\n`);
        }
      }
      if (!python) process.stdout.write('# python3 with torch not found: the Python lines are skipped (apt-get install python3-torch)\n');
    }
  } finally {
    if (process.env.U2PL_BENCH_KEEP || process.env.U2PL_BENCH_PREPARE_ONLY) process.stdout.write(`# kept the inputs in ${dir}\n`);
    else fs.rmSync(dir, { recursive: true, force: true });
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function fmt(phases: Record<string, number>): string {
  return Object.entries(phases).filter(([, v]) => v > 0.0005).map(([k, v]) => `${k} ${(1000 * v).toFixed(0)} ms`).join(', ');
}
