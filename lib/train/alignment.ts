/**
 * Distribution alignment of the pseudo-labels (ReMixMatch's, as DARS uses it for segmentation): a
 * teacher that learned the majority classes first under-predicts the others on the unlabeled images,
 * and U2PL's student then unlearns them (experiments/camvid-small: Sidewalk and Tree go to 0). Each
 * U2PL step takes its pseudo-labels from p(c | x) * p_labeled(c) / p_teacher(c), renormalised, where
 * p_labeled is the class distribution of the labelled pixels of every labeled batch so far (warm-up
 * included) and p_teacher a running mean of the teacher's class probabilities on the unlabeled
 * batches, measured before alignment. The state is small and goes into checkpoints.
 */
import { AddonStepResult } from '../native';

export interface AlignmentState {
  /** Labelled pixels per class, summed over the labeled batches seen. */
  labeled: number[];
  /** The running (bias-corrected) mean's raw EMA of the teacher's class distribution. */
  teacher: number[];
  /** Unlabeled batches the EMA has seen. */
  updates: number;
}

export class DistributionAlignment {
  private state: AlignmentState;

  constructor(private readonly classes: number, private readonly momentum: number, state?: AlignmentState) {
    this.state = state ? structuredClone(state) : { labeled: new Array(classes).fill(0), teacher: new Array(classes).fill(0), updates: 0 };
    if (this.state.labeled.length !== classes || this.state.teacher.length !== classes) {
      throw new Error(`distribution alignment state has ${this.state.labeled.length} classes, this model ${classes}`);
    }
  }

  /** Adds a step's class statistics (labeled pixels of warm-up and U2PL steps; the teacher's mass of U2PL steps). */
  update(result: Pick<AddonStepResult, 'labeledClassPixels' | 'teacherClassMass'>): void {
    result.labeledClassPixels.forEach((n, c) => { this.state.labeled[c] += n; });
    const mass = result.teacherClassMass;
    const total = mass.reduce((a, b) => a + b, 0);
    if (mass.length !== this.classes || !(total > 0)) return;
    const m = this.momentum;
    mass.forEach((v, c) => { this.state.teacher[c] = m * this.state.teacher[c] + (1 - m) * (v / total); });
    this.state.updates++;
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

  /** The per-class factors p_labeled / p_teacher for the next step, or null (no alignment yet). */
  scale(): Float32Array | null {
    const labeled = this.labeledDistribution();
    const teacher = this.teacherDistribution();
    if (!labeled || !teacher) return null;
    // A class the teacher never gives mass to keeps a finite factor (softmax mass is never 0 in practice).
    return Float32Array.from(labeled, (p, c) => p / Math.max(teacher[c], 1e-6));
  }

  toJSON(): AlignmentState {
    return structuredClone(this.state);
  }
}
