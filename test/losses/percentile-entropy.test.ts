import { losses } from '../../lib';
import { expectClose, randomTensor } from '../helpers/tensors';

/** The definition of §0, in plain JS. */
function linearPercentile(values: number[], q: number): number {
  const s = [...values].sort((a, b) => a - b);
  const pos = (q / 100) * (s.length - 1);
  const lo = Math.floor(pos);
  return lo + 1 >= s.length ? s[lo] : s[lo] + (pos - lo) * (s[lo + 1] - s[lo]);
}

describe('percentile', () => {
  test.each([0, 1, 20, 33.3, 50, 80, 99.9, 100])('q = %p equals the linear definition and the composite', async (q) => {
    const values = randomTensor([1001], 3);
    const expected = linearPercentile(Array.from(values.data), q);
    expect(await losses.percentile(values, q)).toBeCloseTo(expected, 6);
    expect(await losses.percentile(values, q, 'composite')).toBeCloseTo(expected, 6);
  });

  test('one value, ties, and an even count', async () => {
    expect(await losses.percentile({ data: new Float32Array([4.5]), shape: [1] }, 37)).toBe(4.5);
    const ties = { data: new Float32Array([1, 2, 2, 2, 3]), shape: [5] };
    expect(await losses.percentile(ties, 50)).toBe(2);
    expect(await losses.percentile(ties, 90)).toBeCloseTo(linearPercentile([1, 2, 2, 2, 3], 90), 6);
    expect(await losses.percentile({ data: new Float32Array([10, 0, 30, 20]), shape: [2, 2] }, 50)).toBeCloseTo(15, 6);
  });

  test('mixed signs, both zeros, extreme magnitudes and a dense cluster (one radix bucket)', async () => {
    const values = [-1e30, -3, -1e-30, -0, 0, 1e-30, 7, 1e30];
    for (let i = 0; i < 5000; i++) values.push(1 + (i % 997) * 1e-6);  // ties, all in one bucket
    for (let i = values.length - 1; i > 0; i--) {
      const j = (i * 7919) % (i + 1);
      [values[i], values[j]] = [values[j], values[i]];
    }
    const tensor = { data: new Float32Array(values), shape: [values.length] };
    const exact = Array.from(tensor.data);
    for (const q of [0, 0.01, 0.1, 10, 50, 90, 99.9, 99.99, 100]) {
      const expected = linearPercentile(exact, q);
      const got = await losses.percentile(tensor, q);
      expect(Math.abs(got - expected)).toBeLessThanOrEqual(Math.abs(expected) * 1e-6);
    }
  });

  test('bad input is an error', async () => {
    await expect(losses.percentile({ data: new Float32Array(0), shape: [0] }, 50)).rejects.toThrow('percentile of an empty set');
    await expect(losses.percentile({ data: new Float32Array(3), shape: [3] }, 101)).rejects.toThrow('q must be in [0, 100]');
  });
});

describe('upsampled entropy', () => {
  test.each([
    [[2, 5, 9, 11], 33, 41],
    [[1, 3, 4, 4], 4, 4],
    [[1, 21, 7, 7], 25, 25],
    [[2, 2, 1, 3], 1, 9],
  ])('%j -> %p x %p matches upsample + softmax + entropy', async (shape, h, w) => {
    const logits = randomTensor(shape as number[], 5);
    for (let i = 0; i < logits.data.length; i++) logits.data[i] *= 4;
    const kernel = await losses.upsampledEntropy(logits, h, w);
    const composite = await losses.upsampledEntropy(logits, h, w, 'composite');
    expect(kernel.shape).toEqual([(shape as number[])[0], h, w]);
    expectClose(kernel.data, composite.data, 2e-6);
  });

  test('uniform logits give ln C, a one-hot-like prediction gives ~0', async () => {
    const uniform = await losses.upsampledEntropy({ data: new Float32Array(4 * 9), shape: [1, 4, 3, 3] }, 5, 5);
    for (const v of uniform.data) expect(v).toBeCloseTo(Math.log(4), 5);
    const peaked = new Float32Array(3 * 4).fill(-50);
    peaked.fill(50, 0, 4);
    const sharp = await losses.upsampledEntropy({ data: peaked, shape: [1, 3, 2, 2] }, 3, 3);
    for (const v of sharp.data) expect(v).toBeLessThan(1e-6);
  });
});
