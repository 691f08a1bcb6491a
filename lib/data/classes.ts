/** Class names and colour palettes of the supported datasets (u2pl-method.md §2.1, §13.5). */

export type RGB = [number, number, number];

export const VOC_CLASSES = [
  'background', 'aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat', 'chair', 'cow',
  'diningtable', 'dog', 'horse', 'motorbike', 'person', 'pottedplant', 'sheep', 'sofa', 'train', 'tvmonitor',
];

export const CITYSCAPES_CLASSES = [
  'road', 'sidewalk', 'building', 'wall', 'fence', 'pole', 'traffic light', 'traffic sign', 'vegetation',
  'terrain', 'sky', 'person', 'rider', 'car', 'truck', 'bus', 'train', 'motorcycle', 'bicycle',
];

export const CITYSCAPES_PALETTE: RGB[] = [
  [128, 64, 128], [244, 35, 232], [70, 70, 70], [102, 102, 156], [190, 153, 153], [153, 153, 153], [250, 170, 30],
  [220, 220, 0], [107, 142, 35], [152, 251, 152], [70, 130, 180], [220, 20, 60], [255, 0, 0], [0, 0, 142], [0, 0, 70],
  [0, 60, 100], [0, 80, 100], [0, 0, 230], [119, 11, 32],
];

export const CAMVID_CLASSES = ['sky', 'building', 'pole', 'road', 'pavement', 'tree', 'signsymbol', 'fence', 'car', 'pedestrian', 'bicyclist'];

export const CAMVID_PALETTE: RGB[] = [
  [128, 128, 128], [128, 0, 0], [192, 192, 128], [128, 64, 128], [60, 40, 222], [128, 128, 0], [192, 128, 128],
  [64, 64, 128], [64, 0, 128], [64, 64, 0], [0, 128, 192],
];

/** The VOC colour map: bits of the class index spread over R, G, B from the top bit down. */
export function vocColour(index: number): RGB {
  const c: RGB = [0, 0, 0];
  let j = index;
  for (let i = 0; j > 0; i++, j >>= 3) {
    c[0] |= ((j >> 0) & 1) << (7 - i);
    c[1] |= ((j >> 1) & 1) << (7 - i);
    c[2] |= ((j >> 2) & 1) << (7 - i);
  }
  return c;
}

export const VOC_PALETTE: RGB[] = VOC_CLASSES.map((_, i) => vocColour(i));

/** Distinct colours for datasets without a palette. */
export function defaultPalette(classes: number): RGB[] {
  return Array.from({ length: classes }, (_, i) => vocColour(i + 1));
}
