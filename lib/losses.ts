/**
 * The U2PL losses, mixing and metrics over the native kernels (u2pl-method.md §6, §8-§10, §13.1).
 * Training calls them inside the native step; these functions expose each one on its own, with
 * gradients, for inspection, tests and custom loops. `impl: 'composite'` runs the straightforward
 * reference implementation instead of the kernels.
 */
import { AddonContrastiveOptions, LossDevice, LossImpl, native, NativeTensor, Tensor } from './native';

export type { AddonContrastiveOptions as ContrastiveOptions, LossDevice, LossImpl } from './native';

/** Linear-interpolation percentile (q in [0, 100]) of all values, as numpy's default. */
export async function percentile(values: Tensor, q: number, impl: LossImpl = 'kernel'): Promise<number> {
  return native().losses.percentile({ values, q, impl });
}

/** Entropy of softmax(logits) at height x width after align-corners bilinear upsampling (N x H x W). */
export async function upsampledEntropy(logits: Tensor, height: number, width: number, impl: LossImpl = 'kernel', device: LossDevice = 'cpu') {
  return native().losses.entropy({ logits, height, width, impl, device });
}

export interface SupervisedLossOptions {
  /** N x C x h x w logits (upsampled to the labels inside). */
  pred: Tensor;
  /** Auxiliary head logits, weighted by auxWeight (default 0.4). */
  aux?: Tensor;
  /** N x H x W class indices, ignoreIndex (255) where unlabeled. */
  labels: Tensor;
  /** OHEM cross-entropy: keep at least minKept hardest pixels plus every pixel with p(true) <= thresh. */
  ohem?: boolean;
  thresh?: number;
  minKept?: number;
  auxWeight?: number;
  ignoreIndex?: number;
  /** C per-class weights: the weighted mean sum w[y] CE / sum w[y] (torch's weighted cross-entropy); OHEM still selects unweighted. */
  classWeight?: number[];
  impl?: LossImpl;
}

/** L_s with its gradients with respect to pred (and aux). */
export async function supervisedLoss(options: SupervisedLossOptions) {
  return native().losses.supervisedLoss(options);
}

export interface UnsupervisedLossOptions {
  /** Student logits of the (mixed) unlabeled images, B x C x h x w. */
  student: Tensor;
  /** Teacher (train mode) logits of the same images, B x C x h x w: their entropy ranks the pixels. */
  teacher: Tensor;
  /** B x H x W pseudo-labels (ignoreIndex where none). */
  pseudo: Tensor;
  /** Entropy percentile above which pixels are dropped: 100 - unreliable share (see dropPercentile). */
  q: number;
  /** 'reference' (the reference's extra B*H*W/N_keep factor) or 'paper'. */
  weighting?: 'reference' | 'paper';
  ignoreIndex?: number;
  /**
   * Ignored pixels left out of the reference factor's B*H*W (default 0). Training passes those
   * `trainer.unsupervised.confidence_threshold` and `distribution_alignment: select` ignore, so that
   * the factor stays 1.25 → 1.
   */
  excludedPixels?: number;
  impl?: LossImpl;
  /** 'cuda' runs the CUDA kernels (inputs and results stay plain arrays). */
  device?: LossDevice;
}

/** L_u (§9) with its gradient with respect to the student logits, the entropy map and the threshold. */
export async function unsupervisedLoss(options: UnsupervisedLossOptions) {
  return native().losses.unsupervisedLoss(options);
}

export interface ContrastiveLossOptions extends AddonContrastiveOptions {
  /** Student representation of [labeled; unlabeled], N x D x h x w. */
  rep: Tensor;
  repTeacher: Tensor;
  /** softmax of the teacher's pred at h x w, N x C x h x w. */
  probTeacher: Tensor;
  /** B_l x H x W ground truth. */
  labels: Tensor;
  /** B_u x H x W (mixed) pseudo-labels. */
  pseudo: Tensor;
  /** B_u x H x W teacher entropy (from unsupervisedLoss). */
  entropy: Tensor;
  /** alpha_t in percent (see anchorPercentile). */
  alpha: number;
  /** Queue capacity per class (reference: 50000 for class 0, 30000 for the others). */
  capacities: number[];
  /** Initial queue contents per class, oldest first. */
  bank?: Tensor[];
  seed?: number;
  impl?: LossImpl;
  /** 'cuda' runs the CUDA kernels (inputs and results stay plain arrays). */
  device?: LossDevice;
}

/**
 * L_c (§10) on a memory bank that starts from `bank` and ends as the returned `bank` (this step's
 * negatives appended), with the gradient with respect to rep.
 */
export async function contrastiveLoss(options: ContrastiveLossOptions) {
  return native().losses.contrastiveLoss(options);
}

export type MixMode = 'cutmix' | 'cutout' | 'classmix';

/** CutMix / CutOut / ClassMix of an unlabeled batch with its pseudo-labels and confidences (§8). */
export async function mix(options: { images: Tensor; labels: Tensor; confidence: Tensor; mode: MixMode; seed?: number; ignoreIndex?: number }) {
  return native().losses.mix(options);
}

/** `count` CutMix box masks (1 outside the box) from the sampler of §8.3. */
export async function cutoutMasks(count: number, height: number, width: number, seed = 0): Promise<NativeTensor<Uint8Array>> {
  return native().losses.cutoutMasks({ count, height, width, seed });
}

/** C x C counts of (ground truth, prediction) pairs; ignore pixels skipped. */
export async function confusionMatrix(prediction: Tensor, groundTruth: Tensor, classes: number, ignoreIndex = 255) {
  return native().losses.confusionMatrix({ prediction, groundTruth, classes, ignoreIndex });
}

export interface SegmentationScores {
  /** IoU per class: I / (U + 1e-10). */
  iou: number[];
  /** Mean over all classes (absent classes score 0, as the reference). */
  miou: number;
  pixelAccuracy: number;
}

/** Per-class IoU, mIoU and pixel accuracy from an accumulated confusion matrix (§13.1). */
export function scoresFromConfusion(matrix: NativeTensor<BigInt64Array> | { data: BigInt64Array | Float64Array; shape: number[] }): SegmentationScores {
  const c = matrix.shape[0];
  const at = (i: number, j: number) => Number(matrix.data[i * c + j]);
  const iou: number[] = [];
  let correct = 0;
  let total = 0;
  for (let k = 0; k < c; k++) {
    let rowSum = 0;
    let colSum = 0;
    for (let j = 0; j < c; j++) {
      rowSum += at(k, j);
      colSum += at(j, k);
    }
    const inter = at(k, k);
    iou.push(inter / (rowSum + colSum - inter + 1e-10));
    correct += inter;
    total += rowSum;
  }
  return { iou, miou: iou.reduce((a, b) => a + b, 0) / c, pixelAccuracy: total > 0 ? correct / total : 0 };
}
