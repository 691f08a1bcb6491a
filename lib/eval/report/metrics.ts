/**
 * Reading a run folder for the reports: metrics.jsonl (one record per logged step and per epoch,
 * written by lib/train/train.ts) and run.json (what the records do not say: class names, the
 * schedule, the data). Older runs lack run.json and some step fields (ema_decay, drop_percentile);
 * the readers fill what they can and the reports leave the rest out.
 */
import fs from 'fs';
import path from 'path';
import { FileError } from '../../errors';

export interface StepRecord {
  type: 'step';
  epoch: number;
  step?: number;
  global_step: number;
  phase?: string;
  loss: number;
  supervised?: number;
  unsupervised?: number;
  contrastive?: number;
  lr?: number;
  /** The teacher's EMA decay of the step (U2PL and AEL steps; absent in runs before the report of #35). */
  ema_decay?: number;
  /** q of the step: pixels above this percentile of the entropy are left out of L_u (U2PL steps). */
  drop_percentile?: number;
  kept_share?: number | null;
  valid_classes?: number;
  pseudo_label_accuracy?: number;
}

export interface EpochRecord {
  type: 'epoch';
  epoch: number;
  phase?: string;
  miou: number | null;
  iou: number[] | null;
  pixel_accuracy?: number | null;
  best_miou?: number | null;
  /** dataset.test: held-out images, never chosen on. */
  test_miou?: number;
  test_iou?: number[];
  seconds?: number;
  kept_share?: number | null;
  mixed_share?: number | null;
  valid_classes?: number | null;
  pseudo_label_accuracy?: number | null;
  pseudo_label_accuracy_kept?: number | null;
  pseudo_label_accuracy_dropped?: number | null;
  /** Per class: IoU of the pseudo-labels against the unlabeled images' own labels (null: neither has the class). */
  pseudo_label_iou?: (number | null)[];
  bank_fill?: number[];
  pseudo_label_class_share?: number[];
  labeled_class_share?: number[] | null;
  teacher_class_share?: number[] | null;
  alignment_scale?: number[] | null;
}

export interface RunMetrics {
  steps: StepRecord[];
  epochs: EpochRecord[];
}

/** run.json: written beside metrics.jsonl with each report (see writeRunReport in lib/train/train.ts). */
export interface RunInfo {
  title?: string;
  config?: string;
  dataset?: string;
  classNames?: string[];
  /** Training epochs and steps per epoch of the config (the run may have done fewer so far). */
  epochs?: number;
  stepsPerEpoch?: number;
  warmupEpochs?: number;
  semi?: boolean;
  seed?: number;
  labeled?: number;
  unlabeled?: number;
  validation?: number;
}

const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/**
 * Parses metrics.jsonl. A line that is not a JSON object, or a step or epoch record without its
 * numbers, is an error naming the file and line. A last line without its newline is a record
 * being written (the run is still going): it is left out. Records of unknown types are skipped.
 */
export function parseMetrics(text: string, file: string): RunMetrics {
  const steps: StepRecord[] = [];
  const epochs: EpochRecord[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (!line) continue;
    const where = `${file}:${i + 1}`;
    let r: unknown;
    try {
      r = JSON.parse(line);
    } catch (e) {
      // The piece after the last newline may be a record the run is writing now.
      if (i === lines.length - 1) break;
      throw new FileError(where, `damaged line, not a JSON record (${(e as Error).message}): ${JSON.stringify(line.slice(0, 60))}${line.length > 60 ? '…' : ''}`);
    }
    if (!r || typeof r !== 'object' || Array.isArray(r)) throw new FileError(where, 'damaged line, expected a JSON object like {"type": "step", ...}');
    const rec = r as Record<string, unknown>;
    if (rec.type === 'step') {
      for (const k of ['epoch', 'global_step'] as const) if (!isNum(rec[k])) throw new FileError(where, `a step record without a numeric '${k}'`);
      if (!isNum(rec.loss) && rec.loss !== null) throw new FileError(where, "a step record without a numeric 'loss'");
      steps.push(rec as unknown as StepRecord);
    } else if (rec.type === 'epoch') {
      if (!isNum(rec.epoch)) throw new FileError(where, "an epoch record without a numeric 'epoch'");
      if (rec.miou !== null && rec.miou !== undefined && !isNum(rec.miou)) throw new FileError(where, "an epoch record whose 'miou' is not a number");
      if (rec.iou !== null && rec.iou !== undefined && !(Array.isArray(rec.iou) && rec.iou.every((v) => isNum(v) || v === null))) {
        throw new FileError(where, "an epoch record whose 'iou' is not a list of numbers");
      }
      epochs.push({ ...(rec as unknown as EpochRecord), miou: (rec.miou as number | undefined) ?? null, iou: (rec.iou as number[] | undefined) ?? null });
    }
  }
  return { steps, epochs };
}

export function readMetrics(file: string): RunMetrics {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new FileError(file, `cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return parseMetrics(text, file);
}

export const RUN_INFO = 'run.json';

/** run.json of a run folder, or {} when there is none (runs before it existed); a damaged one is an error. */
export function readRunInfo(dir: string): RunInfo {
  const file = path.join(dir, RUN_INFO);
  if (!fs.existsSync(file)) return {};
  try {
    const v = JSON.parse(fs.readFileSync(file, 'utf8')) as unknown;
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('not a JSON object');
    return v as RunInfo;
  } catch (e) {
    throw new FileError(file, `damaged (${(e as Error).message}); delete it to compare the run without class names`);
  }
}

/** The global step at which each epoch ended (from the last step record of the epoch; every epoch logs its last step). */
export function epochEndSteps(m: RunMetrics, stepsPerEpoch?: number): Map<number, number> {
  const ends = new Map<number, number>();
  for (const s of m.steps) ends.set(s.epoch, Math.max(ends.get(s.epoch) ?? 0, s.global_step + 1));
  const perEpoch = stepsPerEpoch ?? inferStepsPerEpoch(m);
  for (const e of m.epochs) if (!ends.has(e.epoch) && perEpoch) ends.set(e.epoch, (e.epoch + 1) * perEpoch);
  return ends;
}

/** Steps per epoch from the step records (step index within the epoch + 1, at its largest). */
export function inferStepsPerEpoch(m: RunMetrics): number | undefined {
  let most = 0;
  for (const s of m.steps) if (isNum(s.step)) most = Math.max(most, s.step + 1);
  return most || undefined;
}

/**
 * TensorBoard's smoothing: an exponential moving average with weight w, debiased at the start
 * (divided by 1 - w^n, so the first points are not pulled toward 0). NaN points are skipped.
 */
export function emaSmooth(points: [number, number][], weight: number): [number, number][] {
  const out: [number, number][] = [];
  let last = 0, n = 0;
  for (const [x, y] of points) {
    if (!Number.isFinite(y)) continue;
    last = last * weight + (1 - weight) * y;
    n++;
    out.push([x, weight > 0 ? last / (1 - weight ** n) : y]);
  }
  return out;
}

/**
 * A smoothing weight for n logged points: the EMA's time constant about 2 % of the series (at
 * least TensorBoard's default 0.6, at most 0.999), so that a 1,000-step run and a 200,000-step
 * one show a trend alike.
 */
export function smoothingWeight(n: number): number {
  const span = Math.max(1, n / 50);
  return Math.min(0.999, Math.max(0.6, 1 - 1 / span));
}

/** Mean and (sample) standard deviation; std 0 for one value. */
export function meanStd(values: number[]): { mean: number; std: number; n: number } {
  const v = values.filter(Number.isFinite);
  const n = v.length;
  if (n === 0) return { mean: NaN, std: NaN, n };
  const mean = v.reduce((a, b) => a + b, 0) / n;
  const std = n > 1 ? Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : 0;
  return { mean, std, n };
}
