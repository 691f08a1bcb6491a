/**
 * Class frequencies of a split's label files, and the median-frequency-balanced class weights of
 * Eigen & Fergus (2015), as SegNet weighs CamVid: freq(c) = pixels of class c / labelled pixels of
 * the images where c appears; weight(c) = median over the present classes of freq / freq(c). A
 * class that never appears gets weight 1 (no pixel of it can be weighted).
 */
import { Sample } from './datasets';
import { LabelOptions, readLabel } from './image-io';

export interface ClassFrequencies {
  /** Pixels of each class over the split. */
  pixels: number[];
  /** Labelled (non-ignore) pixels of the images in which each class appears. */
  imagePixels: number[];
}

/** An empty count for `classes` classes. */
export function emptyFrequencies(classes: number): ClassFrequencies {
  return { pixels: new Array<number>(classes).fill(0), imagePixels: new Array<number>(classes).fill(0) };
}

/**
 * Adds one label image's pixels to `f` (values >= classes, the ignore label among them, are not
 * class pixels); returns how many were not.
 */
export function countLabel(data: ArrayLike<number>, f: ClassFrequencies): number {
  const classes = f.pixels.length;
  const counts = new Array<number>(classes).fill(0);
  let labelled = 0;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (v < classes) {
      counts[v]++;
      labelled++;
    }
  }
  counts.forEach((n, c) => {
    if (n > 0) {
      f.pixels[c] += n;
      f.imagePixels[c] += labelled;
    }
  });
  return data.length - labelled;
}

/** Counts every label file of `samples`. */
export async function classFrequencies(samples: Sample[], classes: number, labelOptions: LabelOptions, concurrency = 8): Promise<ClassFrequencies> {
  const f = emptyFrequencies(classes);
  let next = 0;
  const worker = async () => {
    while (next < samples.length) countLabel((await readLabel(samples[next++].label, labelOptions)).data, f);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, samples.length) }, worker));
  return f;
}

/** Median-frequency-balanced weights of the frequencies; throws when no class has a pixel. */
export function medianFrequencyWeights(f: ClassFrequencies): number[] {
  const freq = f.pixels.map((n, c) => (n > 0 ? n / f.imagePixels[c] : 0));
  const present = freq.filter((x) => x > 0).sort((a, b) => a - b);
  if (!present.length) throw new Error('median-frequency class weights: the labels have no pixel of any class');
  const mid = present.length >> 1;
  const median = present.length % 2 ? present[mid] : (present[mid - 1] + present[mid]) / 2;
  return freq.map((x) => (x > 0 ? median / x : 1));
}
