/** Small datasets in the VOC, Cityscapes and folder layouts, written by the tests. */
import fs from 'fs';
import path from 'path';
import sharp from 'sharp';
import { encode } from 'fast-png';
import { VOC_PALETTE } from '../../lib/data/classes';

export const SHARED = path.resolve(__dirname, '../../../shared/data');
export const CAMVID = path.join(SHARED, 'camvid');
export const FACADE = path.join(SHARED, 'labelmefacade');

/** A W x H RGB image with a gradient and a label with a few class regions. */
export function synthetic(width: number, height: number, classes: number, seed: number) {
  const rgb = new Uint8Array(width * height * 3);
  const label = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      label[i] = (Math.floor(x / (width / classes)) + seed) % classes;
      rgb[i * 3] = (x * 7 + seed * 31) % 256;
      rgb[i * 3 + 1] = (y * 5) % 256;
      rgb[i * 3 + 2] = (label[i] * 60) % 256;
    }
  }
  return { rgb, label };
}

export async function writeRgb(file: string, rgb: Uint8Array, width: number, height: number, format: 'png' | 'jpeg' = 'png') {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const s = sharp(Buffer.from(rgb), { raw: { width, height, channels: 3 } });
  await (format === 'png' ? s.png() : s.jpeg({ quality: 95 })).toFile(file);
}

export function writeIndexPng(file: string, label: Uint8Array, width: number, height: number, palette = false) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const data = palette
    ? encode({ width, height, data: label, channels: 1, depth: 8, palette: VOC_PALETTE.map((c) => [...c]) as [number, number, number][] })
    : encode({ width, height, data: label, channels: 1, depth: 8 });
  fs.writeFileSync(file, data);
}

/** root/JPEGImages/<id>.jpg + root/SegmentationClassAug/<id>.png (palette PNGs, like VOC's own files). */
export async function makeVoc(root: string, ids: string[], size = [40, 30]) {
  for (const [k, id] of ids.entries()) {
    const { rgb, label } = synthetic(size[0], size[1], 21, k);
    label[0] = 255;
    await writeRgb(path.join(root, 'JPEGImages', `${id}.jpg`), rgb, size[0], size[1], 'jpeg');
    writeIndexPng(path.join(root, 'SegmentationClassAug', `${id}.png`), label, size[0], size[1], true);
  }
  fs.writeFileSync(path.join(root, 'list.txt'), ids.join('\n')); // no trailing newline, as the published lists
}

/** root/leftImg8bit/train/<city>/<stem>_leftImg8bit.png + gtFine/train/<city>/<stem>_gtFine_labelIds.png */
export async function makeCityscapes(root: string, stems: string[], size = [64, 32]) {
  const entries: string[] = [];
  for (const [k, stem] of stems.entries()) {
    const { rgb } = synthetic(size[0], size[1], 19, k);
    const ids = new Uint8Array(size[0] * size[1]).map((_, i) => [7, 8, 26, 0, 33, 3][(i + k) % 6]);
    const city = stem.split('_')[0];
    const image = `leftImg8bit/train/${city}/${stem}_leftImg8bit.png`;
    await writeRgb(path.join(root, image), rgb, size[0], size[1]);
    writeIndexPng(path.join(root, 'gtFine/train', city, `${stem}_gtFine_labelIds.png`), ids, size[0], size[1]);
    entries.push(image);
  }
  fs.writeFileSync(path.join(root, 'list.txt'), `${entries.join('\n')}\n`);
}
