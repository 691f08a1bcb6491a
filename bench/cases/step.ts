/**
 * One full U2PL semi-supervised step (teacher pseudo-labels, CutMix, student and teacher passes,
 * all three losses, SGD, EMA) for R50 deep-stem DeepLabv3+ OS8, 321x321, 2 labeled + 2 unlabeled,
 * 21 classes, fp32 and bf16 autocast; next to the network-only floor (the same passes and SGD step
 * with a plain CE) so U2PL's overhead shows as a ratio; and the peak RSS.
 */
import { native } from '../../lib/native';
import { BenchContext, measure } from '../harness';

function random(shape: number[], scale = 1): { data: Float32Array; shape: number[] } {
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = (Math.random() * 2 - 1) * scale;
  return { data, shape };
}

export async function benchStep(ctx: BenchContext): Promise<void> {
  const size = 321;
  const classes = 21;
  const labels = { data: new Uint8Array(2 * size * size).map(() => Math.floor(Math.random() * classes)), shape: [2, size, size] };
  const labeledImages = random([2, 3, size, size]);
  const unlabeledImages = random([2, 3, size, size]);
  const runs = ctx.quick ? 1 : 3;
  for (const precision of ['fp32', 'bf16'] as const) {
    const trainer = new (native().AddonTrainer)({
      model: { depth: 50, numClasses: classes, repHead: true, multiGrid: true },
      semi: true,
      seed: 0,
      autocast: precision === 'bf16' ? 'bfloat16' : null,
      channelsLast: precision === 'bf16',
      contrastive: { weight: 1 },
      mix: 'cutmix',
      unsupervised: { weight: 1 },
    });
    const inputs = { labeledImages, labels, unlabeledImages, lrBackbone: 0.001, lrHead: 0.01, emaDecay: 0.99, dropPercentile: 80, alpha: 20 };
    const fields = { depth: 50, os: 8, size, batch: '2+2', classes, precision };
    // Fill the memory banks first so that the contrastive loss samples from full queues.
    for (let i = 0; i < (ctx.quick ? 1 : 2); i++) await trainer.step({ ...inputs, phase: 'semi' });
    const step = await measure(ctx, 'step.u2pl', () => trainer.step({ ...inputs, phase: 'semi' }), { runs, warmup: 0, fields });
    const floor = await measure(ctx, 'step.network_floor', () => trainer.step({ ...inputs, phase: 'floor' }), { runs, warmup: 1, fields });
    step.overhead_vs_floor = Number((step.median_s / floor.median_s).toFixed(3));
    step.peak_rss_mb = Math.round(process.resourceUsage().maxRSS / 1024);
    process.stdout.write(`# step ${precision}: U2PL / network floor = ${step.overhead_vs_floor}, peak RSS ${step.peak_rss_mb} MB\n`);
  }
}
