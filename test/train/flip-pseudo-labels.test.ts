import { loadConfig } from '../../lib/config/config';
import { native } from '../../lib/native';
import { trainerOptions } from '../../lib/train/train';
import { tinyConfig, writeExperiment } from '../helpers/experiment';
import { randomTensor } from '../helpers/tensors';

// trainer.unsupervised.flip_pseudo_labels: the teacher's logits are averaged over each unlabeled
// image and its horizontal flip (flipped back) before the argmax, so the pseudo-labels are the
// teacher's flip prediction as evaluation makes it (model.predict with flip, §13.4), image by image.
describe('pseudo-labels from each unlabeled image and its flip', () => {
  const base = tinyConfig(true);
  const trainer = base.trainer as Record<string, any>;
  const B = 2, S = 32, C = 4;
  // Classes in vertical bands: a left-right pattern, so a teacher that learnt it predicts differently on a flip.
  const labels = { data: Uint8Array.from({ length: B * S * S }, (_, i) => ((i % S) >> 3) % C), shape: [B, S, S] };
  const labeledImages = randomTensor([B, 3, S, S], 1), unlabeledImages = randomTensor([B, 3, S, S], 2);

  // How many of the step's pseudo-labels equal the teacher's own prediction of the unlabeled images
  // (with or without flip), made before the step; no mixing, so the step's labels are the teacher's.
  const agreement = async (flipPseudoLabels: boolean, predictFlip: boolean) => {
    const unsupervised = { drop_percent: 80, flip_pseudo_labels: flipPseudoLabels };
    const c = loadConfig(writeExperiment({ ...base, trainer: { ...trainer, unsupervised, contrastive: undefined } }));
    expect(c.trainer.unsupervised!.flipPseudoLabels).toBe(flipPseudoLabels);
    const t = new (native().AddonTrainer)(trainerOptions(c));
    try {
      // A few warm-up steps, then a step that copies the student into the teacher: a teacher that
      // predicts more than one class.
      for (let i = 0; i < 20; i++) await t.step({ phase: 'warmup', labeledImages, labels, lrBackbone: 0.05, lrHead: 0.05 });
      await t.step({ phase: 'semi', labeledImages, labels, unlabeledImages, lrBackbone: 0, lrHead: 0, copyTeacher: true, dropPercentile: 80, alpha: 20 });
      const teacher = t.teacher()!;
      const truth = new Uint8Array(B * S * S);
      for (let b = 0; b < B; b++) {
        const image = { data: unlabeledImages.data.slice(b * 3 * S * S, (b + 1) * 3 * S * S), shape: [1, 3, S, S] };
        truth.set((await teacher.predict(image, { flip: predictFlip })).prediction.data, b * S * S);
      }
      const r = await t.step({
        phase: 'semi', labeledImages, labels, unlabeledImages, unlabeledTruth: { data: truth, shape: [B, S, S] },
        lrBackbone: 0.001, lrHead: 0.001, copyTeacher: false, emaDecay: 0.99, dropPercentile: 80, alpha: 20,
      });
      expect(r.pseudoLabelPixels).toBe(B * S * S);
      expect(new Set(truth).size).toBeGreaterThan(1);
      return r.pseudoLabelCorrect / r.pseudoLabelPixels;
    } finally {
      t.dispose();
    }
  };

  test('are the teacher\'s flip prediction; without the switch, its one-pass prediction (the reference)', async () => {
    expect(await agreement(true, true)).toBe(1);
    expect(await agreement(false, false)).toBe(1);
    // The two differ on these images, so the checks above tell the two apart.
    expect(await agreement(true, false)).toBeLessThan(0.99);
  }, 180000);
});
