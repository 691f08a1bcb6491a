/**
 * Evaluation (§13): in-training validation over centre crops, and u2pl-eval's whole-image or
 * sliding-window evaluation of a list, with per-class IoU, mIoU and pixel accuracy.
 */
import { BatchLoader } from '../data/loader';
import { batches } from '../data/sampler';
import { confusionMatrix, scoresFromConfusion } from '../losses';
import { augment, AugmentConfig, drawAugment } from '../data/augment';
import { Random } from '../data/random';
import { AddonModel, InferenceOptions } from '../native';

export interface EvalResult {
  miou: number;
  iou: number[];
  pixelAccuracy: number;
  confusion: number[][];
  images: number;
}

function finish(total: BigInt64Array, classes: number, images: number): EvalResult {
  const scores = scoresFromConfusion({ data: total, shape: [classes, classes] });
  const confusion = Array.from({ length: classes }, (_, i) => Array.from(total.subarray(i * classes, (i + 1) * classes), Number));
  return { ...scores, confusion, images };
}

/** Images per validation batch: whole images of their own sizes (no crop, no fixed resize) go one at a time. */
export function validationBatchSize(augment: AugmentConfig, batchSize: number): number {
  return augment.crop || augment.resize ? batchSize : 1;
}

/**
 * In-training validation (§13.2): centre crops (or whole images when the val split has no crop)
 * through the model in batches, one confusion matrix.
 */
/** Data parallel: this rank's share of the list (every worldSize-th image from rank) and how the ranks' matrices add up. */
export interface EvalShard {
  rank: number;
  worldSize: number;
  sum: (confusion: BigInt64Array) => Promise<BigInt64Array>;
}

export async function evaluateLoader(model: AddonModel, loader: BatchLoader, batchSize: number, ignoreIndex: number, shard?: EvalShard): Promise<EvalResult> {
  const classes = model.numClasses();
  let total: BigInt64Array = new BigInt64Array(classes * classes);
  const mine = [...Array(loader.length).keys()].filter((i) => !shard || i % shard.worldSize === shard.rank);
  const plan = batches(mine, validationBatchSize(loader.options.augment, batchSize), false);
  for await (const b of loader.iterate(plan, 0)) {
    const m = await model.evaluateBatch({ data: b.images, shape: [b.size, 3, b.height, b.width] }, { data: b.labels as Uint8Array, shape: [b.size, b.height, b.width] }, ignoreIndex);
    for (let i = 0; i < total.length; i++) total[i] += m.data[i];
  }
  if (shard) total = await shard.sum(total);
  return finish(total, classes, loader.length);
}

export interface PredictedImage {
  index: number;
  prediction: Uint8Array;
  confidence: Float32Array;
  height: number;
  width: number;
  /** Normalised input (3 x H x W) for rendering. */
  image: Float32Array;
}

/**
 * Full-image evaluation (§13.3/§13.4): each image whole (no crop; the split's fixed resize, if any,
 * applies to image and label) through predict() with the given mode, scales and flip; `onImage`
 * sees every prediction (to save PNGs).
 */
export async function evaluateFullImages(
  model: AddonModel, loader: BatchLoader, inference: InferenceOptions, ignoreIndex: number,
  onImage?: (p: PredictedImage, label: Uint8Array) => Promise<void>,
): Promise<EvalResult> {
  const classes = model.numClasses();
  const total = new BigInt64Array(classes * classes);
  const whole: AugmentConfig = { ...loader.options.augment, crop: undefined, randResize: undefined, flip: false, blur: false };
  for (let i = 0; i < loader.length; i++) {
    const d = await loader.decode(i);
    const draw = drawAugment(new Random(0), d.height, d.width, whole, false);
    const { image, label: augmented } = await augment(d.image, d.label, d.height, d.width, draw, whole);
    const label = augmented as Uint8Array;
    const [height, width] = [draw.cropHeight, draw.cropWidth];
    const out = await model.predict({ data: image, shape: [1, 3, height, width] }, inference);
    const m = await confusionMatrix(out.prediction, { data: label, shape: [height, width] }, classes, ignoreIndex);
    for (let k = 0; k < total.length; k++) total[k] += m.data[k];
    if (onImage) await onImage({ index: i, prediction: out.prediction.data, confidence: out.confidence.data, height, width, image }, label);
  }
  return finish(total, classes, loader.length);
}
