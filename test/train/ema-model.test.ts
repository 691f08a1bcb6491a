import fs from 'fs';
import path from 'path';
import { evaluate, loadModel, Model, readCheckpoint } from '../../lib';
import { evalMain } from '../../lib/cli/eval';
import { expectOneLineInputError, runTool } from '../helpers/cli';
import * as evaluation from '../../lib/eval/evaluate';
import { loadConfig } from '../../lib/config/config';
import { AddonModel, AddonStepInputs, native, NativeTensor } from '../../lib/native';
import { train, trainerOptions } from '../../lib/train/train';
import { tinyConfig, writeExperiment } from '../helpers/experiment';
import { asNumbers, maxAbsDiff, randomTensor } from '../helpers/tensors';

// trainer.ema_model: a supervised-only run keeps an EMA of its student, as U2PL keeps its teacher,
// and is validated and saved with it, so that a baseline is scored the way U2PL is.
const emaConfig = (over: Record<string, unknown> = {}) =>
  tinyConfig(false, { trainer: { ...(tinyConfig(false).trainer as object), ema_model: true, ...over } });

const readMetrics = (dir: string) => fs.readFileSync(path.join(dir, 'checkpoints/metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));

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
        const emaOfMeans = t1[runningMean].map((v, i) => 0.75 * v + 0.25 * s2[runningMean][i]);
        if (teacherBn === 'ema') {
          expect(maxAbsDiff(emaOfMeans, t2[runningMean])).toBeLessThan(1e-6);
        } else {
          // Its own train-mode pass on the labeled batch: statistics neither the student's nor their EMA.
          expect(maxAbsDiff(s2[runningMean], t2[runningMean])).toBeGreaterThan(1e-6);
          expect(maxAbsDiff(t1[runningMean], t2[runningMean])).toBeGreaterThan(1e-6);
          expect(maxAbsDiff(emaOfMeans, t2[runningMean])).toBeGreaterThan(1e-6);
        }
      } finally {
        trainer.dispose();
      }
    }
  }, 120000);

  test('a run validates, reports and saves the EMA model (teacher_state), logs its decay, and resumes with it', async () => {
    const dir = writeExperiment(emaConfig());
    // The weights each validation scores (tiny runs can score the student and the EMA model alike).
    const evaluateLoader = evaluation.evaluateLoader;
    const scoredWeights: Record<string, Float64Array>[] = [];
    const spy = jest.spyOn(evaluation, 'evaluateLoader').mockImplementation(async (model, ...rest) => {
      scoredWeights.push(copy(model.stateDict()));
      return evaluateLoader(model, ...rest);
    });
    let result;
    try {
      result = await train(loadConfig(dir));
    } finally {
      spy.mockRestore();
    }
    expect(result.globalStep).toBe(4);
    const lines = readMetrics(dir);
    expect(lines.filter((m) => m.type === 'step').map((m) => Number(m.ema_decay.toFixed(4)))).toEqual([0, 0.5, 0.6667, 0.75]);
    const ckpt = (await readCheckpoint(path.join(dir, 'checkpoints/ckpt.pth'))) as Record<string, any>;
    expect(Object.keys(ckpt)).toEqual(expect.arrayContaining(['model_state', 'teacher_state']));
    // The last epoch's validation scored the EMA model (saved as teacher_state after it), not the
    // student; evaluating the checkpoint (teacher_state first, as u2pl-eval does) gives its mIoU.
    const last = scoredWeights[scoredWeights.length - 1];
    let fromStudent = 0;
    for (const name of Object.keys(ckpt.model_state)) {
      expect([name, maxAbsDiff(last[name], asNumbers(ckpt.teacher_state[name].data))]).toEqual([name, 0]);
      fromStudent = Math.max(fromStudent, maxAbsDiff(last[name], asNumbers(ckpt.model_state[name].data)));
    }
    expect(fromStudent).toBeGreaterThan(1e-4);
    const scored = await evaluate(loadConfig(dir), { checkpoint: path.join(dir, 'checkpoints/ckpt.pth') });
    expect(scored.miou).toBeCloseTo(lines.filter((m) => m.type === 'epoch').pop().miou, 6);
    const model = Model.fromNetConfig(loadConfig(dir).raw.net);
    expect((await model.load(path.join(dir, 'checkpoints/ckpt_best.pth'))).key).toBe('teacher_state');
    // u2pl-eval reads the EMA model by default and the student with --weights student (the API's weights).
    const ckptFile = path.join(dir, 'checkpoints/ckpt.pth');
    const byDefault = await runTool('u2pl-eval', evalMain, [dir, '--checkpoint', ckptFile]);
    expect(byDefault.code).toBe(0);
    expect(byDefault.err).toContain(`${ckptFile} (teacher_state)`);
    const asStudent = await runTool('u2pl-eval', evalMain, [dir, '--checkpoint', ckptFile, '--weights', 'student']);
    expect(asStudent.code).toBe(0);
    expect(asStudent.err).toContain(`${ckptFile} (model_state)`);
    const studentScore = await evaluate(loadConfig(dir), { checkpoint: ckptFile, weights: 'student' });
    expect(Number(/mIoU\s+(\d+\.\d\d)/.exec(asStudent.out)?.[1])).toBeCloseTo(100 * studentScore.miou, 2);
    expect((await loadModel(loadConfig(dir), ckptFile, 'student')).loaded?.key).toBe('model_state');
    expect((await loadModel(loadConfig(dir), ckptFile, 'teacher')).loaded?.key).toBe('teacher_state');

    // Stopped mid-epoch and resumed: the EMA model comes back from the checkpoint (not a fresh copy
    // of the student) and the run ends as the uninterrupted one did.
    const halves = writeExperiment(emaConfig());
    await train(loadConfig(halves), { maxSteps: 1 });
    expect((await readCheckpoint(path.join(halves, 'checkpoints/ckpt.pth')) as Record<string, any>).step_in_epoch).toBe(1);
    await train(loadConfig(halves));
    const resumed = (await readCheckpoint(path.join(halves, 'checkpoints/ckpt.pth'))) as Record<string, any>;
    for (const key of ['model_state', 'teacher_state']) {
      for (const name of Object.keys(ckpt[key])) {
        expect([key, name, maxAbsDiff(asNumbers(ckpt[key][name].data), asNumbers(resumed[key][name].data)) < 1e-4]).toEqual([key, name, true]);
      }
    }
  }, 240000);

  test('the EMA model starts as a full copy of the student: with decay 0 it is the student (weights), and its own first BN pass matches the student\'s', async () => {
    const dir = writeExperiment(tinyConfig(false, { trainer: { ...(tinyConfig(false).trainer as object), ema_model: true }, net: { ...(tinyConfig(false).net as object), ema_decay: 0 } }));
    await train(loadConfig(dir), { maxSteps: 1 });
    const ckpt = (await readCheckpoint(path.join(dir, 'checkpoints/ckpt.pth'))) as Record<string, any>;
    const names = Object.keys(ckpt.model_state);
    for (const name of names.filter((n) => !/running_|num_batches/.test(n))) {
      expect([name, maxAbsDiff(asNumbers(ckpt.model_state[name].data), asNumbers(ckpt.teacher_state[name].data))]).toEqual([name, 0]);
    }
    // The encoder has no dropout: the teacher's train-mode pass on the same batch with the same
    // weights and statistics (copied before the first step) updates its statistics as the student's pass did.
    const stats = names.filter((n) => n.startsWith('encoder.') && n.endsWith('running_mean'));
    expect(stats.length).toBeGreaterThan(5);
    for (const name of stats) {
      expect([name, maxAbsDiff(asNumbers(ckpt.model_state[name].data), asNumbers(ckpt.teacher_state[name].data)) < 1e-5]).toEqual([name, true]);
    }

    // Switched on for a run resumed from a checkpoint without an EMA model: it starts as that student.
    const plain = writeExperiment(tinyConfig(false));
    await train(loadConfig(plain), { maxSteps: 2 });
    // Its checkpoint has no teacher to evaluate: asking for one says so and what to use.
    const plainFile = path.join(plain, 'checkpoints/ckpt.pth');
    expectOneLineInputError(await runTool('u2pl-eval', evalMain, [plain, '--checkpoint', plainFile, '--weights', 'teacher']),
      new RegExp(`^u2pl-eval: ${plainFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: holds no teacher \\(teacher_state\\): only U2PL runs and supervised-only runs with trainer.ema_model save one; its student is --weights student$`));
    expectOneLineInputError(await runTool('u2pl-eval', evalMain, [plain, '--weights', 'ema']), /--weights|weights/);
    fs.writeFileSync(path.join(plain, 'config.yaml'), fs.readFileSync(path.join(dir, 'config.yaml')));
    const logged: string[] = [];
    await train(loadConfig(plain), { allowConfigChange: true, maxSteps: 3, onLog: (m: string) => logged.push(m) });
    expect(logged.join('\n')).toContain('holds no EMA model; it starts as a copy of the resumed student');
    const after = (await readCheckpoint(path.join(plain, 'checkpoints/ckpt.pth'))) as Record<string, any>;
    for (const name of names.filter((n) => !/running_|num_batches/.test(n))) {
      expect([name, maxAbsDiff(asNumbers(after.model_state[name].data), asNumbers(after.teacher_state[name].data))]).toEqual([name, 0]);
    }
  }, 240000);

  test('refused for a semi-supervised config, naming the key', () => {
    const base = tinyConfig(true);
    const dir = writeExperiment({ ...base, trainer: { ...(base.trainer as object), ema_model: true } });
    expect(() => loadConfig(dir)).toThrow("trainer.ema_model: is for supervised-only configs: a semi-supervised one (dataset.type 'folder_semi') is scored with its teacher, an EMA model already");
  });
});
