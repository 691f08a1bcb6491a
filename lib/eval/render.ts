/** Colourised masks, overlays and de-normalised images for reports and u2pl-infer. */
import sharp from 'sharp';
import { RGB } from '../data/classes';

// Module constants, not Math.*: a global lookup per pixel is slow inside a vm context (jest's sandbox).
const { max, min, round } = Math;

/** H x W class indices -> H x W x 3 colours (unknown indices white, as the reference's VOC palette). */
export function colourise(labels: Uint8Array, palette: RGB[]): Uint8Array {
  const out = new Uint8Array(labels.length * 3);
  for (let i = 0; i < labels.length; i++) {
    const c = palette[labels[i]] ?? [255, 255, 255];
    out[i * 3] = c[0];
    out[i * 3 + 1] = c[1];
    out[i * 3 + 2] = c[2];
  }
  return out;
}

/** H x W x 3 uint8 RGB to a normalised 3 x H x W image ((x - mean) / std per channel). */
export function normalise(rgb: Uint8Array, height: number, width: number, mean: number[], std: number[]): Float32Array {
  const plane = height * width;
  const out = new Float32Array(3 * plane);
  for (let c = 0; c < 3; c++) for (let p = 0; p < plane; p++) out[c * plane + p] = (rgb[p * 3 + c] - mean[c]) / std[c];
  return out;
}

/** A normalised 3 x H x W image back to H x W x 3 uint8. */
export function denormalise(planar: Float32Array, height: number, width: number, mean: number[], std: number[]): Uint8Array {
  const out = new Uint8Array(height * width * 3);
  const plane = height * width;
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < plane; i++) out[i * 3 + c] = max(0, min(255, round(planar[c * plane + i] * std[c] + mean[c])));
  }
  return out;
}

export function overlay(rgb: Uint8Array, colours: Uint8Array, alpha = 0.5): Uint8Array {
  const out = new Uint8Array(rgb.length);
  for (let i = 0; i < rgb.length; i++) out[i] = round(rgb[i] * (1 - alpha) + colours[i] * alpha);
  return out;
}

export async function pngDataUri(rgb: Uint8Array, width: number, height: number): Promise<string> {
  const png = await sharp(Buffer.from(rgb.buffer, rgb.byteOffset, rgb.byteLength), { raw: { width, height, channels: 3 } }).png().toBuffer();
  return `data:image/png;base64,${png.toString('base64')}`;
}
