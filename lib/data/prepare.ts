/**
 * From a validated config to the sample lists of a run, with the whole dataset checked before
 * training starts: every file present, every image readable, every label an index map of the
 * image's size with values in [0, C) or the ignore label.
 */
import fs from 'fs';
import path from 'path';
import sharp from 'sharp';
import { DatasetConfig } from '../config/config';
import { datasetInfo, DatasetInfo, DatasetLayout, listSamples, Sample } from './datasets';
import { checkLabelValues, DataError, readLabel } from './image-io';
import { ensureProceduralDataset, PROCEDURAL_CLASSES } from './procedural';
import { unlabeledListFor } from './splits';

export interface RunData {
  info: DatasetInfo;
  labeled: Sample[];
  unlabeled: Sample[];
  val: Sample[];
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
  return { info, labeled, unlabeled, val };
}

export interface DataProblem {
  file: string;
  problem: string;
}

export interface DatasetSummary {
  images: number;
  sizes: Record<string, number>;
  /** Pixels per class index (index = class; ignore counted apart). */
  classPixels: number[];
  ignorePixels: number;
  problems: DataProblem[];
}

/**
 * Checks samples: images by their headers (sharp), labels fully decoded. Collects every problem
 * instead of stopping at the first; `withLabels` false checks images only (unlabeled lists).
 */
export async function checkSamples(
  samples: Sample[], info: DatasetInfo, classes: number, ignore: number, withLabels: boolean, concurrency = 8,
): Promise<DatasetSummary> {
  const summary: DatasetSummary = { images: samples.length, sizes: {}, classPixels: new Array(classes).fill(0), ignorePixels: 0, problems: [] };
  let next = 0;
  const work = async () => {
    while (next < samples.length) {
      const s = samples[next++];
      let width = 0;
      let height = 0;
      try {
        if (!fs.existsSync(s.image)) throw new DataError(s.image, 'file not found');
        const meta = await sharp(s.image).metadata().catch((e: Error) => { throw new DataError(s.image, `not a readable image (${e.message})`); });
        width = meta.width ?? 0;
        height = meta.height ?? 0;
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
        for (const v of label.data) {
          if (v < classes) summary.classPixels[v]++;
          else summary.ignorePixels++;
        }
      } catch (e) {
        summary.problems.push({ file: s.label, problem: (e as Error).message.replace(`${s.label}: `, '') });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, samples.length) }, work));
  return summary;
}

/** Throws one error listing the problems (the first ten) when there are any. */
export function throwOnProblems(summaries: DatasetSummary[]): void {
  const problems = summaries.flatMap((s) => s.problems);
  if (problems.length === 0) return;
  const shown = problems.slice(0, 10).map((p) => `  ${p.file}: ${p.problem}`).join('\n');
  throw new DataError(problems[0].file, `${problems.length} dataset problem(s) found before training:\n${shown}${problems.length > 10 ? `\n  ... and ${problems.length - 10} more` : ''}`);
}
