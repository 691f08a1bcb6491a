/**
 * Evaluation throughput: whole-image and sliding-window prediction on CamVid-sized images, in the
 * contiguous layout and in channels-last (what loadModel gives on a CPU by default).
 */
import { Model } from '../../lib';
import { BenchContext, measure } from '../harness';

export async function benchEvaluation(ctx: BenchContext): Promise<void> {
  const model = new Model({ depth: 50, numClasses: 11, repHead: false, multiGrid: true, seed: 0 });
  const image = { data: new Float32Array(3 * 360 * 480).map(() => Math.random() * 2 - 1), shape: [1, 3, 360, 480] };
  const runs = ctx.quick ? 2 : 5;
  for (const layout of ['contiguous', 'channels-last'] as const) {
    model.setChannelsLast(layout === 'channels-last');
    const whole = await measure(ctx, 'eval.whole_image', () => model.predict(image), { runs, fields: { size: '480x360', depth: 50, os: 8, layout } });
    whole.images_per_s = Number((1 / whole.median_s).toFixed(3));
    const slide = await measure(ctx, 'eval.sliding_window', () => model.predict(image, { mode: 'slide', crop: 321 }), { runs, fields: { size: '480x360', crop: 321, depth: 50, os: 8, layout } });
    slide.images_per_s = Number((1 / slide.median_s).toFixed(3));
  }
}
