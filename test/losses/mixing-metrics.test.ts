import { losses } from '../../lib';
import { randomLabels, randomTensor } from '../helpers/tensors';

describe('CutMix box sampler (§8.3)', () => {
  test('boxes: width in [W/2+1, W-1], area within W of H*W/2, inside the image, one rectangle', async () => {
    for (const [H, W, count] of [[321, 321, 60], [65, 97, 300], [40, 31, 300]]) {
      const masks = await losses.cutoutMasks(count, H, W, 5);
      const widths = new Set<number>();
      for (let m = 0; m < count; m++) {
        const plane = masks.data.subarray(m * H * W, (m + 1) * H * W);
        let top = H, bottom = -1, left = W, right = -1, zeros = 0;
        for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
          if (plane[y * W + x] === 0) {
            zeros++; top = Math.min(top, y); bottom = Math.max(bottom, y); left = Math.min(left, x); right = Math.max(right, x);
          }
        }
        const bw = right - left + 1, bh = bottom - top + 1;
        expect(zeros).toBe(bw * bh); // a single filled rectangle
        expect(bw).toBeGreaterThanOrEqual(Math.floor(W / 2) + 1);
        expect(bw).toBeLessThanOrEqual(W - 1);
        expect(Math.abs(bw * bh - (H * W) / 2)).toBeLessThanOrEqual(W);
        widths.add(bw);
      }
      // The width is drawn uniformly: many admissible widths show up.
      const admissible = W - 1 - Math.floor(W / 2);
      expect(widths.size).toBeGreaterThan(Math.min(admissible, count) * 0.4);
    }
  });

  test('seeded: the same seed gives the same masks, another seed others', async () => {
    const a = await losses.cutoutMasks(4, 33, 33, 1);
    const b = await losses.cutoutMasks(4, 33, 33, 1);
    const c = await losses.cutoutMasks(4, 33, 33, 2);
    expect(Buffer.from(a.data).equals(Buffer.from(b.data))).toBe(true);
    expect(Buffer.from(a.data).equals(Buffer.from(c.data))).toBe(false);
  });
});

describe('mixing', () => {
  const B = 3, H = 12, W = 14;
  const images = randomTensor([B, 3, H, W], 1);
  const labels = randomLabels([B, H, W], 6, 2);
  const confidence = randomTensor([B, H, W], 3);

  test('CutMix: the box comes from the next image (i + 1) mod B, for images, labels and confidences', async () => {
    const r = await losses.mix({ images, labels, confidence, mode: 'cutmix', seed: 4 });
    for (let i = 0; i < B; i++) {
      const j = (i + 1) % B;
      let fromPartner = 0;
      for (let p = 0; p < H * W; p++) {
        const own = r.mask.data[i * H * W + p] === 1;
        const src = own ? i : j;
        if (!own) fromPartner++;
        expect(r.labels.data[i * H * W + p]).toBe(labels.data[src * H * W + p]);
        expect(r.confidence.data[i * H * W + p]).toBe(confidence.data[src * H * W + p]);
        for (let ch = 0; ch < 3; ch++) expect(r.images.data[(i * 3 + ch) * H * W + p]).toBe(images.data[(src * 3 + ch) * H * W + p]);
      }
      expect(fromPartner).toBeGreaterThan(0);
    }
  });

  test('CutOut: the box becomes image 0, label ignore, confidence 0', async () => {
    const r = await losses.mix({ images, labels, confidence, mode: 'cutout', seed: 5 });
    for (let i = 0; i < B * H * W; i++) {
      const own = r.mask.data[i] === 1;
      expect(r.labels.data[i]).toBe(own ? labels.data[i] : 255n);
      expect(r.confidence.data[i]).toBe(own ? confidence.data[i] : 0);
    }
  });

  test('ClassMix: image i keeps the pixels of half of its classes (floor(n/2))', async () => {
    const r = await losses.mix({ images, labels, confidence, mode: 'classmix', seed: 6 });
    for (let i = 0; i < B; i++) {
      const present = new Set<bigint>();
      const kept = new Set<bigint>();
      for (let p = 0; p < H * W; p++) {
        const y = labels.data[i * H * W + p];
        present.add(y);
        if (r.mask.data[i * H * W + p] === 1) kept.add(y);
      }
      expect(kept.size).toBe(Math.floor(present.size / 2));
      // The mask is exactly "label in the kept set".
      for (let p = 0; p < H * W; p++) expect(r.mask.data[i * H * W + p] === 1).toBe(kept.has(labels.data[i * H * W + p]));
    }
  });

  test('a batch of one mixes with itself (no-op for CutMix)', async () => {
    const one = { images: { data: images.data.slice(0, 3 * H * W), shape: [1, 3, H, W] }, labels: { data: labels.data.slice(0, H * W), shape: [1, H, W] }, confidence: { data: confidence.data.slice(0, H * W), shape: [1, H, W] } };
    const r = await losses.mix({ ...one, mode: 'cutmix', seed: 1 });
    expect(Array.from(r.images.data)).toEqual(Array.from(one.images.data));
  });

  test('a bad mode is an error naming it', async () => {
    await expect(losses.mix({ images, labels, confidence, mode: 'mixup' as 'cutmix' })).rejects.toThrow("option 'mode' must be 'cutmix', 'cutout' or 'classmix', got 'mixup'");
  });
});

describe('metrics (§13.1)', () => {
  test('confusion matrix equals a plain count; IoU, mIoU and pixel accuracy from it', async () => {
    const C = 4;
    const gt = randomLabels([2, 9, 9], C, 1, 0.2);
    const pred = randomLabels([2, 9, 9], C, 2);
    const m = await losses.confusionMatrix(pred, gt, C);
    const expected = new Array(C * C).fill(0);
    for (let i = 0; i < gt.data.length; i++) if (gt.data[i] !== 255n) expected[Number(gt.data[i]) * C + Number(pred.data[i])]++;
    expect(Array.from(m.data, Number)).toEqual(expected);
    const s = losses.scoresFromConfusion(m);
    for (let c = 0; c < C; c++) {
      let inter = 0, p = 0, g = 0;
      for (let i = 0; i < gt.data.length; i++) {
        if (gt.data[i] === 255n) continue;
        const a = Number(gt.data[i]) === c, b = Number(pred.data[i]) === c;
        if (a && b) inter++;
        if (a) g++;
        if (b) p++;
      }
      expect(s.iou[c]).toBeCloseTo(inter / (p + g - inter + 1e-10), 10);
    }
    expect(s.miou).toBeCloseTo(s.iou.reduce((a, b) => a + b) / C, 12);
    expect(s.pixelAccuracy).toBeCloseTo(expected.filter((_, i) => i % (C + 1) === 0).reduce((a, b) => a + b) / expected.reduce((a, b) => a + b), 12);
  });

  test('a class absent from both scores 0 and still counts in the mean', async () => {
    const gt = { data: new BigInt64Array([0n, 0n, 1n, 1n]), shape: [1, 2, 2] };
    const s = losses.scoresFromConfusion(await losses.confusionMatrix(gt, gt, 3));
    expect(s.iou[0]).toBeCloseTo(1, 9);
    expect(s.iou[2]).toBe(0);
    expect(s.miou).toBeCloseTo(2 / 3, 9);
  });
});
