/**
 * From a validated config to the sample lists of a run, with the whole dataset checked before
 * training starts: every file present, every image readable, every label an index map of the
 * image's size with values in [0, C) or the ignore label.
 */
import fs from 'fs';
import path from 'path';
import { DatasetConfig } from '../config/config';
import { datasetInfo, DatasetInfo, DatasetLayout, listSamples, Sample } from './datasets';
import { checkLabelValues, DataError, readImage, readLabel } from './image-io';
import { ClassFrequencies, countLabel, emptyFrequencies } from './class-frequency';
import { ensureProceduralDataset, PROCEDURAL_CLASSES } from './procedural';
import { unlabeledListFor } from './splits';

export interface RunData {
  info: DatasetInfo;
  labeled: Sample[];
  unlabeled: Sample[];
  val: Sample[];
  /** dataset.test: held-out images, scored and never chosen on. */
  test: Sample[];
}

function layoutFor(d: DatasetConfig, root: string): DatasetLayout {
  return { kind: d.kind, root, imageDir: d.imageDir, labelDir: d.labelDir, labelExt: d.labelExt, palette: d.palette };
}

export async function prepareData(d: DatasetConfig, numClasses: number): Promise<RunData> {
  if (d.procedural) await ensureProceduralDataset(d.train.dataRoot, d.procedural);
  const classNames = d.classNames ?? (d.procedural ? PROCEDURAL_CLASSES.slice(0, numClasses) : undefined);
  const info = datasetInfo(d.kind, numClasses, layoutFor(d, d.train.dataRoot), classNames);
  const labeled = listSamples(layoutFor(d, d.train.dataRoot), d.train.dataList);
  const unlabeled = d.semi ? listSamples(layoutFor(d, d.train.dataRoot), unlabeledListFor(d.train.dataList)) : [];
  const val = d.val ? listSamples(layoutFor(d, d.val.dataRoot), d.val.dataList) : [];
  const test = d.test ? listSamples(layoutFor(d, d.test.dataRoot), d.test.dataList) : [];
  return { info, labeled, unlabeled, val, test };
}

export interface DataProblem {
  file: string;
  problem: string;
}

export interface DatasetSummary {
  images: number;
  sizes: Record<string, number>;
  /** Pixels per class index (ignore counted apart), and those of the images each class is in. */
  frequencies: ClassFrequencies;
  ignorePixels: number;
  problems: DataProblem[];
}

/**
 * Images that decoded completely before, by path, size and modification time, so that checking a
 * dataset again (a resumed run, a second check) decodes only what changed. Kept as JSON.
 */
/** Files that decoded: "path|size|mtime" -> [width, height]. */
export type DecodedFiles = Record<string, [number, number]>;

export class DecodeCache {
  private readonly entries: DecodedFiles;
  private readonly fresh: DecodedFiles = {};
  private dirty = false;

  constructor(readonly file?: string) {
    let entries: Record<string, [number, number]> = {};
    try {
      if (file) entries = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, [number, number]>;
    } catch {
      entries = {};  // absent or damaged: start again
    }
    this.entries = entries;
  }

  private static key(file: string): string | undefined {
    try {
      const st = fs.statSync(file);
      return `${file}|${st.size}|${st.mtimeMs}`;
    } catch {
      return undefined;
    }
  }

  /** [width, height] of a file that decoded before and has not changed since. */
  get(file: string): [number, number] | undefined {
    const k = DecodeCache.key(file);
    return k === undefined ? undefined : this.entries[k];
  }

  set(file: string, size: [number, number]): void {
    const k = DecodeCache.key(file);
    if (k === undefined) return;
    this.entries[k] = size;
    this.fresh[k] = size;
    this.dirty = true;
  }

  /** What this process decoded since it read the file (data parallel: gathered to the rank that saves). */
  added(): DecodedFiles {
    return { ...this.fresh };
  }

  merge(entries: DecodedFiles): void {
    for (const [k, v] of Object.entries(entries)) {
      if (this.entries[k]) continue;
      this.entries[k] = v;
      this.dirty = true;
    }
  }

  save(): void {
    if (!this.file || !this.dirty || !fs.existsSync(path.dirname(this.file))) return;
    const tmp = `${this.file}.tmp-${process.pid}`;
    try {
      fs.writeFileSync(tmp, JSON.stringify(this.entries));
      fs.renameSync(tmp, this.file);
    } catch {
      fs.rmSync(tmp, { force: true });  // a cache: losing it costs time only
    }
  }
}

/**
 * Checks samples: every image fully decoded (a truncated file fails here, not mid-run), labels
 * decoded and checked against their image. Collects every problem instead of stopping at the
 * first; `withLabels` false checks images only (unlabeled lists).
 */
export async function checkSamples(
  samples: Sample[], info: DatasetInfo, classes: number, ignore: number, withLabels: boolean, concurrency = 8, cache = new DecodeCache(),
): Promise<DatasetSummary> {
  const summary: DatasetSummary = { images: samples.length, sizes: {}, frequencies: emptyFrequencies(classes), ignorePixels: 0, problems: [] };
  let next = 0;
  const work = async () => {
    while (next < samples.length) {
      const s = samples[next++];
      let width = 0;
      let height = 0;
      try {
        const known = cache.get(s.image);
        if (known) [width, height] = known;
        else {
          const image = await readImage(s.image);
          [width, height] = [image.width, image.height];
          cache.set(s.image, [width, height]);
        }
        summary.sizes[`${width}x${height}`] = (summary.sizes[`${width}x${height}`] ?? 0) + 1;
      } catch (e) {
        summary.problems.push({ file: s.image, problem: (e as Error).message.replace(`${s.image}: `, '') });
        continue;
      }
      if (!withLabels) continue;
      try {
        const label = await readLabel(s.label, info.labelOptions);
        if (label.width !== width || label.height !== height) {
          throw new DataError(s.label, `label is ${label.width}x${label.height} but its image ${path.basename(s.image)} is ${width}x${height}`);
        }
        checkLabelValues(s.label, label, classes, ignore);
        summary.ignorePixels += countLabel(label.data, summary.frequencies);
      } catch (e) {
        summary.problems.push({ file: s.label, problem: (e as Error).message.replace(`${s.label}: `, '') });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, samples.length) }, work));
  return summary;
}

/** Throws one error listing the problems (the first ten) when there are any. */
/** One summary of several parts of a list (data parallel: each rank checked a share). */
export function mergeSummaries(parts: DatasetSummary[]): DatasetSummary {
  const classes = parts[0].frequencies.pixels.length;
  const out: DatasetSummary = { images: 0, sizes: {}, frequencies: emptyFrequencies(classes), ignorePixels: 0, problems: [] };
  for (const p of parts) {
    out.images += p.images;
    for (const [k, n] of Object.entries(p.sizes)) out.sizes[k] = (out.sizes[k] ?? 0) + n;
    p.frequencies.pixels.forEach((n, c) => { out.frequencies.pixels[c] += n; });
    p.frequencies.imagePixels.forEach((n, c) => { out.frequencies.imagePixels[c] += n; });
    out.ignorePixels += p.ignorePixels;
    out.problems.push(...p.problems);
  }
  return out;
}

export function throwOnProblems(summaries: DatasetSummary[]): void {
  const problems = summaries.flatMap((s) => s.problems);
  if (problems.length === 0) return;
  const shown = problems.slice(0, 10).map((p) => `  ${p.file}: ${p.problem}`).join('\n');
  throw new DataError(problems[0].file, `${problems.length} dataset problem(s) found before training:\n${shown}${problems.length > 10 ? `\n  ... and ${problems.length - 10} more` : ''}`);
}

/**
 * What is legal but probably a mistake, by key: the same entry twice in a list, validation images
 * among the training ones (they would leak into training), crops much larger than the images.
 * `summaries` (labeled, unlabeled, val), when the images were checked, give their sizes.
 */
export function datasetWarnings(d: DatasetConfig, data: RunData, summaries?: DatasetSummary[]): string[] {
  const warnings: string[] = [];
  const lists: [string, string, Sample[]][] = [
    ['dataset.train.data_list', d.train.dataList, data.labeled],
    ['the unlabeled list', unlabeledListFor(d.train.dataList), data.unlabeled],
    ['dataset.val.data_list', d.val?.dataList ?? '', data.val],
    ['dataset.test.data_list', d.test?.dataList ?? '', data.test],
  ];
  for (const [key, file, samples] of lists) {
    const seen = new Set<string>();
    const twice = new Set<string>();
    for (const s of samples) (seen.has(s.image) ? twice : seen).add(s.image);
    if (twice.size) warnings.push(`${key}: ${file} lists ${twice.size} image(s) more than once (e.g. ${[...twice][0]})`);
  }
  const images = (samples: Sample[]) => new Set(samples.map((s) => s.image));
  for (const [split, what, held] of [['val', 'validation', data.val], ['test', 'test', data.test]] as const) {
    const heldOut = images(held);
    for (const [name, samples] of [['labeled', data.labeled], ['unlabeled', data.unlabeled]] as const) {
      const leaked = samples.filter((s) => heldOut.has(s.image));
      if (leaked.length) {
        warnings.push(`dataset.${split}.data_list: ${leaked.length} ${what} image(s) are also in the ${name} training list (e.g. ${leaked[0].image}): the ${what} score would not measure unseen images`);
      }
    }
  }
  const val = images(data.val);
  const shared = data.test.filter((s) => val.has(s.image));
  if (shared.length) {
    warnings.push(`dataset.test.data_list: ${shared.length} test image(s) are also validation images (e.g. ${shared[0].image}): the best checkpoint is chosen on them, so the test score is not held out`);
  }
  const labeled = images(data.labeled);
  const both = data.unlabeled.filter((s) => labeled.has(s.image));
  if (both.length) warnings.push(`dataset.train.data_list: ${both.length} image(s) are both labeled and unlabeled (e.g. ${both[0].image})`);
  const crop = d.train.augment.crop?.size;
  const sizes = summaries?.[0]?.sizes;
  if (crop && sizes && Object.keys(sizes).length) {
    const dims = Object.keys(sizes).map((k) => k.split('x').map(Number) as [number, number]);
    const [rh, rw] = d.train.augment.resize ?? [Math.max(...dims.map((x) => x[1])), Math.max(...dims.map((x) => x[0]))];
    const grow = d.train.augment.randResize?.[1] ?? 1;
    if (crop[0] > 2 * rh * grow || crop[1] > 2 * rw * grow) {
      warnings.push(`dataset.train.crop.size: [${crop.join(', ')}] is more than twice the images (at most ${rw}x${rh}${grow > 1 ? `, x${grow} at the largest random scale` : ''}): most of every crop is padding`);
    }
  }
  return warnings;
}
