/**
 * Decoding images and label maps. Images go through sharp (JPEG, PNG, WebP, ... to RGB); label
 * PNGs through fast-png, which keeps raw channel values and palette indices (a palette PNG must
 * never be colour-converted: its indices are the classes).
 */
import fs from 'fs';
import sharp from 'sharp';
import { decode } from 'fast-png';
import { FileError } from '../errors';
import { RGB } from './classes';

export interface RgbImage {
  data: Uint8Array;  // height x width x 3
  width: number;
  height: number;
}

export interface LabelMap {
  data: Uint8Array;  // height x width class indices
  width: number;
  height: number;
}

/** A data file (image, label, list) that cannot be used. */
export class DataError extends FileError {
  constructor(file: string, problem: string) {
    super(file, problem);
    this.name = 'DataError';
  }
}

export async function readImage(file: string): Promise<RgbImage> {
  let buffer: Buffer;
  try {
    buffer = await fs.promises.readFile(file);
  } catch (e) {
    throw new DataError(file, (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : `cannot read (${(e as Error).message})`);
  }
  try {
    const { data, info } = await sharp(buffer).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels`);
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height };
  } catch (e) {
    // sharp fails on decoder warnings (e.g. a premature end of data) with a message that names no cause.
    const m = (e as Error).message;
    throw new DataError(file, `not a readable image (${/failOn/.test(m) ? 'damaged or truncated: the decoder stopped before the end' : m})`);
  }
}

export interface LabelOptions {
  /** Colour labels: colour of each class index; pixels of other colours are an error. */
  palette?: RGB[];
  /** Raw value -> class (e.g. CamVid's void 11 -> 255); values not listed keep their index. */
  remap?: Record<number, number>;
}

/** Reads a label PNG as class indices (single-channel index PNGs, palette PNGs, or colour PNGs with a palette). */
export async function readLabel(file: string, options: LabelOptions = {}): Promise<LabelMap> {
  let buffer: Buffer;
  try {
    buffer = await fs.promises.readFile(file);
  } catch (e) {
    throw new DataError(file, (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'label file not found' : `cannot read (${(e as Error).message})`);
  }
  if (buffer.length < 8 || buffer.readUInt32BE(0) !== 0x89504e47) {
    throw new DataError(file, 'label maps must be PNG files (lossy formats would change class indices)');
  }
  let png: ReturnType<typeof decode>;
  try {
    png = decode(buffer);
  } catch (e) {
    throw new DataError(file, `not a readable PNG (${(e as Error).message})`);
  }
  const n = png.width * png.height;
  const out = new Uint8Array(n);
  const src = png.data as Uint8Array | Uint16Array;
  const channels = png.channels;
  const isPalette = png.palette !== undefined && channels === 1;
  if (channels === 1 || channels === 2 || isPalette) {
    // Index image (grey, grey+alpha, or palette indices).
    const scale = png.depth === 16 ? 257 : 1;
    for (let i = 0; i < n; i++) {
      const raw = src[i * channels];
      // Not Number.isInteger: a global lookup per pixel is slow inside a vm context (jest's sandbox).
      if (raw % scale !== 0 || raw > 255 * scale) throw new DataError(file, `label value ${raw} does not fit a class index`);
      out[i] = raw / scale;
    }
  } else {
    if (!options.palette) {
      throw new DataError(file, `is a colour (${channels}-channel) image where a single-channel index label is expected; give the dataset a palette to read colour labels`);
    }
    const scale = png.depth === 16 ? 257 : 1;
    const lookup = new Map<number, number>();
    options.palette.forEach(([r, g, b], i) => lookup.set((r << 16) | (g << 8) | b, i));
    for (let i = 0; i < n; i++) {
      const key = ((src[i * channels] / scale) << 16) | ((src[i * channels + 1] / scale) << 8) | (src[i * channels + 2] / scale);
      const cls = lookup.get(key);
      if (cls === undefined) {
        const rgb = [src[i * channels], src[i * channels + 1], src[i * channels + 2]].map((v) => v / scale);
        throw new DataError(file, `pixel (${i % png.width}, ${Math.floor(i / png.width)}) has colour (${rgb.join(', ')}), which is not in the palette`);
      }
      out[i] = cls;
    }
  }
  if (options.remap) {
    const table = new Uint8Array(256).map((_, i) => i);
    for (const [from, to] of Object.entries(options.remap)) table[Number(from)] = to;
    for (let i = 0; i < n; i++) out[i] = table[out[i]];
  }
  return { data: out, width: png.width, height: png.height };
}

/** Raises a DataError naming the file when a label holds values outside [0, classes) and ignore. */
export function checkLabelValues(file: string, label: LabelMap, classes: number, ignore: number): void {
  for (let i = 0; i < label.data.length; i++) {
    const v = label.data[i];
    if (v >= classes && v !== ignore) {
      throw new DataError(file, `label value ${v} at (${i % label.width}, ${Math.floor(i / label.width)}) is outside [0, ${classes}) and is not the ignore label ${ignore}`);
    }
  }
}

/** Writes an RGB or single-channel uint8 image as PNG. */
export async function writePng(file: string, data: Uint8Array, width: number, height: number, channels: 1 | 3 | 4): Promise<void> {
  let image = sharp(Buffer.from(data.buffer, data.byteOffset, data.byteLength), { raw: { width, height, channels } });
  if (channels === 1) image = image.toColourspace('b-w'); // keep a single-channel (index) PNG
  await image.png().toFile(file);
}
