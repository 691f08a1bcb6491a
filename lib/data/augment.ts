/**
 * The random parameters of the per-sample augmentation (§3), drawn in TypeScript from a seeded
 * generator so that they are reproducible and checkable; the pixel work runs natively.
 */
import { native } from '../native';
import { Random } from './random';

export interface AugmentConfig {
  /** [s_min, s_max] of the two-branch scale sampler, or undefined for no random resize. */
  randResize?: [number, number];
  /** Fixed resize [H, W] before the random one (the reference's `resize`; e.g. CamVid at 180 x 240). */
  resize?: [number, number];
  flip: boolean;
  blur: boolean;
  /** Crop [H, W]; none (validation only) keeps the whole (resized) image. */
  crop?: { type: 'rand' | 'center'; size: [number, number] };
  mean: [number, number, number];
  std: [number, number, number];
  /** Label padding of the crop: 0 in the reference [Q], 255 to ignore padding. */
  labelPad: number;
}

export interface AugmentDraw {
  resizedHeight: number;
  resizedWidth: number;
  scaledHeight: number;
  scaledWidth: number;
  flip: boolean;
  blur: boolean;
  cropTop: number;
  cropLeft: number;
  cropHeight: number;
  cropWidth: number;
}

/** §3 step 4: with probability 1/2 shrink (s in [s_min, 1)), otherwise grow (s in [1, s_max)). */
export function sampleScale(rng: Random, [sMin, sMax]: [number, number]): number {
  const u = rng.next();
  return rng.next() < 0.5 ? sMin + (1 - sMin) * u : 1 + (sMax - 1) * u;
}

export function drawAugment(rng: Random, height: number, width: number, c: AugmentConfig, train: boolean): AugmentDraw {
  const [rh, rw] = c.resize ?? [height, width];
  let h = rh;
  let w = rw;
  if (train && c.randResize) {
    const s = sampleScale(rng, c.randResize);
    h = Math.max(1, Math.trunc(h * s));
    w = Math.max(1, Math.trunc(w * s));
  }
  const blur = train && c.blur && rng.next() < 0.5;
  const flip = train && c.flip && rng.next() < 0.5;
  const [ch, cw] = c.crop?.size ?? [h, w];
  const ph = Math.max(h, ch);
  const pw = Math.max(w, cw);
  const random = train && c.crop?.type === 'rand';
  return {
    resizedHeight: rh, resizedWidth: rw, scaledHeight: h, scaledWidth: w, flip, blur,
    cropTop: random ? rng.int(0, ph - ch) : Math.floor((ph - ch) / 2),
    cropLeft: random ? rng.int(0, pw - cw) : Math.floor((pw - cw) / 2),
    cropHeight: ch, cropWidth: cw,
  };
}

export interface AugmentedSample {
  image: Float32Array;  // 3 x H x W normalised
  label?: Uint8Array;   // H x W
}

/** Runs the native augmentation (on the libuv pool) for one decoded sample. */
export function augment(
  image: Uint8Array, label: Uint8Array | undefined, height: number, width: number, draw: AugmentDraw, c: AugmentConfig,
): Promise<AugmentedSample> {
  return native().augment({ image, label, height, width, ...draw, mean: c.mean, std: c.std, labelPad: c.labelPad });
}

/**
 * The strong view of an unlabeled image for the student (trainer.unsupervised.strong_augment):
 * UniMatch's and ST++'s photometric perturbations on the weak view, so that the student learns
 * from the teacher's weak-view pseudo-labels under a harder input. Hue jitter is not applied.
 */
export interface StrongAugmentConfig {
  /** Probability of the colour jitter (UniMatch: 0.8). */
  jitterProb: number;
  /** Jitter strengths: each factor is drawn from [max(0, 1 - s), 1 + s] (UniMatch: 0.5 each). */
  brightness: number;
  contrast: number;
  saturation: number;
  /** Probability of turning the image to grayscale (0.2). */
  grayscaleProb: number;
  /** Probability of a Gaussian blur (0.5), with sigma drawn from blurSigma ([0.1, 2]). */
  blurProb: number;
  blurSigma: [number, number];
}

export const STRONG_AUGMENT_DEFAULTS: StrongAugmentConfig = {
  jitterProb: 0.8, brightness: 0.5, contrast: 0.5, saturation: 0.5, grayscaleProb: 0.2, blurProb: 0.5, blurSigma: [0.1, 2],
};

export interface StrongDraw {
  jitter: boolean;
  brightness: number;
  contrast: number;
  saturation: number;
  /** The jitter's order: 0 brightness, 1 contrast, 2 saturation (torchvision draws it too). */
  order: number[];
  grayscale: boolean;
  /** 0: no blur. */
  blurSigma: number;
}

export function drawStrong(rng: Random, c: StrongAugmentConfig): StrongDraw {
  const factor = (s: number) => Math.max(0, 1 - s) + (1 + s - Math.max(0, 1 - s)) * rng.next();
  const jitter = rng.next() < c.jitterProb;
  const brightness = factor(c.brightness);
  const contrast = factor(c.contrast);
  const saturation = factor(c.saturation);
  const order = rng.shuffle([0, 1, 2]);
  const grayscale = rng.next() < c.grayscaleProb;
  const blur = rng.next() < c.blurProb;
  const sigma = c.blurSigma[0] + (c.blurSigma[1] - c.blurSigma[0]) * rng.next();
  return { jitter, brightness, contrast, saturation, order, grayscale, blurSigma: blur ? sigma : 0 };
}

/** Runs the native strong view (on the libuv pool) of one augmented, normalised 3 x H x W image. */
export function strongView(image: Float32Array, height: number, width: number, draw: StrongDraw, c: Pick<AugmentConfig, 'mean' | 'std'>): Promise<Float32Array> {
  return native().photometric({ image, height, width, mean: c.mean, std: c.std, ...draw });
}
