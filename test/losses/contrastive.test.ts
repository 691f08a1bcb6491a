import { losses, Tensor } from '../../lib';
import { expectClose, randomLabels, randomTensor } from '../helpers/tensors';

type Case = Parameters<typeof losses.contrastiveLoss>[0];

function softmaxChannels(t: Tensor<Float32Array>): Tensor<Float32Array> {
  const [n, c, h, w] = t.shape;
  const out = new Float32Array(t.data.length);
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < h * w; i++) {
      let m = -Infinity;
      for (let k = 0; k < c; k++) m = Math.max(m, t.data[(b * c + k) * h * w + i]);
      let s = 0;
      for (let k = 0; k < c; k++) s += Math.exp(t.data[(b * c + k) * h * w + i] - m);
      for (let k = 0; k < c; k++) out[(b * c + k) * h * w + i] = Math.exp(t.data[(b * c + k) * h * w + i] - m) / s;
    }
  }
  return { data: out, shape: t.shape };
}

/** A batch of B_l labeled + B_u unlabeled images with the teacher's prediction agreeing with the labels most of the time. */
function makeCase(opts: { bl?: number; bu?: number; classes?: number; d?: number; h?: number; H?: number; seed?: number; ignore?: number; capacities?: number[]; fill?: number[] } = {}): Case {
  const { bl = 1, bu = 2, classes = 5, d = 8, h = 9, H = 17, seed = 1, ignore = 0.05 } = opts;
  const n = bl + bu;
  const labels = randomLabels([bl, H, H], classes, seed, ignore);
  const pseudo = randomLabels([bu, H, H], classes, seed + 1, 0);
  const logits = randomTensor([n, classes, h, h], seed + 2);
  for (let i = 0; i < logits.data.length; i++) logits.data[i] *= 2.5;
  const entropy = randomTensor([bu, H, H], seed + 3);
  for (let i = 0; i < entropy.data.length; i++) entropy.data[i] = entropy.data[i] + 1;
  const capacities = opts.capacities ?? Array.from({ length: classes }, (_, c) => (c === 0 ? 500 : 300));
  const bank = capacities.map((_, c) => randomTensor([opts.fill ? opts.fill[c] : 40, d], seed + 10 + c));
  return {
    rep: randomTensor([n, d, h, h], seed + 4), repTeacher: randomTensor([n, d, h, h], seed + 5),
    probTeacher: softmaxChannels(logits), labels, pseudo, entropy, alpha: 20, capacities, bank, seed: 7,
    numQueries: 16, numNegatives: 6, lowRank: 1, highRank: 4,
  };
}

async function expectKernelMatchesComposite(c: Case) {
  const k = await losses.contrastiveLoss(c);
  const r = await losses.contrastiveLoss({ ...c, impl: 'composite' });
  expect(k.validClasses).toBe(r.validClasses);
  expect(k.processedClasses).toBe(r.processedClasses);
  expect(k.enqueued).toEqual(r.enqueued);
  expect(k.loss).toBeCloseTo(r.loss, 5);
  expectClose(k.gradRep!.data, r.gradRep!.data, 1e-5);
  expect(k.bank.map((t) => t.shape)).toEqual(r.bank.map((t) => t.shape));
  k.bank.forEach((t, i) => expectClose(t.data, r.bank[i].data, 0));
  return k;
}

describe('contrastive loss: kernel = composite (loss, gradient, banks)', () => {
  test('reference indexing and negatives (the defaults)', async () => {
    const k = await expectKernelMatchesComposite(makeCase());
    expect(k.validClasses).toBe(5);
    expect(k.processedClasses).toBeGreaterThan(0);
    expect(k.loss).toBeGreaterThan(0);
    expect(k.enqueued.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
  });

  test('fixed indexing, paper negatives, no high-entropy restriction', async () => {
    await expectKernelMatchesComposite({ ...makeCase({ seed: 3 }), referenceIndexing: false });
    const paper = await expectKernelMatchesComposite({ ...makeCase({ seed: 4 }), negatives: 'paper' });
    expect(paper.enqueued.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    await expectKernelMatchesComposite({ ...makeCase({ seed: 5 }), negativeHighEntropy: false });
  });

  test('training-like sizes (D = 64, 8 classes, 64 anchors x 24 negatives from banks of 2,000): kernel = composite', async () => {
    const c = makeCase({ bl: 2, bu: 2, classes: 8, d: 64, h: 21, H: 81, seed: 21, capacities: Array(8).fill(2000), fill: Array(8).fill(2000) });
    const k = await expectKernelMatchesComposite({ ...c, numQueries: 64, numNegatives: 24, lowRank: 2, highRank: 6 });
    expect(k.processedClasses).toBeGreaterThan(4);
    await expectKernelMatchesComposite({ ...c, numQueries: 64, numNegatives: 24, lowRank: 2, highRank: 6, negatives: 'paper', referenceIndexing: false });
  });

  test('bank wrap-around: appends beyond capacity keep the newest keys', async () => {
    const c = { ...makeCase({ seed: 6, capacities: [30, 20, 20, 20, 20], fill: [25, 19, 20, 3, 0] }), negatives: 'paper' as const };
    const k = await expectKernelMatchesComposite(c);
    k.bank.forEach((t, i) => expect(t.shape[0]).toBe(Math.min(c.capacities[i], [25, 19, 20, 3, 0][i] + k.enqueued[i])));
  });

  test('empty banks: nothing to sample, loss 0 but classes still counted', async () => {
    const c = { ...makeCase({ seed: 8 }), bank: [], currentClassNegativeThreshold: 0 };
    const k = await expectKernelMatchesComposite(c);
    expect(k.processedClasses).toBe(0);
    expect(Math.abs(k.loss)).toBe(0);
    expect(k.validClasses).toBeGreaterThan(1);
  });

  test('edge cases: two classes, alpha = 0, a batch of one labeled + one unlabeled image', async () => {
    await expectKernelMatchesComposite(makeCase({ classes: 2, seed: 9 }));
    await expectKernelMatchesComposite({ ...makeCase({ seed: 10 }), alpha: 0 });
    await expectKernelMatchesComposite(makeCase({ bl: 1, bu: 1, seed: 11 }));
  });

  test('a single class present gives exactly 0; every pixel ignored gives 0', async () => {
    const c = makeCase({ seed: 12 });
    const one = (t: Tensor) => ({ data: new BigInt64Array(t.data.length).fill(3n), shape: t.shape });
    const single = await expectKernelMatchesComposite({ ...c, labels: one(c.labels), pseudo: one(c.pseudo) });
    expect(single.validClasses).toBe(1);
    expect(single.loss).toBe(0);
    const ignored = (t: Tensor) => ({ data: new BigInt64Array(t.data.length).fill(255n), shape: t.shape });
    const none = await expectKernelMatchesComposite({ ...c, labels: ignored(c.labels), pseudo: ignored(c.pseudo) });
    expect(none.validClasses).toBe(0);
    expect(Math.abs(none.loss)).toBe(0);
    expect(Array.from(none.gradRep!.data).every((g) => g === 0)).toBe(true);
  });

  test('anchors along the prototype and orthogonal negatives: loss = -ln(e^(1/t) / (e^(1/t) + N_n))', async () => {
    // One labeled image: left half class 0, right half class 1. Student and teacher embed class 0
    // as e1 and class 1 as e3; the banks hold only e2 (orthogonal); no new negatives (delta_n = 0).
    const d = 4, h = 4, H = 8, tau = 0.5, nn = 7;
    const labels = { data: new BigInt64Array(H * H).map((_, i) => (i % H < H / 2 ? 0n : 1n)), shape: [1, H, H] };
    const pseudo = { data: new BigInt64Array(H * H).map((_, i) => (i % H < H / 2 ? 0n : 1n)), shape: [1, H, H] };
    const rep = new Float32Array(2 * d * h * h);
    const prob = new Float32Array(2 * 2 * h * h);
    for (let b = 0; b < 2; b++) {
      for (let i = 0; i < h * h; i++) {
        const cls = i % h < h / 2 ? 0 : 1;
        rep[(b * d + (cls === 0 ? 0 : 2)) * h * h + i] = 2; // e1 or e3, not unit length
        prob[(b * 2 + cls) * h * h + i] = 0.9;
        prob[(b * 2 + 1 - cls) * h * h + i] = 0.1;
      }
    }
    const e2 = { data: new Float32Array(10 * d).map((_, i) => (i % d === 1 ? 1 : 0)), shape: [10, d] };
    const entropy = { data: new Float32Array(H * H), shape: [1, H, H] };
    for (const referenceIndexing of [true, false]) {
      const r = await losses.contrastiveLoss({
        rep: { data: rep, shape: [2, d, h, h] }, repTeacher: { data: rep, shape: [2, d, h, h] }, probTeacher: { data: prob, shape: [2, 2, h, h] },
        labels, pseudo, entropy, alpha: 20, capacities: [10, 10], bank: [e2, e2], temperature: tau, numQueries: 5, numNegatives: nn,
        currentClassNegativeThreshold: 0, referenceIndexing,
      });
      expect(r.processedClasses).toBe(2);
      expect(r.loss).toBeCloseTo(-Math.log(Math.exp(1 / tau) / (Math.exp(1 / tau) + nn)), 5);
    }
  });
});
