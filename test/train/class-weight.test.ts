import fs from 'fs';
import path from 'path';
import { loadConfig } from '../../lib/config/config';
import { dataMain } from '../../lib/cli/data';
import { classFrequencies, medianFrequencyWeights } from '../../lib/data/class-frequency';
import { listSamples } from '../../lib/data/datasets';
import { native } from '../../lib/native';
import { train, trainerOptions } from '../../lib/train/train';
import { runTool } from '../helpers/cli';
import { tinyConfig, writeExperiment } from '../helpers/experiment';
import { randomTensor } from '../helpers/tensors';

// criterion.kwargs.class_weight reaches the supervised loss of every step kind that has one.
describe('class-weighted cross-entropy in training', () => {
  const B = 2, S = 32, C = 4;
  const labels = { data: Uint8Array.from({ length: B * S * S }, (_, i) => ((i >> 5) + (i >> 9)) % C), shape: [B, S, S] };
  const labeledImages = randomTensor([B, 3, S, S], 1), unlabeledImages = randomTensor([B, 3, S, S], 2);

  const step = async (semi: boolean, classWeight?: number[]) => {
    const base = tinyConfig(semi);
    const criterion = classWeight ? { type: 'CELoss', kwargs: { class_weight: classWeight } } : { type: 'CELoss' };
    const c = loadConfig(writeExperiment({ ...base, criterion }));
    const t = new (native().AddonTrainer)(trainerOptions(c));
    try {
      const r = await t.step(semi
        ? { phase: 'semi', labeledImages, labels, unlabeledImages, lrBackbone: 0.001, lrHead: 0.001, copyTeacher: true, emaDecay: 0, dropPercentile: 80, alpha: 20 }
        : { phase: 'supervised', labeledImages, labels, lrBackbone: 0.001, lrHead: 0.001 });
      return r.supervised;
    } finally {
      t.dispose();
    }
  };

  test.each([false, true])('semi %p: all-ones weights are the plain loss; w and 3w the same weighted mean, not the plain one', async (semi) => {
    const plain = await step(semi);
    expect(await step(semi, [1, 1, 1, 1])).toBe(plain);
    const w = [0.2, 1, 4, 0.5];
    const weighted = await step(semi, w);
    expect(weighted).toBeCloseTo(await step(semi, w.map((x) => 3 * x)), 5);
    expect(Math.abs(weighted - plain)).toBeGreaterThan(1e-3);
  }, 120000);

  test('median_frequency: the weights of the labeled split\'s label files, logged, and the run trains with them', async () => {
    const dir = writeExperiment(tinyConfig(false, { criterion: { type: 'CELoss', kwargs: { class_weight: 'median_frequency' } } }));
    const logs: string[] = [];
    const result = await train(loadConfig(dir), { maxSteps: 2, onLog: (m) => logs.push(m) });
    expect(result.globalStep).toBe(2);
    const line = logs.find((m) => m.startsWith('class weights of the cross-entropy: '));
    expect(line).toBeDefined();
    const logged = line!.slice('class weights of the cross-entropy: '.length).split(' ').map(Number);
    const samples = listSamples({ kind: 'folder', root: path.join(dir, 'data'), labelDir: 'labels' }, path.join(dir, 'data/splits/4/labeled.txt'));
    expect(samples.every((s) => fs.existsSync(s.label))).toBe(true);
    const expected = medianFrequencyWeights(await classFrequencies(samples, C, {}));
    expect(logged).toHaveLength(C);
    logged.forEach((x, i) => expect(x).toBeCloseTo(expected[i], 3));
    expect(new Set(expected.map((x) => x.toFixed(3))).size).toBeGreaterThan(1);
    // The trainer used exactly those weights: the same steps with them spelled out give the same
    // losses, and plain cross-entropy other ones.
    const losses = async (d: string) => {
      if (d !== dir) await train(loadConfig(d), { maxSteps: 2 });
      return fs.readFileSync(path.join(d, 'checkpoints/metrics.jsonl'), 'utf8').split('\n').filter((l) => l.includes('"type":"step"')).map((l) => JSON.parse(l).supervised as number);
    };
    const used = await losses(dir);
    expect(used).toHaveLength(2);
    expect(await losses(writeExperiment(tinyConfig(false, { criterion: { type: 'CELoss', kwargs: { class_weight: expected } } })))).toEqual(used);
    const plain = await losses(writeExperiment(tinyConfig(false)));
    expect(plain).toHaveLength(2);
    expect(plain[0]).not.toBe(used[0]);
    // u2pl-data check shows the same weights beside the labeled split's class shares.
    const check = (await runTool('u2pl-data', dataMain, ['check', dir])).out;
    const labeledPart = check.slice(check.indexOf('labeled:'), check.indexOf('unlabeled:'));
    const shown = [...labeledPart.matchAll(/^ +\d+ .* %\s+([\d.]+)$/gm)].map((m) => Number(m[1]));
    expect(shown).toEqual(logged);
  }, 120000);
});
