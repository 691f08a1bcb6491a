import { losses } from '../../lib';
import { expectClose, randomLabels, randomTensor } from '../helpers/tensors';

/** Mean CE over pixels where keep[i], for logits already at label size; plain JS. */
function meanCe(logits: Float32Array, labels: BigInt64Array, n: number, c: number, hw: number, keep: (i: number, p: number) => boolean) {
  let sum = 0;
  let count = 0;
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < hw; i++) {
      const y = Number(labels[b * hw + i]);
      if (y === 255) continue;
      let m = -Infinity;
      for (let k = 0; k < c; k++) m = Math.max(m, logits[(b * c + k) * hw + i]);
      let s = 0;
      for (let k = 0; k < c; k++) s += Math.exp(logits[(b * c + k) * hw + i] - m);
      const logp = logits[(b * c + y) * hw + i] - m - Math.log(s);
      if (!keep(b * hw + i, Math.exp(logp))) continue;
      sum -= logp;
      count++;
    }
  }
  return sum / count;
}

describe('supervised loss', () => {
  test('cross-entropy with ignore label and aux term: kernel = composite (values and gradients)', async () => {
    const pred = randomTensor([2, 5, 9, 9], 1);
    const aux = randomTensor([2, 5, 5, 5], 2);
    const labels = randomLabels([2, 33, 33], 5, 3, 0.2);
    const k = await losses.supervisedLoss({ pred, aux, labels });
    const c = await losses.supervisedLoss({ pred, aux, labels, impl: 'composite' });
    expect(k.loss).toBeCloseTo(c.loss, 5);
    expectClose(k.gradPred.data, c.gradPred.data, 1e-5);
    expectClose(k.gradAux!.data, c.gradAux!.data, 1e-5);
  });

  test('at label size it is the plain mean CE over non-ignored pixels', async () => {
    const pred = randomTensor([2, 4, 6, 6], 4);
    const labels = randomLabels([2, 6, 6], 4, 5, 0.3);
    const k = await losses.supervisedLoss({ pred, labels });
    expect(k.loss).toBeCloseTo(meanCe(pred.data, labels.data, 2, 4, 36, () => true), 5);
  });

  test('fused upsample + CE at the training shapes (21 classes, stride 4, one-row source, downsampling): kernel = composite', async () => {
    // 41 -> 161 rows: many row groups, split over threads in two phases; then a 1-row source; then
    // labels smaller than the logits, where the taps skip source rows and columns.
    const cases: [number[], number[]][] = [
      [[2, 21, 41, 41], [2, 161, 161]],
      [[1, 3, 1, 7], [1, 5, 25]],
      [[1, 4, 17, 23], [1, 6, 5]],
    ];
    for (const [shape, labelShape] of cases) {
      const pred = randomTensor(shape, 13);
      for (let i = 0; i < pred.data.length; i++) pred.data[i] *= 4;
      const labels = randomLabels(labelShape, shape[1], 14, 0.1);
      const k = await losses.supervisedLoss({ pred, labels });
      const c = await losses.supervisedLoss({ pred, labels, impl: 'composite' });
      expectClose([k.loss], [c.loss], 1e-6);
      expectClose(k.gradPred.data, c.gradPred.data, 1e-6);
    }
  });

  test('a label outside [0, C) and not the ignore label is an error that names it', async () => {
    const pred = randomTensor([1, 3, 4, 4], 1);
    const labels = { data: new BigInt64Array(64).fill(1n), shape: [1, 8, 8] };
    labels.data[10] = 7n;
    await expect(losses.supervisedLoss({ pred, labels })).rejects.toThrow(/labels must be in \[0, 3\) or 255, found 7/);
  });

  test('every pixel ignored: loss 0 and zero gradient, not NaN', async () => {
    const pred = randomTensor([1, 3, 4, 4], 1);
    const labels = { data: new BigInt64Array(16).fill(255n), shape: [1, 4, 4] };
    for (const impl of ['kernel', 'composite'] as const) {
      for (const ohem of [false, true]) {
        const r = await losses.supervisedLoss({ pred, labels, ohem, minKept: 3, impl });
        expect(Math.abs(r.loss)).toBe(0);
        expect(Array.from(r.gradPred.data).every((g) => g === 0)).toBe(true);
      }
    }
  });

  test.each([
    [0.7, 10], [0.7, 100000], [0.2, 50], [0.0, 1], [0.9, 0],
  ])('OHEM thresh %p min_kept %p: kernel = composite and = mean CE over p <= max(thresh, k-th smallest p)', async (thresh, minKept) => {
    const pred = randomTensor([2, 6, 8, 8], 7);
    for (let i = 0; i < pred.data.length; i++) pred.data[i] *= 3;
    const labels = randomLabels([2, 8, 8], 6, 8, 0.1);
    const k = await losses.supervisedLoss({ pred, labels, ohem: true, thresh, minKept });
    const c = await losses.supervisedLoss({ pred, labels, ohem: true, thresh, minKept, impl: 'composite' });
    expect(k.loss).toBeCloseTo(c.loss, 5);
    expectClose(k.gradPred.data, c.gradPred.data, 1e-5);

    // Independent check in JS.
    const probs: number[] = [];
    meanCe(pred.data, labels.data, 2, 6, 64, (_, p) => { probs.push(p); return true; });
    const valid = probs.length;
    let keep: (i: number, p: number) => boolean = () => true;
    if (minKept > 0 && minKept <= valid) {
      const kth = [...probs].sort((a, b) => a - b)[minKept - 1];
      const theta = Math.max(thresh, kth);
      keep = (_, p) => p <= theta;
      expect(probs.filter((p) => p <= theta).length).toBeGreaterThanOrEqual(minKept);
    }
    expect(k.loss).toBeCloseTo(meanCe(pred.data, labels.data, 2, 6, 64, keep), 4);
  });
});
