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
