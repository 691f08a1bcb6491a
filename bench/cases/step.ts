/**
 * Training steps beside the reference's step in plain torch.nn (bench/python/u2pl_step.py) on the
 * same LibTorch and threads, each side in its own process (its peak RSS is the step's) from the
 * same initial weights, full memory banks and batches; fp32, fp32 + channels-last and bf16 +
 * channels-last (`--precision` picks), each side in the same layout; the fp32 + channels-last lines
 * are also compared with PyTorch's plain fp32 step (`vs_python_fp32`: the reference as users run it).
 *   camvid-small: experiments/camvid-small (240x180 CamVid, crop 161, batch 2 + 2, R50 deep stem
 *     OS16, 11 classes), real CamVid batches; U2PL, warm-up and supervised-only steps and their floors.
 *   voc-321: R50 deep stem OS8, 321 x 321, batch 2 + 2, 21 classes, synthetic batches; the U2PL step
 *     and its floor.
 * A floor is the same network passes and SGD step with a plain CE and nothing else.
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
import { AddonTrainerOptions, native, packageRoot, Tensor } from '../../lib/native';
import { trainerOptions } from '../../lib/train/train';
import { BenchContext, pythonWithTorch, record } from '../harness';

type StepBatch = { labeled_images: Tensor; labels: Tensor; unlabeled_images: Tensor };

interface Recipe {
  name: string;
  semi: AddonTrainerOptions;
  supervised: AddonTrainerOptions;
  fields: Record<string, string | number>;
  kinds: string[];
  /** Arguments of the Python side: its network, classes, contrastive section, epochs. */
  python: Record<string, unknown>;
  epochs: number;
  /** Timed steps per kind in a full run (each side); a quick run times 2. */
  runs: number;
  batches: () => Promise<StepBatch[]>;
}

const STEPS = 6;

/** The precisions a run compares: name, autocast dtype, channels-last. */
export const PRECISIONS = [['fp32', null, false], ['fp32+cl', null, true], ['bf16+cl', 'bfloat16', true]] as const;

function lcg(seed: number): () => number {
  let s = seed;
  return () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
}

function camvidRecipe(): Recipe | undefined {
  const root = packageRoot();
  const semiConfig = loadConfig(path.join(root, 'experiments/camvid-small/u2pl/config.yaml'));
  const supConfig = loadConfig(path.join(root, 'experiments/camvid-small/suponly/config.yaml'));
  if (!fs.existsSync(semiConfig.dataset.train.dataRoot)) {
    process.stdout.write(`# step camvid-small: CamVid not found at ${semiConfig.dataset.train.dataRoot} (set U2PL_DATA_ROOT); skipped\n`);
    return undefined;
  }
  const raw = semiConfig.raw.trainer as Record<string, unknown>;
  return {
    name: 'camvid',
    semi: trainerOptions(semiConfig),
    supervised: trainerOptions(supConfig),
    fields: { recipe: 'camvid-small', size: 161, batch: '2+2', depth: 50, os: 16, classes: 11 },
    kinds: ['u2pl', 'floor.u2pl', 'warmup', 'floor.warmup', 'supervised', 'floor.supervised'],
    python: { classes: 11, contrastive: raw.contrastive },
    epochs: semiConfig.trainer.epochs,
    runs: 8,
    batches: async () => {
      const data = await prepareData(semiConfig.dataset, 11);
      const plan = new SemiSupervisedSampler(data.labeled.length, data.unlabeled.length, 2, 0).epoch(0);
      const base = { augment: semiConfig.dataset.train.augment, train: true, labelOptions: data.info.labelOptions, classes: 11, ignoreLabel: 255, seed: 0 };
      const labeled = new BatchLoader({ ...base, samples: data.labeled, withLabels: true });
      const unlabeled = new BatchLoader({ ...base, samples: data.unlabeled, withLabels: false });
      const out: StepBatch[] = [];
      for (let k = 0; k < STEPS; k++) {
        const l = await labeled.loadBatch(plan.labeled[k], 0, k);
        const u = await unlabeled.loadBatch(plan.unlabeled[k], 0, k);
        out.push({
          labeled_images: { data: l.images, shape: [2, 3, l.height, l.width] }, labels: { data: l.labels as Uint8Array, shape: [2, l.height, l.width] },
          unlabeled_images: { data: u.images, shape: [2, 3, u.height, u.width] },
        });
      }
      return out;
    },
  };
}

function vocRecipe(): Recipe {
  const model = { depth: 50, numClasses: 21, repHead: true, multiGrid: true, replaceStrideWithDilation: [false, true, true] as [boolean, boolean, boolean] };
  const contrastive = {
    negative_high_entropy: true, low_rank: 3, high_rank: 20, current_class_threshold: 0.3, current_class_negative_threshold: 1,
    low_entropy_threshold: 20, num_negatives: 50, num_queries: 256, temperature: 0.5, loss_weight: 1,
  };
  return {
    name: 'voc321',
    semi: { model, semi: true, seed: 0, momentum: 0.9, weightDecay: 1e-4, mix: 'cutmix', unsupervised: { weight: 1 }, contrastive: { weight: 1 } },
    supervised: { model: { ...model, repHead: false }, semi: false, seed: 0 },
    fields: { recipe: 'voc-321', size: 321, batch: '2+2', depth: 50, os: 8, classes: 21 },
    kinds: ['u2pl', 'floor.u2pl'],
    python: { classes: 21, contrastive, net: { replace_stride_with_dilation: [false, true, true], dilations: [12, 24, 36] } },
    epochs: 80,
    runs: 4,  // ~25 s a step
    batches: async () => {
      const rand = lcg(5);
      const size = 321;
      const images = () => ({ data: Float32Array.from({ length: 2 * 3 * size * size }, () => rand() * 4 - 2), shape: [2, 3, size, size] });
      // Labels in blobs (8 x 8 cells of one class): a realistic number of classes and anchors per image.
      const labels = () => {
        const data = new Uint8Array(2 * size * size);
        const cells = Array.from({ length: 2 * 64 }, () => Math.floor(rand() * 21));
        for (let b = 0; b < 2; b++) for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) {
          data[(b * size + y) * size + x] = cells[b * 64 + Math.floor((y * 8) / size) * 8 + Math.floor((x * 8) / size)];
        }
        return { data, shape: [2, size, size] };
      };
      return Array.from({ length: STEPS }, () => ({ labeled_images: images(), labels: labels(), unlabeled_images: images() }));
    },
  };
}

/** The initial weights, with the banks filled to capacity (a run's steady state), in a file both sides read. */
async function initialState(dir: string, options: AddonTrainerOptions): Promise<string> {
  const trainer = new (native().AddonTrainer)(options);
  const init = path.join(dir, 'init.pth');
  await trainer.save(init);
  trainer.dispose();
  const state = (await readCheckpoint(init)) as Record<string, any>;
  const rand = lcg(1);
  state.memory_bank.keys = (state.memory_bank.capacity as number[]).map((n) => ({ data: Float32Array.from({ length: n * 256 }, () => rand() * 2 - 1), shape: [n, 256] }));
  await writeCheckpoint(init, state);
  return init;
}

function child(command: string, args: string[], what: string): Record<string, any> {
  const r = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`${what} failed:\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop() as string) as Record<string, any>;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function fmt(phases: Record<string, number>): string {
  return Object.entries(phases).filter(([, v]) => v > 0.0005).map(([k, v]) => `${k} ${(1000 * v).toFixed(0)} ms`).join(', ');
}

async function compare(ctx: BenchContext, recipe: Recipe): Promise<void> {
  const root = packageRoot();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `u2pl-bench-${recipe.name}-`));
  try {
    const batches = path.join(dir, 'batches.pth');
    await writeCheckpoint(batches, { steps: await recipe.batches() });
    const init = await initialState(dir, recipe.semi);
    if (process.env.U2PL_BENCH_PREPARE_ONLY) {
      process.stdout.write(`# ${recipe.name}: inputs prepared in ${dir}\n`);
      return;
    }
    const runs = ctx.quick ? 2 : recipe.runs;
    const warmup = ctx.quick ? 1 : 2;
    const python = pythonWithTorch();
    const schedule = { dropPercentile: 100 - 20 * (1 - 1 / recipe.epochs), alpha: 20 * (1 - 1 / recipe.epochs) };
    const plainPython: Record<string, number> = {};
    for (const [precision, autocast, channelsLast] of PRECISIONS) {
      if (ctx.precisions && !ctx.precisions.includes(precision)) continue;
      const fields = { ...recipe.fields, precision };
      const semi = { ...recipe.semi, autocast, channelsLast };
      const supervised = { ...recipe.supervised, autocast, channelsLast };
      const ours: Record<string, any> = {};
      const py: Record<string, any> = {};
      for (const kind of recipe.kinds) {
        // A step kind and its floor alternate in one process (its peak RSS is the step's).
        if (!kind.startsWith('floor.')) {
          const pair = recipe.kinds.includes(`floor.${kind}`) ? [kind, `floor.${kind}`] : [kind];
          const r = child(process.execPath, [path.join(root, 'dist-bench/bench/child/step.js'), JSON.stringify({
            semi, supervised, init, batches, warmup, runs, kinds: pair, threads: ctx.threads, ...schedule,
          })], `the u2pl step (${recipe.name}, ${kind})`);
          for (const k of pair) ours[k] = r;
        }
        if (python && ['u2pl', 'floor.u2pl', 'warmup', 'supervised'].includes(kind)) {
          py[kind] = child(python, [path.join(root, 'bench/python/u2pl_step.py'), JSON.stringify({
            ...recipe.python, init, batches, autocast: autocast !== null, channels_last: channelsLast, warmup, runs, threads: ctx.threads,
            lr: 0.01, kinds: [kind], epochs: recipe.epochs,
          })], `the Python reference step (${recipe.name}, ${kind})`);
        }
      }
      for (const kind of recipe.kinds) {
        const m = record(ctx, `step.${recipe.name}.${kind}`, ours[kind].steps[kind].seconds, { ...fields, impl: 'u2pl' });
        m.peak_rss_mb = Math.round(ours[kind].peak_rss_mb as number);
        const floor = ours[`floor.${kind}`];
        if (floor) m.overhead_vs_floor = Number((m.median_s / median(floor.steps[`floor.${kind}`].seconds)).toFixed(3));
        const theirs = py[kind];
        if (theirs) {
          const p = record(ctx, `step.${recipe.name}.${kind}`, theirs.steps[kind].seconds, { ...fields, impl: `python-torch-${theirs.torch as string}` });
          p.peak_rss_mb = Math.round(theirs.peak_rss_mb as number);
          m.vs_python = Number((p.median_s / m.median_s).toFixed(3));
          if (precision === 'fp32') plainPython[kind] = p.median_s;
        }
        if (precision === 'fp32+cl' && plainPython[kind]) m.vs_python_fp32 = Number((plainPython[kind] / m.median_s).toFixed(3));
        process.stdout.write(`# ${recipe.name} ${precision} ${kind}: u2pl ${fmt(ours[kind].steps[kind].phases)}\n`);
        if (theirs) process.stdout.write(`# ${recipe.name} ${precision} ${kind}: python ${fmt(theirs.steps[kind].phases)}\n`);
      }
      if (!python) process.stdout.write('# python3 with torch not found: the Python lines are skipped (apt-get install python3-torch)\n');
    }
  } finally {
    if (process.env.U2PL_BENCH_KEEP || process.env.U2PL_BENCH_PREPARE_ONLY) process.stdout.write(`# kept the inputs in ${dir}\n`);
    else fs.rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchCamvid(ctx: BenchContext): Promise<void> {
  const recipe = camvidRecipe();
  if (recipe) await compare(ctx, recipe);
}

export async function benchStep(ctx: BenchContext): Promise<void> {
  await compare(ctx, vocRecipe());
}
