import { loadConfig } from '../../lib/config/config';
import { native } from '../../lib/native';
import { trainerOptions } from '../../lib/train/train';
import { tinyConfig, writeExperiment } from '../helpers/experiment';
import { randomTensor } from '../helpers/tensors';

describe('the U2PL step with strong views of the unlabeled batch', () => {
  const base = tinyConfig(true);
  const trainer = base.trainer as Record<string, any>;
  // No mixing and no contrastive loss, so that each run of the step is the same computation.
  const c = loadConfig(writeExperiment({ ...base, trainer: { ...trainer, unsupervised: { drop_percent: 80 }, contrastive: undefined } }));
  const B = 2, S = 32, C = 4;
  const labels = { data: Uint8Array.from({ length: B * S * S }, (_, i) => (i >> 6) % C), shape: [B, S, S] };
  const weak = randomTensor([B, 3, S, S], 2);
  const step = (strong?: typeof weak) => {
    const t = new (native().AddonTrainer)(trainerOptions(c));
    return t.step({
      phase: 'semi', labeledImages: randomTensor([B, 3, S, S], 1), labels, unlabeledImages: weak, unlabeledStrongImages: strong,
      lrBackbone: 0.001, lrHead: 0.001, copyTeacher: true, emaDecay: 0, dropPercentile: 80, alpha: 20,
    }).finally(() => t.dispose());
  };

  test('the pseudo-labels come from the weak views, the student learns from the strong ones', async () => {
    const plain = await step();
    const same = await step(weak);
    const strong = await step(randomTensor([B, 3, S, S], 3));
    // The weak views as strong ones: the same step.
    expect(same.loss).toBe(plain.loss);
    // Other strong views: the same pseudo-labels (the teacher saw the same images), another loss.
    expect(strong.pseudoClassPixels).toEqual(plain.pseudoClassPixels);
    expect(strong.teacherClassMass).toEqual(plain.teacherClassMass);
    // (The supervised loss moves too: the student's BN statistics are over the joint batch.)
    expect(strong.unsupervised).not.toBeCloseTo(plain.unsupervised, 4);
    await expect(step(randomTensor([B, 3, S, S + 1], 3))).rejects.toThrow('unlabeledStrongImages is [2, 3, 32, 33] where unlabeledImages is [2, 3, 32, 32]');
  }, 120000);
});
