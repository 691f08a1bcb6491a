import { losses } from '../../lib';
import { expectClose, randomLabels, randomTensor } from '../helpers/tensors';

/** Mean CE over pixels where keep[i], for logits already at label size, weighted by weight[label] when given; plain JS. */
function meanCe(logits: Float32Array, labels: BigInt64Array, n: number, c: number, hw: number, keep: (i: number, p: number) => boolean, weight?: number[]) {
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
      const w = weight ? weight[y] : 1;
      sum -= w * logp;
      count += w;
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

  describe('class weights (criterion.kwargs.class_weight)', () => {
    const weight = [0.5, 2, 0, 3.5, 1, 0.25];

    test('at label size: the weighted mean sum w[y] CE / sum w[y] (JS), with OHEM selecting unweighted', async () => {
      const pred = randomTensor([2, 6, 8, 8], 21);
      for (let i = 0; i < pred.data.length; i++) pred.data[i] *= 3;
      const labels = randomLabels([2, 8, 8], 6, 22, 0.1);
      const k = await losses.supervisedLoss({ pred, labels, classWeight: weight });
      expect(k.loss).toBeCloseTo(meanCe(pred.data, labels.data, 2, 6, 64, () => true, weight), 5);
      expect(Math.abs(k.loss - meanCe(pred.data, labels.data, 2, 6, 64, () => true))).toBeGreaterThan(1e-3);
      const probs: number[] = [];
      meanCe(pred.data, labels.data, 2, 6, 64, (_, p) => { probs.push(p); return true; });
      const theta = Math.max(0.3, [...probs].sort((a, b) => a - b)[19]);
      const o = await losses.supervisedLoss({ pred, labels, classWeight: weight, ohem: true, thresh: 0.3, minKept: 20 });
      expect(o.loss).toBeCloseTo(meanCe(pred.data, labels.data, 2, 6, 64, (_, p) => p <= theta, weight), 4);
    });

    test('fused upsampling at the training shapes, with aux and OHEM: kernel = composite (ATen weighted CE), values and gradients', async () => {
      const cases: [number[], number[], boolean][] = [
        [[2, 6, 41, 41], [2, 161, 161], false],
        [[2, 6, 41, 41], [2, 161, 161], true],
        [[1, 6, 17, 23], [1, 6, 5], false],
      ];
      for (const [shape, labelShape, ohem] of cases) {
        const pred = randomTensor(shape, 23);
        const aux = randomTensor(shape, 24);
        for (let i = 0; i < pred.data.length; i++) pred.data[i] *= 4;
        const labels = randomLabels(labelShape, shape[1], 25, 0.1);
        const o = { pred, aux, labels, classWeight: weight, ohem, thresh: 0.7, minKept: 100 };
        const k = await losses.supervisedLoss(o);
        const c = await losses.supervisedLoss({ ...o, impl: 'composite' });
        expectClose([k.loss], [c.loss], 1e-6);
        expectClose(k.gradPred.data, c.gradPred.data, 1e-6);
        expectClose(k.gradAux!.data, c.gradAux!.data, 1e-6);
        // All-ones weights are the unweighted loss, to the bit.
        const ones = await losses.supervisedLoss({ ...o, classWeight: new Array(6).fill(1) });
        const none = await losses.supervisedLoss({ ...o, classWeight: undefined });
        expect(ones.loss).toBe(none.loss);
        expect(Array.from(ones.gradPred.data)).toEqual(Array.from(none.gradPred.data));
      }
    });

    test('weights of another length are an error that says so; all-zero weights of the present classes give 0', async () => {
      const pred = randomTensor([1, 3, 4, 4], 1);
      const labels = randomLabels([1, 8, 8], 2, 3);  // classes 0 and 1 only
      await expect(losses.supervisedLoss({ pred, labels, classWeight: [1, 2] })).rejects.toThrow(/class weights must be 3 values/);
      const r = await losses.supervisedLoss({ pred, labels, classWeight: [0, 0, 1] });
      expect(Math.abs(r.loss)).toBe(0);
      expect(Array.from(r.gradPred.data).every((g) => g === 0)).toBe(true);
    });
  });
});
