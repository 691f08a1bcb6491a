import { loadConfig } from '../../lib/config/config';
import { native } from '../../lib/native';
import { DistributionAlignment } from '../../lib/train/alignment';
import { trainerOptions } from '../../lib/train/train';
import { tinyConfig, writeExperiment } from '../helpers/experiment';
import { randomTensor } from '../helpers/tensors';

describe('DistributionAlignment', () => {
  test('soft: factors are the labels\' class shares over the bias-corrected running mean of the teacher\'s', () => {
    const a = new DistributionAlignment(3, { mode: 'soft', momentum: 0.5 });
    expect(a.scale()).toBeNull();  // nothing seen yet
    a.update({ labeledClassPixels: [10, 30, 0], teacherClassMass: [], pseudoClassPixels: [] });  // a warm-up step
    expect(a.labeledDistribution()).toEqual([0.25, 0.75, 0]);
    expect(a.scale()).toBeNull();  // no U2PL step yet: no alignment
    a.update({ labeledClassPixels: [20, 20, 0], teacherClassMass: [50, 25, 25], pseudoClassPixels: [100, 0, 0] });
    // One update: the corrected mean is that batch's distribution.
    expect(a.teacherDistribution()).toEqual([0.5, 0.25, 0.25]);
    a.update({ labeledClassPixels: [], teacherClassMass: [1, 2, 1], pseudoClassPixels: [4, 0, 0] });
    // EMA 0.5: (0.5 * 0.5 * [0.5, .25, .25] + 0.5 * [.25, .5, .25]) / (1 - 0.25)
    const t = a.teacherDistribution() as number[];
    [0.5 * 0.5 * 0.5 + 0.5 * 0.25, 0.5 * 0.5 * 0.25 + 0.5 * 0.5, 0.5 * 0.5 * 0.25 + 0.5 * 0.25].forEach((v, c) => expect(t[c]).toBeCloseTo(v / 0.75, 12));
    const s = a.scale() as Float32Array;
    [0.375, 0.625, 0].forEach((p, c) => expect(s[c]).toBeCloseTo(p / t[c], 6));
    // The state round-trips through JSON (checkpoints) to the same factors.
    const b = new DistributionAlignment(3, { mode: 'soft', momentum: 0.5 }, JSON.parse(JSON.stringify(a)));
    expect(Array.from(b.scale() as Float32Array)).toEqual(Array.from(s));
    expect(() => new DistributionAlignment(4, { mode: 'soft', momentum: 0.5 }, a.toJSON())).toThrow('distribution alignment state has 3 classes, this model 4');
    expect(new DistributionAlignment(3, { mode: 'none', momentum: 0.5 }, a.toJSON()).scale()).toBeNull();
  });

  test('hard: the factors move each class\'s pseudo-label share toward its labelled share, within [1/100, 100]', () => {
    const a = new DistributionAlignment(3, { mode: 'hard', momentum: 0.9 });
    a.update({ labeledClassPixels: [50, 30, 20], teacherClassMass: [], pseudoClassPixels: [] });
    expect(a.scale()).toBeNull();  // no U2PL step yet
    // The teacher gives class 0 everything: its factor falls, the others rise, class 2 (absent) most.
    a.update({ labeledClassPixels: [], teacherClassMass: [1, 1, 1], pseudoClassPixels: [100, 0, 0] });
    const s = a.scale() as Float32Array;
    const f = 1e-3;
    [[0.5, 1], [0.3, 0], [0.2, 0]].forEach(([p, share], c) => expect(Math.log(s[c])).toBeCloseTo(0.1 * (Math.log(p + f) - Math.log(share + f)), 5));
    // Shares that match the labels leave the factors where they are.
    a.update({ labeledClassPixels: [], teacherClassMass: [1, 1, 1], pseudoClassPixels: [50, 30, 20] });
    expect(Array.from(a.scale() as Float32Array)).toEqual(Array.from(s));
    for (let k = 0; k < 2000; k++) a.update({ labeledClassPixels: [], teacherClassMass: [1, 1, 1], pseudoClassPixels: [100, 0, 0] });
    const bounded = a.scale() as Float32Array;
    expect(bounded[0]).toBeCloseTo(0.01, 6);
    expect(bounded[2]).toBeCloseTo(100, 2);
    // The factors survive a checkpoint.
    expect(Array.from(new DistributionAlignment(3, { mode: 'hard', momentum: 0.9 }, JSON.parse(JSON.stringify(a))).scale() as Float32Array)).toEqual(Array.from(bounded));
  });

  test('hard with a running share: the factors follow the EMA of the pseudo-labels\' class pixels', () => {
    const a = new DistributionAlignment(2, { mode: 'hard', momentum: 0.9, share: 'running' });
    a.update({ labeledClassPixels: [50, 50], teacherClassMass: [], pseudoClassPixels: [] });
    a.update({ labeledClassPixels: [], teacherClassMass: [1, 1], pseudoClassPixels: [100, 0] });
    // Running counts [10, 0]: share [1, 0], the same first step as with the step's own share.
    const f = 1e-3;
    let s = a.scale() as Float32Array;
    expect(Math.log(s[0])).toBeCloseTo(0.1 * (Math.log(0.5 + f) - Math.log(1 + f)), 5);
    expect(Math.log(s[1])).toBeCloseTo(0.1 * (Math.log(0.5 + f) - Math.log(f)), 5);
    // A step with class 1 alone: running counts [9, 10], share [9/19, 10/19], not the step's [0, 1].
    const before = Array.from(s, Math.log);
    a.update({ labeledClassPixels: [], teacherClassMass: [1, 1], pseudoClassPixels: [0, 100] });
    s = a.scale() as Float32Array;
    [9 / 19, 10 / 19].forEach((share, c) => expect(Math.log(s[c])).toBeCloseTo(before[c] + 0.1 * (Math.log(0.5 + f) - Math.log(share + f)), 5));
    // The running counts survive a checkpoint; a checkpoint from before them starts them at zero.
    const saved = JSON.parse(JSON.stringify(a)) as ReturnType<typeof a.toJSON>;
    [9, 10].forEach((n, c) => expect((saved.pseudo as number[])[c]).toBeCloseTo(n, 12));
    expect(Array.from(new DistributionAlignment(2, { mode: 'hard', momentum: 0.9, share: 'running' }, saved).scale() as Float32Array)).toEqual(Array.from(s));
    const { pseudo: _, ...older } = saved;
    expect(new DistributionAlignment(2, { mode: 'hard', momentum: 0.9, share: 'running' }, older).toJSON().pseudo).toEqual([0, 0]);
    expect(new DistributionAlignment(2, { mode: 'hard', momentum: 0.9 }).toJSON().pseudo).toBeUndefined();
  });

  test('hard: a class present in few batches ends above its labelled share with each step\'s share, at it with a running share', () => {
    // A simulated teacher on 2-class-plus-rare batches: class 2 fills 5 % of the pixels of one batch
    // in five and is absent from the others (1 % overall), and the teacher under-predicts it.
    const sharesOver = (share: 'step' | 'running'): number[] => {
      let seed = 7;
      const random = () => { seed = (seed * 1664525 + 1013904223) >>> 0; return seed / 4294967296; };
      const gauss = () => Math.sqrt(-2 * Math.log(random() + 1e-12)) * Math.cos(2 * Math.PI * random());
      const a = new DistributionAlignment(3, { mode: 'hard', momentum: 0.99, share });
      a.update({ labeledClassPixels: [69, 30, 1], teacherClassMass: [], pseudoClassPixels: [] });
      const total = [0, 0, 0];
      for (let step = 0; step < 1500; step++) {
        const factor = a.scale() ?? Float32Array.from([1, 1, 1]);
        const present = random() < 0.2;
        const counts = [0, 0, 0];
        for (let i = 0; i < 400; i++) {
          const u = random();
          const truth = present && u < 0.05 ? 2 : u < 0.7 ? 0 : 1;
          const logits = [gauss(), gauss(), gauss() - 1];
          logits[truth] += 3;
          const p = logits.map((l, c) => Math.exp(l) * factor[c]);
          counts[p.indexOf(Math.max(...p))]++;
        }
        a.update({ labeledClassPixels: [], teacherClassMass: [1, 1, 1], pseudoClassPixels: counts });
        if (step >= 500) counts.forEach((n, c) => { total[c] += n; });
      }
      const sum = total.reduce((x, y) => x + y, 0);
      return total.map((n) => n / sum);
    };
    const perStep = sharesOver('step');
    const running = sharesOver('running');
    expect(perStep[2] / 0.01).toBeGreaterThan(1.3);
    expect(running[2] / 0.01).toBeGreaterThan(0.85);
    expect(running[2] / 0.01).toBeLessThan(1.15);
    expect(running[0]).toBeCloseTo(0.69, 1);
  });

  test('hard with maxRatio: no factor grows past maxRatio times the smallest, the others move as without it', () => {
    const capped = new DistributionAlignment(3, { mode: 'hard', momentum: 0.9, maxRatio: 4 });
    const free = new DistributionAlignment(3, { mode: 'hard', momentum: 0.9 });
    for (const a of [capped, free]) a.update({ labeledClassPixels: [50, 30, 20], teacherClassMass: [], pseudoClassPixels: [] });
    // A teacher that gives class 2 nothing and the others in the labels' ratio: class 2's factor rises,
    // the others fall alike, and class 2 is stopped at 4x theirs.
    for (let k = 0; k < 200; k++) {
      for (const a of [capped, free]) a.update({ labeledClassPixels: [], teacherClassMass: [1, 1, 1], pseudoClassPixels: [50, 30, 0] });
    }
    const s = capped.scale() as Float32Array;
    const u = free.scale() as Float32Array;
    expect(u[2] / u[0]).toBeGreaterThan(10);  // unbounded, the absent class runs away
    expect(s[2] / s[0]).toBeCloseTo(4, 4);
    expect(s[0]).toBeCloseTo(u[0], 5);
    expect(s[1]).toBeCloseTo(u[1], 5);
    expect(Math.max(...s) / Math.min(...s)).toBeLessThanOrEqual(4 + 1e-5);
  });
});

test('select: the target shares are the labels\'; no factors', () => {
  const a = new DistributionAlignment(2, { mode: 'select', momentum: 0.99 });
  expect(a.prior()).toBeNull();
  a.update({ labeledClassPixels: [3, 1], teacherClassMass: [1, 1], pseudoClassPixels: [2, 0] });
  expect(Array.from(a.prior() as Float32Array)).toEqual([0.75, 0.25]);
  expect(a.scale()).toBeNull();
  expect(new DistributionAlignment(2, { mode: 'soft', momentum: 0.99 }, a.toJSON()).prior()).toBeNull();
});

describe('the U2PL step with classScale and classPrior', () => {
  const base = tinyConfig(true);
  const trainer = base.trainer as Record<string, any>;
  // No mixing and no contrastive loss: the pseudo-labels meet the truth pixel for pixel.
  const c = loadConfig(writeExperiment({ ...base, trainer: { ...trainer, unsupervised: { drop_percent: 80 }, contrastive: undefined } }));
  const B = 2, S = 32, C = 4;
  const images = (seed: number) => randomTensor([B, 3, S, S], seed);
  const labels = { data: Uint8Array.from({ length: B * S * S }, (_, i) => (i >> 6) % C), shape: [B, S, S] };
  const truth = { data: Uint8Array.from({ length: B * S * S }, (_, i) => (i * 7 >> 5) % C), shape: [B, S, S] };
  const step = (t: ReturnType<typeof make>, classScale?: Float32Array) => t.step({
    phase: 'semi', labeledImages: images(1), labels, unlabeledImages: images(2), unlabeledTruth: truth, lrBackbone: 0.001, lrHead: 0.001,
    copyTeacher: true, emaDecay: 0, dropPercentile: 80, alpha: 20, classScale: classScale ? { data: classScale, shape: [classScale.length] } : undefined,
  });
  const make = () => new (native().AddonTrainer)(trainerOptions(c));

  test('reports the class statistics alignment needs; a one-class scale makes every pseudo-label that class', async () => {
    const t = make();
    try {
      const r = await step(t);
      const histogram = (y: Uint8Array) => Array.from({ length: C }, (_, k) => y.filter((v) => v === k).length);
      expect(r.labeledClassPixels).toEqual(histogram(labels.data));
      expect(r.pseudoClassPixels.reduce((a, b) => a + b, 0)).toBe(B * S * S);
      // Softmax mass summed over the unlabeled pixels: one per pixel.
      expect(r.teacherClassMass).toHaveLength(C);
      expect(r.teacherClassMass.reduce((a, b) => a + b, 0)).toBeCloseTo(B * S * S, 0);
      // Per class against the truth: its pixels, the pseudo-labels', the right ones (they add up to the totals).
      const sum = (v: number[]) => v.reduce((a, b) => a + b, 0);
      expect(r.pseudoLabelClassTruth).toEqual(histogram(truth.data));
      expect(r.pseudoLabelClassPredicted).toEqual(r.pseudoClassPixels);  // every pixel labelled, no mixing
      expect([sum(r.pseudoLabelClassRight), r.pseudoLabelClassRight.every((n, k) => n <= Math.min(r.pseudoLabelClassTruth[k], r.pseudoLabelClassPredicted[k]))])
        .toEqual([r.pseudoLabelCorrect, true]);
      // Every pixel labelled: the kept ones are those L_u keeps (below the entropy percentile).
      expect([r.pseudoLabelKeptPixels, r.pseudoLabelKeptPixels < r.pseudoLabelPixels]).toEqual([r.unsupKept, true]);
      expect(r.pseudoLabelKeptCorrect).toBeLessThanOrEqual(Math.min(r.pseudoLabelKeptPixels, r.pseudoLabelCorrect));
      for (const k of [0, 2]) {
        const only = new Float32Array(C);
        only[k] = 1;
        const aligned = await step(t, only);
        expect(aligned.pseudoLabelPixels).toBe(B * S * S);
        expect([k, aligned.pseudoLabelCorrect]).toEqual([k, histogram(truth.data)[k]]);
        expect(aligned.pseudoClassPixels[k]).toBe(B * S * S);
        const one = (n: number) => Array.from({ length: C }, (_, j) => (j === k ? n : 0));
        expect([aligned.pseudoLabelClassPredicted, aligned.pseudoLabelClassRight]).toEqual([one(B * S * S), one(histogram(truth.data)[k])]);
        // The statistics are measured before alignment.
        expect(aligned.teacherClassMass.reduce((a, b) => a + b, 0)).toBeCloseTo(B * S * S, 0);
      }
      await expect(step(t, new Float32Array(3).fill(1))).rejects.toThrow('classScale has 3 entries for 4 classes');
      // Class-balanced selection: each class keeps at most its target share of the pixels, the most
      // confident ones (ties at the cut may drop a few more); the others become ignore.
      const select = (prior: number[]) => t.step({
        phase: 'semi', labeledImages: images(1), labels, unlabeledImages: images(2), lrBackbone: 0, lrHead: 0,
        copyTeacher: true, emaDecay: 0, dropPercentile: 80, alpha: 20, classPrior: { data: Float32Array.from(prior), shape: [prior.length] },
      });
      const all = await select([1, 1, 1, 1]);
      expect(all.unsupValid).toBe(B * S * S);
      const prior = [0.1, 0.1, 0.1, 0.1];
      const some = await select(prior);
      const expected = some.pseudoClassPixels.reduce((sum, n, k) => sum + Math.min(n, Math.floor(prior[k] * B * S * S)), 0);
      expect(expected).toBeLessThan(B * S * S);
      expect(some.unsupValid).toBeLessThanOrEqual(expected);
      expect(some.unsupValid).toBeGreaterThan(expected - 10);
      await expect(select([1, 1])).rejects.toThrow('classPrior has 2 entries for 4 classes');
    } finally {
      t.dispose();
    }
  }, 120000);

  // The pixels selection ignores are left out of the reference weighting's B*H*W, as a confidence
  // threshold's are (test/train/confidence-threshold.test.ts): counted in, a batch whose pseudo-labels
  // are mostly one class would scale L_u by B*H*W / N_keep.
  test('select leaves the pixels it drops out of the reference factor', async () => {
    const run = async (weighting: 'reference' | 'paper') => {
      const w = loadConfig(writeExperiment({ ...base, trainer: { ...trainer, unsupervised: { drop_percent: 80, weighting }, contrastive: undefined } }));
      const t = new (native().AddonTrainer)(trainerOptions(w));
      try {
        return await t.step({
          phase: 'semi', labeledImages: images(1), labels, unlabeledImages: images(2), lrBackbone: 0, lrHead: 0, copyTeacher: true,
          emaDecay: 0, dropPercentile: 80, alpha: 20, classPrior: { data: Float32Array.from([0.1, 0.1, 0.1, 0.1]), shape: [C] },
        });
      } finally {
        t.dispose();
      }
    };
    const ref = await run('reference'), paper = await run('paper');
    expect(ref.unsupValid).toBeLessThan(0.5 * B * S * S);
    expect(paper.unsupKept).toBe(ref.unsupKept);
    // reference = paper * (B*H*W - dropped) / N_keep = paper * N_valid / N_keep (1.25), not B*H*W / N_keep.
    expect(ref.unsupervised / paper.unsupervised).toBeCloseTo(ref.unsupValid / ref.unsupKept, 3);
  }, 120000);
});
