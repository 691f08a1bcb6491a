/**
 * How far the steps are from what the machine can do:
 *   peak.gemm, peak.conv3x3: the machine's practical fp32 peak, measured in the same run: a large
 *     matrix product and a large 3x3 convolution through LibTorch (the convolution in both layouts);
 *     on a CPU that computes bf16 natively (AVX512-BF16 or AMX-BF16), the same in bf16
 *     (`dtype: bf16`), the peak the bf16 steps are measured against;
 *   layer.camvid-small: every convolution of camvid-small's network on its own, forward, at the
 *     shapes a training step sees (4 images of 161 x 161), in both layouts (and in bf16 channels-last,
 *     auto's choice there, where bf16 is native): its achieved GFLOP/s and its share of the network's
 *     multiply-adds, i.e. which layers run furthest from the peak.
 * The multiply-adds come from bench/python/count_macs.py (the network's convolution shapes); the
 * step case divides its steps' work by their time with the same counts (stepGflop).
 */
import { cpuHasBf16 } from '../../lib/model/precision';
import { native } from '../../lib/native';
import { BenchContext, pythonWithTorch, record, runPythonBench } from '../harness';

export interface NetworkMacs {
  /** One train-mode forward of the batch, all heads; per module and in total. */
  full: { modules: Record<string, number>; total: number };
  /** An eval-mode pass that needs only the logits (no representation or aux head). */
  pred: { modules: Record<string, number>; total: number };
  convs: { module: string; input: number[]; weight: number[]; stride: number; padding: number; dilation: number; groups: number; macs: number }[];
  /**
   * Of a pass's multiply-adds, those u2pl does not compute: the taps of the ASPP's dilated 3x3
   * kernels that fall in the padding of every output (DilatedConv3x3, native/model/aspp.h). The
   * reference computes them; its lines are credited with them, ours are not.
   */
  skipped: number;
}

/** The multiply-adds of a pass that DilatedConv3x3 skips, from its convolution shapes. */
function asppSkipped(convs: NetworkMacs['convs']): number {
  return convs.filter((c) => c.module.startsWith('decoder.aspp.') && c.weight[2] === 3).reduce((sum, c) => {
    const rows = c.dilation >= c.input[2] ? 1 : 3, cols = c.dilation >= c.input[3] ? 1 : 3;
    return sum + c.macs * (1 - (rows * cols) / 9);
  }, 0);
}

/** The multiply-adds of a network's passes over `batch` images of `size` (null without Python torch). */
export function networkMacs(python: Record<string, unknown>, size: number, batch: number): NetworkMacs | null {
  const py = pythonWithTorch();
  if (!py) return null;
  const one = runPythonBench(py, 'count_macs.py', { net: python.net ?? {}, classes: python.classes, size }) as unknown as NetworkMacs;
  // Counted for one image: every layer's work grows with the batch.
  const scale = (p: NetworkMacs['full']) => ({ modules: Object.fromEntries(Object.entries(p.modules).map(([k, v]) => [k, v * batch])), total: p.total * batch });
  const convs = one.convs.map((c) => ({ ...c, input: [batch, ...c.input.slice(1)], macs: c.macs * batch }));
  return { full: scale(one.full), pred: scale(one.pred), convs, skipped: asppSkipped(convs) };
}

/** Both batch sizes of a step from one count. */
export function stepMacs(python: Record<string, unknown>, size: number): { joint: NetworkMacs; half: NetworkMacs } | null {
  const joint = networkMacs(python, size, 4);
  if (!joint) return null;
  const half = (p: NetworkMacs['full']) => ({ modules: Object.fromEntries(Object.entries(p.modules).map(([k, v]) => [k, v / 2])), total: p.total / 2 });
  return { joint, half: { full: half(joint.full), pred: half(joint.pred), convs: [], skipped: joint.skipped / 2 } };
}

/**
 * The GFLOP (2 per multiply-add) of one training step of a kind, from the passes it makes:
 *   u2pl: the teacher's eval pass on the unlabeled batch (logits only in u2pl; the reference's
 *     computes every head), the student's forward and backward (twice the forward) on both
 *     batches, the teacher's train-mode forward on both;
 *   warmup: the student's forward and backward on the labeled batch and the teacher's forward on it;
 *   supervised: the student's forward and backward on the labeled batch.
 * `joint` counts both batches (labeled + unlabeled), `half` one of them.
 */
export function stepGflop(kind: string, joint: NetworkMacs, half: NetworkMacs, impl: 'u2pl' | 'python'): number {
  const base = kind.replace(/^floor\./, '');
  // The ASPP taps u2pl skips, per pass (a backward counts as two passes, and skips them too).
  const j = joint.full.total - (impl === 'u2pl' ? joint.skipped : 0);
  const h = half.full.total - (impl === 'u2pl' ? half.skipped : 0);
  const macs = base === 'u2pl'
    ? (impl === 'u2pl' ? half.pred.total - half.skipped : half.full.total) + 3 * j + j
    : base === 'warmup' ? 3 * h + h
      : 3 * h;
  return (2 * macs) / 1e9;
}

const best = (s: number[]) => Math.min(...s);
export type KernelDtype = 'fp32' | 'bf16';
const measuredPeak: Partial<Record<KernelDtype, Promise<number>>> = {};

/** Whether the CPU computes bf16 natively (elsewhere oneDNN emulates it, about 20x slower, and no bf16 peak is measured). */
export function nativeBf16(): boolean {
  return cpuHasBf16(native().info().cpu);
}

/**
 * The machine's practical peak in GFLOP/s for a dtype, measured once per run (its lines recorded):
 * the best of a large GEMM and a large 3x3 convolution in both layouts, through LibTorch.
 */
export function practicalPeak(ctx: BenchContext, dtype: KernelDtype = 'fp32'): Promise<number> {
  measuredPeak[dtype] ??= (async () => {
    const addon = native();
    const runs = ctx.quick ? 2 : 5;
    const n = ctx.quick ? 1024 : 2048;
    const gemm = await addon.timeKernel({ op: 'gemm', m: n, k: n, n }, { warmup: 1, runs, dtype });
    const gemmGflops = (2 * n ** 3) / best(gemm) / 1e9;
    record(ctx, 'peak.gemm', gemm, { shape: `${n}x${n}x${n}`, dtype, gflops: Number(gemmGflops.toFixed(1)) });
    let peak = gemmGflops;
    for (const channelsLast of [false, true]) {
      const conv = { op: 'conv' as const, batch: 2, channels: 256, height: 64, outChannels: 256, kernel: 3, channelsLast };
      const seconds = await addon.timeKernel(conv, { warmup: 1, runs, dtype });
      const gflops = (2 * 2 * 256 * 256 * 9 * 64 * 64) / best(seconds) / 1e9;
      peak = Math.max(peak, gflops);
      record(ctx, 'peak.conv3x3', seconds, { shape: '2x256x64x64, 256 out', dtype, layout: channelsLast ? 'channels-last' : 'contiguous', gflops: Number(gflops.toFixed(1)) });
    }
    process.stdout.write(`# practical ${dtype} peak: ${peak.toFixed(1)} GFLOP/s (the best of the GEMM and the convolutions)\n`);
    return peak;
  })();
  return measuredPeak[dtype] as Promise<number>;
}

export async function benchUtilisation(ctx: BenchContext): Promise<void> {
  const addon = native();
  const peaks: Partial<Record<KernelDtype, number>> = { fp32: await practicalPeak(ctx) };
  if (nativeBf16()) peaks.bf16 = await practicalPeak(ctx, 'bf16');

  // camvid-small's network, layer by layer (4 images: a U2PL step's joint batch).
  const macs = networkMacs({ classes: 11 }, 161, 4);
  if (!macs) {
    process.stdout.write('# layer.camvid-small skipped: needs python3 with torch (bench/python/count_macs.py counts the layers)\n');
    return;
  }
  // Identical shapes (the repeated blocks of a stage) are timed once and counted as often as they occur.
  const shapes = new Map<string, { conv: NetworkMacs['convs'][number]; count: number; modules: string[] }>();
  for (const c of macs.convs) {
    if (c.groups !== 1) continue;
    const key = JSON.stringify([c.input, c.weight, c.stride, c.padding, c.dilation]);
    const s = shapes.get(key) ?? { conv: c, count: 0, modules: [] };
    s.count++;
    s.modules.push(c.module);
    shapes.set(key, s);
  }
  const total = macs.full.total;
  // fp32 in both layouts; bf16 in channels-last, what auto trains in where bf16 is native.
  const variants: [KernelDtype, boolean][] = [['fp32', false], ['fp32', true], ...(peaks.bf16 ? [['bf16', true] as [KernelDtype, boolean]] : [])];
  for (const { conv: c, count, modules } of shapes.values()) {
    for (const [dtype, channelsLast] of variants) {
      const seconds = await addon.timeKernel({
        op: 'conv', batch: c.input[0], channels: c.input[1], height: c.input[2], width: c.input[3], outChannels: c.weight[0],
        kernel: c.weight[2], stride: c.stride, padding: c.padding, dilation: c.dilation, channelsLast,
      }, { warmup: 1, runs: ctx.quick ? 2 : 3, dtype });
      const gflops = (2 * c.macs) / best(seconds) / 1e9;
      record(ctx, 'layer.camvid-small', seconds, {
        module: modules[0] + (count > 1 ? ` (x${count})` : ''), shape: `${c.input.join('x')} ${c.weight.join('x')} s${c.stride} d${c.dilation}`,
        dtype, layout: channelsLast ? 'channels-last' : 'contiguous', share_pct: Number((100 * count * c.macs / total).toFixed(1)),
        gflops: Number(gflops.toFixed(1)), pct_of_peak: Number((100 * gflops / (peaks[dtype] as number)).toFixed(0)),
      });
    }
  }
}
