/** Data loader throughput on CamVid with the training augmentation at 321x321: one sample at a time vs background loading. */
import fs from 'fs';
import path from 'path';
import { AugmentConfig, augment, drawAugment } from '../../lib/data/augment';
import { datasetInfo, listSamples } from '../../lib/data/datasets';
import { readImage, readLabel } from '../../lib/data/image-io';
import { BatchLoader } from '../../lib/data/loader';
import { Random } from '../../lib/data/random';
import { packageRoot } from '../../lib/native';
import { BenchContext, record } from '../harness';

export async function benchLoader(ctx: BenchContext): Promise<void> {
  const root = process.env.U2PL_CAMVID ?? path.resolve(packageRoot(), '../shared/data/camvid');
  if (!fs.existsSync(root)) {
    process.stdout.write(`# loader: CamVid not found at ${root} (set U2PL_CAMVID); skipped\n`);
    return;
  }
  const samples = listSamples({ kind: 'camvid', root }, path.join(root, 'train.txt'));
  const info = datasetInfo('camvid', 11);
  const config: AugmentConfig = {
    randResize: [0.5, 2], flip: true, blur: false, crop: { type: 'rand', size: [321, 321] },
    mean: [123.675, 116.28, 103.53], std: [58.395, 57.12, 57.375], labelPad: 0,
  };
  const count = ctx.quick ? 32 : 128;
  const fields = { dataset: 'camvid', crop: 321, images: count };
  // One sample at a time: decode, draw, augment, wait, next.
  const t0 = process.hrtime.bigint();
  const rng = new Random(0);
  for (let i = 0; i < count; i++) {
    const s = samples[i % samples.length];
    const [img, label] = await Promise.all([readImage(s.image), readLabel(s.label, info.labelOptions)]);
    await augment(img.data, label.data, img.height, img.width, drawAugment(rng, img.height, img.width, config, true), config);
  }
  const serial = Number(process.hrtime.bigint() - t0) / 1e9;
  record(ctx, 'loader.sequential', [serial / count], { ...fields, images_per_s: Number((count / serial).toFixed(1)) });
  // Background: batches of 4 with 4 batches in flight (decode and augment on the libuv pool).
  const loader = new BatchLoader({ samples, augment: config, train: true, withLabels: true, labelOptions: info.labelOptions, classes: 11, ignoreLabel: 255, seed: 0, prefetch: 4 });
  const plan = Array.from({ length: count / 4 }, (_, b) => [0, 1, 2, 3].map((k) => (b * 4 + k) % samples.length));
  const t1 = process.hrtime.bigint();
  for await (const batch of loader.iterate(plan, 0)) void batch;
  const background = Number(process.hrtime.bigint() - t1) / 1e9;
  record(ctx, 'loader.background', [background / count], { ...fields, images_per_s: Number((count / background).toFixed(1)) });
}
