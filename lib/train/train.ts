/**
 * The training loop (u2pl-method.md §11): supervised-only baseline, warm-up and U2PL epochs, with
 * per-epoch validation, atomic checkpoints that resume exactly, metrics.jsonl and report.html.
 * The step itself is one native call; this file decides what each step gets.
 */
import fs from 'fs';
import path from 'path';
import { SplitConfig, U2plConfig } from '../config/config';
import { ConfigError } from '../config/errors';
import { InputError } from '../errors';
import { copyAtomic, lockRunDir, removeStaleTemporaries } from './run-dir';
import { defaultBackend, DistributedSettings, distributedFromEnv, rankDevice } from './distributed';
import { DataError } from '../data/image-io';
import { Batch, BatchLoader } from '../data/loader';
import { checkSamples, DatasetSummary, datasetWarnings, DecodeCache, DecodedFiles, mergeSummaries, prepareData, RunData, throwOnProblems } from '../data/prepare';
import { deriveSeed } from '../data/random';
import { Sample } from '../data/datasets';
import { SemiSupervisedSampler, SupervisedSampler } from '../data/sampler';
import { evaluateLoader, EvalResult, EvalShard } from '../eval/evaluate';
import { writeReport, writeRunInfo } from '../eval/report';
import { methodImages, sampleImages } from '../eval/report/collect';
import { readMetrics } from '../eval/report/metrics';
import { AddonModel, AddonProcessGroup, AddonStepInputs, AddonStepResult, AddonTrainer, AddonTrainerOptions, AelPlan, native, ProcessGroupOptions } from '../native';
import { anchorPercentile, cosineLr, dropPercentile, emaDecay, polyLr } from './schedules';
import { AlignmentState, DistributionAlignment } from './alignment';
import { ClassFrequencies, medianFrequencyWeights } from '../data/class-frequency';
import { choosePrecision, Precision } from '../model/precision';
import { changedSettings, trainingSettings } from '../config/training-settings';

/** What a step does: the supervised-only baseline, U2PL's warm-up and U2PL steps, or the AEL variant's. */
export type TrainPhase = 'supervised' | 'warmup' | 'semi' | 'ael';

export interface Progress {
  epoch: number;
  epochs: number;
  step: number;
  stepsPerEpoch: number;
  globalStep: number;
  totalSteps: number;
  phase: TrainPhase;
  result: AddonStepResult;
  lr: number;
  dataSeconds: number;
  stepSeconds: number;
  etaSeconds: number;
}

export interface EpochSummary {
  epoch: number;
  miou: number;
  iou: number[];
  /** Best validation mIoU so far (null while no validation has run). */
  bestMiou: number | null;
  /** mIoU on dataset.test, where the config has one. */
  testMiou?: number;
  seconds: number;
}

export interface TrainOptions {
  onProgress?: (p: Progress) => void;
  onEpoch?: (e: EpochSummary) => void;
  onLog?: (message: string) => void;
  /** Aborting finishes the step in flight, saves a checkpoint and returns (interrupted: true). */
  signal?: AbortSignal;
  /** Resume from this checkpoint (default: snapshot_dir/ckpt.pth when saver.auto_resume). */
  resume?: string;
  /** Stop (with a checkpoint) once this many global steps are done. */
  maxSteps?: number;
  /**
   * Resume even where the config's training settings differ from those the checkpoint was saved
   * under (lib/config/training-settings.ts; default: refused, with the changed keys named).
   */
  allowConfigChange?: boolean;
  /**
   * This process's place in a data-parallel job (default: torchrun's variables, RANK, WORLD_SIZE,
   * ... when WORLD_SIZE > 1; null forces a single process). Rank 0 logs, checks the data and
   * writes the run folder; every rank trains its share of each batch.
   */
  distributed?: DistributedSettings | null;
}

export interface TrainResult {
  /** Best validation mIoU of the run (including before a resume); null when no validation ran. */
  bestMiou: number | null;
  lastMiou: number | null;
  globalStep: number;
  interrupted: boolean;
  checkpoint: string;
  snapshotDir: string;
}

export const CHECKPOINT = 'ckpt.pth';
/** Loss scaling: this many skipped steps in a row stop the run (GradScaler alone would go on halving the scale). */
export const MAX_SKIPPED_STEPS = 50;
export const BEST_CHECKPOINT = 'ckpt_best.pth';

/**
 * The native trainer's options for a config; `unlabeledCount` (N_u, the AEL cutmix bank's size)
 * is needed for the AEL variant, `medianFrequencyWeights` (the labeled split's, see
 * lib/data/class-frequency.ts) for criterion.kwargs.class_weight: median_frequency.
 */
export function trainerOptions(
  c: U2plConfig, unlabeledCount = 0, medianFrequencyWeights?: number[], precision: Precision = runtimePrecision(c),
): AddonTrainerOptions {
  const t = c.trainer;
  const classWeight = c.criterion.classWeight === 'median_frequency' ? medianFrequencyWeights : c.criterion.classWeight;
  if (c.criterion.classWeight === 'median_frequency' && !classWeight) throw new Error('criterion.kwargs.class_weight: median_frequency needs the labeled split\'s weights');
  const con = t.contrastive;
  const ael = c.ael;
  return {
    model: c.net.model,
    semi: c.dataset.semi,
    momentum: t.optimizer.momentum,
    weightDecay: t.optimizer.weightDecay,
    seed: c.seed,
    autocast: precision.autocast,
    channelsLast: precision.channelsLast,
    lossScaling: precision.lossScaling ? {} : null,
    device: c.runtime.device,
    supervised: {
      ohem: c.criterion.type === 'ohem', thresh: c.criterion.thresh, minKept: c.criterion.minKept,
      auxWeight: c.net.auxLossWeight ?? 0.4, ignoreIndex: c.dataset.ignoreLabel, classWeight,
    },
    unsupervised: {
      weighting: t.unsupervised?.weighting ?? 'reference', weight: t.unsupervised?.lossWeight ?? 1,
      pseudoLabels: t.unsupervised?.pseudoLabels ?? 'eval', confidenceThreshold: t.unsupervised?.confidenceThreshold ?? 0,
      flipPseudoLabels: t.unsupervised?.flipPseudoLabels ?? false,
    },
    teacherBn: t.teacherBn,
    emaModel: t.emaModel === true,
    contrastive: c.dataset.semi && con ? {
      currentClassThreshold: con.currentClassThreshold, currentClassNegativeThreshold: con.currentClassNegativeThreshold,
      lowRank: con.lowRank, highRank: con.highRank, temperature: con.temperature, numQueries: con.numQueries,
      numNegatives: con.numNegatives, negativeHighEntropy: con.negativeHighEntropy, referenceIndexing: con.referenceIndexing,
      negatives: con.negatives, weight: ael ? ael.contrastiveWeight : con.lossWeight, queueSize: con.queueSize,
    } : null,
    mix: c.dataset.semi ? t.unsupervised?.applyAug ?? null : null,
    syncBn: c.net.syncBn,
    contrastiveWorldScaling: con?.divideByWorldSize ?? true,
    ael: ael ? {
      unlabeled: unlabeledCount, unlabeledBatch: c.dataset.train.batchSize,
      pasteClasses: ael.copyPaste?.classes ?? [], pasteDraws: ael.copyPaste?.draws ?? 3,
      adaptiveCutmix: ael.adaptiveCutmix, momentum: ael.momentum, absentClassesDecay: ael.absentClassesDecay,
      useOneUnlabeled: ael.useOneUnlabeled, replicaBatch: ael.replicaBatch, sharedAcrossRanks: ael.sharedAcrossRanks, consistency: ael.consistency,
      consistencyWeight: ael.consistencyWeight, replicas: ael.replicas, boxMinArea: ael.boxMinArea, bankMinArea: ael.bankMinArea,
      squareArea: ael.squareArea, ignoreConfident: ael.ignoreConfident,
      anchorPercentile: con?.lowEntropyThreshold ?? 20, negativePercentile: ael.negativePercentile,
      partnerByLabelSum: ael.partnerByLabelSum,
    } : null,
  };
}

/** runtime.autocast and runtime.channels_last resolved for this machine (on `device`: a rank's GPU). */
export function runtimePrecision(c: U2plConfig, device = c.runtime.device): Precision {
  return choosePrecision({ device, autocast: c.runtime.autocast, channelsLast: c.runtime.channelsLast }, native().info());
}

/** Where a run keeps the list of images that decoded, so that a resumed run checks only what changed. */
export const DECODE_CACHE = '.u2pl-decoded.json';

/**
 * Checks every list and file of the run, every image decoded (throws one error listing the
 * problems); what is legal but probably a mistake goes to `log` as warnings. Returns the labeled
 * split's class frequencies, counted on the way. Data parallel (`group`): each rank decodes 1/R of
 * every list (R times faster, and inside the collectives' timeout however large the dataset) and
 * the ranks' findings are gathered, so that every rank knows the whole verdict and frequencies.
 */
export async function preflight(c: U2plConfig, data: RunData, log: (m: string) => void = () => undefined, group?: AddonProcessGroup): Promise<ClassFrequencies> {
  const classes = c.net.model.numClasses;
  const ignore = c.dataset.ignoreLabel;
  const rank = group?.rank() ?? 0, ranks = group?.worldSize() ?? 1;
  const share = <T>(list: T[]) => (ranks === 1 ? list : list.filter((_, i) => i % ranks === rank));
  const cache = new DecodeCache(path.join(c.saver.snapshotDir, DECODE_CACHE));
  let summaries = [
    await checkSamples(share(data.labeled), data.info, classes, ignore, true, 8, cache),
    await checkSamples(share(data.unlabeled), data.info, classes, ignore, false, 8, cache),
    await checkSamples(share(data.val), data.info, classes, ignore, true, 8, cache),
    await checkSamples(share(data.test), data.info, classes, ignore, true, 8, cache),
  ];
  if (group) {
    const mine = Buffer.from(JSON.stringify({ summaries, decoded: cache.added() }));
    const all = await group.allGather({ data: new Uint8Array(mine.buffer, mine.byteOffset, mine.length), shape: [mine.length] });
    const parts = all.map((t) => JSON.parse(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).toString('utf8')) as { summaries: DatasetSummary[]; decoded: DecodedFiles });
    summaries = summaries.map((_, k) => mergeSummaries(parts.map((p) => p.summaries[k])));
    for (const p of parts) cache.merge(p.decoded);
  }
  if (rank === 0) cache.save();
  for (const w of datasetWarnings(c.dataset, data, summaries)) log(`warning: ${w}`);
  if (rank !== 0 && summaries.some((s) => s.problems.length)) throw new InputError(`the data check found problems (rank 0's output lists them); rank ${rank} stops too`);
  throwOnProblems(summaries);
  return summaries[0].frequencies;
}

function appendJsonl(file: string, record: Record<string, unknown>): void {
  fs.appendFileSync(file, `${JSON.stringify(record)}\n`);
}

function readJsonl(file: string): Record<string, unknown>[] {
  if (!fs.existsSync(file)) return [];
  return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Keeps metrics.jsonl consistent with a resumed checkpoint: drops records past its global step. */
function truncateMetrics(file: string, globalStep: number, epochsDone: number): void {
  const kept = readJsonl(file).filter((r) => (r.type === 'step' ? (r.global_step as number) < globalStep : (r.epoch as number) < epochsDone));
  fs.writeFileSync(file, kept.map((r) => JSON.stringify(r)).join('\n') + (kept.length ? '\n' : ''));
}

/** How to go on when a checkpoint cannot be resumed, by how it was chosen. */
function resumeError(file: string, auto: boolean, e: Error): InputError {
  const problem = e.message.startsWith(file) ? e.message : `${file}: ${e.message}`;
  const how = auto
    ? 'saver.auto_resume found it in saver.snapshot_dir: move it aside (or delete it) to start over, give --resume another checkpoint, or set saver.auto_resume: false'
    : 'give --resume a checkpoint written by this config (or leave --resume out)';
  return new InputError(`${problem}. ${how}`);
}

let joined: { key: string; group: Promise<AddonProcessGroup> } | undefined;

/** One process group per process: several runs (an experiment folder's sub-folders) share it. */
function joinOnce(o: ProcessGroupOptions): Promise<AddonProcessGroup> {
  const key = JSON.stringify({ ...o, timeoutMs: undefined });
  if (!joined || joined.key !== key) joined = { key, group: native().joinProcessGroup(o) };
  return joined.group;
}

/**
 * Trains as the config says (§11): one run per snapshot_dir at a time (a lock file), resumable
 * from its last checkpoint whatever stopped it.
 */
export async function train(c: U2plConfig, options: TrainOptions = {}): Promise<TrainResult> {
  const dist = options.distributed === undefined ? distributedFromEnv() : options.distributed ?? undefined;
  const lead = !dist || dist.rank === 0;
  const log = lead && options.onLog ? options.onLog : () => undefined;
  for (const w of c.warnings) log(`warning: ${w}`);
  if (c.runtime.threads) native().setThreads(c.runtime.threads);
  const data = await prepareData(c.dataset, c.net.model.numClasses);
  let group: AddonProcessGroup | undefined;
  if (dist) {
    const backend = defaultBackend(c.runtime.device, c.runtime.distBackend);
    if (!native().info().distributed.includes(backend)) {
      throw new InputError(`this u2pl build has no ${backend} backend (it has: ${native().info().distributed.join(', ') || 'none'}); Gloo needs LibTorch's c10d and the gloo headers (Debian: apt-get install libgloo-dev, then npx u2pl-setup)`);
    }
    group = await joinOnce({
      backend, rank: dist.rank, worldSize: dist.worldSize, masterAddr: dist.masterAddr, masterPort: dist.masterPort, timeoutMs: c.runtime.distTimeoutS * 1000,
      device: backend === 'nccl' ? rankDevice(c.runtime.device, dist) : 'cpu',
      ...(dist.agentStore ? { agentStore: true, storePrefix: dist.agentStore.prefix } : {}),
    });
    log(`rank 0 of ${dist.worldSize} (${backend}, rendezvous at ${dist.masterAddr}:${dist.masterPort}); each rank trains dataset.batch_size ${c.dataset.train.batchSize} images of each kind per step`);
  }
  // Rank 0 owns the run folder: its lock, the metrics and checkpoints.
  let release = () => undefined as void;
  let failed: unknown;
  if (lead) {
    try {
      fs.mkdirSync(c.saver.snapshotDir, { recursive: true });
      release = lockRunDir(c.saver.snapshotDir, log);
      removeStaleTemporaries(c.saver.snapshotDir, log);
    } catch (e) {
      failed = e;
    }
  }
  try {
    if (group) {
      // Every rank learns whether rank 0 has the run folder (instead of waiting for it at the first collective).
      const verdict = await group.allReduceSum({ data: new Int32Array([failed ? 1 : 0]), shape: [1] });
      if (!failed && verdict.data[0] > 0) throw new InputError(`rank 0 stopped before training (its output says why); rank ${dist?.rank} stops too`);
    }
    if (failed) throw failed;
    // Every rank checks its share of the data; all learn the whole verdict.
    const labeledFrequencies = await preflight(c, data, log, group);
    return await trainLocked(c, data, options, log, group, dist, labeledFrequencies);
  } finally {
    release();
  }
}

async function trainLocked(
  c: U2plConfig, data: RunData, options: TrainOptions, log: (m: string) => void, group: AddonProcessGroup | undefined,
  dist: DistributedSettings | undefined, labeledFrequencies: ClassFrequencies,
): Promise<TrainResult> {
  const lead = !dist || dist.rank === 0;
  const shard = dist ? { rank: dist.rank, worldSize: dist.worldSize } : {};
  // Only rank 0 writes the run folder's metrics.
  const appendRecord = (file: string, record: Record<string, unknown>) => { if (lead) appendJsonl(file, record); };
  const t = c.trainer;
  const d = c.dataset;
  const classes = c.net.model.numClasses;
  const ckptPath = path.join(c.saver.snapshotDir, CHECKPOINT);
  const bestPath = path.join(c.saver.snapshotDir, BEST_CHECKPOINT);
  const metricsPath = path.join(c.saver.snapshotDir, 'metrics.jsonl');
  const reportPath = path.join(c.saver.snapshotDir, 'report.html');

  const semi = d.semi;
  const batch = d.train.batchSize;
  if (batch < 2) throw new ConfigError(d.train.batchSize !== d.batchSize ? 'dataset.train.batch_size' : 'dataset.batch_size', `must be at least 2 to train, got ${batch}: the BatchNorm after ASPP's image pooling sees one value per image`);
  const epochSize = d.nSup === undefined ? undefined : semi ? data.labeled.length + data.unlabeled.length - d.nSup : d.nSup;
  if (epochSize !== undefined && epochSize < 1) {
    throw new ConfigError('dataset.n_sup', `${d.nSup} leaves no unlabeled images per epoch (N_u = ${data.labeled.length} labeled + ${data.unlabeled.length} unlabeled - n_sup)`);
  }
  const semiSampler = semi ? new SemiSupervisedSampler(data.labeled.length, data.unlabeled.length, batch, c.seed, shard, epochSize) : undefined;
  const supSampler = semi ? undefined : new SupervisedSampler(data.labeled.length, batch, c.seed, shard, epochSize);
  const natural = semiSampler ? semiSampler.stepsPerEpoch : (supSampler as SupervisedSampler).stepsPerEpoch;
  if (natural < 1) throw new ConfigError('dataset.batch_size', `${batch} is larger than the ${semi ? 'unlabeled' : 'labeled'} set: no full step per epoch`);
  const L = t.stepsPerEpoch ? Math.min(t.stepsPerEpoch, natural) : natural;
  const E = t.epochs;
  const K = E * L;
  const ael = c.ael;
  const warmup = semi && !ael ? Math.min(t.supOnlyEpoch, E) : 0;  // the AEL variant has none
  const emaModel = t.emaModel === true;  // supervised-only (the config refuses it elsewhere): scored with an EMA of the student as U2PL is with its teacher

  const onSkip = d.skipUnreadable ? (e: DataError) => log(`warning: skipped ${e.message} (dataset.skip_unreadable)`) : undefined;
  const loaderBase = { classes, ignoreLabel: d.ignoreLabel, prefetch: c.runtime.prefetch, cacheBytes: d.cacheMb * 1024 * 1024, onSkip };
  const partners = ael?.copyPaste ? { prob: ael.copyPaste.prob, augment: { ...d.train.augment, randResize: ael.copyPaste.randResize } } : undefined;
  const labeledLoader = new BatchLoader({ ...loaderBase, samples: data.labeled, augment: d.train.augment, train: true, withLabels: true, labelOptions: data.info.labelOptions, seed: c.seed, partners });
  // With pseudo_label_metrics the unlabeled labels are decoded too, for the metrics only.
  const unlabeledTruth = semi && t.pseudoLabelMetrics;
  const unlabeledLoader = semi ? new BatchLoader({ ...loaderBase, samples: data.unlabeled, augment: d.train.augment, train: true, withLabels: unlabeledTruth, labelOptions: data.info.labelOptions, seed: c.seed + 1, strong: t.unsupervised?.strongAugment }) : undefined;
  // AEL: the bank partners of the unlabeled images, each in a view of its own (A5.2 step 4).
  const bankLoader = ael ? new BatchLoader({ ...loaderBase, samples: data.unlabeled, augment: d.train.augment, train: true, withLabels: unlabeledTruth, labelOptions: data.info.labelOptions, seed: c.seed + 2, prefetch: 1 }) : undefined;
  const heldOutLoader = (split: SplitConfig | undefined, samples: Sample[]) =>
    split && samples.length ? new BatchLoader({ ...loaderBase, samples, augment: split.augment, train: false, withLabels: true, labelOptions: data.info.labelOptions, seed: c.seed, prefetch: 2 }) : undefined;
  const valLoader = heldOutLoader(d.val, data.val);
  const testLoader = heldOutLoader(d.test, data.test);

  const device = rankDevice(c.runtime.device, dist);
  // The labeled labels' class frequencies, counted by the data check (every rank has them all).
  const frequencyWeights = c.criterion.classWeight === 'median_frequency' ? medianFrequencyWeights(labeledFrequencies) : undefined;
  const precision = runtimePrecision(c, device);
  log(precision.summary);
  for (const w of precision.warnings) log(`warning: ${w}`);
  const base = trainerOptions(c, data.unlabeled.length, frequencyWeights, precision);
  if (base.supervised?.classWeight) log(`class weights of the cross-entropy: ${base.supervised.classWeight.map((x) => x.toFixed(3)).join(' ')}`);
  const trainer: AddonTrainer = new (native().AddonTrainer)({ ...base, device, model: { ...base.model, device }, processGroup: group });
  try {
    const pretrained = c.net.pretrained;
    if (pretrained) {
      const r = await trainer.loadPretrained(pretrained);
      log(`encoder initialised from ${pretrained}: ${r.loaded} tensors, ${r.missing.length} missing, ${r.unexpected.length} unexpected${r.missing.length ? ` (e.g. ${r.missing[0]})` : ''}`);
    }

    let startEpoch = 0;
    let startStep = 0;
    let bestMiou: number | null = null;
    let epochStats = emptyStats();
    // The class distributions of the labels and of the teacher: logged per epoch, and what
    // trainer.unsupervised.distribution_alignment gives each U2PL step (factors or target shares).
    const alignMode = t.unsupervised?.distributionAlignment ?? 'none';
    const alignOptions = { mode: alignMode, momentum: t.unsupervised?.alignmentMomentum ?? 0.99, maxRatio: t.unsupervised?.alignmentMaxRatio, share: t.unsupervised?.alignmentShare };
    const makeAlignment = (state?: AlignmentState) => new DistributionAlignment(classes, alignOptions, state);
    let alignment = makeAlignment();
    let emaModelSaved = false;  // whether the resumed checkpoint holds an EMA model (teacher_state) to go on with
    const resumeFrom = options.resume ?? (c.saver.autoResume && fs.existsSync(ckptPath) ? ckptPath : undefined);
    if (resumeFrom) {
      let extra: Record<string, unknown>;
      try {
        extra = await trainer.load(resumeFrom);
      } catch (e) {
        throw resumeError(resumeFrom, options.resume === undefined, e as Error);
      }
      if (typeof extra.training_settings === 'string') {
        const saved = JSON.parse(extra.training_settings) as Record<string, unknown>;
        emaModelSaved = saved['trainer.emaModel'] === true;
        const changed = changedSettings(saved, trainingSettings(c));
        if (changed.length && !options.allowConfigChange) {
          throw new InputError(`${resumeFrom} was saved under other training settings than this config's (${changed.join('; ')}): resuming would change the run mid-way. ` +
            'Restore those settings, start a new run (another saver.snapshot_dir), or resume anyway with --allow-config-change');
        }
        if (changed.length) log(`warning: resuming under changed training settings (--allow-config-change): ${changed.join('; ')}`);
      }
      startEpoch = Number(extra.epoch ?? 0);
      startStep = Number(extra.step_in_epoch ?? 0);
      // best_miou is 0 in the reference's files when nothing was validated; `validated` says which.
      const validated = extra.validated === undefined ? Number(extra.best_miou ?? 0) > 0 : Boolean(extra.validated);
      bestMiou = validated ? Number(extra.best_miou) : null;
      if (startStep > 0 && extra.epoch_stats) epochStats = { ...emptyStats(), ...JSON.parse(String(extra.epoch_stats)) as EpochStats };
      if (extra.class_distributions) alignment = makeAlignment(JSON.parse(String(extra.class_distributions)) as AlignmentState);
      if (Number(extra.steps_per_epoch ?? L) !== L) {
        // Another world size, batch size or list: epochs have another length. From the end of an
        // epoch that is fine; from the middle of one, that epoch starts over.
        if (startStep > 0) {
          log(`warning: ${resumeFrom} was saved mid-epoch with ${String(extra.steps_per_epoch)} steps per epoch; this run has ${L} (another world size, batch size or list), so epoch ${startEpoch + 1} starts over`);
          startStep = 0;
          epochStats = emptyStats();
        }
      }
      if (lead) truncateMetrics(metricsPath, startEpoch * L + startStep, startEpoch);
      log(`resumed from ${resumeFrom}: epoch ${startEpoch + 1}, step ${startStep + 1} of ${L}`);
    } else if (c.saver.pretrain) {
      const report = await trainer.student().load(c.saver.pretrain);
      const teacher = trainer.teacher();
      if (teacher) await teacher.load(c.saver.pretrain);
      log(`weights initialised from ${c.saver.pretrain} (${report.key ?? 'root'}): ${report.missing.length} missing, ${report.unexpected.length} unexpected`);
      if (lead) fs.rmSync(metricsPath, { force: true });
    } else if (lead) {
      fs.rmSync(metricsPath, { force: true });
    }

    if (emaModel && !emaModelSaved) {
      // The EMA model starts as the student, BN statistics too (the step's decay is 0 at step 0); so
      // does one switched on for a run resumed from a checkpoint that has none.
      (trainer.teacher() as NonNullable<ReturnType<AddonTrainer['teacher']>>).copyFrom(trainer.student());
      if (resumeFrom) log(`trainer.ema_model: ${resumeFrom} holds no EMA model; it starts as a copy of the resumed student`);
    }
    const baseLr = t.optimizer.lr;
    const lrAt = (k: number) => (t.lrScheduler.mode === 'poly' ? polyLr(baseLr, k, K, t.lrScheduler.power) : cosineLr(baseLr, t.lrScheduler.targetLr, k, K));
    const extraState = (epoch: number, stepInEpoch: number) => ({
      epoch, step_in_epoch: stepInEpoch, global_step: epoch * L + stepInEpoch, steps_per_epoch: L, best_miou: bestMiou ?? 0, validated: bestMiou !== null,
      config: JSON.stringify(c.raw), training_settings: JSON.stringify(trainingSettings(c)), u2pl_version: native().info().addonVersion, epoch_stats: JSON.stringify(epochStats),
      class_distributions: JSON.stringify(alignment),
      world_size: dist?.worldSize ?? 1,
    });
    const save = async (epoch: number, stepInEpoch: number) => trainer.save(ckptPath, extraState(epoch, stepInEpoch));

    let lastMiou: number | null = null;
    let plan: AelPlan | undefined;  // AEL: the next step's plan (drawn by the step before it)
    let globalStep = startEpoch * L + startStep;
    const runStart = Date.now();
    const stepsAtStart = globalStep;
    let interrupted = false;
    let skippedInARow = 0;  // loss scaling: steps skipped for inf/NaN gradients since the last good one

    for (let epoch = startEpoch; epoch < E && !interrupted; epoch++) {
      const epochStart = Date.now();
      const phase: TrainPhase = !semi ? 'supervised' : ael ? 'ael' : epoch < warmup ? 'warmup' : 'semi';
      // The teacher follows the student by the EMA this epoch and is what the epoch is scored with
      // (U2PL and AEL epochs, every epoch of a supervised-only run with an EMA model).
      const teacherEpoch = phase === 'semi' || phase === 'ael' || emaModel;
      const first = epoch === startEpoch ? startStep : 0;
      const semiPlan = semiSampler?.epoch(epoch);
      const labeledPlan = semiPlan ? semiPlan.labeled.slice(0, L) : (supSampler as SupervisedSampler).epoch(epoch).slice(0, L);
      const unlabeledPlan = semiPlan ? semiPlan.unlabeled.slice(0, L) : [];
      const labeledIt = labeledLoader.iterate(labeledPlan, epoch, first);
      const unlabeledIt = (phase === 'semi' || phase === 'ael') && unlabeledLoader ? unlabeledLoader.iterate(unlabeledPlan, epoch, first) : undefined;
      if (phase === 'semi' && epoch === warmup && t.teacherInit === 'copy' && first === 0) {
        // The fixed variant of §7: the teacher becomes a full copy of the student (weights and BN
        // statistics) once, then follows it by EMA; its statistics are never those of another network.
        (trainer.teacher() as NonNullable<ReturnType<AddonTrainer['teacher']>>).copyFrom(trainer.student());
      }
      for (let step = first; step < L; step++) {
        const waitStart = process.hrtime.bigint();
        let l: Batch;
        let u: Batch | undefined;
        try {
          l = (await labeledIt.next()).value as Batch;
          u = unlabeledIt ? (await unlabeledIt.next()).value as Batch : undefined;
        } catch (e) {
          throw await stopOnBadFile(e, dist ? undefined : () => save(epoch, step), `epoch ${epoch + 1}, step ${step + 1}`, ckptPath);
        }
        const lr = lrAt(globalStep);
        let aelInputs: Partial<AddonStepInputs> = {};
        if (phase === 'ael') {
          try {
            plan ??= await trainer.aelPlan(aelPlanSeed(c.seed, dist?.rank ?? 0, globalStep));
            aelInputs = await aelStepInputs(c, bankLoader as BatchLoader, l, u as Batch, unlabeledPlan[step], plan, epoch, step, globalStep, dist?.rank ?? 0);
          } catch (e) {
            throw await stopOnBadFile(e, dist ? undefined : () => save(epoch, step), `epoch ${epoch + 1}, step ${step + 1}`, ckptPath);
          }
        }
        const dataSeconds = Number(process.hrtime.bigint() - waitStart) / 1e9;
        const classScale = phase === 'semi' ? alignment.scale() : null;
        const classPrior = phase === 'semi' ? alignment.prior() : null;
        const result = await trainer.step({
          phase,
          labeledImages: { data: l.images, shape: [l.size, 3, l.height, l.width] },
          labels: { data: l.labels as Uint8Array, shape: [l.size, l.height, l.width] },
          unlabeledImages: u ? { data: u.images, shape: [u.size, 3, u.height, u.width] } : undefined,
          unlabeledTruth: u?.labels ? { data: u.labels, shape: [u.size, u.height, u.width] } : undefined,
          unlabeledStrongImages: phase === 'semi' && u?.strongImages ? { data: u.strongImages, shape: [u.size, 3, u.height, u.width] } : undefined,
          lrBackbone: lr,
          lrHead: lr * d.headLrMultiplier,
          copyTeacher: phase === 'ael' ? globalStep === 0 && t.teacherInit === 'copy' : phase === 'semi' && epoch === warmup && t.teacherInit === 'reference',
          emaDecay: teacherEpoch ? emaDecay(globalStep, L, warmup, c.net.emaDecay ?? 0.99) : 0,
          dropPercentile: dropPercentile(epoch, E, t.unsupervised?.dropPercent ?? 100),
          alpha: anchorPercentile(epoch, E, t.contrastive?.lowEntropyThreshold ?? 20),
          classScale: classScale ? { data: classScale, shape: [classes] } : undefined,
          classPrior: classPrior ? { data: classPrior, shape: [classes] } : undefined,
          stop: options.signal?.aborted ?? false,
          ...aelInputs,
        });
        alignment.update(result);
        plan = result.nextPlan;
        // With loss scaling (fp16) an overflow skips the step and lowers the scale, as GradScaler does;
        // many in a row, or a non-finite loss without it, mean the run diverged.
        skippedInARow = result.skipped ? skippedInARow + 1 : 0;
        if (skippedInARow >= MAX_SKIPPED_STEPS) throw new Error(`the gradients were inf or NaN for ${skippedInARow} steps in a row up to epoch ${epoch + 1}, step ${step + 1} (loss ${result.loss}, loss scale now ${result.lossScale}): fp16 cannot hold this run's values; lower trainer.optimizer.kwargs.lr or use runtime.autocast bfloat16 or null`);
        if (!result.skipped && !Number.isFinite(result.loss)) throw new Error(`the loss became ${result.loss} at epoch ${epoch + 1}, step ${step + 1}: lower trainer.optimizer.kwargs.lr`);
        if (phase === 'semi' || phase === 'ael') addStepStats(epochStats, result);
        globalStep++;
        const elapsed = (Date.now() - runStart) / 1000;
        const perStep = elapsed / Math.max(1, globalStep - stepsAtStart);
        if (globalStep % t.logEvery === 0 || step === L - 1) {
          appendRecord(metricsPath, {
            type: 'step', epoch, step, global_step: globalStep - 1, phase, loss: result.loss, supervised: result.supervised,
            unsupervised: result.unsupervised, contrastive: result.contrastive, mixed: result.mixed, lr, data_s: dataSeconds, step_s: result.seconds,
            ...(phase === 'semi' || phase === 'ael' ? { kept_share: result.unsupValid ? result.unsupKept / result.unsupValid : null, valid_classes: result.validClasses } : {}),
            // The schedules the report draws on the step axis (#35): the teacher's EMA decay and q of §9.
            ...(teacherEpoch ? { ema_decay: emaDecay(globalStep - 1, L, warmup, c.net.emaDecay ?? 0.99) } : {}),
            ...(phase === 'semi' ? { drop_percentile: dropPercentile(epoch, E, t.unsupervised?.dropPercent ?? 100) } : {}),
            ...(phase === 'ael' ? { pasted: result.pasted, component_boxes: result.componentBoxes } : {}),
            ...(result.pseudoLabelPixels ? { pseudo_label_accuracy: result.pseudoLabelCorrect / result.pseudoLabelPixels } : {}),
            ...(precision.lossScaling ? { loss_scale: result.lossScale, skipped: result.skipped } : {}),
          });
        }
        if (lead) {
          options.onProgress?.({
            epoch, epochs: E, step, stepsPerEpoch: L, globalStep, totalSteps: K, phase, result, lr, dataSeconds,
            stepSeconds: result.seconds, etaSeconds: perStep * (K - globalStep),
          });
        }
        // Data parallel: all ranks stop after the same step (any rank's Ctrl-C reaches all through the step).
        const stopNow = dist ? result.stop : options.signal?.aborted;
        if (stopNow || (options.maxSteps !== undefined && globalStep >= options.maxSteps)) {
          interrupted = true;
          break;
        }
        // saver.save_every_steps: a mid-epoch checkpoint (the epoch's end saves anyway). Every rank
        // reaches the same global step, so the collectives of saving line up.
        const every = c.saver.saveEverySteps;
        if (every !== undefined && globalStep % every === 0 && step < L - 1) await save(epoch, step + 1);
      }
      if (globalStep < (epoch + 1) * L) {
        await save(epoch, globalStep - epoch * L);  // stopped mid-epoch: resume at the next step
        break;
      }
      {
        // End of the epoch: validate (the student until the teacher exists, §11.3), checkpoint, report.
        let evalResult: EvalResult | undefined;
        let testResult: EvalResult | undefined;
        const validateNow = (epoch + 1) % t.evalEvery === 0 || epoch === E - 1;
        const model = teacherEpoch ? (trainer.teacher() ?? trainer.student()) : trainer.student();
        if (t.evalOn && (valLoader || testLoader) && validateNow) {
          // Data parallel: each rank scores its share of the list; the confusion matrices add up.
          const sum = group ? async (m: BigInt64Array) => (await group.allReduceSum({ data: m, shape: [m.length] })).data : undefined;
          const score = async (loader: BatchLoader | undefined, split: SplitConfig | undefined, what: string) => {
            if (!loader || !split) return undefined;
            try {
              return await evaluateLoader(model, loader, split.batchSize, d.ignoreLabel, dist ? { ...shard, sum } as EvalShard : undefined);
            } catch (e) {
              throw await stopOnBadFile(e, dist ? undefined : () => save(epoch + 1, 0), `the ${what} after epoch ${epoch + 1} (the next run starts at epoch ${epoch + 2})`, ckptPath);
            }
          };
          evalResult = await score(valLoader, d.val, 'validation');
          testResult = await score(testLoader, d.test, 'test');
          if (evalResult) lastMiou = evalResult.miou;
        }
        const improved = evalResult !== undefined && (bestMiou === null || evalResult.miou > bestMiou);
        if (improved) bestMiou = (evalResult as EvalResult).miou;
        const stats = phase === 'semi' || phase === 'ael' ? { ...summariseStats(epochStats, trainer), ...classShares(alignment) } : {};
        epochStats = emptyStats();
        await save(epoch + 1, 0);
        if (lead && (improved || (!evalResult && epoch === E - 1))) copyAtomic(ckptPath, bestPath);
        const summary: EpochSummary = {
          epoch, miou: evalResult?.miou ?? NaN, iou: evalResult?.iou ?? [], bestMiou, seconds: (Date.now() - epochStart) / 1000,
          ...(testResult ? { testMiou: testResult.miou } : {}),
        };
        appendRecord(metricsPath, {
          type: 'epoch', epoch, phase, miou: evalResult?.miou ?? null, iou: evalResult?.iou ?? null, pixel_accuracy: evalResult?.pixelAccuracy ?? null,
          best_miou: bestMiou,
          ...(testResult ? { test_miou: testResult.miou, test_iou: testResult.iou, test_pixel_accuracy: testResult.pixelAccuracy } : {}),
          seconds: summary.seconds, ...stats,
        });
        if (lead && (evalResult || testResult || epoch === E - 1)) options.onEpoch?.(summary);
        if (lead && validateNow) await writeRunReport(c, data, trainer, model, valLoader ?? testLoader, metricsPath, reportPath, phase, epoch, L);
      }
    }
    return { bestMiou, lastMiou, globalStep, interrupted, checkpoint: ckptPath, snapshotDir: c.saver.snapshotDir };
  } finally {
    trainer.dispose();  // the run is over: its networks, optimizer and banks are not needed any more
  }
}

/** The seed of the AEL plan of global step k on a rank: a pure function, so a resumed run draws the same plans. */
export function aelPlanSeed(seed: number, rank: number, step: number): number {
  return deriveSeed(seed, 'ael-plan', rank, step);
}

/**
 * The AEL step's own inputs (u2pl-ael-method.md A10 steps 2-4): the labeled batch's copy-paste
 * partners, the kept unlabeled images with their bank partners (loaded now: the plan names them),
 * the plan, and the epoch's schedules.
 */
async function aelStepInputs(
  c: U2plConfig, bankLoader: BatchLoader, l: Batch, u: Batch, loaded: number[], plan: AelPlan,
  epoch: number, step: number, globalStep: number, rank: number,
): Promise<Partial<AddonStepInputs>> {
  const ael = c.ael as NonNullable<U2plConfig['ael']>;
  const bank = await bankLoader.loadBatch(plan.bankImages, epoch, step);
  const plane = u.height * u.width;
  const rows = (images: Float32Array, slots: number[]) => slots.map((s) => images.subarray(s * 3 * plane, (s + 1) * 3 * plane));
  const images = new Float32Array(2 * plan.keep.length * 3 * plane);
  [...rows(u.images, plan.keep), ...rows(bank.images, plan.bankImages.map((_, i) => i))].forEach((r, i) => images.set(r, i * 3 * plane));
  let truth: Uint8Array | undefined;
  if (u.labels && bank.labels) {
    truth = new Uint8Array(2 * plan.keep.length * plane);
    plan.keep.forEach((s, i) => (truth as Uint8Array).set((u.labels as Uint8Array).subarray(s * plane, (s + 1) * plane), i * plane));
    truth.set(bank.labels, plan.keep.length * plane);
  }
  const n = 2 * plan.keep.length;
  return {
    unlabeledImages: { data: images, shape: [n, 3, u.height, u.width] },
    unlabeledTruth: truth ? { data: truth, shape: [n, u.height, u.width] } : undefined,
    unlabeledIndex: [...plan.keep.map((s) => loaded[s]), ...plan.bankImages],
    ...(l.partnerImages && l.partnerLabels ? {
      partnerImages: { data: l.partnerImages, shape: [l.size, 3, l.height, l.width] },
      partnerLabels: { data: l.partnerLabels, shape: [l.size, l.height, l.width] },
      hasPartner: l.hasPartner,
    } : {}),
    plan,
    consistencyPercent: anchorPercentile(epoch, c.trainer.epochs, c.trainer.contrastive?.lowEntropyThreshold ?? 20),
    contrastiveOn: epoch >= ael.contrastiveStartEpoch,
    nextPlanSeed: aelPlanSeed(c.seed, rank, globalStep + 1),
  };
}

/**
 * A data file that cannot be read mid-run: save a checkpoint first (nothing trained is lost), then
 * an error naming the file, where the run stopped and how to go on. Other errors pass unchanged.
 * Data parallel (no `save`): a checkpoint needs every rank, so the last epoch's stays.
 */
async function stopOnBadFile(e: unknown, save: (() => Promise<void>) | undefined, where: string, checkpoint: string): Promise<unknown> {
  if (!(e instanceof DataError)) return e;
  if (save) await save();
  const saved = save ? `saved ${checkpoint}` : `kept ${checkpoint} from the last finished epoch`;
  return new DataError(e.file, `${e.message.slice(e.file.length + 2)}. Training stopped at ${where} and ${saved}: ` +
    'fix or remove the file (from its list) and run again to resume, or set dataset.skip_unreadable: true to skip such files with a warning');
}

/** Sums over an epoch's U2PL steps, for the epoch line of metrics.jsonl (kept in checkpoints for resume). */
interface EpochStats {
  steps: number;
  mixed: number;
  kept: number;
  valid: number;
  validClasses: number;
  plPixels: number;
  plCorrect: number;
  plKeptPixels: number;
  plKeptCorrect: number;
  /** Pseudo-labels per class (after any alignment, before mixing). */
  pseudoClasses: number[];
  /** With pseudo_label_metrics, per class over the labelled pixels of the mixed batches: the truth's, the pseudo-labels', the right ones. */
  plClassTruth: number[];
  plClassPredicted: number[];
  plClassRight: number[];
}

function emptyStats(): EpochStats {
  return { steps: 0, mixed: 0, kept: 0, valid: 0, validClasses: 0, plPixels: 0, plCorrect: 0, plKeptPixels: 0, plKeptCorrect: 0, pseudoClasses: [],
    plClassTruth: [], plClassPredicted: [], plClassRight: [] };
}

function addStepStats(s: EpochStats, r: AddonStepResult): void {
  s.steps++;
  s.mixed += r.mixed ? 1 : 0;
  s.kept += r.unsupKept;
  s.valid += r.unsupValid;
  s.validClasses += r.validClasses;
  s.plPixels += r.pseudoLabelPixels;
  s.plCorrect += r.pseudoLabelCorrect;
  s.plKeptPixels += r.pseudoLabelKeptPixels;
  s.plKeptCorrect += r.pseudoLabelKeptCorrect;
  const add = (into: number[], from: number[]) => from.forEach((n, c) => { into[c] = (into[c] ?? 0) + n; });
  add(s.pseudoClasses, r.pseudoClassPixels);
  add(s.plClassTruth, r.pseudoLabelClassTruth);
  add(s.plClassPredicted, r.pseudoLabelClassPredicted);
  add(s.plClassRight, r.pseudoLabelClassRight);
}

/**
 * What tells a user whether U2PL is helping: the share of pseudo-labelled pixels L_u keeps, the
 * pseudo-label accuracy (with pseudo_label_metrics: over all labelled pixels, and over the kept
 * ones; and each class's IoU between pseudo-labels and truth, null for a class neither has), the
 * mean number of valid contrastive classes and how full each class's memory bank is.
 */
function summariseStats(s: EpochStats, trainer: AddonTrainer): Record<string, unknown> {
  const ratio = (a: number, b: number) => (b > 0 ? a / b : null);
  const sizes = trainer.bankSizes();
  const capacity = trainer.bankCapacities();
  const pseudoTotal = s.pseudoClasses.reduce((a, b) => a + b, 0);
  return {
    kept_share: ratio(s.kept, s.valid),
    mixed_share: ratio(s.mixed, s.steps),
    valid_classes: ratio(s.validClasses, s.steps),
    ...(s.plPixels > 0 ? {
      pseudo_label_accuracy: ratio(s.plCorrect, s.plPixels),
      pseudo_label_accuracy_kept: ratio(s.plKeptCorrect, s.plKeptPixels),
      pseudo_label_accuracy_dropped: ratio(s.plCorrect - s.plKeptCorrect, s.plPixels - s.plKeptPixels),
      ...(s.plClassTruth.length ? {
        pseudo_label_iou: s.plClassTruth.map((t, c) => {
          const right = s.plClassRight[c] ?? 0, union = t + (s.plClassPredicted[c] ?? 0) - right;
          return union > 0 ? Number((right / union).toFixed(4)) : null;
        }),
      } : {}),
    } : {}),
    ...(sizes.length ? { bank_fill: sizes.map((n, c) => Number((n / capacity[c]).toFixed(4))) } : {}),
    ...(pseudoTotal > 0 ? { pseudo_label_class_share: s.pseudoClasses.map((n) => Number((n / pseudoTotal).toFixed(4))) } : {}),
  };
}

/**
 * The class shares of the labelled pixels and of the teacher's predictions on the unlabeled images
 * (running mean): a class the teacher gives much less than the labels is one U2PL is losing. With
 * soft or hard distribution alignment, the factors its pseudo-labels take.
 */
function classShares(a: DistributionAlignment): Record<string, unknown> {
  const round = (v: number[] | Float32Array | null) => (v ? Array.from(v, (x) => Number(x.toFixed(4))) : null);
  const teacher = a.teacherDistribution();
  if (!teacher) return {};
  const scale = a.scale();
  return {
    labeled_class_share: round(a.labeledDistribution()),
    teacher_class_share: round(teacher),
    ...(scale ? { alignment_scale: round(scale) } : {}),
  };
}

/**
 * report.html and run.json after a validated epoch (#35): the curves and U2PL signals from
 * metrics.jsonl, sample predictions of the validated `model` spread over the validation list and,
 * once the teacher labels the unlabeled images, the method on a few of them (prediction, entropy,
 * unreliable pixels).
 */
async function writeRunReport(
  c: U2plConfig, data: RunData, trainer: AddonTrainer, model: AddonModel, sampleLoader: BatchLoader | undefined, metricsPath: string,
  reportPath: string, phase: TrainPhase, epoch: number, stepsPerEpoch: number,
): Promise<void> {
  const metrics = readMetrics(metricsPath);
  const u2pl = phase === 'semi' || phase === 'ael';
  // Samples from the validation list (the test list where a config has no val: showing them chooses nothing).
  const aug = c.dataset.val?.augment ?? c.dataset.test?.augment ?? c.dataset.train.augment;
  const render = { palette: data.info.palette, mean: aug.mean, std: aug.std, classes: c.net.model.numClasses, ignoreLabel: c.dataset.ignoreLabel };
  const shown = sampleLoader ? await sampleImages(model, sampleLoader, render) : { samples: [], worst: [], scored: 0 };
  const teacher = u2pl ? trainer.teacher() : null;
  // q of the epoch (§9); the AEL variant's negatives are above a fixed percentile instead.
  const q = phase === 'ael' ? (c.ael?.negativePercentile ?? 80) : dropPercentile(epoch, c.trainer.epochs, c.trainer.unsupervised?.dropPercent ?? 100);
  const method = teacher && data.unlabeled.length
    ? { epoch, phase, percentile: q, maxEntropy: Math.log(c.net.model.numClasses), images: await methodImages(teacher, data.unlabeled, aug, data.info.labelOptions, q, render) }
    : undefined;
  const validated = metrics.epochs.filter((e) => e.miou !== null);
  // The config as the user named it: relative to the working folder when it is below it.
  const where = path.relative(process.cwd(), c.file ?? c.dir);
  const config = where.startsWith('..') || path.isAbsolute(where) ? c.file ?? c.dir : where;
  const title = `u2pl: ${config}`;
  const warmup = c.dataset.semi && !c.ael ? Math.min(c.trainer.supOnlyEpoch, c.trainer.epochs) : 0;
  writeRunInfo(path.dirname(reportPath), {
    title, config: c.file ?? c.dir, dataset: c.dataset.type, classNames: data.info.classNames, epochs: c.trainer.epochs, stepsPerEpoch,
    warmupEpochs: warmup, semi: c.dataset.semi, seed: c.seed, labeled: data.labeled.length, unlabeled: data.unlabeled.length, validation: data.val.length,
  });
  writeReport(reportPath, {
    title,
    steps: metrics.steps,
    epochs: metrics.epochs,
    epochsTotal: c.trainer.epochs,
    classNames: data.info.classNames,
    palette: data.info.palette,
    method,
    ...shown,
    summary: {
      config, dataset: c.dataset.type, labeled: data.labeled.length, unlabeled: data.unlabeled.length, validation: data.val.length, seed: c.seed,
      progress: `epoch ${epoch + 1} of ${c.trainer.epochs}, ${stepsPerEpoch} steps each`,
      'best mIoU %': validated.length ? (100 * Math.max(...validated.map((e) => e.miou as number))).toFixed(2) : '-',
      updated: new Date().toISOString(),
    },
  });
}
