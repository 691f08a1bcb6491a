/** Writing predictions: index PNGs and colour renderings, and where they go. */
import path from 'path';
import { UsageError } from '../errors';

export { colourise, overlay } from './render';
export { writePng as writePngFile } from '../data/image-io';

/**
 * Output names for input files: <stem>.png and <stem>_overlay.png, with the extension kept in the
 * stem (a_jpg, a_png) where two inputs share a stem. Throws when an output would be an input.
 */
export function outputNames(files: string[], out: string): { file: string; mask: string; overlay: string }[] {
  const stem = (f: string) => path.basename(f).replace(/\.[^.]+$/, '');
  const count = new Map<string, number>();
  for (const f of files) count.set(stem(f), (count.get(stem(f)) ?? 0) + 1);
  const inputs = new Set(files.map((f) => path.resolve(f)));
  const seen = new Set<string>();
  return files.map((file) => {
    let name = stem(file);
    if ((count.get(name) ?? 0) > 1) name = `${name}_${path.extname(file).slice(1).toLowerCase()}`;
    for (let k = 2; seen.has(name); k++) name = `${stem(file)}_${k}`;
    seen.add(name);
    const names = { file, mask: path.join(out, `${name}.png`), overlay: path.join(out, `${name}_overlay.png`) };
    for (const o of [names.mask, names.overlay]) {
      if (inputs.has(o)) throw new UsageError(`--out: writing ${o} would overwrite an input image; choose another --out folder`);
    }
    return names;
  });
}

