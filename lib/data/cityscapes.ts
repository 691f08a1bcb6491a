/** Cityscapes labelIds -> trainIds (the standard table, §2.1), for gtFine folders without trainId files. */
import fs from 'fs';
import path from 'path';
import { DataError, readLabel, writePng } from './image-io';

const TRAIN_IDS: Record<number, number> = {
  7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18,
};

export function labelIdsToTrainIds(ids: Uint8Array): Uint8Array {
  const table = new Uint8Array(256).fill(255);
  for (const [id, train] of Object.entries(TRAIN_IDS)) table[Number(id)] = train;
  return ids.map((v) => table[v]);
}

function walk(dir: string, out: string[]): string[] {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) walk(full, out);
    else if (e.name.endsWith('_gtFine_labelIds.png')) out.push(full);
  }
  return out;
}

/** Writes <stem>_gtFine_labelTrainIds.png beside every <stem>_gtFine_labelIds.png; returns how many. */
export async function prepareCityscapes(root: string, overwrite = false): Promise<number> {
  const files = walk(path.join(root, 'gtFine'), []);
  if (files.length === 0) throw new DataError(path.join(root, 'gtFine'), 'no *_gtFine_labelIds.png files');
  let written = 0;
  for (const file of files) {
    const target = file.replace(/_labelIds\.png$/, '_labelTrainIds.png');
    if (!overwrite && fs.existsSync(target)) continue;
    const ids = await readLabel(file);
    await writePng(target, labelIdsToTrainIds(ids.data), ids.width, ids.height, 1);
    written++;
  }
  return written;
}
