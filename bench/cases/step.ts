/**
 * Training steps beside the reference's step in plain torch.nn (bench/python/u2pl_step.py) on the
 * same LibTorch and threads, each side in its own process (its peak RSS is the step's) from the
 * same initial weights, full memory banks and batches; fp32, fp32 + channels-last and bf16 +
 * channels-last (`--precision` picks), each side in the same layout; the fp32 + channels-last lines
 * are also compared with PyTorch's plain fp32 step (`vs_python_fp32`: the reference as users run it).
 * With `--device cuda` both sides run on the GPU (fp32 and bf16 autocast + channels-last by default)
 * and each line also gives the side's peak GPU memory (the CUDA caching allocator's peak allocated
 * bytes, the same counter on both sides: torch.cuda.max_memory_allocated).
 *   camvid-small: experiments/camvid-small (240x180 CamVid, crop 161, batch 2 + 2, R50 deep stem
 *     OS16, 11 classes), real CamVid batches (synthetic ones of the same shape in the step case
 *     where CamVid is absent); `--only camvid`: U2PL, warm-up and supervised-only steps and their
 *     floors; in the step case the U2PL step and its floor.
 *   voc-321: R50 deep stem OS8, 321 x 321, batch 2 + 2, 21 classes, synthetic batches; the U2PL step
 *     and its floor.
 *   voc-513: the reference's VOC recipe per GPU: R101 deep stem OS8, 513 x 513, batch 2 + 2, 21
 *     classes, synthetic batches; the U2PL step and its floor.
 *   smoke: camvid-small's network on 65 x 65 synthetic batches, the U2PL step only (scripts/gpu-check.sh --cpu-only).
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
import { nativeBf16, practicalPeak, stepGflop, stepMacs } from './utilisation';

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

/** The step case's recipes (`--recipe`). */
export const RECIPES = ['voc-321', 'voc-513', 'camvid-small', 'smoke'];

function lcg(seed: number): () => number {
  let s = seed;
  return () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
}

/** Random images and labels in blobs (8 x 8 cells of one class): a realistic number of classes and anchors per image. */
function syntheticBatches(size: number, classes: number): StepBatch[] {
  const rand = lcg(5);
  const images = () => ({ data: Float32Array.from({ length: 2 * 3 * size * size }, () => rand() * 4 - 2), shape: [2, 3, size, size] });
  const labels = () => {
    const data = new Uint8Array(2 * size * size);
    const cells = Array.from({ length: 2 * 64 }, () => Math.floor(rand() * classes));
    for (let b = 0; b < 2; b++) for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) {
      data[(b * size + y) * size + x] = cells[b * 64 + Math.floor((y * 8) / size) * 8 + Math.floor((x * 8) / size)];
    }
    return { data, shape: [2, size, size] };
  };
  return Array.from({ length: STEPS }, () => ({ labeled_images: images(), labels: labels(), unlabeled_images: images() }));
}

/**
 * camvid-small; `all`: every step kind on real data (skipped without CamVid), else the U2PL step and
 * its floor. `smoke`: its network on 65 x 65 synthetic batches, a quick run of both sides' code.
 */
function camvidRecipe(all: boolean, smoke = false): Recipe | undefined {
  const root = packageRoot();
  const semiConfig = loadConfig(path.join(root, 'experiments/camvid-small/u2pl/config.yaml'));
  const supConfig = loadConfig(path.join(root, 'experiments/camvid-small/suponly/config.yaml'));
  const real = !smoke && fs.existsSync(semiConfig.dataset.train.dataRoot);
  if (!real && all) {
    process.stdout.write(`# step camvid-small: CamVid not found at ${semiConfig.dataset.train.dataRoot} (set U2PL_DATA_ROOT); skipped\n`);
    return undefined;
  }
  if (!real && !smoke) process.stdout.write(`# step camvid-small: CamVid not found at ${semiConfig.dataset.train.dataRoot}: synthetic batches of its shape\n`);
  const raw = semiConfig.raw.trainer as Record<string, unknown>;
  return {
    name: smoke ? 'smoke' : 'camvid',
    semi: trainerOptions(semiConfig),
    supervised: trainerOptions(supConfig),
    fields: { recipe: smoke ? 'smoke' : 'camvid-small', size: smoke ? 65 : 161, batch: '2+2', depth: 50, os: 16, classes: 11, data: real ? 'camvid' : 'synthetic' },
    kinds: all ? ['u2pl', 'floor.u2pl', 'warmup', 'floor.warmup', 'supervised', 'floor.supervised'] : smoke ? ['u2pl'] : ['u2pl', 'floor.u2pl'],
    python: { classes: 11, contrastive: raw.contrastive },
    epochs: semiConfig.trainer.epochs,
    runs: smoke ? 2 : 8,
    batches: async () => {
      if (!real) return syntheticBatches(smoke ? 65 : 161, 11);
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

/** The VOC recipes at OS8, synthetic batches: voc-321 (R50) and the reference's per-GPU voc-513 (R101). */
function vocRecipe(size: 321 | 513): Recipe {
  const depth = size === 513 ? 101 : 50;
  const model = { depth, deepStem: true, numClasses: 21, repHead: true, multiGrid: true, replaceStrideWithDilation: [false, true, true] as [boolean, boolean, boolean] };
  const contrastive = {
    negative_high_entropy: true, low_rank: 3, high_rank: 20, current_class_threshold: 0.3, current_class_negative_threshold: 1,
    low_entropy_threshold: 20, num_negatives: 50, num_queries: 256, temperature: 0.5, loss_weight: 1,
  };
  return {
    name: `voc${size}`,
    semi: { model, semi: true, seed: 0, momentum: 0.9, weightDecay: 1e-4, mix: 'cutmix', unsupervised: { weight: 1 }, contrastive: { weight: 1 } },
    supervised: { model: { ...model, repHead: false }, semi: false, seed: 0 },
    fields: { recipe: `voc-${size}`, size, batch: '2+2', depth, os: 8, classes: 21 },
    kinds: ['u2pl', 'floor.u2pl'],
    python: { classes: 21, contrastive, net: { depth, replace_stride_with_dilation: [false, true, true], dilations: [12, 24, 36] } },
    epochs: 80,
    runs: size === 513 ? 6 : 4,  // voc-321 on 2 CPU cores: ~25 s a step
    batches: async () => syntheticBatches(size, 21),
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
    const { device } = ctx;
    const python = pythonOn(device);
    const schedule = { dropPercentile: 100 - 20 * (1 - 1 / recipe.epochs), alpha: 20 * (1 - 1 / recipe.epochs) };
    // The steps' work (multiply-adds of their passes, bench/python/count_macs.py) and, on the CPU, the
    // machine's practical peak: each line gets its achieved GFLOP/s and its share of that peak.
    const size = recipe.fields.size as number;
    const macs = stepMacs(recipe.python, size);
    // bf16 steps against the bf16 peak where the CPU computes bf16 natively; elsewhere (emulated) against none.
    const peaks = {
      fp32: device === 'cpu' && macs ? await practicalPeak(ctx) : undefined,
      bf16: device === 'cpu' && macs && nativeBf16() ? await practicalPeak(ctx, 'bf16') : undefined,
    };
    const utilisation = (m: Record<string, unknown>, kind: string, impl: 'u2pl' | 'python', autocast: string | null) => {
      if (!macs) return;
      const gflops = stepGflop(kind, macs.joint, macs.half, impl) / (m.median_s as number);
      m.gflops = Number(gflops.toFixed(1));
      const peak = autocast ? peaks.bf16 : peaks.fp32;
      if (peak) {
        m.pct_of_peak = Number((100 * gflops / peak).toFixed(0));
        m.peak_dtype = autocast ? 'bf16' : 'fp32';
      }
    };
    const plainPython: Record<string, number> = {};
    const precisions = ctx.precisions ?? (device === 'cuda' ? ['fp32', 'bf16+cl'] : PRECISIONS.map(([name]) => name));
    for (const [precision, autocast, channelsLast] of PRECISIONS) {
      if (!precisions.includes(precision)) continue;
      const fields = { ...recipe.fields, precision, device };
      const onDevice = (o: AddonTrainerOptions): AddonTrainerOptions => ({ ...o, autocast, channelsLast, device, model: { ...o.model, device } });
      const semi = onDevice(recipe.semi);
      const supervised = onDevice(recipe.supervised);
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
        // On CUDA the reference's U2PL step only: each Python process is a GPU context and a cuDNN autotune.
        if (python && (device === 'cuda' ? ['u2pl'] : ['u2pl', 'floor.u2pl', 'warmup', 'supervised']).includes(kind)) {
          py[kind] = child(python, [path.join(root, 'bench/python/u2pl_step.py'), JSON.stringify({
            ...recipe.python, init, batches, autocast: autocast !== null, channels_last: channelsLast, warmup, runs, threads: ctx.threads,
            lr: 0.01, kinds: [kind], epochs: recipe.epochs, device,
          })], `the Python reference step (${recipe.name}, ${kind})`);
        }
      }
      for (const kind of recipe.kinds) {
        const m = record(ctx, `step.${recipe.name}.${kind}`, ours[kind].steps[kind].seconds, { ...fields, impl: 'u2pl' });
        utilisation(m, kind, 'u2pl', autocast);
        m.peak_rss_mb = Math.round(ours[kind].peak_rss_mb as number);
        if (ours[kind].peak_gpu_mb !== undefined) m.peak_gpu_mb = Math.round(ours[kind].peak_gpu_mb as number);
        const floor = ours[`floor.${kind}`];
        if (floor) m.overhead_vs_floor = Number((m.median_s / median(floor.steps[`floor.${kind}`].seconds)).toFixed(3));
        const theirs = py[kind];
        if (theirs) {
          const p = record(ctx, `step.${recipe.name}.${kind}`, theirs.steps[kind].seconds, { ...fields, impl: `python-torch-${theirs.torch as string}` });
          utilisation(p, kind, 'python', autocast);
          p.peak_rss_mb = Math.round(theirs.peak_rss_mb as number);
          if (theirs.steps[kind].peak_gpu_mb !== undefined) p.peak_gpu_mb = Math.round(theirs.steps[kind].peak_gpu_mb as number);
          m.vs_python = Number((p.median_s / m.median_s).toFixed(3));
          if (precision === 'fp32') plainPython[kind] = p.median_s;
        }
        if (precision === 'fp32+cl' && plainPython[kind]) m.vs_python_fp32 = Number((plainPython[kind] / m.median_s).toFixed(3));
        process.stdout.write(`# ${recipe.name} ${precision} ${kind}: u2pl ${fmt(ours[kind].steps[kind].phases)}\n`);
        if (theirs) process.stdout.write(`# ${recipe.name} ${precision} ${kind}: python ${fmt(theirs.steps[kind].phases)}\n`);
      }
      if (!python) process.stdout.write(`# python3 with torch${device === 'cuda' ? ' and CUDA' : ''} not found (U2PL_BENCH_PYTHON picks one): the Python lines are skipped\n`);
    }
  } finally {
    if (process.env.U2PL_BENCH_KEEP || process.env.U2PL_BENCH_PREPARE_ONLY) process.stdout.write(`# kept the inputs in ${dir}\n`);
    else fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The Python with torch for the reference's side (on CUDA: one whose torch sees the GPU), or null. */
function pythonOn(device: 'cpu' | 'cuda'): string | null {
  const python = pythonWithTorch();
  if (!python || device === 'cpu') return python;
  return spawnSync(python, ['-c', 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)'], { stdio: 'ignore' }).status === 0 ? python : null;
}

export async function benchCamvid(ctx: BenchContext): Promise<void> {
  const recipe = camvidRecipe(true);
  if (recipe) await compare(ctx, recipe);
}

export async function benchStep(ctx: BenchContext): Promise<void> {
  for (const name of ctx.recipes ?? (ctx.device === 'cuda' ? ['voc-513', 'camvid-small'] : ['voc-321'])) {
    const recipe = name === 'camvid-small' || name === 'smoke' ? camvidRecipe(false, name === 'smoke') : vocRecipe(name === 'voc-513' ? 513 : 321);
    if (recipe) await compare(ctx, recipe);
  }
}
