import fs from 'fs';
import path from 'path';
import { loadConfig, parseConfig } from '../../lib/config/config';
import { ConfigError } from '../../lib';
import { PRESETS, PRESET_CRITERION } from '../../lib/config/preset';
import { changedSettings, trainingSettings } from '../../lib/config/training-settings';
import { tinyConfig } from '../helpers/experiment';
import { tempDir } from '../helpers/temp';

const dir = '/experiments/x';
type Obj = Record<string, any>;
const clone = (o: unknown): Obj => JSON.parse(JSON.stringify(o));

function withChange(change: (c: Obj) => void): Obj {
  const c = clone(tinyConfig(true));
  change(c);
  return c;
}

describe('config validation', () => {
  test('a valid semi-supervised config: paths resolved against its folder, defaults filled', () => {
    const c = parseConfig(tinyConfig(true), dir);
    expect(c.dataset.kind).toBe('folder');
    expect(c.dataset.semi).toBe(true);
    expect(c.dataset.train.dataList).toBe('/experiments/x/data/splits/4/labeled.txt');
    expect(c.dataset.headLrMultiplier).toBe(1);
    expect(c.trainer.unsupervised).toEqual({ dropPercent: 80, applyAug: 'cutmix', lossWeight: 1, weighting: 'reference', pseudoLabels: 'eval', confidenceThreshold: 0, flipPseudoLabels: false, distributionAlignment: 'none', alignmentMomentum: 0.99 });
    expect(c.trainer.contrastive?.referenceIndexing).toBe(true);
    expect(c.trainer.teacherInit).toBe('reference');
    expect(c.saver.snapshotDir).toBe('/experiments/x/checkpoints');
    expect(c.warnings).toEqual([]);
  });

  test('runtime.autocast and runtime.channels_last: auto by default (resolved per machine, lib/model/precision.ts); explicit values kept', () => {
    const runtime = (r: Obj) => parseConfig(withChange((x) => { x.runtime = r; }), dir).runtime;
    expect(runtime({})).toMatchObject({ autocast: 'auto', channelsLast: 'auto' });
    expect(runtime({ channels_last: 'auto', autocast: 'bfloat16' })).toMatchObject({ autocast: 'bfloat16', channelsLast: 'auto' });
    expect(runtime({ autocast: null, channels_last: false })).toMatchObject({ autocast: null, channelsLast: false });
    expect(runtime({ autocast: '' }).autocast).toBeNull();
    expect(runtime({ device: 'cuda', autocast: 'float16', channels_last: true })).toMatchObject({ autocast: 'float16', channelsLast: true });
  });

  test('pascal gets the 10x head learning rate; env expansion with defaults', () => {
    const c = parseConfig(withChange((x) => {
      x.dataset.type = 'pascal_semi';
      x.dataset.train.data_root = '${MY_VOC:-/data/voc}';
    }), dir, {});
    expect(c.dataset.headLrMultiplier).toBe(10);
    expect(c.dataset.train.dataRoot).toBe('/data/voc');
    expect(parseConfig(withChange((x) => { x.dataset.train.data_root = '${MY_VOC:-/data/voc}'; }), dir, { MY_VOC: '/mnt/voc' }).dataset.train.dataRoot).toBe('/mnt/voc');
  });

  test('keys the reference accepts but that do nothing here are warned about by name', () => {
    const c = parseConfig(withChange((x) => {
      x.dataset.workers = 4;
      x.dataset.noise_std = 0.1;
      x.trainer.start_epochs = 0;
      x.trainer.unsupervised.TTA = false;
      x.trainer.contrastive.unsupervised_entropy_ignore = 80;
    }), dir);
    for (const key of ['dataset.workers', 'dataset.noise_std', 'trainer.start_epochs', 'trainer.unsupervised.TTA', 'trainer.contrastive.unsupervised_entropy_ignore']) {
      expect(c.warnings.filter((w) => w.startsWith(`${key}: ignored (`))).toHaveLength(1);
    }
    expect(c.warnings).toHaveLength(5);
  });

  test('a split-level batch_size overrides the dataset one; val without a crop evaluates whole images', () => {
    const c = parseConfig(withChange((x) => { x.dataset.val.batch_size = 7; delete x.dataset.val.crop; }), dir);
    expect(c.dataset.train.batchSize).toBe(2);
    expect(c.dataset.val?.batchSize).toBe(7);
    expect(c.dataset.val?.augment.crop).toBeUndefined();
    expect(() => parseConfig(withChange((x) => { delete x.dataset.train.crop; }), dir)).toThrow('dataset.train.crop.size: required');
  });

  test('OHEM min_kept: pixels of a labeled batch, or min_kept_ratio of them; one that keeps every pixel is warned about', () => {
    const ohem = (kwargs: Obj) => parseConfig(withChange((x) => { x.criterion = { type: 'ohem', kwargs }; }), dir);
    // A labeled batch here is 2 x 32 x 32 = 2048 pixels.
    expect(ohem({ min_kept_ratio: 0.085 }).criterion).toEqual({ type: 'ohem', thresh: 0.7, minKept: 174 });
    expect(ohem({ min_kept_ratio: 0.085 }).warnings).toEqual([]);
    expect(ohem({ min_kept: 2047 }).warnings).toEqual([]);
    expect(ohem({}).criterion.minKept).toBe(100000);
    expect(ohem({}).warnings).toEqual(['criterion.kwargs.min_kept: 100000 is not below the 2048 pixels of a labeled batch (2×32×32), so OHEM keeps every pixel (plain cross-entropy); set a smaller min_kept or min_kept_ratio']);
    expect(parseConfig(withChange((x) => { x.criterion = { type: 'CELoss', kwargs: { min_kept: 100000 } }; }), dir).warnings).toEqual([]);
    expect(() => ohem({ min_kept: 100, min_kept_ratio: 0.1 })).toThrow('criterion.kwargs.min_kept_ratio: give min_kept or min_kept_ratio, not both');
    expect(() => ohem({ min_kept_ratio: 1.5 })).toThrow('criterion.kwargs.min_kept_ratio: expected a number in [0, 1], got 1.5');
  });

  test('criterion.kwargs.class_weight: median_frequency or one weight >= 0 per class; use_weight is refused with the way to weigh', () => {
    const weighted = (class_weight: unknown) => parseConfig(withChange((x) => { x.criterion = { type: 'CELoss', kwargs: { class_weight } }; }), dir).criterion;
    const classes = parseConfig(withChange(() => undefined), dir).net.model.numClasses;
    expect(parseConfig(withChange(() => undefined), dir).criterion.classWeight).toBeUndefined();
    expect(weighted('median_frequency').classWeight).toBe('median_frequency');
    const list = Array.from({ length: classes }, (_, i) => i * 0.5);
    expect(weighted(list).classWeight).toEqual(list);
    expect(() => weighted('inverse')).toThrow(`criterion.kwargs.class_weight: expected median_frequency or a list of ${classes} weights, got "inverse"`);
    expect(() => weighted([1, 2])).toThrow(`criterion.kwargs.class_weight: expected ${classes} weights (net.num_classes), got 2`);
    expect(() => weighted(list.map((x, i) => (i === 1 ? -1 : x)))).toThrow('criterion.kwargs.class_weight: weight 1 must be a number >= 0, got -1');
    expect(() => weighted(list.map(() => 0))).toThrow('criterion.kwargs.class_weight: at least one weight must be above 0');
    expect(() => parseConfig(withChange((x) => { x.criterion = { type: 'CELoss', kwargs: { use_weight: true } }; }), dir))
      .toThrow(/criterion.kwargs.use_weight: .*set criterion.kwargs.class_weight/);
  });

  test('${VAR} alone takes the type of what it expands to', () => {
    const c = parseConfig(withChange((x) => { x.seed = '${SEED:-4}'; x.trainer.eval_on = '${EVAL}'; }), dir, { EVAL: 'false' });
    expect(c.seed).toBe(4);
    expect(c.trainer.evalOn).toBe(false);
    expect(parseConfig(withChange((x) => { x.seed = '${SEED:-4}'; }), dir, { SEED: '11' }).seed).toBe(11);
  });

  test('unknown keys are warned about, not fatal (except in net)', () => {
    const c = parseConfig(withChange((x) => { x.trainer.colour = 'blue'; x.dataset.train.shuffle = true; }), dir);
    expect(c.warnings).toEqual(['dataset.train.shuffle: unknown key, ignored', 'trainer.colour: unknown key, ignored']);
    expect(() => parseConfig(withChange((x) => { x.net.colour = 1; }), dir)).toThrow('net.colour: unknown key');
  });

  test.each([
    ['trainer.epochs: required', (x: Obj) => { delete x.trainer.epochs; }],
    ['trainer.epochs: expected an integer, got the string \'ten\'', (x: Obj) => { x.trainer.epochs = 'ten'; }],
    ["dataset.type: unknown dataset type 'coco'", (x: Obj) => { x.dataset.type = 'coco'; }],
    ["dataset.train.crop.type: expected rand or center, got 'random'", (x: Obj) => { x.dataset.train.crop.type = 'random'; }],
    ['dataset.train.crop.size: expected 2 positive integers', (x: Obj) => { x.dataset.train.crop.size = [32]; }],
    ['dataset.train.rand_resize: expected [s_min <= 1, s_max >= 1]', (x: Obj) => { x.dataset.train.rand_resize = [1.5, 2]; }],
    ['dataset.crop_label_pad: expected 0 (reference: class 0) or ignore (the ignore_label, 255), got number 7', (x: Obj) => { x.dataset.crop_label_pad = 7; }],
    ["dataset.crop_label_pad: expected 0 (reference: class 0) or ignore (the ignore_label, 11), got number 255: 255 is neither a class nor this dataset's ignore_label", (x: Obj) => { x.dataset.ignore_label = 11; x.dataset.crop_label_pad = 255; }],
    ['dataset.batch_size: expected an integer >= 1, got 0', (x: Obj) => { x.dataset.batch_size = 0; }],
    ["trainer.unsupervised.apply_aug: expected cutmix, cutout or classmix, got 'mixup'", (x: Obj) => { x.trainer.unsupervised.apply_aug = 'mixup'; }],
    ['trainer.unsupervised.drop_percent: expected a number in [0, 100], got 120', (x: Obj) => { x.trainer.unsupervised.drop_percent = 120; }],
    ['trainer.contrastive.high_rank: must be greater than low_rank (1), got 1', (x: Obj) => { x.trainer.contrastive.high_rank = 1; }],
    ["trainer.contrastive.negatives: expected reference or paper, got 'all'", (x: Obj) => { x.trainer.contrastive.negatives = 'all'; }],
    ["trainer.optimizer.type: only SGD is supported, got 'adam'", (x: Obj) => { x.trainer.optimizer.type = 'adam'; }],
    ['trainer.optimizer.kwargs.lr: required', (x: Obj) => { delete x.trainer.optimizer.kwargs.lr; }],
    ["trainer.lr_scheduler.mode: expected poly or cosine, got 'step'", (x: Obj) => { x.trainer.lr_scheduler.mode = 'step'; }],
    ['net.decoder.kwargs.rep_head: must be true when trainer.contrastive is set', (x: Obj) => { x.net.decoder.kwargs.rep_head = false; }],
    ["runtime.autocast: expected auto, bfloat16, float16 or null (fp32), got 'int8'", (x: Obj) => { x.runtime = { autocast: 'int8' }; }],
    ["runtime.autocast: float16 is for CUDA devices (runtime.device is 'cpu')", (x: Obj) => { x.runtime = { autocast: 'float16' }; }],
    ["runtime.channels_last: expected true, false or auto, got the string 'yes'", (x: Obj) => { x.runtime = { channels_last: 'yes' }; }],
    ['net.num_classes: required', (x: Obj) => { delete x.net.num_classes; }],
  ] as [string, (x: Obj) => void][])('%s', (message, change) => {
    const bad = withChange(change);
    expect(() => parseConfig(bad, dir)).toThrow(ConfigError);
    expect(() => parseConfig(bad, dir)).toThrow(message);
  });

  test('loadConfig names the file: missing, bad YAML, bad value', () => {
    const d = tempDir('cfg');
    expect(() => loadConfig(d)).toThrow(`${path.join(d, 'config.yaml')}: cannot read the config (no such file)`);
    fs.writeFileSync(path.join(d, 'config.yaml'), 'dataset: [unclosed');
    expect(() => loadConfig(d)).toThrow(`${path.join(d, 'config.yaml')}: not valid YAML`);
    fs.writeFileSync(path.join(d, 'config.yaml'), JSON.stringify(withChange((x) => { x.trainer.epochs = -1; })));
    expect(() => loadConfig(path.join(d, 'config.yaml'))).toThrow(`${path.join(d, 'config.yaml')}: trainer.epochs: expected an integer >= 1, got -1`);
  });

  test('every shipped experiment config is valid', () => {
    const root = path.join(__dirname, '../../experiments');
    const files: string[] = [];
    const walk = (d: string) => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        if (e.isDirectory() && e.name !== 'data' && e.name !== 'checkpoints') walk(path.join(d, e.name));
        else if (e.name === 'config.yaml') files.push(path.join(d, e.name));
      }
    };
    walk(root);
    expect(files.length).toBeGreaterThanOrEqual(2);
    for (const f of files) {
      const c = loadConfig(f, { U2PL_DATA_ROOT: '/data' });
      expect([f, c.warnings]).toEqual([f, []]);
    }
  });
});

describe('presets', () => {
  const get = (o: Obj, key: string): unknown => key.split('.').reduce<unknown>((x, k) => (x as Obj | undefined)?.[k], o);

  test('reference by default: the reference behaviour for every key a preset can set', () => {
    const c = parseConfig(tinyConfig(true), dir);
    expect(c.preset).toBe('reference');
    expect(c.trainer.teacherInit).toBe('reference');
    expect(c.dataset.train.augment.labelPad).toBe(0);
    expect(c.trainer.unsupervised?.distributionAlignment).toBe('none');
    expect(c.raw).toEqual(tinyConfig(true));
  });

  test('u2pl fills each of its defaults where the config is silent, and they reach the parsed config', () => {
    const c = parseConfig({ ...tinyConfig(true), preset: 'u2pl' }, dir);
    expect(c.preset).toBe('u2pl');
    for (const [key, value] of Object.entries(PRESETS.u2pl)) {
      const explicit = get(tinyConfig(true), key);
      expect([key, get(c.raw, key)]).toEqual([key, explicit === undefined ? value : explicit]);
    }
    expect(c.trainer.teacherInit).toBe('copy');
    expect(c.dataset.train.augment.labelPad).toBe(255);
    expect(c.trainer.unsupervised?.distributionAlignment).toBe('hard');
    expect(c.trainer.unsupervised?.alignmentMomentum).toBe(0.99);
    // The same values written out give the same parsed config: the preset is only defaults.
    const spelled = parseConfig(c.raw, dir);
    expect({ ...spelled, raw: undefined }).toEqual({ ...c, raw: undefined });
  });

  test('u2pl pads crops with the config\'s ignore_label, whatever it is (255 would be neither a class nor ignored elsewhere)', () => {
    const pad = (ignore: number | undefined, value?: unknown) => parseConfig(withChange((x) => {
      x.preset = 'u2pl';
      if (ignore !== undefined) x.dataset.ignore_label = ignore;
      if (value !== undefined) x.dataset.crop_label_pad = value;
    }), dir).dataset.train.augment.labelPad;
    expect(pad(undefined)).toBe(255);
    expect(pad(11)).toBe(11);
    expect(pad(11, 'ignore')).toBe(11);
    expect(pad(11, 11)).toBe(11);
    expect(pad(11, 0)).toBe(0);
  });

  test('training settings: the expanded config (preset and defaults) without what does not change training', () => {
    const base = parseConfig(withChange((x) => { x.preset = 'u2pl'; }), dir);
    const settings = trainingSettings(base);
    expect(settings['trainer.unsupervised.distributionAlignment']).toBe('hard');  // from the preset, not the file
    expect(settings['dataset.train.augment.labelPad']).toBe(255);
    expect(Object.keys(settings).filter((k) => /^(raw|saver|file|dir|warnings)\.|threads|logEvery|dataRoot|snapshotDir/.test(k))).toEqual([]);
    // What a run may change on resume: threads, logging, validation cadence, the run folder, where the data lives.
    const harmless = parseConfig(withChange((x) => {
      x.preset = 'u2pl';
      x.runtime = { threads: 3, prefetch: 4, channels_last: false };
      x.trainer.log_every = 7;
      x.trainer.eval_every = 2;
      x.saver.snapshot_dir = 'elsewhere';
      x.dataset.train.data_root = '/mnt/moved';
    }), dir);
    expect(changedSettings(settings, trainingSettings(harmless))).toEqual([]);
    // What a preset's upgrade or an edit would change mid-run is named, old and new.
    const changed = parseConfig(withChange((x) => {
      x.preset = 'u2pl';
      x.trainer.unsupervised.distribution_alignment = 'none';
      x.runtime = { autocast: 'bfloat16' };
    }), dir);
    expect(changedSettings(settings, trainingSettings(changed))).toEqual([
      'runtime.autocast: "auto" -> "bfloat16"',
      'trainer.unsupervised.distributionAlignment: "hard" -> "none"',
    ]);
    expect(changedSettings({ ...settings, 'trainer.gone': 1 }, settings)).toEqual(['trainer.gone: 1 -> (unset)']);
  });

  test('keys the config sets win over the preset; a preset adds no section the config lacks', () => {
    const c = parseConfig(withChange((x) => { x.preset = 'u2pl'; x.trainer.teacher_init = 'reference'; x.dataset.crop_label_pad = 0; }), dir);
    expect(c.trainer.teacherInit).toBe('reference');
    expect(c.dataset.train.augment.labelPad).toBe(0);
    const sup = parseConfig({ ...tinyConfig(false), preset: 'u2pl' }, dir);
    expect(sup.trainer.contrastive).toBeUndefined();
    expect(sup.trainer.unsupervised).toBeUndefined();
  });

  test('u2pl picks class-weighted OHEM for a U2PL config that says nothing of its criterion, never for supervised-only or over a chosen one', () => {
    const silent = (semi: boolean, change: (x: Obj) => void = () => {}) => {
      const x = clone(tinyConfig(semi));
      x.preset = 'u2pl';
      delete x.criterion;
      change(x);
      return parseConfig(x, dir);
    };
    // A labeled batch here is 2 x 32 x 32 = 2048 pixels: 8.5 % of it is 174.
    expect(PRESET_CRITERION.u2pl).toEqual({ type: 'ohem', kwargs: { thresh: 0.7, min_kept_ratio: 0.085, class_weight: 'median_frequency' } });
    expect(silent(true).criterion).toEqual({ type: 'ohem', thresh: 0.7, minKept: 174, classWeight: 'median_frequency' });
    expect(silent(true).raw.criterion).toEqual(PRESET_CRITERION.u2pl);
    expect(silent(true, (x) => { x.criterion = {}; }).criterion.type).toBe('ohem');
    expect(silent(false).criterion).toEqual({ type: 'ce', thresh: 0.7, minKept: 100000 });
    expect(silent(true, (x) => { x.criterion = { type: 'CELoss' }; }).criterion.type).toBe('ce');
    expect(silent(true, (x) => { x.criterion = { kwargs: { min_kept: 10 } }; }).criterion).toEqual({ type: 'ce', thresh: 0.7, minKept: 10 });
    expect(silent(true, (x) => { delete x.preset; }).criterion.type).toBe('ce');
  });

  test('distribution alignment: its mode and momentum are checked, and the AEL variant refuses it', () => {
    expect(() => parseConfig(withChange((x) => { x.trainer.unsupervised.distribution_alignment = 'strong'; }), dir))
      .toThrow(new ConfigError('trainer.unsupervised.distribution_alignment', "expected none, soft, hard or select, got 'strong'"));
    expect(() => parseConfig(withChange((x) => { x.trainer.unsupervised.alignment_momentum = 1.5; }), dir))
      .toThrow('trainer.unsupervised.alignment_momentum');
    expect(parseConfig(withChange((x) => { x.trainer.unsupervised.distribution_alignment = 'hard'; x.trainer.unsupervised.alignment_max_ratio = 5; }), dir)
      .trainer.unsupervised?.alignmentMaxRatio).toBe(5);
    expect(() => parseConfig(withChange((x) => { x.trainer.unsupervised.distribution_alignment = 'hard'; x.trainer.unsupervised.alignment_max_ratio = 0.5; }), dir))
      .toThrow('trainer.unsupervised.alignment_max_ratio');
    expect(() => parseConfig(withChange((x) => { x.trainer.unsupervised.distribution_alignment = 'soft'; x.trainer.unsupervised.alignment_max_ratio = 5; }), dir))
      .toThrow(new ConfigError('trainer.unsupervised.alignment_max_ratio', "bounds the factors of distribution_alignment: hard; this config's is 'soft'"));
    // alignment_share: running is kept, step (the default) is left unset so that older checkpoints resume under the same settings.
    expect(parseConfig(withChange((x) => { x.trainer.unsupervised.distribution_alignment = 'hard'; x.trainer.unsupervised.alignment_share = 'running'; }), dir)
      .trainer.unsupervised?.alignmentShare).toBe('running');
    const stepShare = parseConfig(withChange((x) => { x.trainer.unsupervised.distribution_alignment = 'hard'; x.trainer.unsupervised.alignment_share = 'step'; }), dir);
    expect(stepShare.trainer.unsupervised?.alignmentShare).toBeUndefined();
    expect(() => parseConfig(withChange((x) => { x.trainer.unsupervised.distribution_alignment = 'hard'; x.trainer.unsupervised.alignment_share = 'batch'; }), dir))
      .toThrow(new ConfigError('trainer.unsupervised.alignment_share', "expected step or running, got 'batch'"));
    expect(() => parseConfig(withChange((x) => { x.trainer.unsupervised.distribution_alignment = 'select'; x.trainer.unsupervised.alignment_share = 'running'; }), dir))
      .toThrow(new ConfigError('trainer.unsupervised.alignment_share', "is what the factors of distribution_alignment: hard follow; this config's is 'select'"));
    const ael = withChange((x) => { x.dataset.type = 'folder_semi_cp'; x.trainer.unsupervised.distribution_alignment = 'soft'; });
    expect(() => parseConfig(ael, dir)).toThrow('trainer.unsupervised.distribution_alignment: is not supported by the AEL variant');
  });

  test('strong augmentation: true takes UniMatch\'s values, a mapping overrides them, bad values are errors naming the key', () => {
    expect(parseConfig(tinyConfig(true), dir).trainer.unsupervised?.strongAugment).toBeUndefined();
    expect(parseConfig(withChange((x) => { x.trainer.unsupervised.strong_augment = false; }), dir).trainer.unsupervised?.strongAugment).toBeUndefined();
    expect(parseConfig(withChange((x) => { x.trainer.unsupervised.strong_augment = true; }), dir).trainer.unsupervised?.strongAugment).toEqual({
      jitterProb: 0.8, brightness: 0.5, contrast: 0.5, saturation: 0.5, grayscaleProb: 0.2, blurProb: 0.5, blurSigma: [0.1, 2],
    });
    const custom = parseConfig(withChange((x) => { x.trainer.unsupervised.strong_augment = { grayscale_prob: 0, blur_sigma: [0.5, 1] }; }), dir);
    expect(custom.trainer.unsupervised?.strongAugment).toMatchObject({ jitterProb: 0.8, grayscaleProb: 0, blurSigma: [0.5, 1] });
    expect(() => parseConfig(withChange((x) => { x.trainer.unsupervised.strong_augment = 'yes'; }), dir))
      .toThrow("trainer.unsupervised.strong_augment: expected true, false or a mapping, got the string 'yes'");
    expect(() => parseConfig(withChange((x) => { x.trainer.unsupervised.strong_augment = { jitter_prob: 2 }; }), dir))
      .toThrow('trainer.unsupervised.strong_augment.jitter_prob');
    expect(() => parseConfig(withChange((x) => { x.trainer.unsupervised.strong_augment = { blur_sigma: [2, 1] }; }), dir))
      .toThrow('trainer.unsupervised.strong_augment.blur_sigma: expected [low, high] with 0 < low <= high <= 50, got [2, 1]');
    const ael = withChange((x) => { x.dataset.type = 'folder_semi_cp'; x.trainer.unsupervised.strong_augment = true; });
    expect(() => parseConfig(ael, dir)).toThrow('trainer.unsupervised.strong_augment: is not supported by the AEL variant');
  });

  test('flip pseudo-labels: off unless set, a boolean, and refused by the AEL variant', () => {
    expect(parseConfig(tinyConfig(true), dir).trainer.unsupervised?.flipPseudoLabels).toBe(false);
    expect(parseConfig(withChange((x) => { x.trainer.unsupervised.flip_pseudo_labels = true; }), dir).trainer.unsupervised?.flipPseudoLabels).toBe(true);
    expect(() => parseConfig(withChange((x) => { x.trainer.unsupervised.flip_pseudo_labels = 'yes'; }), dir))
      .toThrow('trainer.unsupervised.flip_pseudo_labels');
    const ael = withChange((x) => { x.dataset.type = 'folder_semi_cp'; x.trainer.unsupervised.flip_pseudo_labels = true; });
    expect(() => parseConfig(ael, dir)).toThrow('trainer.unsupervised.flip_pseudo_labels: is not supported by the AEL variant');
  });

  test('an unknown preset is an error that names the key and the choices', () => {
    expect(() => parseConfig({ ...tinyConfig(true), preset: 'best' }, dir)).toThrow(new ConfigError('preset', 'expected one of reference, u2pl, got "best"'));
  });
});
