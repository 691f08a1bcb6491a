/**
 * The AEL variant's components (u2pl-ael-method.md A3-A6, the checks of A14), each against a
 * straightforward reference: plain-JS loops, the ATen formulation, or hand-computed values.
 */
import { native } from '../../lib/native';
import { randomTensor } from '../helpers/tensors';

const ael = () => native().ael;
const CITYSCAPES_PASTE = [3, 4, 5, 6, 7, 9, 11, 12, 13, 14, 15, 16, 17, 18];  // all but road, sidewalk, building, vegetation, sky

describe('class probabilities of the plans (A4.1, A5.2)', () => {
  test('copy-paste: softmax(sqrt(1 - kappa)) over T_cat, 14 entries, max/min <= e; uniform for constant kappa', async () => {
    const kappa = randomTensor([19], 3);
    kappa.data.forEach((v, i) => { kappa.data[i] = (v + 1) / 2; });
    const { paste, mix } = await ael().classProbabilities({ kappa, pasteClasses: CITYSCAPES_PASTE });
    expect(paste.shape).toEqual([14]);
    const p = Array.from(paste.data);
    expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
    expect(Math.max(...p) / Math.min(...p)).toBeLessThanOrEqual(Math.E);
    const v = CITYSCAPES_PASTE.map((c) => Math.sqrt(1 - kappa.data[c]));
    const z = v.reduce((a, b) => a + Math.exp(b), 0);
    p.forEach((x, i) => expect(x).toBeCloseTo(Math.exp(v[i]) / z, 7));
    // The mix draw: softmax(1 - kappa) over all 19 classes.
    const m = Array.from(mix.data);
    expect(m).toHaveLength(19);
    expect(m.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
    const zm = Array.from(kappa.data).reduce((a, k) => a + Math.exp(1 - k), 0);
    m.forEach((x, c) => expect(x).toBeCloseTo(Math.exp(1 - kappa.data[c]) / zm, 7));
    const flat = await ael().classProbabilities({ kappa: { data: new Float32Array(19).fill(0.3), shape: [19] }, pasteClasses: CITYSCAPES_PASTE });
    flat.paste.data.forEach((x) => expect(x).toBeCloseTo(1 / 14, 9));
  });
});

describe('class confidence kappa measures (A3)', () => {
  test('m_c is the mean probability of c over the pixels labelled c, 0 for absent classes (2x2 toy)', async () => {
    // 1 image, 3 classes, 2 x 2 pixels; labels [[0, 0], [1, 255]]: class 2 absent, the ignored pixel never counts.
    const prob = { data: Float32Array.from([0.7, 0.5, 0.2, 0.9, /* c1 */ 0.2, 0.3, 0.6, 0.05, /* c2 */ 0.1, 0.2, 0.2, 0.05]), shape: [1, 3, 2, 2] };
    const labels = { data: BigInt64Array.from([0n, 0n, 1n, 255n]), shape: [1, 2, 2] };
    const m = await ael().classConfidence({ prob, labels });
    expect(Array.from(m.mean.data).map((x) => Number(x.toFixed(6)))).toEqual([0.6, 0.6, 0]);
    expect(Array.from(m.present.data)).toEqual([1, 1, 0]);
  });
});

describe('adaptive copy-paste (A4.2)', () => {
  const B = 3, H = 9, W = 11;
  const images = randomTensor([B, 3, H, W], 1);
  const partnerImages = randomTensor([B, 3, H, W], 2);
  const labels = { data: Uint8Array.from({ length: B * H * W }, (_, i) => (i * 7) % 5), shape: [B, H, W] };
  // Partner labels over 0..5 and 255, so some are chosen, some are not, some are ignore.
  const partnerLabels = { data: Uint8Array.from({ length: B * H * W }, (_, i) => [3, 4, 255, 0, 5, 1, 3][(i * 13) % 7]), shape: [B, H, W] };
  const hasPartner = [1, 0, 1];
  const classes = [3, 5];

  test('pasted pixels carry the partner label and all three image values; every other pixel is bit-identical', async () => {
    const r = await ael().copyPaste({ images, labels, partnerImages, partnerLabels, hasPartner, classes });
    let pasted = 0;
    for (let b = 0; b < B; b++) for (let p = 0; p < H * W; p++) {
      const i = b * H * W + p;
      const take = hasPartner[b] === 1 && classes.includes(partnerLabels.data[i]);
      pasted += take ? 1 : 0;
      expect(Number(r.labels.data[i])).toBe(take ? partnerLabels.data[i] : labels.data[i]);
      for (let c = 0; c < 3; c++) {
        const j = (b * 3 + c) * H * W + p;
        expect(r.images.data[j]).toBe(take ? partnerImages.data[j] : images.data[j]);
      }
    }
    expect(r.pasted).toBe(pasted);
    expect(pasted).toBeGreaterThan(0);
  });

  test('the loop kernel equals the ATen reference (where / isin), bit for bit', async () => {
    const kernel = await ael().copyPaste({ images, labels, partnerImages, partnerLabels, hasPartner, classes });
    const reference = await ael().copyPaste({ images, labels, partnerImages, partnerLabels, hasPartner, classes, impl: 'composite' });
    expect(Buffer.from(kernel.images.data.buffer).equals(Buffer.from(reference.images.data.buffer))).toBe(true);
    expect(Array.from(kernel.labels.data as Uint8Array)).toEqual(Array.from(reference.labels.data as Uint8Array));
    expect(kernel.pasted).toBe(reference.pasted);
  });

  test('no partner, no classes, or classes the partners do not show: nothing changes', async () => {
    const none = await ael().copyPaste({ images, labels, partnerImages, partnerLabels, hasPartner: [0, 0, 0], classes });
    expect(none.pasted).toBe(0);
    expect(Buffer.from(none.images.data.buffer).equals(Buffer.from(images.data.buffer))).toBe(true);
    const empty = await ael().copyPaste({ images, labels, partnerImages, partnerLabels, hasPartner, classes: [] });
    expect(empty.pasted).toBe(0);
    const absent = await ael().copyPaste({ images, labels, partnerImages, partnerLabels, hasPartner, classes: [2, 7] });
    expect(absent.pasted).toBe(0);
    expect(Array.from(absent.labels.data as Uint8Array)).toEqual(Array.from(labels.data));
  });
});

describe('adaptive CutMix boxes (A5.3, A5.6) and the bank (A5.5)', () => {
  const H = 40, W = 50;
  const map = (fill: (y: number, x: number) => number) => ({ data: BigInt64Array.from({ length: H * W }, (_, i) => BigInt(fill(Math.floor(i / W), i % W))), shape: [H, W] });

  test('a single 8-connected blob gives its tight bounding box; squares touching at a corner are one component', async () => {
    // Class 4: a 6 x 5 square at rows 10-15, columns 20-24, and a 3 x 3 square touching its lower-right corner diagonally.
    const m = map((y, x) => ((y >= 10 && y <= 15 && x >= 20 && x <= 24) || (y >= 16 && y <= 18 && x >= 25 && x <= 27) ? 4 : 1));
    const box = await ael().componentBox({ prediction: m, cls: 4, minPixels: 30 });
    expect(box).toEqual({ top: 10, left: 20, height: 9, width: 8, fromComponent: true });
  });

  test('too small a component (<= min pixels, strict >), or an absent class: no box (the random fallback is used)', async () => {
    const m = map((y, x) => (y < 5 && x < 6 ? 2 : 0));  // 30 pixels of class 2
    expect(await ael().componentBox({ prediction: m, cls: 2, minPixels: 30 })).toBeNull();
    expect(await ael().componentBox({ prediction: m, cls: 2, minPixels: 29.5 })).toEqual({ top: 0, left: 0, height: 5, width: 6, fromComponent: true });
    expect(await ael().componentBox({ prediction: m, cls: 7, minPixels: 0 })).toBeNull();
  });

  test('several large components: the choice is seeded and each is picked by some seed', async () => {
    const m = map((y, x) => ((y < 10 && x < 10) || (y >= 20 && y < 30 && x >= 30 && x < 40) ? 3 : 0));
    const seen = new Set<string>();
    for (let seed = 0; seed < 20; seed++) {
      const a = await ael().componentBox({ prediction: m, cls: 3, minPixels: 50, seed });
      const b = await ael().componentBox({ prediction: m, cls: 3, minPixels: 50, seed });
      expect(a).toEqual(b);
      seen.add(JSON.stringify(a));
    }
    expect([...seen].sort()).toEqual([
      JSON.stringify({ top: 0, left: 0, height: 10, width: 10, fromComponent: true }),
      JSON.stringify({ top: 20, left: 30, height: 10, width: 10, fromComponent: true }),
    ].sort());
  });

  test('random boxes: sides in [H/2, H], area within H of H^2/2, inside the image (square crops)', async () => {
    const S = 97;
    for (let seed = 0; seed < 200; seed++) {
      const b = await ael().randomBox({ height: S, width: S, seed });
      expect(b.fromComponent).toBe(false);
      for (const side of [b.height, b.width]) {
        expect(side).toBeGreaterThanOrEqual(Math.floor(S / 2));
        expect(side).toBeLessThanOrEqual(S);
      }
      expect(Math.abs(b.height * b.width - (S * S) / 2)).toBeLessThanOrEqual(S);
      expect(b.top).toBeGreaterThanOrEqual(0);
      expect(b.left).toBeGreaterThanOrEqual(0);
      expect(b.top + b.height).toBeLessThanOrEqual(S);
      expect(b.left + b.width).toBeLessThanOrEqual(S);
    }
  });

  test('bank column: class c is present iff it covers at least the threshold; a class covering everything is the only one', async () => {
    const m = map((y, x) => (y < 4 ? 1 : y < 10 ? 2 : 0));  // 200 pixels of 1, 300 of 2, 1500 of 0
    expect(await ael().classPresence({ prediction: m, classes: 4, minPixels: 200 })).toEqual([true, true, true, false]);
    expect(await ael().classPresence({ prediction: m, classes: 4, minPixels: 200.5 })).toEqual([true, false, true, false]);
    const all = map(() => 3);
    expect(await ael().classPresence({ prediction: all, classes: 4, minPixels: 0.01 * H * H })).toEqual([false, false, false, true]);
  });
});

describe('consistency loss (A6)', () => {
  const N = 2, C = 4, H = 6, W = 7;
  const logits = randomTensor([N, C, H, W], 11);
  const P = N * H * W;
  // CE of each pixel against its target, in plain JS.
  function ce(target: number[]): number[] {
    return target.map((t, p) => {
      const n = Math.floor(p / (H * W)), q = p % (H * W);
      const z = Array.from({ length: C }, (_, c) => logits.data[(n * C + c) * H * W + q]);
      const m = Math.max(...z);
      const lse = m + Math.log(z.reduce((a, v) => a + Math.exp(v - m), 0));
      return t === 255 ? 0 : lse - z[t];
    });
  }
  const target = Array.from({ length: P }, (_, p) => (p * 3) % C);
  const ones = { data: new Float32Array(P).fill(1), shape: [N, H, W] };
  const kappa = { data: Float32Array.from([0.1, 0.5, 0.9, 0.3]), shape: [C] };
  const asTensor = (t: number[]) => ({ data: BigInt64Array.from(t.map(BigInt)), shape: [N, H, W] });

  test('without sampling, confidence 1 and no ignored pixel it is the plain mean CE', async () => {
    const r = await ael().consistencyLoss({ logits, confidence: ones, target: asTensor(target), kappa, sample: false });
    const expected = ce(target).reduce((a, b) => a + b, 0) / P;
    expect(r.loss).toBeCloseTo(expected, 5);
  });

  test('a share f of ignored targets: (1 - f) x the mean over the kept (Q2 reference) or the mean over the kept (fixed)', async () => {
    const partly = target.map((t, p) => (p % 4 === 0 ? 255 : t));
    const kept = ce(partly).filter((_, p) => partly[p] !== 255);
    const meanKept = kept.reduce((a, b) => a + b, 0) / kept.length;
    const f = 1 - kept.length / P;
    const reference = await ael().consistencyLoss({ logits, confidence: ones, target: asTensor(partly), kappa, sample: false });
    const fixed = await ael().consistencyLoss({ logits, confidence: ones, target: asTensor(partly), kappa, sample: false, normaliseOverAll: false });
    expect(reference.loss).toBeCloseTo((1 - f) * meanKept, 5);
    expect(fixed.loss).toBeCloseTo(meanKept, 5);
  });

  test('confidence weights c^gamma, normalised to sum to 1: the loss is their weighted mean CE; gradients only where weighted', async () => {
    const conf = randomTensor([N, H, W], 5);
    conf.data.forEach((v, i) => { conf.data[i] = (v + 1) / 2; });
    const r = await ael().consistencyLoss({ logits, confidence: conf, target: asTensor(target), kappa, sample: false, gamma: 2 });
    const w = Array.from(conf.data).map((c) => c * c);
    const sum = w.reduce((a, b) => a + b, 0);
    const l = ce(target);
    expect(r.loss).toBeCloseTo(w.reduce((a, x, p) => a + (x / sum) * l[p], 0), 5);
  });

  test('class sampling keeps a pixel predicted as c with probability d_c: 1 for the hardest class, 0.25 +- 0.005 over 1e6 pixels', async () => {
    const S = 1000;
    // Two classes; the student predicts class 1 everywhere; kappa = [0, 0.75]: d = [1, 0.25], d_hat_1 = 0.25.
    const big = { data: new Float32Array(2 * S * S), shape: [1, 2, S, S] };
    big.data.fill(1, S * S);
    const t = { data: new BigInt64Array(S * S).fill(1n), shape: [1, S, S] };
    const c = { data: new Float32Array(S * S).fill(1), shape: [1, S, S] };
    const r = await ael().consistencyLoss({ logits: big, confidence: c, target: t, kappa: { data: Float32Array.from([0, 0.75]), shape: [2] }, seed: 3 });
    let kept = 0;
    for (let p = 0; p < S * S; p++) if (r.gradLogits.data[S * S + p] !== 0) kept++;
    expect(Math.abs(kept / (S * S) - 0.25)).toBeLessThan(0.005);
    // The hardest class (d_hat = 1) keeps every pixel.
    const hard = await ael().consistencyLoss({ logits: big, confidence: c, target: t, kappa: { data: Float32Array.from([0.9, 0.1]), shape: [2] }, seed: 3 });
    let all = 0;
    for (let p = 0; p < S * S; p++) if (hard.gradLogits.data[S * S + p] !== 0) all++;
    expect(all).toBe(S * S);
  });

  test('the sampling maps: shared by the images of a batch (Q8 reference) or one per image; seeded', async () => {
    // Two identical images: with a shared map they keep the same pixels, with their own maps not.
    const one = randomTensor([1, C, H, W], 21);
    const twice = { data: new Float32Array([...one.data, ...one.data]), shape: [2, C, H, W] };
    const kept = (g: Float32Array, n: number) => Array.from({ length: H * W }, (_, q) => [0, 1, 2, 3].some((k) => g[(n * C + k) * H * W + q] !== 0));
    const shared = await ael().consistencyLoss({ logits: twice, confidence: ones, target: asTensor(target.map(() => 0)), kappa, seed: 9 });
    expect(kept(shared.gradLogits.data, 0)).toEqual(kept(shared.gradLogits.data, 1));
    const own = await ael().consistencyLoss({ logits: twice, confidence: ones, target: asTensor(target.map(() => 0)), kappa, seed: 9, sharedSamplingMap: false });
    expect(kept(own.gradLogits.data, 0)).not.toEqual(kept(own.gradLogits.data, 1));
    const again = await ael().consistencyLoss({ logits: twice, confidence: ones, target: asTensor(target.map(() => 0)), kappa, seed: 9 });
    expect(again.loss).toBe(shared.loss);
  });
});

describe('pseudo-labels of the unlabeled term (A6)', () => {
  test('percent % of the pixels are ignored: the lowest-entropy ones (Q1 reference) or the highest (fixed)', async () => {
    const logits = randomTensor([1, 5, 20, 30], 4);
    logits.data.forEach((v, i) => { logits.data[i] = v * 3; });
    for (const [percent, ignoreConfident] of [[20, true], [20, false], [0.5, true], [0, true]] as const) {
      const r = await ael().pseudoLabels({ logits, percent, ignoreConfident });
      const ent = Array.from(r.entropy.data);
      const ignored = Array.from(r.target.data).map((t) => t === 255n);
      const count = ignored.filter(Boolean).length;
      expect(Math.abs(count - (percent / 100) * ent.length)).toBeLessThanOrEqual(1);
      if (count === 0) continue;
      const inIgnored = ent.filter((_, i) => ignored[i]);
      const inKept = ent.filter((_, i) => !ignored[i]);
      if (ignoreConfident) expect(Math.max(...inIgnored)).toBeLessThanOrEqual(Math.min(...inKept));
      else expect(Math.min(...inIgnored)).toBeGreaterThanOrEqual(Math.max(...inKept));
    }
  });
});
