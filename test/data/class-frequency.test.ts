import path from 'path';
import { classFrequencies, medianFrequencyWeights } from '../../lib/data/class-frequency';
import { CAMVID, writeIndexPng } from '../helpers/datasets';
import { tempDir } from '../helpers/temp';
import { datasetInfo, listSamples } from '../../lib/data/datasets';

describe('median-frequency class weights', () => {
  test('counts real label PNGs and weighs each class by median freq / freq (freq over the images where it appears)', async () => {
    const dir = tempDir('freq');
    // 4 classes, ignore 255. Image a: 6 px of 0, 2 of 1, 2 ignored. Image b: 5 of 0, 3 of 2, 2 of 1.
    // Class 3 never appears.
    const a = Uint8Array.from([0, 0, 0, 0, 0, 0, 1, 1, 255, 255]);
    const b = Uint8Array.from([0, 0, 0, 0, 0, 2, 2, 2, 1, 1]);
    writeIndexPng(path.join(dir, 'a.png'), a, 5, 2);
    writeIndexPng(path.join(dir, 'b.png'), b, 5, 2);
    const samples = ['a', 'b'].map((id) => ({ id, image: '', label: path.join(dir, `${id}.png`) }));
    const f = await classFrequencies(samples, 4, {}, 1);
    expect(f.pixels).toEqual([11, 4, 3, 0]);
    // Labelled pixels of the images each class is in: a has 8, b 10.
    expect(f.imagePixels).toEqual([18, 18, 10, 0]);
    // freq: 11/18, 4/18, 3/10; median of the three present: 0.3.
    const w = medianFrequencyWeights(f);
    expect(w[0]).toBeCloseTo(0.3 / (11 / 18), 12);
    expect(w[1]).toBeCloseTo(0.3 / (4 / 18), 12);
    expect(w[2]).toBeCloseTo(1, 12);
    expect(w[3]).toBe(1);
    // An even number of present classes takes the mean of the middle two.
    expect(medianFrequencyWeights({ pixels: [1, 3, 0], imagePixels: [4, 4, 0] })).toEqual([2, 2 / 3, 1]);
    expect(() => medianFrequencyWeights({ pixels: [0, 0], imagePixels: [0, 0] })).toThrow(/no pixel of any class/);
  });

  test('CamVid 1/8 labeled split: the small classes weigh most, as in SegNet (void is not counted)', async () => {
    const info = datasetInfo('camvid', 11);
    const samples = listSamples({ kind: 'camvid', root: CAMVID }, path.join(CAMVID, 'splits/46/labeled.txt'));
    expect(samples).toHaveLength(46);
    const w = medianFrequencyWeights(await classFrequencies(samples, 11, info.labelOptions));
    // Sky, Building and Road below 1, Pole, Sign, Pedestrian and Bicyclist above 1 (SegNet's
    // full-train weights: 0.58, 0.44, 2.6, 0.31, ..., 2.1, 3.3, 3.6 roughly).
    for (const c of [0, 1, 3]) expect(w[c]).toBeLessThan(1);
    for (const c of [2, 6, 9, 10]) expect(w[c]).toBeGreaterThan(1);
  });
});
