/**
 * What report.html shows of the networks themselves, computed after a validated epoch: sample
 * predictions spread over the validation list with each image's own mIoU, and the teacher on a
 * few unlabeled images (prediction, entropy, the pixels U2PL treats as unreliable). Everything is
 * computed here in TypeScript from what the addon returns: the eval-mode network's logits (forward),
 * upsampled, their argmax, softmax entropy and percentile.
 */
import sharp from 'sharp';
import { AugmentConfig } from '../../data/augment';
import { RGB } from '../../data/classes';
import { Sample } from '../../data/datasets';
import { LabelOptions } from '../../data/image-io';
import { BatchLoader } from '../../data/loader';
import { AddonModel } from '../../native';
import { colourise, denormalise, pngDataUri } from '../render';
import { viridis } from './charts';
import { MethodImage, MethodSection, ReportImage } from './run-report';

/** k indices spread evenly over 0..n-1 (the middles of k equal parts): the same images every epoch. */
export function spread(n: number, k: number): number[] {
  const m = Math.min(n, Math.max(0, k));
  return Array.from({ length: m }, (_, i) => Math.floor(((i + 0.5) * n) / m));
}

/** Photographs as JPEG (a tenth of a PNG's size); masks stay PNG (exact colours). */
export async function jpegDataUri(rgb: Uint8Array, width: number, height: number, quality = 85): Promise<string> {
  const jpg = await sharp(Buffer.from(rgb.buffer, rgb.byteOffset, rgb.byteLength), { raw: { width, height, channels: 3 } }).jpeg({ quality }).toBuffer();
  return `data:image/jpeg;base64,${jpg.toString('base64')}`;
}

/**
 * One image's mIoU (over the classes present in its label or its prediction: a class in neither
 * says nothing about this image) and pixel accuracy, ignoring `ignore` pixels.
 */
export function imageScores(prediction: Uint8Array, label: Uint8Array, classes: number, ignore: number): { miou: number; pixelAccuracy: number } {
  const inter = new Float64Array(classes), predicted = new Float64Array(classes), actual = new Float64Array(classes);
  let valid = 0, right = 0;
  for (let i = 0; i < label.length; i++) {
    const y = label[i];
    if (y === ignore || y >= classes) continue;
    const p = prediction[i];
    valid++;
    actual[y]++;
    if (p < classes) predicted[p]++;
    if (p === y) {
      right++;
      inter[y]++;
    }
  }
  let sum = 0, n = 0;
  for (let c = 0; c < classes; c++) {
    const union = actual[c] + predicted[c] - inter[c];
    if (union > 0) {
      sum += inter[c] / union;
      n++;
    }
  }
  return { miou: n ? sum / n : NaN, pixelAccuracy: valid ? right / valid : NaN };
}

// Per-pixel loops call these through module constants: a lookup of the global Math is slow where
// the report is built inside a vm context (jest's sandbox: ~0.5 us a call, seconds per image).
const { exp, log } = Math;

/**
 * What the U2PL step computes from the teacher's logits (1 x C x h x w), for an H x W image: the
 * logits upsampled bilinearly with aligned corners (ATen's upsample_bilinear2d(..., true)), their
 * softmax p, the argmax (the pseudo-label before any alignment) and the entropy -sum p ln(p + 1e-10)
 * (native/loss/entropy.cc).
 */
export function upsampledArgmaxEntropy(logits: Float32Array, c: number, h: number, w: number, height: number, width: number): { prediction: Uint8Array; entropy: Float32Array } {
  const prediction = new Uint8Array(height * width);
  const entropy = new Float32Array(height * width);
  const tap = (n: number, out: number) => Array.from({ length: out }, (_, i) => {
    const src = out > 1 ? (i * (n - 1)) / (out - 1) : 0;
    const i0 = Math.min(n - 1, Math.floor(src));
    return { i0, i1: Math.min(n - 1, i0 + 1), f: src - i0 };
  });
  const ty = tap(h, height), tx = tap(w, width);
  const z = new Float64Array(c);
  const plane = h * w;
  for (let y = 0; y < height; y++) {
    const { i0: y0, i1: y1, f: fy } = ty[y];
    for (let x = 0; x < width; x++) {
      const { i0: x0, i1: x1, f: fx } = tx[x];
      let max = -Infinity, arg = 0;
      for (let k = 0; k < c; k++) {
        const b = k * plane;
        const top = logits[b + y0 * w + x0] * (1 - fx) + logits[b + y0 * w + x1] * fx;
        const bottom = logits[b + y1 * w + x0] * (1 - fx) + logits[b + y1 * w + x1] * fx;
        z[k] = top * (1 - fy) + bottom * fy;
        if (z[k] > max) {
          max = z[k];
          arg = k;
        }
      }
      let sum = 0;
      for (let k = 0; k < c; k++) sum += (z[k] = exp(z[k] - max));
      let e = 0;
      for (let k = 0; k < c; k++) {
        const p = z[k] / sum;
        e -= p * log(p + 1e-10);
      }
      prediction[y * width + x] = arg;
      entropy[y * width + x] = e;
    }
  }
  return { prediction, entropy };
}

/** The q-th percentile by linear interpolation between neighbouring ranks (numpy's default; native/loss/percentile.cc). */
export function percentileOf(values: Float32Array, q: number): number {
  const sorted = Float32Array.from(values).sort();
  if (sorted.length === 0) return NaN;
  const rank = (Math.min(100, Math.max(0, q)) / 100) * (sorted.length - 1);
  const lo = Math.floor(rank), hi = Math.min(sorted.length - 1, lo + 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo);
}

export interface RenderOptions {
  palette: RGB[];
  mean: number[];
  std: number[];
  classes: number;
  ignoreLabel: number;
}

/**
 * Predicts `pool` images spread over the validation list (the argmax of the eval-mode network's
 * upsampled logits, as validation scores them) and returns `shown` of them spread over the list,
 * and the `worstCount` lowest-scoring of the pool.
 */
export async function sampleImages(model: AddonModel, loader: BatchLoader, o: RenderOptions, shown = 8, pool = 16, worstCount = 3): Promise<{ samples: ReportImage[]; worst: ReportImage[]; scored: number }> {
  const poolIndices = spread(loader.length, pool);
  const shownIndices = new Set(spread(poolIndices.length, shown).map((k) => poolIndices[k]));
  const scored: { index: number; id: string; image: Float32Array; label: Uint8Array; h: number; w: number; prediction: Uint8Array; miou: number; pixelAccuracy: number }[] = [];
  // Batches of 4 when the images come out at one size (each call costs much on a busy CPU), else one at a time.
  const per = loader.options.augment.crop || loader.options.augment.resize ? 4 : 1;
  for (let from = 0; from < poolIndices.length; from += per) {
    const group = poolIndices.slice(from, from + per);
    const b = await loader.loadBatch(group, 0, 0);
    const [h, w] = [b.height, b.width];
    const pred = (await model.forward({ data: b.images, shape: [group.length, 3, h, w] }, { train: false })).pred;
    const [c, lh, lw] = pred.shape.slice(1);
    group.forEach((index, i) => {
      const { prediction } = upsampledArgmaxEntropy(pred.data.subarray(i * c * lh * lw, (i + 1) * c * lh * lw), c, lh, lw, h, w);
      const label = (b.labels as Uint8Array).subarray(i * h * w, (i + 1) * h * w);
      scored.push({ index, id: b.ids[i], image: b.images.subarray(i * 3 * h * w, (i + 1) * 3 * h * w), label, h, w, prediction, ...imageScores(prediction, label, o.classes, o.ignoreLabel) });
    });
  }
  const render = async (s: (typeof scored)[number]): Promise<ReportImage> => ({
    index: s.index, id: s.id, miou: s.miou, pixelAccuracy: s.pixelAccuracy,
    image: await jpegDataUri(denormalise(s.image, s.h, s.w, o.mean, o.std), s.w, s.h),
    groundTruth: await pngDataUri(colourise(s.label, o.palette), s.w, s.h),
    prediction: await pngDataUri(colourise(s.prediction, o.palette), s.w, s.h),
  });
  const samples: ReportImage[] = [];
  for (const s of scored) if (shownIndices.has(s.index)) samples.push(await render(s));
  // The worst are worth seeing only when they are not all the shown ones.
  const worst: ReportImage[] = [];
  if (scored.length > shownIndices.size) {
    const ranked = scored.filter((s) => Number.isFinite(s.miou)).sort((a, b) => a.miou - b.miou).slice(0, worstCount);
    for (const s of ranked) worst.push(await render(s));
  }
  return { samples, worst, scored: scored.length };
}

/**
 * The method on `count` unlabeled images spread over the list: the eval-mode teacher's prediction,
 * the entropy of its (upsampled) class probabilities, and the pixels whose entropy is at or above
 * the image's q-th percentile — those U2PL leaves out of L_u and uses as negatives (§9). The images
 * are loaded as validation images are (no random augmentation); their labels are never read.
 */
export async function methodImages(
  teacher: AddonModel, unlabeled: Sample[], augment: AugmentConfig, labelOptions: LabelOptions, q: number, o: RenderOptions, count = 4,
): Promise<MethodImage[]> {
  const indices = spread(unlabeled.length, count);
  if (indices.length === 0) return [];
  const loader = new BatchLoader({
    samples: indices.map((i) => unlabeled[i]), augment, train: false, withLabels: false, labelOptions, classes: o.classes, ignoreLabel: o.ignoreLabel, seed: 0, prefetch: 1,
  });
  const maxEntropy = Math.log(o.classes);
  const out: MethodImage[] = [];
  // One eval-mode pass for all when the images come out at one size (a crop or a fixed resize), else one each.
  const slots = indices.map((_, k) => k);
  const groups = augment.crop || augment.resize ? [slots] : slots.map((k) => [k]);
  const views: { id: string; image: Float32Array; logits: Float32Array; c: number; lh: number; lw: number; h: number; w: number }[] = [];
  for (const group of groups) {
    const b = await loader.loadBatch(group, 0, 0);
    const [h, w] = [b.height, b.width];
    const pred = (await teacher.forward({ data: b.images, shape: [group.length, 3, h, w] }, { train: false })).pred;
    const [c, lh, lw] = pred.shape.slice(1);
    group.forEach((_, i) => views.push({
      id: b.ids[i], image: b.images.subarray(i * 3 * h * w, (i + 1) * 3 * h * w), logits: pred.data.subarray(i * c * lh * lw, (i + 1) * c * lh * lw), c, lh, lw, h, w,
    }));
  }
  for (const [k, v] of views.entries()) {
    const { h, w } = v;
    // The prediction and the entropy from the teacher's logits, as the step's pseudo-labels are made.
    const { prediction, entropy } = upsampledArgmaxEntropy(v.logits, v.c, v.lh, v.lw, h, w);
    const threshold = percentileOf(entropy, q);
    const rgb = denormalise(v.image, h, w, o.mean, o.std);
    const heat = new Uint8Array(h * w * 3);
    const marked = new Uint8Array(h * w * 3);
    let unreliable = 0, total = 0;
    for (let i = 0; i < h * w; i++) {
      const c = viridis(entropy[i] / maxEntropy);
      heat.set(c, i * 3);
      total += entropy[i];
      if (entropy[i] >= threshold) {
        unreliable++;
        marked.set([255, 0, 255], i * 3);
      } else {
        // Reliable pixels: the image, greyed and dimmed, so that the magenta stands out.
        const grey = 0.299 * rgb[i * 3] + 0.587 * rgb[i * 3 + 1] + 0.114 * rgb[i * 3 + 2];
        marked.fill(Math.round(40 + grey * 0.55), i * 3, i * 3 + 3);
      }
    }
    out.push({
      index: indices[k], id: v.id,
      image: await jpegDataUri(rgb, w, h),
      prediction: await pngDataUri(colourise(prediction, o.palette), w, h),
      entropy: await pngDataUri(heat, w, h),
      unreliable: await pngDataUri(marked, w, h),
      threshold, unreliableShare: unreliable / (h * w), meanEntropy: total / (h * w),
    });
  }
  return out;
}

export type { MethodSection };
