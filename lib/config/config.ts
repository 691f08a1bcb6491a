/**
 * The experiment configuration: the reference's YAML schema (u2pl-method.md §15) plus a few
 * port-only keys, validated into typed objects. Unknown keys are warned about (in `net`, an
 * error); wrong types and values are errors naming the key.
 */
import fs from 'fs';
import path from 'path';
import yaml from 'js-yaml';
import { FileError } from '../errors';
import { AugmentConfig, STRONG_AUGMENT_DEFAULTS, StrongAugmentConfig } from '../data/augment';
import { RGB } from '../data/classes';
import { DatasetKind } from '../data/datasets';
import { ConfigError, bool, describe, int, num, section, Section, str, tuple, isPositiveInt, Warner } from './errors';
import { NetConfig, parseNetConfig } from './net';
import { AelConfig, parseAel, wantsAel } from './ael';
import type { AlignmentMode } from '../train/alignment';
import { applyPreset, PresetName } from './preset';

export interface SplitConfig {
  dataRoot: string;
  dataList: string;
  augment: AugmentConfig;
  /** The split's batch_size, else the dataset's (the reference merges the split over the dataset section). */
  batchSize: number;
}

export interface DatasetConfig {
  type: string;
  kind: DatasetKind;
  semi: boolean;
  train: SplitConfig;
  val?: SplitConfig;
  /**
   * Port-only: held-out images scored beside the validation after each validation (test_miou in
   * metrics.jsonl) and never used to choose anything (the best checkpoint follows val), so that
   * figures reported from it come from images no decision was taken on.
   */
  test?: SplitConfig;
  batchSize: number;
  /**
   * The reference's n_sup: semi-supervised epochs have N_u = (labeled + unlabeled) - n_sup steps'
   * worth of images (both lists resized to it, §2.4); supervised-only epochs resize the labeled
   * list to n_sup. Absent: N_u = the unlabeled count, and the labeled list as it is.
   */
  nSup?: number;
  ignoreLabel: number;
  /** Head learning-rate multiplier m of §5.1: 10 for pascal, 1 otherwise (override: head_lr_multiplier). */
  headLrMultiplier: number;
  /** folder layout */
  imageDir?: string;
  labelDir?: string;
  labelExt?: string;
  palette?: RGB[];
  classNames?: string[];
  /** Port-only: generate the procedural demo dataset into data_root when it is missing. */
  procedural?: { seed: number; train: number; labeled: number; val: number; size: number };
  /** Keep decoded images in memory up to this many MiB. */
  cacheMb: number;
  /** Port-only: a file that cannot be read mid-run is skipped with a warning (default: the run stops with a checkpoint). */
  skipUnreadable: boolean;
}

export interface ContrastiveConfig {
  negativeHighEntropy: boolean;
  lowRank: number;
  highRank: number;
  currentClassThreshold: number;
  currentClassNegativeThreshold: number;
  lowEntropyThreshold: number;
  numQueries: number;
  numNegatives: number;
  temperature: number;
  lossWeight: number;
  referenceIndexing: boolean;
  negatives: 'reference' | 'paper';
  queueSize?: number[];
  /** Data parallel: the reference's effective weight loss_weight / world size (§10.8 [Q], default true). */
  divideByWorldSize: boolean;
}

export interface TrainerConfig {
  epochs: number;
  evalOn: boolean;
  supOnlyEpoch: number;
  optimizer: { type: 'SGD'; lr: number; momentum: number; weightDecay: number };
  lrScheduler: { mode: 'poly' | 'cosine'; power: number; targetLr: number };
  unsupervised?: {
    dropPercent: number; applyAug?: 'cutmix' | 'cutout' | 'classmix'; lossWeight: number; weighting: 'reference' | 'paper';
    /** Port-only: the teacher's mode for the pseudo-labels (reference: eval, §8.1). */
    pseudoLabels: 'eval' | 'train';
    /** Port-only: pseudo-labels below this teacher confidence are ignored (0: none, the reference). */
    confidenceThreshold: number;
    /**
     * Port-only: the teacher's logits are averaged over each unlabeled image and its horizontal flip
     * (flipped back) before the pseudo-labels and their confidence (false: one pass, the reference).
     */
    flipPseudoLabels: boolean;
    /**
     * Port-only: distribution alignment of the pseudo-labels (none in the reference): the teacher's
     * class probabilities are scaled per class before the argmax (soft, hard), or each class keeps at
     * most the labels' share of the pseudo-labels (select); lib/train/alignment.ts.
     */
    distributionAlignment: AlignmentMode;
    /** soft: the momentum of the teacher's running class distribution; hard: 1 - the factors' step size. */
    alignmentMomentum: number;
    /**
     * hard: the largest factor is at most this many times the smallest (undefined: no bound but
     * [1/100, 100]), so that classes the teacher cannot yet tell apart are not forced into the pseudo-labels.
     */
    alignmentMaxRatio?: number;
    /**
     * hard: the pseudo-labels' class shares the factors follow are running over the steps (momentum
     * alignmentMomentum) rather than each step's own (unset: 'step', rounds 2-11 of camvid-small),
     * which leaves a class present in few batches above its labelled share.
     */
    alignmentShare?: 'running';
    /**
     * Port-only: the student's unlabeled input is a strong view (colour jitter, grayscale, blur) of
     * the weak one the teacher labels (none in the reference, which has only CutMix).
     */
    strongAugment?: StrongAugmentConfig;
  };
  contrastive?: ContrastiveConfig;
  /**
   * §7 [Q]: 'reference' = the teacher is the student throughout epoch e_w (its BN statistics its own);
   * 'copy' = a full copy of the student (weights and BN statistics) at the start of e_w, EMA from then on.
   */
  teacherInit: 'reference' | 'copy';
  /** Port-only: the teacher's BN statistics come from its own train-mode passes (reference, §7) or follow the student's by the EMA. */
  teacherBn: 'own' | 'ema';
  /**
   * Port-only, supervised-only configs: keep an EMA model of the student (net.ema_decay, U2PL's
   * schedule from the first step; BN statistics per teacher_bn) and validate and save it as U2PL
   * does its teacher, so that a baseline is scored the way U2PL is. Unset when off, so that the
   * checkpoints of runs from before the key resume under the same training settings.
   */
  emaModel?: true;
  /**
   * Port-only: read the unlabeled images' labels (when they exist) to log how accurate the
   * pseudo-labels are; they go to the metrics only, never to a loss.
   */
  pseudoLabelMetrics: boolean;
  /** Port-only: cap on steps per epoch (quick runs, tests). */
  stepsPerEpoch?: number;
  logEvery: number;
  /** Port-only: validate every N epochs (and after the last). */
  evalEvery: number;
}

/** `runtime.channels_last`: true, false, or auto (unset): see RuntimeConfig.channelsLast. */
function channelsLast(v: unknown): boolean | 'auto' {
  if (v === undefined || v === null || v === 'auto') return 'auto';
  if (typeof v !== 'boolean') throw new ConfigError('runtime.channels_last', `expected true, false or auto, got ${describe(v)}`);
  return v;
}

export interface RuntimeConfig {
  threads?: number;
  device: string;
  /**
   * Mixed precision (`runtime.autocast`): auto (the default) picks bf16 where the hardware computes
   * it (CPUs with AVX512-BF16 or AMX, GPUs from compute capability 8.0), fp16 with loss scaling on
   * older tensor-core GPUs, fp32 elsewhere; null (or empty) is fp32. lib/model/precision.ts resolves it.
   */
  autocast: 'auto' | 'bfloat16' | 'float16' | null;
  /**
   * Channels-last activations and weights (`runtime.channels_last`: true, false or auto, the
   * default): auto chooses per device and instruction set (lib/model/precision.ts).
   */
  channelsLast: boolean | 'auto';
  prefetch: number;
  /** Data parallel: the c10d backend (default nccl on CUDA, gloo otherwise) and the collectives' timeout. */
  distBackend?: 'gloo' | 'nccl';
  distTimeoutS: number;
}

export interface U2plConfig {
  /** The file it came from and the folder relative paths are resolved against. */
  file?: string;
  dir: string;
  seed: number;
  dataset: DatasetConfig;
  trainer: TrainerConfig;
  /** saveEverySteps (port-only): also checkpoint mid-epoch every N global steps, so a crash loses at most N steps. */
  saver: { snapshotDir: string; pretrain?: string; autoResume: boolean; saveEverySteps?: number };
  /**
   * classWeight (port-only criterion.kwargs.class_weight): the cross-entropy's per-class weights, or
   * 'median_frequency' to compute them from the labeled split's label files (lib/data/class-frequency.ts).
   */
  criterion: { type: 'ohem' | 'ce'; thresh: number; minKept: number; classWeight?: number[] | 'median_frequency' };
  net: NetConfig;
  runtime: RuntimeConfig;
  /** The AEL variant (u2pl-ael-method.md), when the config asks for it (lib/config/ael.ts). */
  ael?: AelConfig;
  /** The preset whose defaults filled the keys the config leaves out (lib/config/preset.ts). */
  preset: PresetName;
  /** The raw object with the preset's defaults filled in, stored in checkpoints. */
  raw: Record<string, unknown>;
  warnings: string[];
}

const isNum = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);

const ENV_REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/**
 * `${VAR}` and `${VAR:-default}` in string values, from the environment. A value that is a single
 * reference and expands to a number or true/false takes that type (`seed: ${U2PL_SEED:-0}`).
 */
function expandEnv(value: unknown, env: NodeJS.ProcessEnv, unset: string[], key = ''): unknown {
  if (typeof value === 'string') {
    const text = value.replace(ENV_REF, (_, name: string, fallback?: string) => {
      if (env[name] === undefined && fallback === undefined) unset.push(`${key}: \${${name}} is not set (it expands to '')`);
      return env[name] ?? fallback ?? '';
    });
    if (/^\$\{[^}]*\}$/.test(value)) {
      if (text === 'true' || text === 'false') return text === 'true';
      if (text.trim() !== '' && Number.isFinite(Number(text))) return Number(text);
    }
    return text;
  }
  if (Array.isArray(value)) return value.map((v, i) => expandEnv(v, env, unset, `${key}[${i}]`));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, expandEnv(v, env, unset, key ? `${key}.${k}` : k)]));
  }
  return value;
}

function kindOf(type: string): { kind: DatasetKind; semi: boolean } {
  // _semi_cp: the AEL branch's semi-supervised dataset whose labeled samples carry a copy-paste partner.
  const suffix = ['_semi_cp', '_semi'].find((x) => type.endsWith(x));
  const semi = suffix !== undefined;
  const base = suffix ? type.slice(0, -suffix.length) : type;
  const kinds: Record<string, DatasetKind> = { pascal: 'voc', voc: 'voc', cityscapes: 'cityscapes', camvid: 'camvid', folder: 'folder' };
  const kind = kinds[base];
  if (!kind) throw new ConfigError('dataset.type', `unknown dataset type '${type}' (expected pascal, cityscapes, camvid or folder, with _semi for semi-supervised, _semi_cp for AEL)`);
  return { kind, semi };
}

function parseAugment(s: Section, key: string, parent: Section, labelPad: number, w: Warner, cropRequired: boolean): AugmentConfig {
  // The reference's val transform has no required crop: without one the whole image is evaluated.
  const cropValue = s.crop ?? parent.crop;
  let crop: AugmentConfig['crop'];
  if (cropValue !== undefined || cropRequired) {
    const c = section(cropValue ?? {}, `${key}.crop`);
    w.keys(c, ['type', 'size'], `${key}.crop`);
    const cropType = str(c, 'type', 'center', `${key}.crop`);
    if (cropType !== 'rand' && cropType !== 'center') throw new ConfigError(`${key}.crop.type`, `expected rand or center, got '${cropType}'`);
    const size = tuple(c, 'size', [], `${key}.crop`, 2, isPositiveInt, 'positive integers') as [number, number];
    if (size.length !== 2) throw new ConfigError(`${key}.crop.size`, 'required ([height, width])');
    crop = { type: cropType, size };
  }
  const pick = (name: string) => (s[name] !== undefined ? s : parent);
  const randResize = pick('rand_resize').rand_resize === undefined ? undefined : tuple(pick('rand_resize'), 'rand_resize', [], key, 2, isNum, 'numbers') as [number, number];
  if (randResize && !(randResize[0] > 0 && randResize[0] <= 1 && randResize[1] >= 1)) {
    throw new ConfigError(`${key}.rand_resize`, `expected [s_min <= 1, s_max >= 1], got [${randResize.join(', ')}]`);
  }
  const resize = pick('resize').resize === undefined ? undefined : tuple(pick('resize'), 'resize', [], key, 2, isPositiveInt, 'positive integers') as [number, number];
  return {
    randResize,
    resize,
    flip: bool(pick('flip'), 'flip', false, key),
    blur: bool(pick('GaussianBlur'), 'GaussianBlur', false, key),
    crop,
    mean: tuple(pick('mean'), 'mean', [123.675, 116.28, 103.53], key, 3, isNum, 'numbers') as [number, number, number],
    std: tuple(pick('std'), 'std', [58.395, 57.12, 57.375], key, 3, isNum, 'numbers') as [number, number, number],
    labelPad,
  };
}

/** trainer.unsupervised.strong_augment: false/absent (none), true (UniMatch's values), or a mapping of them. */
function parseStrongAugment(value: unknown, w: Warner): StrongAugmentConfig | undefined {
  const key = 'trainer.unsupervised.strong_augment';
  if (value === undefined || value === null || value === false) return undefined;
  if (value === true) return { ...STRONG_AUGMENT_DEFAULTS };
  if (typeof value !== 'object' || Array.isArray(value)) throw new ConfigError(key, `expected true, false or a mapping, got ${describe(value)}`);
  const s = value as Section;
  w.keys(s, ['jitter_prob', 'brightness', 'contrast', 'saturation', 'grayscale_prob', 'blur_prob', 'blur_sigma'], key);
  const d = STRONG_AUGMENT_DEFAULTS;
  const sigma = tuple(s, 'blur_sigma', d.blurSigma, key, 2, isNum, 'numbers') as [number, number];
  if (!(sigma[0] > 0 && sigma[1] >= sigma[0] && sigma[1] <= 50)) throw new ConfigError(`${key}.blur_sigma`, `expected [low, high] with 0 < low <= high <= 50, got [${sigma.join(', ')}]`);
  return {
    jitterProb: num(s, 'jitter_prob', d.jitterProb, key, 0, 1),
    brightness: num(s, 'brightness', d.brightness, key, 0),
    contrast: num(s, 'contrast', d.contrast, key, 0),
    saturation: num(s, 'saturation', d.saturation, key, 0),
    grayscaleProb: num(s, 'grayscale_prob', d.grayscaleProb, key, 0, 1),
    blurProb: num(s, 'blur_prob', d.blurProb, key, 0, 1),
    blurSigma: sigma,
  };
}

function ignoreLabel(d: Section, w: Warner): number {
  const v = int(d, 'ignore_label', 255, 'dataset', 0);
  if (v > 255) w.warnings.push(`dataset.ignore_label: ${v} is outside 0-255: label PNGs hold values 0-255, so no pixel will be ignored`);
  return v;
}

/**
 * `dataset.crop_label_pad`: the label of the crop's padding. 0 (the reference: class 0), or ignore
 * (the config's ignore_label; the u2pl preset's); 255 is accepted where it is the ignore label.
 */
function cropLabelPad(d: Section, ignore: number): number {
  const v = d.crop_label_pad;
  if (v === undefined || v === 0) return 0;
  if (v === 'ignore' || v === ignore) return ignore;
  throw new ConfigError('dataset.crop_label_pad', `expected 0 (reference: class 0) or ignore (the ignore_label, ${ignore}), got ${describe(v)}${v === 255 ? `: 255 is neither a class nor this dataset's ignore_label` : ''}`);
}

function parseDataset(value: unknown, dir: string, w: Warner): DatasetConfig {
  const d = section(value, 'dataset');
  // Transform keys at the dataset level apply to both splits (the reference merges each split over it).
  w.keys(d, ['type', 'train', 'val', 'test', 'batch_size', 'n_sup', 'workers', 'mean', 'std', 'ignore_label', 'noise_std', 'crop_label_pad',
    'head_lr_multiplier', 'image_dir', 'label_dir', 'label_ext', 'palette', 'class_names', 'procedural', 'cache_mb',
    'resize', 'rand_resize', 'flip', 'GaussianBlur', 'crop', 'skip_unreadable', 'acp'], 'dataset');
  const type = str(d, 'type', undefined, 'dataset');
  const { kind, semi } = kindOf(type);
  const ignore = ignoreLabel(d, w);
  const labelPad = cropLabelPad(d, ignore);
  w.ignored(d, 'workers', 'dataset', "decoding and augmentation run on Node's libuv pool: set UV_THREADPOOL_SIZE for its threads and runtime.prefetch for the batches in flight");
  w.ignored(d, 'noise_std', 'dataset', 'unused by the reference too');
  const batchSize = int(d, 'batch_size', 1, 'dataset', 1);
  const split = (name: 'train' | 'val' | 'test'): SplitConfig | undefined => {
    if (d[name] === undefined) {
      if (name === 'train') throw new ConfigError('dataset.train', 'required');
      return undefined;
    }
    const s = section(d[name], `dataset.${name}`);
    w.keys(s, ['data_root', 'data_list', 'flip', 'GaussianBlur', 'rand_resize', 'rand_rotation', 'resize', 'crop', 'mean', 'std', 'batch_size',
      ...(name === 'train' ? ['acm'] : [])], `dataset.${name}`);
    if (s.rand_rotation !== undefined) w.warnings.push(`dataset.${name}.rand_rotation: random rotation is not implemented (unused by the reference configs), ignored`);
    return {
      dataRoot: path.resolve(dir, str(s, 'data_root', undefined, `dataset.${name}`)),
      dataList: path.resolve(dir, str(s, 'data_list', undefined, `dataset.${name}`)),
      augment: parseAugment(s, `dataset.${name}`, d, name === 'train' ? labelPad : 0, w, name === 'train'),
      batchSize: int(s, 'batch_size', batchSize, `dataset.${name}`, 1),
    };
  };
  let palette: RGB[] | undefined;
  if (d.palette !== undefined) {
    if (!Array.isArray(d.palette) || !d.palette.every((c) => Array.isArray(c) && c.length === 3 && c.every((v) => Number.isInteger(v) && v >= 0 && v <= 255))) {
      throw new ConfigError('dataset.palette', 'expected a list of [R, G, B] colours (0-255), one per class');
    }
    palette = d.palette as RGB[];
  }
  let procedural: DatasetConfig['procedural'];
  if (d.procedural !== undefined) {
    const p = section(d.procedural, 'dataset.procedural');
    w.keys(p, ['seed', 'train', 'labeled', 'val', 'size'], 'dataset.procedural');
    procedural = {
      seed: int(p, 'seed', 0, 'dataset.procedural'), train: int(p, 'train', 200, 'dataset.procedural', 2),
      labeled: int(p, 'labeled', 12, 'dataset.procedural', 1), val: int(p, 'val', 40, 'dataset.procedural', 1),
      size: int(p, 'size', 96, 'dataset.procedural', 16),
    };
  }
  return {
    type, kind, semi,
    train: split('train') as SplitConfig,
    val: split('val'),
    test: split('test'),
    batchSize,
    nSup: d.n_sup === undefined ? undefined : int(d, 'n_sup', undefined, 'dataset', 1),
    ignoreLabel: ignore,
    headLrMultiplier: num(d, 'head_lr_multiplier', kind === 'voc' ? 10 : 1, 'dataset', 0),
    imageDir: d.image_dir === undefined ? undefined : str(d, 'image_dir', undefined, 'dataset'),
    labelDir: d.label_dir === undefined ? undefined : str(d, 'label_dir', undefined, 'dataset'),
    labelExt: d.label_ext === undefined ? undefined : str(d, 'label_ext', undefined, 'dataset'),
    palette,
    classNames: Array.isArray(d.class_names) ? (d.class_names as unknown[]).map(String) : undefined,
    procedural,
    cacheMb: num(d, 'cache_mb', 1024, 'dataset', 0),
    skipUnreadable: bool(d, 'skip_unreadable', false, 'dataset'),
  };
}

function parseTrainer(value: unknown, w: Warner, ael: boolean): TrainerConfig {
  const t = section(value, 'trainer');
  w.keys(t, ['epochs', 'eval_on', 'sup_only_epoch', 'start_epochs', 'optimizer', 'lr_scheduler', 'unsupervised', 'contrastive',
    'teacher_init', 'teacher_bn', 'ema_model', 'pseudo_label_metrics', 'steps_per_epoch', 'log_every', 'eval_every', ...(ael ? ['ael', 'sym_ce_u', 'sym_ce_l'] : [])], 'trainer');
  if (ael) w.ignored(t, 'sup_only_epoch', 'trainer', 'the AEL variant has no supervised warm-up: it is semi-supervised from the first step');
  const opt = section(t.optimizer ?? {}, 'trainer.optimizer');
  w.keys(opt, ['type', 'kwargs'], 'trainer.optimizer');
  const optType = str(opt, 'type', 'SGD', 'trainer.optimizer');
  if (optType !== 'SGD') throw new ConfigError('trainer.optimizer.type', `only SGD is supported, got '${optType}'`);
  const kw = section(opt.kwargs ?? {}, 'trainer.optimizer.kwargs');
  w.keys(kw, ['lr', 'momentum', 'weight_decay'], 'trainer.optimizer.kwargs');
  const sched = section(t.lr_scheduler ?? {}, 'trainer.lr_scheduler');
  w.keys(sched, ['mode', 'kwargs'], 'trainer.lr_scheduler');
  const mode = str(sched, 'mode', 'poly', 'trainer.lr_scheduler');
  if (mode !== 'poly' && mode !== 'cosine') throw new ConfigError('trainer.lr_scheduler.mode', `expected poly or cosine, got '${mode}'`);
  const sk = section(sched.kwargs ?? {}, 'trainer.lr_scheduler.kwargs');
  w.keys(sk, ['power', 'targetlr'], 'trainer.lr_scheduler.kwargs');

  w.ignored(t, 'start_epochs', 'trainer', 'unused by the reference too; a run resumes from its checkpoint');
  let unsupervised: TrainerConfig['unsupervised'];
  if (t.unsupervised !== undefined) {
    const u = section(t.unsupervised, 'trainer.unsupervised');
    w.keys(u, ['drop_percent', 'apply_aug', 'loss_weight', 'TTA', 'weighting', 'pseudo_labels', 'confidence_threshold',
      'distribution_alignment', 'alignment_momentum', 'alignment_max_ratio', 'alignment_share', 'strong_augment', 'flip_pseudo_labels'], 'trainer.unsupervised');
    const aug = u.apply_aug === undefined || u.apply_aug === null ? undefined : str(u, 'apply_aug', undefined, 'trainer.unsupervised');
    if (aug !== undefined && !['cutmix', 'cutout', 'classmix'].includes(aug)) {
      throw new ConfigError('trainer.unsupervised.apply_aug', `expected cutmix, cutout or classmix, got '${aug}'`);
    }
    const weighting = str(u, 'weighting', 'reference', 'trainer.unsupervised');
    if (weighting !== 'reference' && weighting !== 'paper') throw new ConfigError('trainer.unsupervised.weighting', `expected reference or paper, got '${weighting}'`);
    w.ignored(u, 'TTA', 'trainer.unsupervised', 'unused by the reference too');
    const pseudoLabels = str(u, 'pseudo_labels', 'eval', 'trainer.unsupervised');
    if (pseudoLabels !== 'eval' && pseudoLabels !== 'train') throw new ConfigError('trainer.unsupervised.pseudo_labels', `expected eval or train, got '${pseudoLabels}'`);
    const alignment = str(u, 'distribution_alignment', 'none', 'trainer.unsupervised') as AlignmentMode;
    if (!['none', 'soft', 'hard', 'select'].includes(alignment)) throw new ConfigError('trainer.unsupervised.distribution_alignment', `expected none, soft, hard or select, got '${alignment}'`);
    const share = u.alignment_share === undefined || u.alignment_share === null ? undefined : str(u, 'alignment_share', undefined, 'trainer.unsupervised');
    if (share !== undefined && share !== 'step' && share !== 'running') throw new ConfigError('trainer.unsupervised.alignment_share', `expected step or running, got '${share}'`);
    if (share !== undefined && alignment !== 'hard') {
      throw new ConfigError('trainer.unsupervised.alignment_share', `is what the factors of distribution_alignment: hard follow; this config's is '${alignment}'`);
    }
    unsupervised = {
      dropPercent: num(u, 'drop_percent', 100, 'trainer.unsupervised', 0, 100),
      applyAug: aug as 'cutmix' | 'cutout' | 'classmix' | undefined,
      lossWeight: num(u, 'loss_weight', 1, 'trainer.unsupervised', 0),
      weighting,
      pseudoLabels,
      confidenceThreshold: num(u, 'confidence_threshold', 0, 'trainer.unsupervised', 0, 1),
      flipPseudoLabels: bool(u, 'flip_pseudo_labels', false, 'trainer.unsupervised'),
      distributionAlignment: alignment,
      alignmentMomentum: num(u, 'alignment_momentum', 0.99, 'trainer.unsupervised', 0, 1),
      alignmentMaxRatio: u.alignment_max_ratio === undefined || u.alignment_max_ratio === null ? undefined : num(u, 'alignment_max_ratio', undefined, 'trainer.unsupervised', 1),
      // Unset for 'step', so that the checkpoints of runs from before the key resume under the same training settings.
      alignmentShare: share === 'running' ? 'running' : undefined,
      strongAugment: parseStrongAugment(u.strong_augment, w),
    };
    if (unsupervised.alignmentMaxRatio !== undefined && alignment !== 'hard') {
      throw new ConfigError('trainer.unsupervised.alignment_max_ratio', `bounds the factors of distribution_alignment: hard; this config's is '${alignment}'`);
    }
    if (unsupervised.strongAugment && ael) {
      throw new ConfigError('trainer.unsupervised.strong_augment', 'is not supported by the AEL variant (its student input is made in its own step)');
    }
    if (unsupervised.flipPseudoLabels && ael) {
      throw new ConfigError('trainer.unsupervised.flip_pseudo_labels', 'is not supported by the AEL variant (its pseudo-labels are made in its own step)');
    }
    if (unsupervised.distributionAlignment !== 'none' && ael) {
      throw new ConfigError('trainer.unsupervised.distribution_alignment', 'is not supported by the AEL variant (its pseudo-labels are made in its own step)');
    }
  }
  let contrastive: ContrastiveConfig | undefined;
  if (t.contrastive !== undefined && t.contrastive !== null) {
    const k = 'trainer.contrastive';
    const c = section(t.contrastive, k);
    w.keys(c, ['negative_high_entropy', 'low_rank', 'high_rank', 'current_class_threshold', 'current_class_negative_threshold',
      'unsupervised_entropy_ignore', 'low_entropy_threshold', 'num_negatives', 'num_queries', 'temperature', 'loss_weight',
      'reference_indexing', 'negatives', 'queue_size', 'divide_by_world_size', ...(ael ? ['start_epoch'] : [])], k);
    if (!ael) w.ignored(c, 'unsupervised_entropy_ignore', k, 'the main method does not use it; only the AEL variant does');
    if (ael) w.ignored(c, 'loss_weight', k, 'the AEL variant weighs the contrastive loss with criterion.contra_weight');
    const negatives = str(c, 'negatives', 'reference', k);
    if (negatives !== 'reference' && negatives !== 'paper') throw new ConfigError(`${k}.negatives`, `expected reference or paper, got '${negatives}'`);
    const lowRank = int(c, 'low_rank', 3, k, 0);
    const highRank = int(c, 'high_rank', 20, k, 1);
    if (highRank <= lowRank) throw new ConfigError(`${k}.high_rank`, `must be greater than low_rank (${lowRank}), got ${highRank}`);
    let queueSize: number[] | undefined;
    if (c.queue_size !== undefined) {
      if (!Array.isArray(c.queue_size) || !c.queue_size.every(isPositiveInt)) throw new ConfigError(`${k}.queue_size`, 'expected a list of positive integers');
      queueSize = c.queue_size as number[];
    }
    contrastive = {
      negativeHighEntropy: bool(c, 'negative_high_entropy', true, k),
      lowRank, highRank,
      currentClassThreshold: num(c, 'current_class_threshold', 0.3, k, 0, 1),
      currentClassNegativeThreshold: num(c, 'current_class_negative_threshold', 1, k, 0, 1),
      lowEntropyThreshold: num(c, 'low_entropy_threshold', 20, k, 0, 50),
      numQueries: int(c, 'num_queries', 256, k, 1),
      numNegatives: int(c, 'num_negatives', 50, k, 1),
      temperature: num(c, 'temperature', 0.5, k, 1e-6),
      lossWeight: num(c, 'loss_weight', 1, k, 0),
      referenceIndexing: bool(c, 'reference_indexing', true, k),
      negatives,
      queueSize,
      divideByWorldSize: bool(c, 'divide_by_world_size', true, k),
    };
  }
  const teacherInit = str(t, 'teacher_init', 'reference', 'trainer');
  if (teacherInit !== 'reference' && teacherInit !== 'copy') throw new ConfigError('trainer.teacher_init', `expected reference or copy, got '${teacherInit}'`);
  const teacherBn = str(t, 'teacher_bn', 'own', 'trainer');
  if (teacherBn !== 'own' && teacherBn !== 'ema') throw new ConfigError('trainer.teacher_bn', `expected own or ema, got '${teacherBn}'`);
  return {
    epochs: int(t, 'epochs', undefined, 'trainer', 1),
    evalOn: bool(t, 'eval_on', true, 'trainer'),
    supOnlyEpoch: int(t, 'sup_only_epoch', 1, 'trainer', 0),
    optimizer: {
      type: 'SGD',
      lr: num(kw, 'lr', undefined, 'trainer.optimizer.kwargs', 0),
      momentum: num(kw, 'momentum', 0.9, 'trainer.optimizer.kwargs', 0, 1),
      weightDecay: num(kw, 'weight_decay', 1e-4, 'trainer.optimizer.kwargs', 0),
    },
    lrScheduler: { mode, power: num(sk, 'power', 0.9, 'trainer.lr_scheduler.kwargs', 0), targetLr: num(sk, 'targetlr', 0, 'trainer.lr_scheduler.kwargs', 0) },
    unsupervised, contrastive, teacherInit, teacherBn,
    emaModel: bool(t, 'ema_model', false, 'trainer') || undefined,
    pseudoLabelMetrics: bool(t, 'pseudo_label_metrics', false, 'trainer'),
    stepsPerEpoch: t.steps_per_epoch === undefined ? undefined : int(t, 'steps_per_epoch', undefined, 'trainer', 1),
    logEvery: int(t, 'log_every', 1, 'trainer', 1),
    evalEvery: int(t, 'eval_every', 1, 'trainer', 1),
  };
}

/** criterion.kwargs.class_weight: absent, 'median_frequency', or numClasses finite weights >= 0, not all 0. */
function parseClassWeight(v: unknown, classes: number): number[] | 'median_frequency' | undefined {
  const key = 'criterion.kwargs.class_weight';
  if (v === undefined || v === null) return undefined;
  if (v === 'median_frequency') return v;
  if (!Array.isArray(v)) throw new ConfigError(key, `expected median_frequency or a list of ${classes} weights, got ${JSON.stringify(v)}`);
  if (v.length !== classes) throw new ConfigError(key, `expected ${classes} weights (net.num_classes), got ${v.length}`);
  v.forEach((x, i) => {
    if (typeof x !== 'number' || !Number.isFinite(x) || x < 0) throw new ConfigError(key, `weight ${i} must be a number >= 0, got ${JSON.stringify(x)}`);
  });
  if (!v.some((x) => x > 0)) throw new ConfigError(key, 'at least one weight must be above 0');
  return v as number[];
}

/**
 * OHEM's min_kept, in pixels of one labeled batch of one process (§6.2). Port-only `min_kept_ratio`
 * gives it as a share of that batch (labeled batch size × crop), so that a config keeps the same
 * selection when the crop or batch changes. A min_kept of at least the batch's pixels makes the
 * reference keep every pixel, i.e. plain cross-entropy: said as a warning, since the default 100,000
 * (sized for 2×769² Cityscapes crops) does that silently on small crops.
 */
function ohemMinKept(ck: Section, type: 'ohem' | 'ce', train: SplitConfig, w: Warner): number {
  const [cropH, cropW] = train.augment.crop!.size;  // the train split's crop is required
  const pixels = train.batchSize * cropH * cropW;
  if (ck.min_kept_ratio !== undefined && ck.min_kept_ratio !== null) {
    if (ck.min_kept !== undefined && ck.min_kept !== null) throw new ConfigError('criterion.kwargs.min_kept_ratio', 'give min_kept or min_kept_ratio, not both');
    return Math.round(num(ck, 'min_kept_ratio', undefined, 'criterion.kwargs', 0, 1) * pixels);
  }
  const minKept = int(ck, 'min_kept', 100000, 'criterion.kwargs', 0);
  if (type === 'ohem' && minKept >= pixels) {
    w.warnings.push(`criterion.kwargs.min_kept: ${minKept} is not below the ${pixels} pixels of a labeled batch (${train.batchSize}×${cropH}×${cropW}), so OHEM keeps every pixel (plain cross-entropy); set a smaller min_kept or min_kept_ratio`);
  }
  return minKept;
}

/** Validates a config object; `dir` resolves relative paths. */
export function parseConfig(value: unknown, dir: string, env: NodeJS.ProcessEnv = process.env, file?: string): U2plConfig {
  try {
    const unset: string[] = [];
    const { raw, preset } = applyPreset(section(expandEnv(value, env, unset), ''));
    const w = new Warner();
    w.warnings.push(...unset);
    w.keys(raw, ['preset', 'dataset', 'trainer', 'saver', 'criterion', 'net', 'seed', 'runtime'], '');
    const dataset = parseDataset(raw.dataset, dir, w);
    const aelMode = wantsAel(raw);
    if (aelMode && !dataset.semi) throw new ConfigError('dataset.type', `the AEL variant (dataset.acp, dataset.train.acm) needs a semi-supervised dataset type, got '${dataset.type}'`);
    const trainer = parseTrainer(raw.trainer, w, aelMode);
    const saver = section(raw.saver ?? {}, 'saver');
    w.keys(saver, ['snapshot_dir', 'pretrain', 'auto_resume', 'save_every_steps'], 'saver');
    const criterion = section(raw.criterion ?? {}, 'criterion');
    w.keys(criterion, ['type', 'kwargs', ...(aelMode ? ['cons', 'consist_weight', 'contra_weight', 'threshold'] : [])], 'criterion');
    const ck = section(criterion.kwargs ?? {}, 'criterion.kwargs');
    w.keys(ck, ['thresh', 'min_kept', 'min_kept_ratio', 'use_weight', 'class_weight'], 'criterion.kwargs');
    if (ck.use_weight === true) throw new ConfigError('criterion.kwargs.use_weight', "the reference's hard-coded class weights are not supported; set criterion.kwargs.class_weight (median_frequency or one weight per class)");
    const criterionType = str(criterion, 'type', 'ce', 'criterion') === 'ohem' ? 'ohem' : 'ce';
    const runtime = section(raw.runtime ?? {}, 'runtime');
    w.keys(runtime, ['threads', 'device', 'autocast', 'channels_last', 'prefetch', 'dist_backend', 'dist_timeout_s'], 'runtime');
    const distBackend = runtime.dist_backend === undefined ? undefined : str(runtime, 'dist_backend', undefined, 'runtime');
    if (distBackend !== undefined && distBackend !== 'gloo' && distBackend !== 'nccl') throw new ConfigError('runtime.dist_backend', `expected gloo or nccl, got '${distBackend}'`);
    const autocast = runtime.autocast === undefined ? 'auto' : runtime.autocast === null || runtime.autocast === '' ? null : str(runtime, 'autocast', undefined, 'runtime');
    if (autocast !== null && autocast !== 'auto' && autocast !== 'bfloat16' && autocast !== 'float16') throw new ConfigError('runtime.autocast', `expected auto, bfloat16, float16 or null (fp32), got '${autocast}'`);
    const net = parseNetConfig(raw.net);
    const classWeight = parseClassWeight(ck.class_weight, net.model.numClasses);
    const ael = aelMode ? parseAel(raw, net.model.numClasses, dataset.kind === 'cityscapes', w) : undefined;
    if (dataset.classNames && dataset.classNames.length !== net.model.numClasses) {
      w.warnings.push(`dataset.class_names: ${dataset.classNames.length} names for net.num_classes ${net.model.numClasses}`);
    }
    if (trainer.contrastive && !net.model.repHead) throw new ConfigError('net.decoder.kwargs.rep_head', 'must be true when trainer.contrastive is set');
    if (dataset.semi && trainer.emaModel) throw new ConfigError('trainer.ema_model', `is for supervised-only configs: a semi-supervised one (dataset.type '${dataset.type}') is scored with its teacher, an EMA model already`);
    if (dataset.semi && !aelMode && !trainer.unsupervised) w.warnings.push('trainer.unsupervised: missing for a semi-supervised dataset type; using drop_percent 100 and no mixing');
    const device = str(runtime, 'device', 'cpu', 'runtime');
    if (autocast === 'float16' && !device.startsWith('cuda')) throw new ConfigError('runtime.autocast', `float16 is for CUDA devices (runtime.device is '${device}'); on a CPU use auto (bf16 where the CPU computes it natively, else fp32) or bfloat16`);
    net.model.device = device;
    const pretrain = saver.pretrain === undefined || saver.pretrain === '' ? undefined : path.resolve(dir, str(saver, 'pretrain', undefined, 'saver'));
    if (net.pretrained) net.pretrained = path.resolve(dir, net.pretrained);
    return {
      file, dir,
      seed: int(raw, 'seed', 2, '', 0),
      dataset, trainer,
      saver: {
        snapshotDir: path.resolve(dir, str(saver, 'snapshot_dir', 'checkpoints', 'saver')), pretrain, autoResume: bool(saver, 'auto_resume', false, 'saver'),
        ...(saver.save_every_steps === undefined || saver.save_every_steps === null ? {} : { saveEverySteps: int(saver, 'save_every_steps', undefined, 'saver', 1) }),
      },
      criterion: {
        type: criterionType,
        thresh: num(ck, 'thresh', 0.7, 'criterion.kwargs', 0, 1),
        minKept: ohemMinKept(ck, criterionType, dataset.train, w),
        ...(classWeight ? { classWeight } : {}),
      },
      net,
      runtime: {
        threads: runtime.threads === undefined ? undefined : int(runtime, 'threads', undefined, 'runtime', 1),
        device, autocast: autocast as RuntimeConfig['autocast'],
        channelsLast: channelsLast(runtime.channels_last),
        prefetch: int(runtime, 'prefetch', 2, 'runtime', 1),
        distBackend: distBackend as RuntimeConfig['distBackend'],
        distTimeoutS: num(runtime, 'dist_timeout_s', 300, 'runtime', 1),
      },
      ael,
      preset,
      raw,
      warnings: w.warnings,
    };
  } catch (e) {
    if (e instanceof ConfigError && file) throw new ConfigError(e.key, e.message.slice(e.key.length + 2), file);
    throw e;
  }
}

/** Reads config.yaml (or .json) from a file or an experiment folder. */
export function loadConfig(fileOrDir: string, env: NodeJS.ProcessEnv = process.env): U2plConfig {
  let file = path.resolve(fileOrDir);
  if (fs.existsSync(file) && fs.statSync(file).isDirectory()) file = path.join(file, 'config.yaml');
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new FileError(file, `cannot read the config (${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message})`);
  }
  let value: unknown;
  try {
    value = file.endsWith('.json') ? JSON.parse(text) : yaml.load(text);
  } catch (e) {
    throw new FileError(file, `not valid ${file.endsWith('.json') ? 'JSON' : 'YAML'} (${(e as Error).message.split('\n')[0]})`);
  }
  return parseConfig(value, path.dirname(file), env, file);
}
