/**
 * The random parameters of the per-sample augmentation (§3), drawn in TypeScript from a seeded
 * generator so that they are reproducible and checkable; the pixel work runs natively.
 */
import { native } from '../native';
import { Random } from './random';

export interface AugmentConfig {
  /** [s_min, s_max] of the two-branch scale sampler, or undefined for no random resize. */
  randResize?: [number, number];
  /** Fixed resize [H, W] before the random one (reference option, unused by its configs). */
  resize?: [number, number];
  flip: boolean;
  blur: boolean;
  crop: { type: 'rand' | 'center'; size: [number, number] };
  mean: [number, number, number];
  std: [number, number, number];
  /** Label padding of the crop: 0 in the reference [Q], 255 to ignore padding. */
  labelPad: number;
}

export interface AugmentDraw {
  scaledHeight: number;
  scaledWidth: number;
  flip: boolean;
  blur: boolean;
  cropTop: number;
  cropLeft: number;
}

/** §3 step 4: with probability 1/2 shrink (s in [s_min, 1)), otherwise grow (s in [1, s_max)). */
export function sampleScale(rng: Random, [sMin, sMax]: [number, number]): number {
  const u = rng.next();
  return rng.next() < 0.5 ? sMin + (1 - sMin) * u : 1 + (sMax - 1) * u;
}

export function drawAugment(rng: Random, height: number, width: number, c: AugmentConfig, train: boolean): AugmentDraw {
  let h = height;
  let w = width;
  if (c.resize) [h, w] = c.resize;
  if (train && c.randResize) {
    const s = sampleScale(rng, c.randResize);
    h = Math.max(1, Math.trunc(h * s));
    w = Math.max(1, Math.trunc(w * s));
  }
  const blur = train && c.blur && rng.next() < 0.5;
  const flip = train && c.flip && rng.next() < 0.5;
  const [ch, cw] = c.crop.size;
  const ph = Math.max(h, ch);
  const pw = Math.max(w, cw);
  const random = train && c.crop.type === 'rand';
  return {
    scaledHeight: h, scaledWidth: w, flip, blur,
    cropTop: random ? rng.int(0, ph - ch) : Math.floor((ph - ch) / 2),
    cropLeft: random ? rng.int(0, pw - cw) : Math.floor((pw - cw) / 2),
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
  return native().augment({
    image, label, height, width, ...draw, cropHeight: c.crop.size[0], cropWidth: c.crop.size[1],
    mean: c.mean, std: c.std, labelPad: c.labelPad,
  });
}
