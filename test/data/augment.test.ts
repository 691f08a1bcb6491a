import path from 'path';
import { AugmentConfig, augment, drawAugment, sampleScale } from '../../lib/data/augment';
import { datasetInfo, listSamples } from '../../lib/data/datasets';
import { BatchLoader } from '../../lib/data/loader';
import { Random } from '../../lib/data/random';
import { native } from '../../lib/native';
import { CAMVID, synthetic } from '../helpers/datasets';
import { expectClose } from '../helpers/tensors';

const config: AugmentConfig = {
  randResize: [0.5, 2.0], flip: true, blur: false, crop: { type: 'rand', size: [321, 321] },
  mean: [123.675, 116.28, 103.53], std: [58.395, 57.12, 57.375], labelPad: 0,
};

describe('augmentation parameters (§3), over many seeded draws', () => {
  test('scale: half the draws shrink uniformly in [0.5, 1), half grow uniformly in [1, 2)', () => {
    const rng = new Random(1);
    const s = Array.from({ length: 20000 }, () => sampleScale(rng, [0.5, 2]));
    const below = s.filter((x) => x < 1);
    expect(Math.abs(below.length / s.length - 0.5)).toBeLessThan(0.02);
    expect(Math.min(...s)).toBeGreaterThanOrEqual(0.5);
    expect(Math.max(...s)).toBeLessThan(2);
    // Uniform within each branch: mean of the shrink branch ~0.75, of the grow branch ~1.5.
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(mean(below)).toBeCloseTo(0.75, 1);
    expect(mean(s.filter((x) => x >= 1))).toBeCloseTo(1.5, 1);
  });

  test('flip rate 1/2; crop offsets uniform over the padded range; centre crop for validation', () => {
    const rng = new Random(2);
    const draws = Array.from({ length: 5000 }, () => drawAugment(rng, 360, 480, config, true));
    expect(Math.abs(draws.filter((d) => d.flip).length / draws.length - 0.5)).toBeLessThan(0.03);
    for (const d of draws) {
      const ph = Math.max(d.scaledHeight, 321), pw = Math.max(d.scaledWidth, 321);
      expect(d.cropTop).toBeGreaterThanOrEqual(0);
      expect(d.cropTop).toBeLessThanOrEqual(ph - 321);
      expect(d.cropLeft).toBeLessThanOrEqual(pw - 321);
      // One factor for both axes (each size truncated).
      expect(Math.abs(d.scaledHeight / 360 - d.scaledWidth / 480)).toBeLessThan(1 / 360 + 1 / 480);
    }
    // Relative offsets are uniform: their mean over the range is ~1/2.
    const rel = draws.filter((d) => d.scaledWidth > 400).map((d) => d.cropLeft / (Math.max(d.scaledWidth, 321) - 321));
    expect(rel.reduce((a, b) => a + b, 0) / rel.length).toBeCloseTo(0.5, 1);
    const val = drawAugment(new Random(3), 360, 480, { ...config, crop: { type: 'center', size: [321, 321] } }, false);
    expect(val).toEqual({ resizedHeight: 360, resizedWidth: 480, scaledHeight: 360, scaledWidth: 480, flip: false, blur: false, cropTop: 19, cropLeft: 79, cropHeight: 321, cropWidth: 321 });
  });

  test('a fixed resize comes before the random scale; without a crop the whole (resized) image comes out', () => {
    const rng = new Random(4);
    for (let i = 0; i < 200; i++) {
      const d = drawAugment(rng, 360, 480, { ...config, resize: [180, 240], crop: { type: 'rand', size: [161, 161] } }, true);
      expect([d.resizedHeight, d.resizedWidth]).toEqual([180, 240]);
      expect(Math.abs(d.scaledHeight / 180 - d.scaledWidth / 240)).toBeLessThan(1 / 180 + 1 / 240);
      expect([d.cropHeight, d.cropWidth]).toEqual([161, 161]);
    }
    const whole = drawAugment(new Random(5), 360, 480, { ...config, resize: [180, 240], crop: undefined }, false);
    expect(whole).toEqual({ resizedHeight: 180, resizedWidth: 240, scaledHeight: 180, scaledWidth: 240, flip: false, blur: false, cropTop: 0, cropLeft: 0, cropHeight: 180, cropWidth: 240 });
    const original = drawAugment(new Random(5), 360, 480, { ...config, crop: undefined }, false);
    expect([original.cropHeight, original.cropWidth]).toEqual([360, 480]);
  });
});

describe('native augmentation', () => {
  const W = 37, H = 29;
  const { rgb, label } = synthetic(W, H, 5, 3);
  const base = { mean: config.mean, std: config.std };
  const cases = [
    { name: 'normalise only', scaledHeight: H, scaledWidth: W, cropHeight: H, cropWidth: W },
    { name: 'shrink, flip, crop', scaledHeight: 20, scaledWidth: 25, flip: true, cropTop: 2, cropLeft: 3, cropHeight: 16, cropWidth: 16 },
    { name: 'grow and crop', scaledHeight: 58, scaledWidth: 74, cropTop: 11, cropLeft: 30, cropHeight: 32, cropWidth: 32 },
    { name: 'pad (crop larger than the image)', scaledHeight: 20, scaledWidth: 25, cropTop: 0, cropLeft: 3, cropHeight: 40, cropWidth: 22, labelPad: 255 },
    { name: 'blur', scaledHeight: 33, scaledWidth: 41, blur: true, cropTop: 0, cropLeft: 0, cropHeight: 33, cropWidth: 41 },
    { name: 'fixed resize, then random scale, flip, crop', resizedHeight: 15, resizedWidth: 19, scaledHeight: 22, scaledWidth: 28, flip: true, cropTop: 3, cropLeft: 5, cropHeight: 16, cropWidth: 16 },
    { name: 'fixed resize only (whole image)', resizedHeight: 15, resizedWidth: 19, cropHeight: 15, cropWidth: 19 },
  ];
  test.each(cases)('$name: loops = ATen composite', async (c) => {
    const o = { image: rgb, label, height: H, width: W, ...base, ...c };
    const k = await native().augment(o);
    const r = await native().augment({ ...o, impl: 'composite' });
    expectClose(k.image, r.image, 2e-5);
    expect(Array.from(k.label as Uint8Array)).toEqual(Array.from(r.label as Uint8Array));
  });

  test('labels are never interpolated: every output value is an input value or the pad value', async () => {
    const values = new Set(label);
    for (let seed = 0; seed < 30; seed++) {
      const d = drawAugment(new Random(seed), H, W, { ...config, crop: { type: 'rand', size: [33, 33] } }, true);
      const out = await augment(rgb, label, H, W, d, { ...config, crop: { type: 'rand', size: [33, 33] } });
      for (const v of out.label as Uint8Array) expect(values.has(v) || v === 0).toBe(true);
    }
  });

  test('padding: image 0 (the mean colour) and the label pad value, split floor/ceil around the image', async () => {
    const out = await native().augment({ image: rgb, label, height: H, width: W, ...base, cropHeight: H + 4, cropWidth: W + 3, labelPad: 255 });
    const w = W + 3;
    expect(out.image[0]).toBe(0);
    expect((out.label as Uint8Array)[0]).toBe(255);
    expect((out.label as Uint8Array)[2 * w + 1]).toBe(label[0]); // 2 rows above, 1 column left
    expect((out.label as Uint8Array)[(H + 2) * w + 1]).toBe(255); // 2 rows below
  });

  test('bad parameters are errors naming the value', () => {
    expect(() => native().augment({ image: rgb, label, height: H, width: W, cropHeight: 10, cropWidth: 10, cropTop: 25 })).toThrow('cropTop 25 outside [0, 19]');
    expect(() => native().augment({ image: rgb.subarray(1), height: H, width: W })).toThrow("option 'image' must be a Uint8Array of height x width x 3");
  });
});

describe('background loader on CamVid (real files)', () => {
  const samples = listSamples({ kind: 'camvid', root: CAMVID }, path.join(CAMVID, 'splits/46/labeled.txt'));
  const info = datasetInfo('camvid', 11);
  const make = (prefetch: number) => new BatchLoader({
    samples, augment: config, train: true, withLabels: true, labelOptions: info.labelOptions, classes: 11, ignoreLabel: 255, seed: 5, prefetch,
  });

  test('batches of 321x321 crops, deterministic whatever the prefetch depth', async () => {
    const plan = [[0, 1], [2, 3], [4, 5]];
    const a: Float32Array[] = [];
    for await (const b of make(1).iterate(plan, 0)) {
      expect(b.images.length).toBe(2 * 3 * 321 * 321);
      expect((b.labels as Uint8Array).length).toBe(2 * 321 * 321);
      a.push(b.images);
    }
    let i = 0;
    for await (const b of make(3).iterate(plan, 0)) expect(Buffer.from(b.images.buffer).equals(Buffer.from(a[i++].buffer))).toBe(true);
    const other = await make(1).loadBatch([0, 1], 1, 0); // another epoch draws other parameters
    expect(Buffer.from(other.images.buffer).equals(Buffer.from(a[0].buffer))).toBe(false);
  });

  test('starting mid-epoch gives the same batches as running through', async () => {
    const plan = [[0, 1], [2, 3], [4, 5]];
    const all: Uint8Array[] = [];
    for await (const b of make(2).iterate(plan, 4)) all.push(b.labels as Uint8Array);
    const tail: Uint8Array[] = [];
    for await (const b of make(2).iterate(plan, 4, 2)) tail.push(b.labels as Uint8Array);
    expect(Buffer.from(tail[0]).equals(Buffer.from(all[2]))).toBe(true);
  });
});
