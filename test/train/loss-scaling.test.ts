import path from 'path';
import { readCheckpoint } from '../../lib/checkpoint';
import { loadConfig } from '../../lib/config/config';
import { AddonStepInputs, AddonTrainer, AddonTrainerOptions, native, NativeTensor } from '../../lib/native';
import { trainerOptions } from '../../lib/train/train';
import { tinyConfig, writeExperiment } from '../helpers/experiment';
import { tempDir } from '../helpers/temp';
import { randomTensor, sameBytes } from '../helpers/tensors';

// Dynamic loss scaling (GradScaler's rules) for fp16 autocast, checked in fp32 on the CPU: scaling by
// a power of two and unscaling is exact there, and a non-finite input makes every gradient NaN.
describe('loss scaling', () => {
  const B = 2, S = 32, C = 4;
  const labels = { data: Uint8Array.from({ length: B * S * S }, (_, i) => ((i >> 5) + (i >> 9)) % C), shape: [B, S, S] };
  const labeledImages = randomTensor([B, 3, S, S], 1), unlabeledImages = randomTensor([B, 3, S, S], 2);
  const semiStep = (over: Partial<AddonStepInputs> = {}): AddonStepInputs => ({
    phase: 'semi', labeledImages, labels, unlabeledImages, lrBackbone: 0.01, lrHead: 0.01, copyTeacher: false, emaDecay: 0.9,
    dropPercentile: 80, alpha: 20, ...over,
  });
  const options = (lossScaling: AddonTrainerOptions['lossScaling']): AddonTrainerOptions => ({ ...trainerOptions(loadConfig(writeExperiment(tinyConfig(true)))), lossScaling });
  const weights = (t: AddonTrainer) => ({ student: t.student().stateDict(), teacher: (t.teacher() as NonNullable<ReturnType<AddonTrainer['teacher']>>).stateDict() });
  const same = (a: Record<string, NativeTensor>, b: Record<string, NativeTensor>, keys = Object.keys(a)) => {
    for (const k of keys) expect(Buffer.compare(Buffer.from(a[k].data.buffer, a[k].data.byteOffset, a[k].data.byteLength), Buffer.from(b[k].data.buffer, b[k].data.byteOffset, b[k].data.byteLength))).toBe(0);
  };
  const withTrainer = async <T>(o: AddonTrainerOptions, f: (t: AddonTrainer) => Promise<T>): Promise<T> => {
    const t = new (native().AddonTrainer)(o);
    try {
      return await f(t);
    } finally {
      t.dispose();
    }
  };

  test('a power-of-two scale trains exactly as no scaling; the scale grows after growthInterval good steps', async () => {
    const run = (lossScaling: AddonTrainerOptions['lossScaling']) => withTrainer(options(lossScaling), async (t) => {
      const scales: number[] = [];
      for (let i = 0; i < 3; i++) {
        const r = await t.step(semiStep({ copyTeacher: i === 0 }));
        expect(r.skipped).toBe(false);
        scales.push(r.lossScale);
      }
      return { scales, w: weights(t) };
    });
    const plain = await run(null);
    const scaled = await run({ initScale: 1024, growthInterval: 2 });
    expect(plain.scales).toEqual([1, 1, 1]);
    expect(scaled.scales).toEqual([1024, 2048, 2048]);
    same(plain.w.student, scaled.w.student);
    same(plain.w.teacher, scaled.w.teacher);
  }, 180000);

  test('an inf/NaN gradient skips the step: weights, momentum and EMA teacher unchanged, the scale backs off; the state is in checkpoints', async () => {
    const dir = tempDir('loss-scaling');
    await withTrainer(options({ initScale: 4096, backoffFactor: 0.25, growthInterval: 100 }), async (t) => {
      await t.step(semiStep({ copyTeacher: true }));
      await t.step(semiStep());  // momentum buffers exist now
      await t.save(path.join(dir, 'before.pth'));
      const before = weights(t);
      const poisoned = { ...unlabeledImages, data: Float32Array.from(unlabeledImages.data) };
      poisoned.data[123] = NaN;  // one bad pixel: every gradient of the step becomes NaN
      const r = await t.step(semiStep({ unlabeledImages: poisoned }));
      expect(r.skipped).toBe(true);
      expect(r.lossScale).toBe(1024);
      const after = weights(t);
      const params = (sd: Record<string, NativeTensor>) => Object.keys(sd).filter((k) => !/running_|num_batches/.test(k));
      same(before.student, after.student, params(before.student));
      same(before.teacher, after.teacher, params(before.teacher));
      await t.save(path.join(dir, 'after.pth'));
      const ckBefore = await readCheckpoint(path.join(dir, 'before.pth')) as any;
      const ckAfter = await readCheckpoint(path.join(dir, 'after.pth')) as any;
      expect(Object.keys(ckAfter.optimizer_state.state).length).toBeGreaterThan(0);
      for (const [k, v] of Object.entries(ckBefore.optimizer_state.state) as [string, any][]) {
        expect([k, sameBytes(ckAfter.optimizer_state.state[k].momentum_buffer.data, v.momentum_buffer.data)]).toEqual([k, true]);
      }
      expect(ckBefore.grad_scaler).toEqual({ scale: 4096, growth_factor: 2, backoff_factor: 0.25, growth_interval: 100, _growth_tracker: 2 });
      expect(ckAfter.grad_scaler).toMatchObject({ scale: 1024, _growth_tracker: 0 });
    });
    // A resumed trainer continues from the saved scale (a fresh one would start at initScale again).
    await withTrainer(options({ initScale: 4096, backoffFactor: 0.25, growthInterval: 100 }), async (t) => {
      await t.load(path.join(dir, 'after.pth'));
      const r = await t.step(semiStep());
      expect(r.skipped).toBe(false);
      expect(r.lossScale).toBe(1024);
    });
  }, 180000);

  test('bad settings are refused', () => {
    expect(() => new (native().AddonTrainer)(options({ backoffFactor: 1.5 }))).toThrow('loss scaling: initScale > 0, growthFactor > 1, 0 < backoffFactor < 1');
  });
});
