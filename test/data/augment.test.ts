import path from 'path';
import { AugmentConfig, augment, drawAugment, drawStrong, sampleScale, STRONG_AUGMENT_DEFAULTS, StrongDraw, strongView } from '../../lib/data/augment';
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

describe('the strong view (photometric: colour jitter, grayscale, blur)', () => {
  const H = 23, W = 31;
  const mean = config.mean, std = config.std;
  // A real-looking normalised image: pixel values 0-255 through the normalisation.
  const pixels = Float32Array.from({ length: 3 * H * W }, (_, i) => (i * 37 + (i >> 5) * 11) % 256);
  const image = Float32Array.from(pixels, (v, i) => (v - mean[Math.floor(i / (H * W))]) / std[Math.floor(i / (H * W))]);
  const identity: StrongDraw = { jitter: false, brightness: 1, contrast: 1, saturation: 1, order: [0, 1, 2], grayscale: false, blurSigma: 0 };

  // Written out pixel by pixel: the definition the native loops and the ATen composite must meet.
  function reference(x: Float32Array, d: StrongDraw): Float32Array {
    const n = H * W;
    const v = Float32Array.from(x, (u, i) => (u * std[Math.floor(i / n)] + mean[Math.floor(i / n)]) / 255);
    const clamp = (u: number) => Math.min(1, Math.max(0, u));
    const luma = (i: number) => 0.299 * v[i] + 0.587 * v[n + i] + 0.114 * v[2 * n + i];
    if (d.jitter) {
      for (const op of d.order) {
        if (op === 0) for (let i = 0; i < 3 * n; i++) v[i] = clamp(v[i] * d.brightness);
        if (op === 1) {
          let m = 0;
          for (let i = 0; i < n; i++) m += luma(i) / n;
          for (let i = 0; i < 3 * n; i++) v[i] = clamp(d.contrast * v[i] + (1 - d.contrast) * m);
        }
        if (op === 2) {
          for (let i = 0; i < n; i++) {
            const y = luma(i);
            for (let c = 0; c < 3; c++) v[c * n + i] = clamp(d.saturation * v[c * n + i] + (1 - d.saturation) * y);
          }
        }
      }
    }
    if (d.grayscale) for (let i = 0; i < n; i++) v[i] = v[n + i] = v[2 * n + i] = luma(i);
    if (d.blurSigma > 0) {
      const r = Math.max(1, Math.ceil(3 * d.blurSigma));
      const k = Array.from({ length: 2 * r + 1 }, (_, j) => Math.exp(-0.5 * (j - r) ** 2 / d.blurSigma ** 2));
      const sum = k.reduce((a, b) => a + b, 0);
      const at = (c: number, y: number, x: number, src: Float32Array) => src[c * n + Math.min(H - 1, Math.max(0, y)) * W + Math.min(W - 1, Math.max(0, x))];
      const rows = new Float32Array(3 * n);
      for (let c = 0; c < 3; c++) for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
        rows[c * n + y * W + x] = k.reduce((s, w, j) => s + w * at(c, y, x + j - r, v), 0) / sum;
      }
      for (let c = 0; c < 3; c++) for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
        v[c * n + y * W + x] = k.reduce((s, w, j) => s + w * at(c, y + j - r, x, rows), 0) / sum;
      }
    }
    return Float32Array.from(v, (u, i) => (u * 255 - mean[Math.floor(i / n)]) / std[Math.floor(i / n)]);
  }

  test('native loops and the ATen composite match the pixel-by-pixel definition over many draws', async () => {
    const rng = new Random(11);
    const draws: StrongDraw[] = [
      identity,
      { ...identity, jitter: true, brightness: 1.4, contrast: 0.6, saturation: 1.5, order: [2, 0, 1] },
      { ...identity, grayscale: true },
      { ...identity, blurSigma: 1.7 },
      ...Array.from({ length: 12 }, () => drawStrong(rng, STRONG_AUGMENT_DEFAULTS)),
    ];
    for (const d of draws) {
      const want = reference(image, d);
      const kernel = await strongView(image, H, W, d, { mean, std });
      const composite = await native().photometric({ image, height: H, width: W, mean, std, ...d, impl: 'composite' });
      expectClose(kernel, want, 2e-4);
      expectClose(composite, want, 2e-4);
    }
    // The identity leaves the image as it was (up to the round trip through pixel values).
    expectClose(await strongView(image, H, W, identity, { mean, std }), image, 1e-5);
    // Grayscale: the three channels hold the same pixel values.
    const gray = await strongView(image, H, W, { ...identity, grayscale: true }, { mean, std });
    const px = (c: number, i: number) => gray[c * H * W + i] * std[c] + mean[c];
    for (let i = 0; i < H * W; i += 17) expect(Math.abs(px(0, i) - px(2, i))).toBeLessThan(1e-3);
  });

  test('draws follow the configured probabilities and ranges', () => {
    const rng = new Random(12);
    const draws = Array.from({ length: 4000 }, () => drawStrong(rng, STRONG_AUGMENT_DEFAULTS));
    const rate = (f: (d: StrongDraw) => boolean) => draws.filter(f).length / draws.length;
    expect(Math.abs(rate((d) => d.jitter) - 0.8)).toBeLessThan(0.03);
    expect(Math.abs(rate((d) => d.grayscale) - 0.2)).toBeLessThan(0.03);
    expect(Math.abs(rate((d) => d.blurSigma > 0) - 0.5)).toBeLessThan(0.03);
    for (const d of draws) {
      for (const f of [d.brightness, d.contrast, d.saturation]) expect(f >= 0.5 && f <= 1.5).toBe(true);
      expect([...d.order].sort()).toEqual([0, 1, 2]);
      if (d.blurSigma > 0) expect(d.blurSigma >= 0.1 && d.blurSigma <= 2).toBe(true);
    }
  });

  test('bad parameters are errors naming the value', () => {
    expect(() => native().photometric({ image, height: H, width: W, blurSigma: -1 })).toThrow('blurSigma must be in [0, 50], got -1');
    expect(() => native().photometric({ image, height: H, width: W, order: [0, 0, 1] })).toThrow('order must be a permutation of 0, 1, 2');
    expect(() => native().photometric({ image: image.subarray(3), height: H, width: W })).toThrow("option 'image' must be a Float32Array of 3 x height x width");
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

  test('with a strong view: the weak views are unchanged, the strong ones differ and are reproducible', async () => {
    const strong = () => new BatchLoader({
      samples, augment: config, train: true, withLabels: true, labelOptions: info.labelOptions, classes: 11, ignoreLabel: 255, seed: 5,
      strong: { ...STRONG_AUGMENT_DEFAULTS, jitterProb: 1, blurProb: 1 },
    });
    const weak = await make(1).loadBatch([0, 1], 0, 0);
    const a = await strong().loadBatch([0, 1], 0, 0);
    const b = await strong().loadBatch([0, 1], 0, 0);
    expect(weak.strongImages).toBeUndefined();
    expect(Buffer.from(a.images.buffer).equals(Buffer.from(weak.images.buffer))).toBe(true);
    expect(Buffer.from((a.labels as Uint8Array).buffer).equals(Buffer.from((weak.labels as Uint8Array).buffer))).toBe(true);
    const s = a.strongImages as Float32Array;
    expect(s.length).toBe(a.images.length);
    expect(Buffer.from(s.buffer).equals(Buffer.from((b.strongImages as Float32Array).buffer))).toBe(true);
    let diff = 0;
    for (let i = 0; i < s.length; i++) diff += Math.abs(s[i] - a.images[i]);
    expect(diff / s.length).toBeGreaterThan(0.01);
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
