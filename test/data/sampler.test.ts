import { makeSplit } from '../../lib/data/splits';
import { resizeLabeled, SemiSupervisedSampler, shard, SupervisedSampler } from '../../lib/data/sampler';

describe('epoch composition (§2.4, §2.5)', () => {
  test('the labeled list is resized to N_u: each entry ceil or floor(N_u / n_l) times', () => {
    const r = resizeLabeled(46, 321, 2);
    expect(r).toHaveLength(321);
    const counts = new Array(46).fill(0);
    for (const i of r) counts[i]++;
    // Drawn without replacement from the list repeated ceil(321/46) = 7 times.
    expect(Math.max(...counts)).toBeLessThanOrEqual(7);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(321);
    expect(resizeLabeled(46, 321, 2)).toEqual(r);
    expect(resizeLabeled(46, 321, 3)).not.toEqual(r);
    expect(new Set(resizeLabeled(100, 30, 1)).size).toBe(30);
  });

  test('semi: L = floor(N_u / B) steps, drop-last, reshuffled per epoch, deterministic', () => {
    const s = new SemiSupervisedSampler(46, 321, 4, 2);
    expect(s.stepsPerEpoch).toBe(80);
    const e0 = s.epoch(0);
    expect(e0.labeled).toHaveLength(80);
    expect(e0.unlabeled).toHaveLength(80);
    expect(e0.unlabeled.every((b) => b.length === 4)).toBe(true);
    expect(new Set(e0.unlabeled.flat()).size).toBe(320); // one pass over the unlabeled set
    expect(new SemiSupervisedSampler(46, 321, 4, 2).epoch(0)).toEqual(e0);
    expect(s.epoch(1).unlabeled).not.toEqual(e0.unlabeled);
  });

  test('supervised: the labeled list only, last partial batch kept (one image joins the batch before)', () => {
    const s = new SupervisedSampler(10, 4, 1);
    expect(s.epoch(0).map((b) => b.length)).toEqual([4, 4, 2]);
    expect(new SupervisedSampler(9, 4, 1).epoch(0).map((b) => b.length)).toEqual([4, 5]);
  });

  test('supervised: stepsPerEpoch is the number of batches epoch() gives, for every count and batch size', () => {
    for (let n = 1; n <= 40; n++) {
      for (let b = 1; b <= 9; b++) {
        for (const worldSize of [1, 2, 3]) {
          const s = new SupervisedSampler(n, b, 1, { rank: worldSize - 1, worldSize });
          expect([n, b, worldSize, s.epoch(0).length]).toEqual([n, b, worldSize, s.stepsPerEpoch]);
        }
      }
    }
  });

  test("the reference's n_sup sets the epoch size: N_u = labeled + unlabeled - n_sup, both lists resized to it", () => {
    const s = new SemiSupervisedSampler(46, 321, 2, 0, {}, 200);
    expect(s.stepsPerEpoch).toBe(100);
    const e = s.epoch(0);
    expect(new Set(e.unlabeled.flat()).size).toBe(200); // 200 distinct of the 321, drawn once for the run
    expect(new Set(s.epoch(1).unlabeled.flat())).toEqual(new Set(e.unlabeled.flat()));
    const more = new SemiSupervisedSampler(46, 321, 2, 0, {}, 500).epoch(0).unlabeled.flat();
    expect(more).toHaveLength(500);
    expect(Math.max(...more)).toBeLessThan(321); // drawn from the list repeated twice, without replacement
    const sup = new SupervisedSampler(46, 2, 0, {}, 92);
    const counts = new Array(46).fill(0);
    for (const i of sup.epoch(0).flat()) counts[i]++;
    expect(counts.every((n) => n === 2)).toBe(true);
  });

  test('sharding across replicas partitions a padded order', () => {
    const order = [...Array(10).keys()];
    const parts = [0, 1, 2].map((rank) => shard(order, { rank, worldSize: 3 }));
    expect(parts.map((p) => p.length)).toEqual([4, 4, 4]);
    expect(new Set(parts.flat()).size).toBe(10);
  });
});

describe('splits', () => {
  const entries = Array.from({ length: 100 }, (_, i) => `img_${i}`);
  test('a seeded split by count or fraction: disjoint, complete, in list order', () => {
    const s = makeSplit(entries, 12, 3);
    expect(s.labeled).toHaveLength(12);
    expect(s.unlabeled).toHaveLength(88);
    expect(new Set([...s.labeled, ...s.unlabeled]).size).toBe(100);
    expect(makeSplit(entries, 12, 3)).toEqual(s);
    expect(makeSplit(entries, 12, 4)).not.toEqual(s);
    expect(makeSplit(entries, 0.125, 3).labeled).toHaveLength(13);
    expect(() => makeSplit(entries, 100, 1)).toThrow('labeled amount must be a count in [1, 99]');
  });
});
