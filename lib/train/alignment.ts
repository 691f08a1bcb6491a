/**
 * Distribution alignment of the pseudo-labels. A teacher that learned the majority classes first
 * under-predicts the others on the unlabeled images, and U2PL's student then unlearns them
 * (experiments/camvid-small: Sidewalk and Tree go to 0). Each U2PL step takes its pseudo-labels
 * from the teacher's class probabilities times a per-class factor, renormalised:
 *   soft: p_labeled(c) / p_teacher(c) (ReMixMatch's alignment), p_teacher a running mean of the
 *     teacher's class probabilities on the unlabeled batches, measured before alignment. It moves
 *     the argmax only where a class is nearly the top one.
 *   hard: factors that make the pseudo-labels' class shares match the labels' (DARS's aim): after
 *     each step, log factor(c) += (1 - momentum) * (log p_labeled(c) - log share(c)), bounded to
 *     [1/100, 100]. share(c) is the class's share of the (aligned) pseudo-labels, either of that
 *     step alone ('step') or running over the steps with the same momentum ('running'). With a
 *     step's share, a class that fills a few batches and is absent from the rest (CamVid's Sign,
 *     Fence, Pedestrian in 2-image batches) settles above its labelled share, by about 1.5x: the
 *     mean of log share is below the log of the mean share. A running share has no such bias.
 *     With maxRatio, no factor exceeds maxRatio times the smallest: a class the teacher cannot yet tell
 *     apart (CamVid's Pole, Sign, Fence: factors ×8-67 the smallest) then gets fewer, less wrong
 *     pseudo-labels instead of the labels' share of them.
 *   select: no pseudo-label changes class; a class holding a larger share of the mixed batch's
 *     pseudo-labels than of the labels keeps only its most confident pixels, that share, and the
 *     rest are ignored (class-balanced selection: the majority classes stop drowning the others).
 * p_labeled is the class distribution of the labelled pixels of every labeled batch so far (warm-up
 * included). The state is small and goes into checkpoints.
 */
import { AddonStepResult } from '../native';

export type AlignmentMode = 'none' | 'soft' | 'hard' | 'select';
/** hard: what the pseudo-labels' class shares are measured on, each step's alone or a running share over the steps. */
export type AlignmentShare = 'step' | 'running';

export interface AlignmentOptions {
  mode: AlignmentMode;
  /** soft: the momentum of the teacher's running class distribution; hard: 1 - the factors' step size, and the running share's momentum. */
  momentum: number;
  /** hard: the largest factor is at most this many times the smallest (default: no bound). */
  maxRatio?: number;
  /** hard: default 'step'. */
  share?: AlignmentShare;
}

export interface AlignmentState {
  /** Labelled pixels per class, summed over the labeled batches seen. */
  labeled: number[];
  /** The raw EMA of the teacher's class distribution (bias-corrected when read). */
  teacher: number[];
  /** hard with share 'running': the EMA of the pseudo-labels' pixels per class (absent in older checkpoints: zeros). */
  pseudo?: number[];
  /** Unlabeled batches the EMA has seen. */
  updates: number;
  /** hard: the log factors. */
  logScale: number[];
}

type StepStats = Pick<AddonStepResult, 'labeledClassPixels' | 'teacherClassMass' | 'pseudoClassPixels'>;

const SHARE_FLOOR = 1e-3;         // hard: a class absent from a batch counts as this share
const MAX_LOG_SCALE = Math.log(100);

export class DistributionAlignment {
  private state: AlignmentState;
  private readonly mode: AlignmentMode;
  private readonly momentum: number;
  private readonly maxRatio: number;
  private readonly share: AlignmentShare;

  constructor(private readonly classes: number, options: AlignmentOptions, state?: AlignmentState) {
    this.mode = options.mode;
    this.momentum = options.momentum;
    this.maxRatio = options.maxRatio ?? Infinity;
    this.share = options.share ?? 'step';
    const zeros = () => new Array(classes).fill(0);
    this.state = state ? { ...structuredClone(state), logScale: state.logScale ? [...state.logScale] : zeros() } : { labeled: zeros(), teacher: zeros(), updates: 0, logScale: zeros() };
    if (this.share === 'running') this.state.pseudo ??= zeros();
    for (const key of ['labeled', 'teacher', 'logScale', 'pseudo'] as const) {
      if (this.state[key] === undefined) continue;
      if (this.state[key].length !== classes) throw new Error(`distribution alignment state has ${this.state[key].length} classes, this model ${classes}`);
    }
  }

  /** Adds a step's class statistics (labeled pixels of warm-up and U2PL steps; the teacher's of U2PL steps). */
  update(result: StepStats): void {
    result.labeledClassPixels.forEach((n, c) => { this.state.labeled[c] += n; });
    const mass = result.teacherClassMass;
    const total = mass.reduce((a, b) => a + b, 0);
    if (mass.length !== this.classes || !(total > 0)) return;
    const m = this.momentum;
    mass.forEach((v, c) => { this.state.teacher[c] = m * this.state.teacher[c] + (1 - m) * (v / total); });
    this.state.updates++;
    const labeled = this.labeledDistribution();
    let pseudo = result.pseudoClassPixels;
    if (this.mode === 'hard' && this.share === 'running' && this.state.pseudo && pseudo.length === this.classes) {
      // No bias correction needed: only the running counts' ratios are read.
      const counts = pseudo;
      this.state.pseudo = this.state.pseudo.map((v, c) => m * v + (1 - m) * counts[c]);
      pseudo = this.state.pseudo;
    }
    const pseudoTotal = pseudo.reduce((a, b) => a + b, 0);
    if (this.mode === 'hard' && labeled && pseudoTotal > 0) {
      this.state.logScale = this.state.logScale.map((s, c) => {
        const step = Math.log(labeled[c] + SHARE_FLOOR) - Math.log(pseudo[c] / pseudoTotal + SHARE_FLOOR);
        return Math.min(MAX_LOG_SCALE, Math.max(-MAX_LOG_SCALE, s + (1 - m) * step));
      });
      const ceiling = Math.min(...this.state.logScale) + Math.log(this.maxRatio);
      this.state.logScale = this.state.logScale.map((s) => Math.min(s, ceiling));
    }
  }

  /** The labeled class distribution, or null before any labelled pixel. */
  labeledDistribution(): number[] | null {
    const total = this.state.labeled.reduce((a, b) => a + b, 0);
    return total > 0 ? this.state.labeled.map((n) => n / total) : null;
  }

  /** The running mean of the teacher's class distribution, or null before any U2PL step. */
  teacherDistribution(): number[] | null {
    if (this.state.updates === 0) return null;
    const correction = 1 - Math.pow(this.momentum, this.state.updates);
    return this.state.teacher.map((v) => v / correction);
  }

  /** select: the target class shares for the next step (the labels'), or null. */
  prior(): Float32Array | null {
    const labeled = this.labeledDistribution();
    return this.mode === 'select' && labeled ? Float32Array.from(labeled) : null;
  }

  /** The per-class factors for the next step, or null (mode none or select, or nothing to align to yet). */
  scale(): Float32Array | null {
    if (this.mode === 'select') return null;
    if (this.mode === 'hard') return this.state.updates > 0 ? Float32Array.from(this.state.logScale, Math.exp) : null;
    const labeled = this.labeledDistribution();
    const teacher = this.teacherDistribution();
    if (this.mode === 'none' || !labeled || !teacher) return null;
    // A class the teacher never gives mass to keeps a finite factor (softmax mass is never 0 in practice).
    return Float32Array.from(labeled, (p, c) => p / Math.max(teacher[c], 1e-6));
  }

  toJSON(): AlignmentState {
    return structuredClone(this.state);
  }
}
