import fs from 'fs';
import path from 'path';
import { loadConfig } from '../../lib/config/config';
import * as imageIo from '../../lib/data/image-io';
import { DECODE_CACHE, preflight } from '../../lib/train/train';
import { prepareData } from '../../lib/data/prepare';
import { AddonProcessGroup, NativeTensor, TypedArray } from '../../lib/native';
import { tinyConfig, writeExperiment } from '../helpers/experiment';

/** R ranks of one process: allGather waits until every rank has given its tensor (what c10d does across processes). */
function fakeGroups(ranks: number): AddonProcessGroup[] {
  const given: NativeTensor[] = [];
  let release: () => void = () => undefined;
  const all = new Promise<void>((resolve) => { release = resolve; });
  return Array.from({ length: ranks }, (_, rank) => ({
    rank: () => rank,
    worldSize: () => ranks,
    allReduceSum: () => { throw new Error('not used by the data check'); },
    barrier: async () => undefined,
    allGather: async <T extends TypedArray>(t: { data: T; shape: number[] }) => {
      given[rank] = { ...t, dtype: 'uint8' } as NativeTensor;
      if (given.filter(Boolean).length === ranks) release();
      await all;
      return given as NativeTensor<T>[];
    },
  }));
}

// The data check of a data-parallel run: each rank decodes its share of every list; all of them learn the whole verdict.
describe('data check shared out over the ranks', () => {
  afterEach(() => jest.restoreAllMocks());

  test('each rank decodes 1/R of the images; the frequencies, warnings and decode cache are those of one process', async () => {
    const dir = writeExperiment(tinyConfig(true));
    const c = loadConfig(dir);
    const data = await prepareData(c.dataset, c.net.model.numClasses);
    fs.mkdirSync(c.saver.snapshotDir, { recursive: true });  // train() makes it; the cache goes there
    const single = await preflight(c, data);
    fs.rmSync(path.join(c.saver.snapshotDir, DECODE_CACHE), { force: true });
    const read = jest.spyOn(imageIo, 'readImage');
    const groups = fakeGroups(2);
    const logs: string[][] = [[], []];
    const results = await Promise.all(groups.map((g, r) => preflight(c, data, (m) => logs[r].push(m), g)));
    const total = data.labeled.length + data.unlabeled.length + data.val.length;
    expect(read).toHaveBeenCalledTimes(total);  // each image once, over both ranks
    const decodedBy = (r: number) => read.mock.calls.filter(([file]) => [data.labeled, data.unlabeled, data.val].some((list) => list.some((s, i) => s.image === file && i % 2 === r))).length;
    expect([decodedBy(0), decodedBy(1)]).toEqual([Math.ceil(data.labeled.length / 2) + Math.ceil(data.unlabeled.length / 2) + Math.ceil(data.val.length / 2), total - decodedBy(0)]);
    expect(results[0]).toEqual(single);
    expect(results[1]).toEqual(single);
    const cache = JSON.parse(fs.readFileSync(path.join(c.saver.snapshotDir, DECODE_CACHE), 'utf8')) as Record<string, unknown>;
    expect(Object.keys(cache)).toHaveLength(new Set([...data.labeled, ...data.unlabeled, ...data.val].map((s) => s.image)).size);
    // A second check reads the cache every rank's findings went into: nothing is decoded again.
    read.mockClear();
    await Promise.all(fakeGroups(2).map((g) => preflight(c, data, () => undefined, g)));
    expect(read).not.toHaveBeenCalled();
  }, 60000);

  test('a problem in one rank\'s share stops every rank; rank 0 names the file', async () => {
    const dir = writeExperiment(tinyConfig(true));
    const c = loadConfig(dir);
    const data = await prepareData(c.dataset, c.net.model.numClasses);
    const broken = data.unlabeled[1].image;  // index 1: rank 1's share
    fs.writeFileSync(broken, 'not an image');
    const results = await Promise.allSettled(fakeGroups(2).map((g) => preflight(c, data, () => undefined, g)));
    expect(results[0].status).toBe('rejected');
    expect(String((results[0] as PromiseRejectedResult).reason.message)).toContain(`1 dataset problem(s) found before training:\n  ${broken}:`);
    expect(String((results[1] as PromiseRejectedResult).reason.message)).toBe('the data check found problems (rank 0\'s output lists them); rank 1 stops too');
  }, 60000);
});
