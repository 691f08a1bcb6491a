import fs from 'fs';
import path from 'path';
import { evaluate, Model, readCheckpoint } from '../../lib';
import { loadConfig } from '../../lib/config/config';
import { AddonModel, AddonStepInputs, native, NativeTensor } from '../../lib/native';
import { train, trainerOptions } from '../../lib/train/train';
import { tinyConfig, writeExperiment } from '../helpers/experiment';
import { asNumbers, maxAbsDiff, randomTensor } from '../helpers/tensors';

// trainer.ema_model: a supervised-only run keeps an EMA of its student, as U2PL keeps its teacher,
// and is validated and saved with it, so that a baseline is scored the way U2PL is.
const emaConfig = (over: Record<string, unknown> = {}) =>
  tinyConfig(false, { trainer: { ...(tinyConfig(false).trainer as object), ema_model: true, ...over } });

const copy = (state: Record<string, NativeTensor>) =>
  Object.fromEntries(Object.entries(state).map(([k, v]) => [k, Float64Array.from(asNumbers(v.data))]));

describe('trainer.ema_model', () => {
  test('each step moves the EMA model to d x itself + (1 - d) x the updated student (parameters; BN statistics its own or the EMA)', async () => {
    for (const teacherBn of ['own', 'ema'] as const) {
      const c = loadConfig(writeExperiment(emaConfig({ teacher_bn: teacherBn })));
      const trainer = new (native().AddonTrainer)(trainerOptions(c));
      try {
        const teacher = trainer.teacher() as AddonModel;
        expect(teacher).not.toBeNull();
        const B = 2, S = 32;
        const step = (emaDecay: number, seed: number): AddonStepInputs => ({
          phase: 'supervised', labeledImages: randomTensor([B, 3, S, S], seed),
          labels: { data: Uint8Array.from({ length: B * S * S }, (_, i) => ((i >> 5) + (i >> 8) + seed) % 4), shape: [B, S, S] },
          lrBackbone: 0.05, lrHead: 0.05, copyTeacher: false, emaDecay, dropPercentile: 80, alpha: 20,
        });
        await trainer.step(step(0, 1));  // decay 0 (U2PL's schedule at its first step): a copy
        const params = Object.keys(copy(trainer.student().stateDict())).filter((k) => !/running_|num_batches/.test(k));
        const s1 = copy(trainer.student().stateDict()), t1 = copy(teacher.stateDict());
        for (const k of params) expect([k, maxAbsDiff(s1[k], t1[k])]).toEqual([k, 0]);
        await trainer.step(step(0.75, 2));
        const s2 = copy(trainer.student().stateDict()), t2 = copy(teacher.stateDict());
        let moved = 0;
        for (const k of params) {
          const want = t1[k].map((v, i) => 0.75 * v + 0.25 * s2[k][i]);
          expect([k, maxAbsDiff(want, t2[k]) < 1e-6]).toEqual([k, true]);
          moved = Math.max(moved, maxAbsDiff(s2[k], t2[k]));
        }
        expect(moved).toBeGreaterThan(1e-4);  // the student moved on; the EMA model lags
        const mean = params.find((k) => k.endsWith('.weight') && `${k.slice(0, -'weight'.length)}running_mean` in s2) as string;
        const runningMean = `${mean.slice(0, -'weight'.length)}running_mean`;
        if (teacherBn === 'ema') {
          const want = t1[runningMean].map((v, i) => 0.75 * v + 0.25 * s2[runningMean][i]);
          expect(maxAbsDiff(want, t2[runningMean])).toBeLessThan(1e-6);
        } else {
          // Its own train-mode pass on the labeled batch: statistics neither the student's nor their EMA.
          expect(maxAbsDiff(s2[runningMean], t2[runningMean])).toBeGreaterThan(1e-6);
          expect(maxAbsDiff(t1[runningMean], t2[runningMean])).toBeGreaterThan(1e-6);
        }
      } finally {
        trainer.dispose();
      }
    }
  }, 120000);

  test('a run validates, reports and saves the EMA model (teacher_state), logs its decay, and resumes with it', async () => {
    const dir = writeExperiment(emaConfig());
    const result = await train(loadConfig(dir));
    expect(result.globalStep).toBe(4);
    const lines = fs.readFileSync(path.join(dir, 'checkpoints/metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.filter((m) => m.type === 'step').map((m) => Number(m.ema_decay.toFixed(4)))).toEqual([0, 0.5, 0.6667, 0.75]);
    const ckpt = (await readCheckpoint(path.join(dir, 'checkpoints/ckpt.pth'))) as Record<string, any>;
    expect(Object.keys(ckpt)).toEqual(expect.arrayContaining(['model_state', 'teacher_state']));
    const differ = Object.keys(ckpt.model_state).some((k) => maxAbsDiff(asNumbers(ckpt.model_state[k].data), asNumbers(ckpt.teacher_state[k].data)) > 1e-6);
    expect(differ).toBe(true);
    // The last epoch's validation scored the EMA model: evaluating the checkpoint (teacher_state first) gives its mIoU.
    const last = lines.filter((m) => m.type === 'epoch').pop();
    const scored = await evaluate(loadConfig(dir), { checkpoint: path.join(dir, 'checkpoints/ckpt.pth') });
    expect(scored.miou).toBeCloseTo(last.miou, 6);
    const model = Model.fromNetConfig(loadConfig(dir).raw.net);
    expect((await model.load(path.join(dir, 'checkpoints/ckpt_best.pth'))).key).toBe('teacher_state');

    // Stopped after the first epoch and resumed: the EMA model comes back from the checkpoint (not
    // a fresh copy of the student) and the run ends as the uninterrupted one did.
    const halves = writeExperiment(emaConfig());
    await train(loadConfig(halves), { maxSteps: 2 });
    await train(loadConfig(halves));
    const resumed = (await readCheckpoint(path.join(halves, 'checkpoints/ckpt.pth'))) as Record<string, any>;
    for (const key of ['model_state', 'teacher_state']) {
      for (const name of Object.keys(ckpt[key])) {
        expect([key, name, maxAbsDiff(asNumbers(ckpt[key][name].data), asNumbers(resumed[key][name].data)) < 1e-4]).toEqual([key, name, true]);
      }
    }
  }, 240000);

  test('refused for a semi-supervised config, naming the key', () => {
    const base = tinyConfig(true);
    const dir = writeExperiment({ ...base, trainer: { ...(base.trainer as object), ema_model: true } });
    expect(() => loadConfig(dir)).toThrow("trainer.ema_model: is for supervised-only configs: a semi-supervised one (dataset.type 'folder_semi') is scored with its teacher, an EMA model already");
  });
});
