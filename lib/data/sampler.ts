/**
 * Which samples each step sees (u2pl-method.md §2.4, §2.5): for semi-supervised training the
 * labeled list is resized once (seeded) to the unlabeled count, both are reshuffled every epoch,
 * sharded across replicas and batched with drop-last. Everything is a pure function of
 * (seed, epoch, rank), so a resumed run sees exactly the batches it would have seen.
 */
import { deriveSeed, Random } from './random';

export interface ShardOptions {
  rank?: number;
  worldSize?: number;
}

/** §2.4: the labeled list concatenated ceil(N_u / n_l) times, N_u entries drawn without replacement. */
export function resizeLabeled(labeled: number, target: number, seed: number): number[] {
  const rng = new Random(deriveSeed(seed, 'resize-labeled'));
  if (labeled >= target) return rng.shuffle([...Array(labeled).keys()]).slice(0, target);
  const repeated: number[] = [];
  const times = Math.ceil(target / labeled);
  for (let t = 0; t < times; t++) for (let i = 0; i < labeled; i++) repeated.push(i);
  return rng.shuffle(repeated).slice(0, target);
}

/** Replica `rank`'s share of an epoch order: padded to a multiple of worldSize, then strided. */
export function shard<T>(order: T[], { rank = 0, worldSize = 1 }: ShardOptions): T[] {
  if (worldSize === 1) return order;
  const perReplica = Math.ceil(order.length / worldSize);
  const padded = order.concat(order.slice(0, perReplica * worldSize - order.length));
  return padded.filter((_, i) => i % worldSize === rank);
}

export function batches<T>(items: T[], batchSize: number, dropLast: boolean): T[][] {
  const out: T[][] = [];
  for (let i = 0; i + (dropLast ? batchSize : 1) <= items.length; i += batchSize) out.push(items.slice(i, i + batchSize));
  return out;
}

export interface SemiEpochPlan {
  labeled: number[][];
  unlabeled: number[][];
}

export class SemiSupervisedSampler {
  private readonly resized: number[];

  constructor(
    readonly labeledCount: number,
    readonly unlabeledCount: number,
    readonly batchSize: number,
    readonly seed: number,
    readonly shardOptions: ShardOptions = {},
  ) {
    if (labeledCount < 1 || unlabeledCount < 1) throw new Error('semi-supervised training needs labeled and unlabeled samples');
    this.resized = resizeLabeled(labeledCount, unlabeledCount, seed);
  }

  /** Steps per epoch L. */
  get stepsPerEpoch(): number {
    const per = Math.ceil(this.unlabeledCount / (this.shardOptions.worldSize ?? 1));
    return Math.floor(per / this.batchSize);
  }

  epoch(epoch: number): SemiEpochPlan {
    const labeled = new Random(deriveSeed(this.seed, 'labeled', epoch)).shuffle(this.resized);
    const unlabeled = new Random(deriveSeed(this.seed, 'unlabeled', epoch)).shuffle([...Array(this.unlabeledCount).keys()]);
    return {
      labeled: batches(shard(labeled, this.shardOptions), this.batchSize, true),
      unlabeled: batches(shard(unlabeled, this.shardOptions), this.batchSize, true),
    };
  }
}

/** §2.5: the labeled list only, reshuffled each epoch, last partial batch kept. */
export class SupervisedSampler {
  constructor(readonly count: number, readonly batchSize: number, readonly seed: number, readonly shardOptions: ShardOptions = {}) {
    if (count < 1) throw new Error('supervised training needs labeled samples');
  }

  get stepsPerEpoch(): number {
    return Math.ceil(Math.ceil(this.count / (this.shardOptions.worldSize ?? 1)) / this.batchSize);
  }

  epoch(epoch: number): number[][] {
    const order = new Random(deriveSeed(this.seed, 'supervised', epoch)).shuffle([...Array(this.count).keys()]);
    const out = batches(shard(order, this.shardOptions), this.batchSize, false);
    // A last batch of one image cannot train BatchNorm: it joins the batch before it.
    if (out.length > 1 && out[out.length - 1].length === 1) out[out.length - 2].push(...(out.pop() as number[]));
    return out;
  }
}
