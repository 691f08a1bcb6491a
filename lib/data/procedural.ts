/**
 * The demo dataset: procedural scenes of textured shapes (background, disc, box, triangle) that
 * need nothing downloaded. Each class has its own texture family and the colours overlap, so a
 * network has to learn texture and shape, and a handful of labeled images is not enough.
 */
import fs from 'fs';
import path from 'path';
import { writePng } from './image-io';
import { Random } from './random';
import { writeSplit } from './splits';

// Module constants, not Math.*: a global lookup per pixel is slow inside a vm context (jest's sandbox).
const { abs, cos, sin, sign, max, min, round, floor } = Math;

export const PROCEDURAL_CLASSES = ['background', 'disc', 'box', 'triangle'];

export interface ProceduralOptions {
  seed: number;
  train: number;
  labeled: number;
  val: number;
  size: number;
}

function scene(rng: Random, size: number): { image: Uint8Array; label: Uint8Array } {
  const image = new Uint8Array(size * size * 3);
  const label = new Uint8Array(size * size);
  // Per-class texture: orientation, frequency, phase; colours drawn from overlapping ranges.
  const textures = [0, 1, 2, 3].map((c) => ({
    angle: c * 0.8 + rng.next() * 0.6,
    freq: (c === 0 ? 0.15 : 0.35 + c * 0.12) * (0.8 + rng.next() * 0.4),
    phase: rng.next() * 6.28,
    base: [60 + rng.next() * 120, 60 + rng.next() * 120, 60 + rng.next() * 120],
    amp: 30 + rng.next() * 40,
    checker: c === 2,
  }));
  const shapes: { cls: number; cx: number; cy: number; r: number; rot: number }[] = [];
  const count = 2 + floor(rng.next() * 4);
  for (let i = 0; i < count; i++) {
    shapes.push({ cls: 1 + floor(rng.next() * 3), cx: rng.next() * size, cy: rng.next() * size, r: size * (0.1 + rng.next() * 0.17), rot: rng.next() * 6.28 });
  }
  const inside = (s: (typeof shapes)[number], x: number, y: number): boolean => {
    const dx = x - s.cx, dy = y - s.cy;
    const u = dx * cos(s.rot) + dy * sin(s.rot), v = -dx * sin(s.rot) + dy * cos(s.rot);
    if (s.cls === 1) return dx * dx + dy * dy < s.r * s.r;
    if (s.cls === 2) return abs(u) < s.r * 0.85 && abs(v) < s.r * 0.6;
    return v > -s.r * 0.5 && abs(u) < (s.r - v) * 0.6 && v < s.r; // triangle
  };
  const noise = 18;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      let cls = 0;
      for (const s of shapes) if (inside(s, x, y)) cls = s.cls;
      const t = textures[cls];
      const along = x * cos(t.angle) + y * sin(t.angle);
      let pattern = sin(along * t.freq + t.phase);
      if (t.checker) pattern = sign(sin(x * t.freq + t.phase) * sin(y * t.freq));
      for (let ch = 0; ch < 3; ch++) {
        const v = t.base[ch] + t.amp * pattern + (rng.next() - 0.5) * 2 * noise;
        image[(y * size + x) * 3 + ch] = max(0, min(255, round(v)));
      }
      label[y * size + x] = cls;
    }
  }
  return { image, label };
}

/** Writes images/, labels/, train.txt, val.txt and splits/<labeled>/{labeled,unlabeled}.txt under root. */
export async function generateProceduralDataset(root: string, o: ProceduralOptions): Promise<void> {
  fs.mkdirSync(path.join(root, 'images'), { recursive: true });
  fs.mkdirSync(path.join(root, 'labels'), { recursive: true });
  const rng = new Random(o.seed);
  const names: string[] = [];
  for (let i = 0; i < o.train + o.val; i++) {
    const name = `${i < o.train ? 'train' : 'val'}_${String(i).padStart(4, '0')}`;
    const { image, label } = scene(rng, o.size);
    await writePng(path.join(root, 'images', `${name}.png`), image, o.size, o.size, 3);
    await writePng(path.join(root, 'labels', `${name}.png`), label, o.size, o.size, 1);
    names.push(`images/${name}.png`);
  }
  const train = names.slice(0, o.train);
  fs.writeFileSync(path.join(root, 'train.txt'), `${train.join('\n')}\n`);
  fs.writeFileSync(path.join(root, 'val.txt'), `${names.slice(o.train).join('\n')}\n`);
  // The first `labeled` scenes are labeled: scenes are independent draws, so this is a random split.
  writeSplit(path.join(root, 'splits', String(o.labeled)), { labeled: train.slice(0, o.labeled), unlabeled: train.slice(o.labeled) });
  fs.writeFileSync(path.join(root, 'DONE'), `${JSON.stringify(o)}\n`);
}

/** Generates the dataset unless a complete one with the same options is already there. */
export async function ensureProceduralDataset(root: string, o: ProceduralOptions): Promise<boolean> {
  const done = path.join(root, 'DONE');
  if (fs.existsSync(done) && fs.readFileSync(done, 'utf8').trim() === JSON.stringify(o)) return false;
  await generateProceduralDataset(root, o);
  return true;
}
