/**
 * U2PL unsupervised + contrastive loss, forward + backward, kernels vs the composite reference in
 * the same run: B = 2 labeled + 2 unlabeled, 21 classes, 321x321 predictions, 81x81x256
 * representations, full memory banks (50,000 keys for class 0, 30,000 for the others).
 */
import { native } from '../../lib/native';
import { BenchContext, record } from '../harness';

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
}
