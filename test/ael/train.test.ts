/**
 * The AEL variant end to end (u2pl-ael-method.md A10, A11, A14): its step on real PNG files with a
 * tiny network, the state it adds to checkpoints, exact resume, and the step's own arithmetic.
 */
import fs from 'fs';
import path from 'path';
import { loadConfig } from '../../lib/config/config';
import { readCheckpoint, writeCheckpoint } from '../../lib';
import { native } from '../../lib/native';
import { aelPlanSeed, train, trainerOptions } from '../../lib/train/train';
import { tinyConfig, writeExperiment } from '../helpers/experiment';
import { asNumbers, maxAbsDiff, randomTensor } from '../helpers/tensors';

type Obj = Record<string, any>;

/** tinyConfig(true) as the AEL branch configures it: copy-paste, adaptive CutMix, the consistency loss. */
function aelConfig(trainer: Obj = {}, extra: Obj = {}): Obj {
  const base = tinyConfig(true) as Obj;
  return JSON.parse(JSON.stringify({  // (drops the keys set to undefined)
    ...base,
    dataset: { ...base.dataset, type: 'folder_semi_cp', acp: { rand_resize: [0.5, 1.5], prob: 0.5, number: 3, exclude: [0] }, train: { ...base.dataset.train, acm: { area_thresh: 0.005, area_thresh2: 0.01, no_pad: true, no_slim: true } } },
    trainer: { ...base.trainer, sup_only_epoch: undefined, contrastive: { ...base.trainer.contrastive, start_epoch: 1, loss_weight: undefined }, pseudo_label_metrics: true, ...trainer },
    criterion: { type: 'CELoss', cons: { sample: true, gamma: 2 }, consist_weight: 1, contra_weight: 0.1 },
    ...extra,
  }));
}

function readMetrics(dir: string): Obj[] {
  return fs.readFileSync(path.join(dir, 'checkpoints/metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
}

describe('AEL config', () => {
  test('the reference keys and the quirk switches reach the trainer options; reference behaviour by default', () => {
    const c = loadConfig(writeExperiment(aelConfig()));
    expect(c.warnings).toEqual([]);
    const o = trainerOptions(c, 12).ael as Obj;
    expect(o).toMatchObject({
      unlabeled: 12, unlabeledBatch: 2, pasteClasses: [1, 2, 3], pasteDraws: 3, adaptiveCutmix: true, momentum: 0.999,
      absentClassesDecay: true, useOneUnlabeled: true, sharedAcrossRanks: false, replicas: 8, boxMinArea: 0.005, bankMinArea: 0.01,
      squareArea: true, ignoreConfident: true, anchorPercentile: 20, negativePercentile: 80, partnerByLabelSum: true,
      consistency: { gamma: 2, gamma2: 1, sample: true, normaliseOverAll: true, sharedSamplingMap: true },
    });
    expect(trainerOptions(c, 12).contrastive?.weight).toBe(0.1);
    const fixed = loadConfig(writeExperiment(aelConfig({ ael: {
      replicas: 1, consistency_ignore: 'fixed', consistency_normalise: 'fixed', absent_classes: 'fixed', ranks: 'shared', unlabeled: 'all',
      sampling_map: 'per_image', partner: 'flag', area: 'hw',
    } })));
    expect(trainerOptions(fixed, 12).ael).toMatchObject({
      replicas: 1, ignoreConfident: false, absentClassesDecay: false, sharedAcrossRanks: true, useOneUnlabeled: false, partnerByLabelSum: false,
      squareArea: false, consistency: { normaliseOverAll: false, sharedSamplingMap: false },
    });
  });

  test('Cityscapes excludes road, sidewalk, building, vegetation and sky from copy-paste unless told otherwise; bad values are named', () => {
    const city = aelConfig({}, { net: { ...(tinyConfig(true) as Obj).net, num_classes: 19 } });
    city.dataset = { ...city.dataset, type: 'cityscapes_semi_cp', acp: { number: 3 } };
    expect(trainerOptions(loadConfig(writeExperiment(city)), 5).ael?.pasteClasses).toEqual([3, 4, 5, 6, 7, 9, 11, 12, 13, 14, 15, 16, 17, 18]);
    const bad = aelConfig({ ael: { ranks: 'global' } });
    expect(() => loadConfig(writeExperiment(bad))).toThrow(/trainer\.ael\.ranks: expected separate or shared, got 'global'/);
    const slim = aelConfig();
    slim.dataset.train.acm.no_slim = false;
    expect(() => loadConfig(writeExperiment(slim))).toThrow(/dataset\.train\.acm\.no_slim: only true/);
    const supervised = aelConfig();
    supervised.dataset.type = 'folder';
    expect(() => loadConfig(writeExperiment(supervised))).toThrow(/dataset\.type: the AEL variant .* needs a semi-supervised dataset type/);
  });
});

describe('AEL training', () => {
  test('every step is an AEL step: copy-paste, boxes, consistency on both terms, the contrastive loss from its start epoch', async () => {
    // The paper's negatives: with the reference's, the AEL branch finds almost none (its Q_u is the
    // pseudo-labels' own logits, so a pixel's pseudo-label always ranks first), none at this size.
    const dir = writeExperiment(aelConfig({ contrastive: { ...(tinyConfig(true) as Obj).trainer.contrastive, start_epoch: 1, loss_weight: undefined, negatives: 'paper' } }));
    const result = await train(loadConfig(dir));
    expect(result.globalStep).toBe(12);  // 12 unlabeled / batch 2 = 6 steps a epoch, 2 epochs, no warm-up
    const steps = readMetrics(dir).filter((m) => m.type === 'step');
    expect(steps.every((s) => s.phase === 'ael' && s.unsupervised > 0 && s.mixed)).toBe(true);
    expect(steps.slice(0, 6).every((s) => s.contrastive === 0)).toBe(true);  // start_epoch 1
    expect(steps.slice(6).some((s) => s.contrastive > 0)).toBe(true);
    expect(steps.some((s) => s.pasted > 0)).toBe(true);
    // The loss is L_s/8 + L_cons/8 + 0.1 L_c/64 (A9, the reference's eight replicas).
    for (const s of steps) expect(s.loss).toBeCloseTo(s.supervised / 8 + s.unsupervised / 8 + (0.1 * s.contrastive) / 64, 5);
    const epochs = readMetrics(dir).filter((m) => m.type === 'epoch');
    expect(epochs.every((e) => e.pseudo_label_accuracy > 0 && e.pseudo_label_accuracy <= 1)).toBe(true);
    // Per class (4 here): an IoU in [0, 1], or null for a class neither the truth nor the pseudo-labels have.
    expect(epochs.every((e) => e.pseudo_label_iou.length === 4 && e.pseudo_label_iou.every((v: number | null) => v === null || (v >= 0 && v <= 1)))).toBe(true);
    expect(epochs.some((e) => e.pseudo_label_iou.some((v: number | null) => v !== null && v > 0))).toBe(true);
    const ckpt = (await readCheckpoint(path.join(dir, 'checkpoints/ckpt.pth'))) as Obj;
    expect(ckpt.class_criterion.shape).toEqual([3, 4]);
    expect(ckpt.cutmix_bank.shape).toEqual([4, 12]);
    expect(Array.from(ckpt.cutmix_bank.data as Float32Array).every((v) => v === 0 || v === 1)).toBe(true);
    expect(Array.from(ckpt.cutmix_bank.data as Float32Array).some((v) => v === 1)).toBe(true);
  });

  test('N steps at once equal N/2, resume, N/2: weights, teacher, kappa, cutmix bank and memory banks', async () => {
    const cfg = aelConfig({ contrastive: { ...(tinyConfig(true) as Obj).trainer.contrastive, start_epoch: 0, loss_weight: undefined } });
    const once = writeExperiment(cfg);
    await train(loadConfig(once), { maxSteps: 8 });
    const split = writeExperiment(cfg);
    expect((await train(loadConfig(split), { maxSteps: 4 })).interrupted).toBe(true);
    await train(loadConfig(split), { maxSteps: 8 });
    const a = (await readCheckpoint(path.join(once, 'checkpoints/ckpt.pth'))) as Obj;
    const b = (await readCheckpoint(path.join(split, 'checkpoints/ckpt.pth'))) as Obj;
    expect([b.epoch, b.step_in_epoch]).toEqual([a.epoch, a.step_in_epoch]);
    for (const key of ['model_state', 'teacher_state']) {
      for (const name of Object.keys(a[key])) {
        const diff = maxAbsDiff(asNumbers(a[key][name].data), asNumbers(b[key][name].data));
        expect([key, name, diff < 1e-4]).toEqual([key, name, true]);
      }
    }
    expect(maxAbsDiff(a.class_criterion.data, b.class_criterion.data)).toBeLessThan(1e-6);
    expect(Array.from(b.cutmix_bank.data)).toEqual(Array.from(a.cutmix_bank.data));
    a.memory_bank.keys.forEach((k: Obj, c: number) => expect([c, maxAbsDiff(k.data, b.memory_bank.keys[c].data) < 1e-4]).toEqual([c, true]));
    expect(readMetrics(split).filter((m) => m.type === 'step').map((m) => m.global_step)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });
});

describe('the AEL step and state, directly', () => {
  const c = loadConfig(writeExperiment(aelConfig({ teacher_init: 'copy' })));
  const B = 2, S = 32;
  const images = (seed: number, n: number) => randomTensor([n, 3, S, S], seed);
  const labels = { data: Uint8Array.from({ length: B * S * S }, (_, i) => (i >> 7) % 4), shape: [B, S, S] };

  test('plans are a pure function of the state and the seed; the bank decides the partner images', async () => {
    const trainer = new (native().AddonTrainer)(trainerOptions(c, 12));
    try {
      const p = await trainer.aelPlan(7);
      expect(await trainer.aelPlan(7)).toEqual(p);
      expect(p.pasteClasses.every((x, i, all) => [1, 2, 3].includes(x) && (i === 0 || all[i - 1] < x))).toBe(true);
      expect(p.keep).toHaveLength(1);
      expect(p.mixClasses).toHaveLength(1);
      // An empty bank row: the partner is uniform over all unlabeled images (every one shows up).
      const seen = new Set<number>();
      for (let s = 0; s < 300; s++) seen.add((await trainer.aelPlan(s)).bankImages[0]);
      expect([...seen].sort((x, y) => x - y)).toEqual(Array.from({ length: 12 }, (_, i) => i));
      // A bank whose every row has one image: that image is always the partner.
      const file = path.join(writeExperiment(aelConfig()), 'state.pth');
      await trainer.save(file);
      const state = (await readCheckpoint(file)) as Obj;
      state.cutmix_bank = { data: new Float32Array(4 * 12), shape: [4, 12] };
      for (let cls = 0; cls < 4; cls++) state.cutmix_bank.data[cls * 12 + 5] = 1;
      await writeCheckpoint(file, state);
      await trainer.load(file);
      for (let s = 0; s < 20; s++) expect((await trainer.aelPlan(s)).bankImages).toEqual([5]);
      expect(Array.from(((await trainer.aelState()) as Obj).bank.data)).toEqual(Array.from(state.cutmix_bank.data));
    } finally {
      trainer.dispose();
    }
  });

  test('one step: the teacher equals the student after step 0; kappa rows move together; only the used bank columns change', async () => {
    const trainer = new (native().AddonTrainer)(trainerOptions(c, 12));
    try {
      const before = (await trainer.aelState()) as Obj;
      const plan = await trainer.aelPlan(aelPlanSeed(c.seed, 0, 0));
      const index = [3, plan.bankImages[0]];
      const r = await trainer.step({
        phase: 'ael', labeledImages: images(1, B), labels, unlabeledImages: images(2, 2), lrBackbone: 0.01, lrHead: 0.01,
        copyTeacher: true, emaDecay: 0, partnerImages: images(3, B), partnerLabels: labels, hasPartner: [true, false],
        unlabeledIndex: index, plan, consistencyPercent: 20, contrastiveOn: true, nextPlanSeed: aelPlanSeed(c.seed, 0, 1),
      });
      expect(r.nextPlan).toEqual(await trainer.aelPlan(aelPlanSeed(c.seed, 0, 1)));
      expect(r.loss).toBeCloseTo(r.supervised / 8 + r.unsupervised / 8 + (0.1 * r.contrastive) / 64, 5);
      // EMA with d_0 = 0: the teacher's parameters are the student's.
      const file = path.join(writeExperiment(aelConfig()), 'one.pth');
      await trainer.save(file);
      const ckpt = (await readCheckpoint(file)) as Obj;
      for (const name of Object.keys(ckpt.model_state).filter((n) => !/running_|num_batches/.test(n))) {
        expect([name, maxAbsDiff(ckpt.model_state[name].data, ckpt.teacher_state[name].data)]).toEqual([name, 0]);
      }
      const after = (await trainer.aelState()) as Obj;
      const k0 = before.kappa.data as Float32Array, k1 = after.kappa.data as Float32Array;
      for (let cls = 0; cls < 4; cls++) {
        for (const row of [1, 2]) expect(k1[row * 4 + cls] - k1[cls]).toBeCloseTo(0.999 * (k0[row * 4 + cls] - k0[cls]), 6);
      }
      for (let col = 0; col < 12; col++) {
        if (index.includes(col)) continue;
        for (let cls = 0; cls < 4; cls++) expect(after.bank.data[cls * 12 + col]).toBe(0);
      }
    } finally {
      trainer.dispose();
    }
  });
});
