import { losses } from '../../lib';
import { expectClose, randomLabels, randomTensor } from '../helpers/tensors';

function inputs(b: number, c: number, h: number, H: number, seed: number, ignoreFraction = 0) {
  const student = randomTensor([b, c, h, h], seed);
  const teacher = randomTensor([b, c, h, h], seed + 1);
  for (let i = 0; i < teacher.data.length; i++) teacher.data[i] *= 3;
  return { student, teacher, pseudo: randomLabels([b, H, H], c, seed + 2, ignoreFraction) };
}

describe('unsupervised loss', () => {
  test.each([
    ['reference', 80], ['reference', 95.5], ['paper', 80], ['paper', 100], ['reference', 0.5],
  ] as const)('weighting %s, q = %p: kernel = composite (value, gradient, entropy, threshold)', async (weighting, q) => {
    const x = inputs(2, 6, 9, 33, 11, 0.1);
    const k = await losses.unsupervisedLoss({ ...x, q, weighting });
    const c = await losses.unsupervisedLoss({ ...x, q, weighting, impl: 'composite' });
    expect(k.kept).toBe(c.kept);
    expect(k.valid).toBe(c.valid);
    expect(k.threshold).toBeCloseTo(c.threshold, 5);
    // Relative: at q = 0.5 the reference weighting scales the sum by B*H*W / N_keep^2 (~440 here).
    expectClose([k.loss], [c.loss], 1e-6);
    expectClose(k.gradStudent!.data, c.gradStudent!.data, 1e-5);
    expectClose(k.entropy.data, c.entropy.data, 2e-6);
  });

  test('dropping a fraction f: reference = mean over kept / (1 - f) = paper * B*H*W / N_keep', async () => {
    const x = inputs(2, 5, 8, 31, 21);
    const ref = await losses.unsupervisedLoss({ ...x, q: 80, weighting: 'reference' });
    const paper = await losses.unsupervisedLoss({ ...x, q: 80, weighting: 'paper' });
    const total = 2 * 31 * 31;
    // ~20% of the pixels (those with entropy >= the 80th percentile) are dropped.
    expect(Math.abs(ref.kept / total - 0.8)).toBeLessThan(0.01);
    const f = 1 - ref.kept / total;
    expect(ref.loss).toBeCloseTo(paper.loss / (1 - f), 5);
    // Every dropped pixel has entropy >= threshold, every kept one < threshold.
    let dropped = 0;
    for (const e of ref.entropy.data) if (e >= ref.threshold) dropped++;
    expect(dropped).toBe(total - ref.kept);
  });

  test('excludedPixels: left out of the reference factor only; kernel = composite; out of range refused', async () => {
    const x = inputs(2, 5, 8, 31, 41, 0.3);
    const total = 2 * 31 * 31;
    const ref = await losses.unsupervisedLoss({ ...x, q: 80, weighting: 'reference' });
    const excludedPixels = total - ref.valid;  // as the trainer passes the pixels its confidence threshold ignores
    const k = await losses.unsupervisedLoss({ ...x, q: 80, weighting: 'reference', excludedPixels });
    const c = await losses.unsupervisedLoss({ ...x, q: 80, weighting: 'reference', excludedPixels, impl: 'composite' });
    const paper = await losses.unsupervisedLoss({ ...x, q: 80, weighting: 'paper', excludedPixels });
    expectClose([k.loss], [c.loss], 1e-6);
    expectClose(k.gradStudent!.data, c.gradStudent!.data, 1e-5);
    expect(k.kept).toBe(ref.kept);
    expect(ref.loss).toBeCloseTo(paper.loss * total / ref.kept, 5);
    expect(k.loss).toBeCloseTo(paper.loss * ref.valid / ref.kept, 5);
    const same = await losses.unsupervisedLoss({ ...x, q: 80, weighting: 'paper' });
    expect(same.loss).toBe(paper.loss);
    await expect(losses.unsupervisedLoss({ ...x, q: 80, excludedPixels: total + 1 })).rejects.toThrow(`excluded_pixels must be within 0..${total}, got ${total + 1}`);
  });

  test('every pixel ignored: zero loss and gradient; a single class and a batch of one still work', async () => {
    const x = inputs(1, 4, 5, 17, 31);
    const none = await losses.unsupervisedLoss({ ...x, pseudo: { data: new BigInt64Array(17 * 17).fill(255n), shape: [1, 17, 17] }, q: 80 });
    expect(Math.abs(none.loss)).toBe(0);
    expect(none.kept).toBe(0);
    expect(Array.from(none.gradStudent!.data).every((g) => g === 0)).toBe(true);
    const single = { data: new BigInt64Array(17 * 17).fill(2n), shape: [1, 17, 17] };
    const k = await losses.unsupervisedLoss({ ...x, pseudo: single, q: 70 });
    const c = await losses.unsupervisedLoss({ ...x, pseudo: single, q: 70, impl: 'composite' });
    expect(k.loss).toBeCloseTo(c.loss, 5);
    expect(k.kept).toBe(c.kept);
  });
});
