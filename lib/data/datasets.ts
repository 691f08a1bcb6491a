/**
 * Datasets: where each sample's image and label live, per layout (u2pl-method.md §2.1, §2.2).
 *   voc         root/JPEGImages/<id>.jpg + root/SegmentationClassAug/<id>.png, list of ids
 *   cityscapes  root/leftImg8bit/...png + root/gtFine/..._gtFine_labelTrainIds.png, list of image paths
 *   camvid      SegNet layout: root/train/X.png + root/trainannot/X.png (void 11 -> ignore)
 *   folder      image folder + label folder (same base names), optional palette for colour labels
 */
import fs from 'fs';
import path from 'path';
import { CAMVID_CLASSES, CAMVID_PALETTE, CITYSCAPES_CLASSES, CITYSCAPES_PALETTE, defaultPalette, RGB, VOC_CLASSES, VOC_PALETTE } from './classes';
import { DataError, LabelOptions } from './image-io';

export type DatasetKind = 'voc' | 'cityscapes' | 'camvid' | 'folder';

export interface Sample {
  /** The list entry this sample came from. */
  id: string;
  image: string;
  label: string;
}

export interface DatasetLayout {
  kind: DatasetKind;
  root: string;
  /** folder layout: where labels live relative to the root, and their extension. */
  imageDir?: string;
  labelDir?: string;
  labelExt?: string;
  /** Colour labels (folder layout). */
  palette?: RGB[];
}

export interface DatasetInfo {
  classNames: string[];
  palette: RGB[];
  labelOptions: LabelOptions;
}

export function datasetInfo(kind: DatasetKind, numClasses: number, layout?: Partial<DatasetLayout>, classNames?: string[]): DatasetInfo {
  switch (kind) {
    case 'voc':
      return { classNames: VOC_CLASSES.slice(0, numClasses), palette: VOC_PALETTE, labelOptions: {} };
    case 'cityscapes':
      return { classNames: CITYSCAPES_CLASSES.slice(0, numClasses), palette: CITYSCAPES_PALETTE, labelOptions: {} };
    case 'camvid':
      return { classNames: CAMVID_CLASSES.slice(0, numClasses), palette: CAMVID_PALETTE, labelOptions: { remap: { 11: 255 } } };
    case 'folder': {
      const palette = layout?.palette;
      return {
        classNames: classNames ?? Array.from({ length: numClasses }, (_, i) => `class ${i}`),
        palette: palette ?? defaultPalette(numClasses),
        labelOptions: palette ? { palette } : {},
      };
    }
  }
}

/** Reads a list file: one entry per line, blank lines and trailing newlines tolerated. */
export function readList(file: string): string[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new DataError(file, (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'list file not found' : `cannot read (${(e as Error).message})`);
  }
  const entries = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l.length > 0);
  if (entries.length === 0) throw new DataError(file, 'the list is empty');
  // SegNet's lists hold "image label" pairs with absolute /SegNet/CamVid/ prefixes: keep the image part.
  return entries.map((l) => l.split(/\s+/)[0].replace(/^\/SegNet\/CamVid\//, ''));
}

export function samplePaths(layout: DatasetLayout, entry: string): Sample {
  const r = layout.root;
  switch (layout.kind) {
    case 'voc':
      return { id: entry, image: path.join(r, 'JPEGImages', `${entry}.jpg`), label: path.join(r, 'SegmentationClassAug', `${entry}.png`) };
    case 'cityscapes': {
      const label = entry.replace(/^leftImg8bit\//, 'gtFine/').replace(/leftImg8bit\.png$/, 'gtFine_labelTrainIds.png');
      return { id: entry, image: path.join(r, entry), label: path.join(r, label) };
    }
    case 'camvid': {
      const [dir, ...rest] = entry.split('/');
      if (rest.length === 0) throw new Error(`camvid list entry '${entry}' must look like train/<name>.png`);
      return { id: entry, image: path.join(r, entry), label: path.join(r, `${dir}annot`, ...rest) };
    }
    case 'folder': {
      const image = path.join(r, entry.includes('/') || !layout.imageDir ? entry : path.join(layout.imageDir, entry));
      const base = path.basename(entry).replace(/\.[^.]+$/, '');
      const label = path.join(r, layout.labelDir ?? 'labels', `${base}${layout.labelExt ?? '.png'}`);
      return { id: entry, image, label };
    }
  }
}

/** The samples of a list file under a layout. */
export function listSamples(layout: DatasetLayout, listFile: string): Sample[] {
  return readList(listFile).map((entry) => samplePaths(layout, entry));
}
