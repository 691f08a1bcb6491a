/**
 * The AEL variant's configuration (u2pl-ael-method.md), from the reference's keys: `dataset.acp`
 * (adaptive copy-paste), `dataset.train.acm` (adaptive CutMix), `criterion.cons` (the consistency
 * loss), `criterion.consist_weight` / `contra_weight`, `trainer.contrastive.start_epoch` and
 * `unsupervised_entropy_ignore`; and the port-only `trainer.ael` section whose switches choose
 * between the reference's behaviour [Q] (the default) and the fixed one.
 */
import { bool, ConfigError, int, num, section, Section, str, tuple, Warner } from './errors';

export interface AelConfig {
  /** Adaptive copy-paste (`dataset.acp`): partner probability, its scale range, draws, the classes it may paste. */
  copyPaste?: { prob: number; randResize: [number, number]; draws: number; classes: number[] };
  /** Adaptive CutMix (`dataset.train.acm`): boxes around a sampled class's component, from the cutmix bank. */
  adaptiveCutmix: boolean;
  boxMinArea: number;
  bankMinArea: number;
  /** kappa's EMA momentum (the last of cons, acp, acm that sets it, as the reference reads them). */
  momentum: number;
  consistency: { gamma: number; gamma2: number; sample: boolean; normaliseOverAll: boolean; sharedSamplingMap: boolean };
  consistencyWeight: number;
  contrastiveWeight: number;
  /** The contrastive loss is on from this epoch (A8; 20 in the reference). */
  contrastiveStartEpoch: number;
  /** The fixed entropy percentile above which unlabeled pixels may be negatives (80). */
  negativePercentile: number;
  /** The [Q] switches: true is the reference's behaviour. */
  replicas: number;
  absentClassesDecay: boolean;
  sharedAcrossRanks: boolean;
  useOneUnlabeled: boolean;
  /** The reference replica's unlabeled batch: of each such group of loaded images one is used (Q7). */
  replicaBatch: number;
  partnerByLabelSum: boolean;
  squareArea: boolean;
  ignoreConfident: boolean;
}

/** Cityscapes classes ACP never pastes in the reference: road, sidewalk, building, vegetation, sky (Q13). */
const CITYSCAPES_EXCLUDED = [0, 1, 2, 8, 10];

function choice<T extends string>(s: Section, key: string, values: readonly T[], parent: string): T {
  const v = str(s, key, values[0], parent);
  if (!values.includes(v as T)) throw new ConfigError(`${parent}.${key}`, `expected ${values.join(' or ')}, got '${v}'`);
  return v as T;
}

/** Whether a config asks for the AEL variant: a `_semi_cp` dataset type, `dataset.acp` or `dataset.train.acm`. */
export function wantsAel(raw: Section): boolean {
  const d = (raw.dataset ?? {}) as Section;
  const train = (d.train ?? {}) as Section;
  return (typeof d.type === 'string' && d.type.endsWith('_semi_cp')) || d.acp !== undefined || train.acm !== undefined;
}

export function parseAel(raw: Section, classes: number, cityscapes: boolean, w: Warner): AelConfig {
  const d = section(raw.dataset, 'dataset');
  const train = section(d.train, 'dataset.train');
  const criterion = section(raw.criterion ?? {}, 'criterion');
  const trainer = section(raw.trainer ?? {}, 'trainer');
  const contrastive = trainer.contrastive && typeof trainer.contrastive === 'object' ? (trainer.contrastive as Section) : {};

  let copyPaste: AelConfig['copyPaste'];
  let momentum = 0.999;
  const cons = criterion.cons === undefined ? undefined : section(criterion.cons, 'criterion.cons');
  if (cons) {
    w.keys(cons, ['sample', 'gamma', 'gamma2', 'momentum'], 'criterion.cons');
    momentum = num(cons, 'momentum', momentum, 'criterion.cons', 0, 1);
  }
  if (d.acp !== undefined) {
    const a = section(d.acp, 'dataset.acp');
    w.keys(a, ['rand_resize', 'prob', 'momentum', 'number', 'exclude'], 'dataset.acp');
    const randResize = tuple(a, 'rand_resize', [0.1, 2.0], 'dataset.acp', 2, (x): x is number => typeof x === 'number' && x > 0, 'positive numbers') as [number, number];
    if (!(randResize[0] <= 1 && randResize[1] >= 1)) throw new ConfigError('dataset.acp.rand_resize', `expected [s_min <= 1, s_max >= 1], got [${randResize.join(', ')}]`);
    const exclude = a.exclude === undefined ? (cityscapes ? CITYSCAPES_EXCLUDED : []) : a.exclude;
    if (!Array.isArray(exclude) || !exclude.every((c) => Number.isInteger(c) && c >= 0 && c < classes)) {
      throw new ConfigError('dataset.acp.exclude', `expected a list of class indices in [0, ${classes})`);
    }
    const pasteClasses = Array.from({ length: classes }, (_, c) => c).filter((c) => !(exclude as number[]).includes(c));
    if (pasteClasses.length === 0) throw new ConfigError('dataset.acp.exclude', 'excludes every class: copy-paste would paste nothing');
    copyPaste = { prob: num(a, 'prob', 0.5, 'dataset.acp', 0, 1), randResize, draws: int(a, 'number', 3, 'dataset.acp', 1), classes: pasteClasses };
    momentum = num(a, 'momentum', momentum, 'dataset.acp', 0, 1);
  }
  let adaptiveCutmix = false;
  let boxMinArea = 0.005;
  let bankMinArea = 0.01;
  if (train.acm !== undefined) {
    const m = section(train.acm, 'dataset.train.acm');
    w.keys(m, ['number', 'area_thresh', 'area_thresh2', 'no_pad', 'no_slim', 'momentum'], 'dataset.train.acm');
    w.ignored(m, 'number', 'dataset.train.acm', 'read by nothing in the reference either');
    for (const k of ['no_pad', 'no_slim']) {
      if (m[k] !== undefined && bool(m, k, true, 'dataset.train.acm') === false) {
        throw new ConfigError(`dataset.train.acm.${k}`, 'only true (the reference configs: boxes used as they are) is supported');
      }
    }
    adaptiveCutmix = true;
    boxMinArea = num(m, 'area_thresh', 1e-4, 'dataset.train.acm', 0, 1);
    bankMinArea = num(m, 'area_thresh2', boxMinArea, 'dataset.train.acm', 0, 1);
    momentum = num(m, 'momentum', momentum, 'dataset.train.acm', 0, 1);
  }
  for (const k of ['sym_ce_u', 'sym_ce_l']) {
    if (trainer[k] === true) throw new ConfigError(`trainer.${k}`, 'the symmetric CE terms (off in the reference configs) are not supported');
  }
  w.ignored(criterion, 'threshold', 'criterion', 'the AEL consistency loss does not read it, as in the reference');

  const q = trainer.ael === undefined ? {} : section(trainer.ael, 'trainer.ael');
  w.keys(q, ['replicas', 'replica_batch', 'consistency_ignore', 'consistency_normalise', 'absent_classes', 'ranks', 'unlabeled', 'sampling_map', 'partner', 'area'], 'trainer.ael');
  return {
    copyPaste,
    adaptiveCutmix, boxMinArea, bankMinArea, momentum,
    // Without `cons` the reference uses plain CE (ignore 255) on both terms: no weights, no sampling, a mean over the labelled pixels.
    consistency: cons ? {
      gamma: num(cons, 'gamma', 2, 'criterion.cons', 0), gamma2: num(cons, 'gamma2', 1, 'criterion.cons', 0),
      sample: bool(cons, 'sample', true, 'criterion.cons'),
      normaliseOverAll: choice(q, 'consistency_normalise', ['reference', 'fixed'], 'trainer.ael') === 'reference',
      sharedSamplingMap: choice(q, 'sampling_map', ['shared', 'per_image'], 'trainer.ael') === 'shared',
    } : { gamma: 0, gamma2: 1, sample: false, normaliseOverAll: false, sharedSamplingMap: true },
    consistencyWeight: num(criterion, 'consist_weight', 1, 'criterion', 0),
    contrastiveWeight: num(criterion, 'contra_weight', 0.1, 'criterion', 0),
    contrastiveStartEpoch: int(contrastive, 'start_epoch', 20, 'trainer.contrastive', 0),
    negativePercentile: num(contrastive, 'unsupervised_entropy_ignore', 80, 'trainer.contrastive', 0, 100),
    replicas: num(q, 'replicas', 8, 'trainer.ael', 1e-9),
    absentClassesDecay: choice(q, 'absent_classes', ['reference', 'fixed'], 'trainer.ael') === 'reference',
    sharedAcrossRanks: choice(q, 'ranks', ['separate', 'shared'], 'trainer.ael') === 'shared',
    useOneUnlabeled: choice(q, 'unlabeled', ['one', 'all'], 'trainer.ael') === 'one',
    replicaBatch: int(q, 'replica_batch', 2, 'trainer.ael', 1),
    partnerByLabelSum: choice(q, 'partner', ['label_sum', 'flag'], 'trainer.ael') === 'label_sum',
    squareArea: choice(q, 'area', ['square', 'hw'], 'trainer.ael') === 'square',
    ignoreConfident: choice(q, 'consistency_ignore', ['reference', 'fixed'], 'trainer.ael') === 'reference',
  };
}
