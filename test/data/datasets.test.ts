import fs from 'fs';
import path from 'path';
import { datasetInfo, listSamples, readList } from '../../lib/data/datasets';
import { checkLabelValues, readImage, readLabel, DataError } from '../../lib/data/image-io';
import { checkSamples } from '../../lib/data/prepare';
import { labelIdsToTrainIds, prepareCityscapes } from '../../lib/data/cityscapes';
import { CAMVID, FACADE, makeCityscapes, makeVoc, synthetic, writeIndexPng, writeRgb } from '../helpers/datasets';
import { tempDir } from '../helpers/temp';

describe('CamVid (SegNet layout, real files)', () => {
  const layout = { kind: 'camvid' as const, root: CAMVID };
  const info = datasetInfo('camvid', 11);

  test('the fixed 1/8 split: 46 labeled + 321 unlabeled, labels beside images in trainannot/', () => {
    const labeled = listSamples(layout, path.join(CAMVID, 'splits/46/labeled.txt'));
    const unlabeled = listSamples(layout, path.join(CAMVID, 'splits/46/unlabeled.txt'));
    expect(labeled).toHaveLength(46);
    expect(unlabeled).toHaveLength(321);
    expect(labeled[0].label).toBe(path.join(CAMVID, 'trainannot', path.basename(labeled[0].image)));
    for (const s of [...labeled, ...unlabeled]) expect(fs.existsSync(s.image) && fs.existsSync(s.label)).toBe(true);
    // SegNet's own lists (with /SegNet/CamVid/ prefixes and label columns) read the same way.
    expect(readList(path.join(CAMVID, 'train.txt'))[0]).toBe('train/0001TP_006690.png');
  });

  test('images decode to 480x360 RGB; labels to indices 0-10 with void 11 as ignore', async () => {
    const s = listSamples(layout, path.join(CAMVID, 'splits/val.txt'))[0];
    const image = await readImage(s.image);
    expect([image.width, image.height, image.data.length]).toEqual([480, 360, 480 * 360 * 3]);
    const label = await readLabel(s.label, info.labelOptions);
    const values = new Set(label.data);
    expect([...values].every((v) => v <= 10 || v === 255)).toBe(true);
    expect(values.has(255)).toBe(true); // this image has void pixels
    const raw = await readLabel(s.label);
    expect(new Set(raw.data).has(11)).toBe(true);
    expect(() => checkLabelValues(s.label, raw, 11, 255)).toThrow('label value 11');
  });

  test('checkSamples summarises the validation set: sizes and class frequencies', async () => {
    const samples = listSamples(layout, path.join(CAMVID, 'splits/val.txt')).slice(0, 10);
    const summary = await checkSamples(samples, info, 11, 255, true);
    expect(summary.problems).toEqual([]);
    expect(summary.sizes).toEqual({ '480x360': 10 });
    expect(summary.frequencies.pixels.reduce((a, b) => a + b, 0) + summary.ignorePixels).toBe(10 * 480 * 360);
    expect(summary.frequencies.pixels[3]).toBeGreaterThan(0); // road
  });
});

describe('LabelMeFacade (colour labels, real files)', () => {
  const palette: [number, number, number][] = [[0, 0, 0], [128, 0, 0], [128, 0, 128], [128, 128, 0], [128, 128, 128], [128, 64, 0], [0, 128, 128], [0, 128, 0], [0, 0, 128]];

  test('16-bit RGBA colour labels map to the 9 classes through the palette', async () => {
    const samples = listSamples({ kind: 'folder', root: FACADE, labelDir: 'labels', palette }, path.join(FACADE, 'train.txt'));
    expect(samples).toHaveLength(100); // train.txt has no trailing newline
    const summary = await checkSamples(samples.slice(0, 8), datasetInfo('folder', 9, { palette }), 9, 255, true);
    expect(summary.problems).toEqual([]);
    expect(summary.frequencies.pixels.filter((n) => n > 0).length).toBeGreaterThan(3);
  });

  test('without a palette a colour label is an error naming the file', async () => {
    const s = listSamples({ kind: 'folder', root: FACADE }, path.join(FACADE, 'train.txt'))[0];
    await expect(readLabel(s.label)).rejects.toThrow(`${s.label}: is a colour (4-channel) image where a single-channel index label is expected`);
  });
});

describe('VOC and Cityscapes layouts (generated)', () => {
  test('VOC: ids -> JPEGImages/*.jpg and SegmentationClassAug/*.png; palette PNGs read as indices, never colours', async () => {
    const root = tempDir('voc');
    await makeVoc(root, ['2007_000032', '2007_000039']);
    const samples = listSamples({ kind: 'voc', root }, path.join(root, 'list.txt'));
    expect(samples.map((s) => path.relative(root, s.image))).toEqual(['JPEGImages/2007_000032.jpg', 'JPEGImages/2007_000039.jpg']);
    const label = await readLabel(samples[1].label);
    const { label: expected } = synthetic(40, 30, 21, 1);
    expected[0] = 255;
    expect(Array.from(label.data)).toEqual(Array.from(expected));
    const summary = await checkSamples(samples, datasetInfo('voc', 21), 21, 255, true);
    expect(summary.problems).toEqual([]);
  });

  test('Cityscapes: prepare-cityscapes writes trainIds from labelIds, then the list resolves', async () => {
    const root = tempDir('cityscapes');
    await makeCityscapes(root, ['aachen_000000_000019', 'bochum_000000_000313']);
    expect(await prepareCityscapes(root)).toBe(2);
    expect(await prepareCityscapes(root)).toBe(0); // existing files are kept
    const samples = listSamples({ kind: 'cityscapes', root }, path.join(root, 'list.txt'));
    expect(samples[0].label).toBe(path.join(root, 'gtFine/train/aachen/aachen_000000_000019_gtFine_labelTrainIds.png'));
    const label = await readLabel(samples[0].label);
    expect([...new Set(label.data)].sort((a, b) => a - b)).toEqual([0, 1, 13, 18, 255]);
    expect(Array.from(labelIdsToTrainIds(new Uint8Array([7, 8, 11, 33, 0, 34])))).toEqual([0, 1, 2, 18, 255, 255]);
  });
});

describe('bad input: each problem names the file', () => {
  const classes = 4;
  async function dataset(mutate: (root: string) => Promise<void> | void) {
    const root = tempDir('bad');
    for (const name of ['a', 'b']) {
      const { rgb, label } = synthetic(16, 12, classes, name.charCodeAt(0));
      await writeRgb(path.join(root, 'images', `${name}.png`), rgb, 16, 12);
      writeIndexPng(path.join(root, 'labels', `${name}.png`), label, 16, 12);
    }
    fs.writeFileSync(path.join(root, 'list.txt'), 'images/a.png\nimages/b.png\n');
    await mutate(root);
    const samples = listSamples({ kind: 'folder', root, labelDir: 'labels' }, path.join(root, 'list.txt'));
    const summary = await checkSamples(samples, datasetInfo('folder', classes), classes, 255, true);
    return { root, problems: summary.problems.map((p) => `${path.relative(root, p.file)}: ${p.problem}`) };
  }

  test('a missing image', async () => {
    const { problems } = await dataset((r) => fs.rmSync(path.join(r, 'images/b.png')));
    expect(problems).toEqual(['images/b.png: file not found']);
  });
  test('an unreadable image', async () => {
    const { problems } = await dataset((r) => fs.writeFileSync(path.join(r, 'images/a.png'), 'not an image'));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^images\/a\.png: not a readable image/);
  });
  test('a label with values outside [0, C) and not ignore', async () => {
    const { problems } = await dataset((r) => writeIndexPng(path.join(r, 'labels/a.png'), new Uint8Array(16 * 12).fill(9), 16, 12));
    expect(problems).toEqual(['labels/a.png: label value 9 at (0, 0) is outside [0, 4) and is not the ignore label 255']);
  });
  test('a colour label where an index label is expected', async () => {
    const { problems } = await dataset((r) => writeRgb(path.join(r, 'labels/b.png'), new Uint8Array(16 * 12 * 3), 16, 12));
    expect(problems).toEqual(['labels/b.png: is a colour (3-channel) image where a single-channel index label is expected; give the dataset a palette to read colour labels']);
  });
  test('an image/label size mismatch', async () => {
    const { problems } = await dataset((r) => writeIndexPng(path.join(r, 'labels/a.png'), new Uint8Array(8 * 8), 8, 8));
    expect(problems).toEqual(['labels/a.png: label is 8x8 but its image a.png is 16x12']);
  });
  test('a missing label and an empty list', async () => {
    const { problems } = await dataset((r) => fs.rmSync(path.join(r, 'labels/a.png')));
    expect(problems).toEqual(['labels/a.png: label file not found']);
    const root = tempDir('empty');
    fs.writeFileSync(path.join(root, 'list.txt'), '\n\n');
    expect(() => readList(path.join(root, 'list.txt'))).toThrow(new DataError(path.join(root, 'list.txt'), 'the list is empty'));
  });
});
