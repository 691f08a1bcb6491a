import { loadConfig } from '../../lib/config/config';
import { native } from '../../lib/native';
import { trainerOptions } from '../../lib/train/train';
import { tinyConfig, writeExperiment } from '../helpers/experiment';
import { randomTensor } from '../helpers/tensors';

// trainer.unsupervised.confidence_threshold: the pseudo-labels below it are ignored, and those
// pixels are left out of the reference weighting's B*H*W, which otherwise grows as B*H*W / N_keep
// when the threshold keeps few pixels (camvid-small: a loss of 1e3-1e5 within 20 steps, then a
// network that predicts one class).
describe('the U2PL step with a confidence threshold', () => {
  const base = tinyConfig(true);
  const trainer = base.trainer as Record<string, any>;
  const B = 2, S = 32, C = 4;
  const labels = { data: Uint8Array.from({ length: B * S * S }, (_, i) => (i >> 6) % C), shape: [B, S, S] };
  const labeledImages = randomTensor([B, 3, S, S], 1), unlabeledImages = randomTensor([B, 3, S, S], 2);
  // No mixing and no contrastive loss: every step below is the same computation up to the two switches.
  const step = (confidence: number, weighting: 'reference' | 'paper') => {
    const unsupervised = { drop_percent: 80, confidence_threshold: confidence, weighting };
    const c = loadConfig(writeExperiment({ ...base, trainer: { ...trainer, unsupervised, contrastive: undefined } }));
    const t = new (native().AddonTrainer)(trainerOptions(c));
    return t.step({
      phase: 'semi', labeledImages, labels, unlabeledImages, lrBackbone: 0.001, lrHead: 0.001, copyTeacher: true, emaDecay: 0,
      dropPercentile: 80, alpha: 20,
    }).finally(() => t.dispose());
  };

  test('ignores the pixels below it and leaves them out of the reference factor', async () => {
    const all = await step(0, 'reference');
    expect(all.unsupValid).toBe(B * S * S);
    // A threshold that drops some pixels and keeps others, whatever the initial weights (bisection).
    let lo = 0, hi = 1, threshold = 0;
    let ref: Awaited<ReturnType<typeof step>> | undefined;
    for (let i = 0; i < 30 && !ref; i++) {
      const t = (lo + hi) / 2;
      const r = await step(t, 'reference');
      if (r.unsupValid >= 0.9 * B * S * S) lo = t;
      else if (r.unsupValid <= 0.1 * B * S * S) hi = t;
      else { threshold = t; ref = r; }
    }
    expect(ref).toBeDefined();
    const paper = await step(threshold, 'paper');
    expect(paper.unsupKept).toBe(ref!.unsupKept);
    // The entropy filter keeps its share of the pixels the threshold left (q = 80).
    expect(Math.abs(ref!.unsupKept / ref!.unsupValid - 0.8)).toBeLessThan(0.02);
    // reference = paper * (B*H*W - excluded) / N_keep = paper * N_valid / N_keep: 1.25 as without a
    // threshold, not B*H*W / N_keep.
    expect(ref!.unsupervised / paper.unsupervised).toBeCloseTo(ref!.unsupValid / ref!.unsupKept, 3);
    const allPaper = await step(0, 'paper');
    expect(all.unsupervised / allPaper.unsupervised).toBeCloseTo(all.unsupValid / all.unsupKept, 3);
  }, 180000);
});
