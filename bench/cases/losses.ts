/**
 * The loss kernels against their composite references, forward + backward, in the same run:
 *   losses.unsup+contra.fwd_bwd: U2PL's unsupervised + contrastive loss, B = 2 labeled + 2 unlabeled,
 *     21 classes, 321x321 predictions, 81x81x256 representations, full memory banks (50,000 keys for
 *     class 0, 30,000 for the others);
 *   losses.supervised.fwd_bwd: the labeled images' cross-entropy on the decoder's and the aux head's
 *     logits, upsampled to the labels (the fused upsampled-CE kernel against upsample_bilinear2d + the
 *     reference's sort-based OHEM + ATen's (weighted) cross_entropy), at two recipes: camvid-small's
 *     preset (11 classes, OS16 logits 41x41 and aux 11x11 of 161x161 crops, OHEM keeping at least
 *     4,407 pixels, median-frequency class weights) and the reference's VOC one (21 classes, OS8
 *     logits 81x81 and aux 41x41 of 321x321 crops, plain CE). Called through the addon's
 *     supervisedLoss, so each side also copies its inputs in and its gradients out (alike on both).
 */
import { native, Tensor } from '../../lib/native';
import { BenchContext, measure, record } from '../harness';

/** Deterministic inputs: logits spread like a young network's, labels with 10 % ignored. */
function supervisedInputs(classes: number, predSize: number, auxSize: number, labelSize: number, seed: number) {
  let s = seed;
  const rand = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
  const logits = (size: number): Tensor<Float32Array> => ({ data: Float32Array.from({ length: 2 * classes * size * size }, () => (rand() * 2 - 1) * 4), shape: [2, classes, size, size] });
  const labels: Tensor<Uint8Array> = {
    data: Uint8Array.from({ length: 2 * labelSize * labelSize }, () => (rand() < 0.1 ? 255 : Math.floor(rand() * classes))),
    shape: [2, labelSize, labelSize],
  };
  return { pred: logits(predSize), aux: logits(auxSize), labels };
}

async function benchSupervised(ctx: BenchContext): Promise<void> {
  const recipes = [
    {
      recipe: 'camvid-small-preset', inputs: supervisedInputs(11, 41, 11, 161, 7),
      options: { ohem: true, thresh: 0.7, minKept: 4407, classWeight: [0.288, 0.215, 4.457, 0.155, 1, 0.411, 3.189, 2.75, 0.988, 7.234, 14.384] },
    },
    { recipe: 'voc-321', inputs: supervisedInputs(21, 81, 41, 321, 8), options: {} },
  ];
  const runs = ctx.quick ? 3 : 10;
  for (const { recipe, inputs, options } of recipes) {
    const fields = { recipe, classes: inputs.pred.shape[1], ohem: Boolean(options.ohem), weighted: Boolean(options.classWeight) };
    const time = (impl: 'kernel' | 'composite') => measure(ctx, 'losses.supervised.fwd_bwd', () => native().losses.supervisedLoss({ ...inputs, ...options, impl }),
      { warmup: 1, runs, fields: { ...fields, impl } });
    const k = await time('kernel');
    const c = await time('composite');
    k.speedup_vs_composite = Number((c.median_s / k.median_s).toFixed(2));
    process.stdout.write(`# losses, supervised (${recipe}): kernel ${k.speedup_vs_composite}x faster than the composite reference\n`);
  }
}

export async function benchLosses(ctx: BenchContext): Promise<void> {
  const spec = { labeled: 2, unlabeled: 2, classes: 21, height: 321, width: 321, repHeight: 81, repWidth: 81, repDim: 256 };
  const runs = ctx.quick ? 3 : 10;
  const fields = { batch: '2+2', classes: 21, size: 321, rep: '81x81x256', banks: 'full' };
  const kernel = await native().losses.benchmarkLosses({ ...spec, warmup: 1, runs, impl: 'kernel' });
  const k = record(ctx, 'losses.unsup+contra.fwd_bwd', kernel, { ...fields, impl: 'kernel' });
  const composite = await native().losses.benchmarkLosses({ ...spec, warmup: 1, runs, impl: 'composite' });
  const c = record(ctx, 'losses.unsup+contra.fwd_bwd', composite, { ...fields, impl: 'composite' });
  k.speedup_vs_composite = Number((c.median_s / k.median_s).toFixed(2));
  process.stdout.write(`# losses: kernels ${k.speedup_vs_composite}x faster than the composite reference\n`);
  await benchSupervised(ctx);
}
