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
export function resizeLabeled(labeled: number, target: number, seed: number, what = 'labeled'): number[] {
  const rng = new Random(deriveSeed(seed, `resize-${what}`));
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
  // Pad by repeating the order from its start (as torch's DistributedSampler), also when the pad is longer than the order.
  const padded = Array.from({ length: perReplica * worldSize }, (_, i) => order[i % order.length]);
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
  private readonly unlabeledOrder: number[];
  /** N_u: images of each kind per epoch (the unlabeled count unless the reference's n_sup says otherwise). */
  readonly epochSize: number;

  constructor(
    readonly labeledCount: number,
    readonly unlabeledCount: number,
    readonly batchSize: number,
    readonly seed: number,
    readonly shardOptions: ShardOptions = {},
    epochSize = unlabeledCount,
  ) {
    if (labeledCount < 1 || unlabeledCount < 1) throw new Error('semi-supervised training needs labeled and unlabeled samples');
    this.epochSize = epochSize;
    this.resized = resizeLabeled(labeledCount, epochSize, seed);
    this.unlabeledOrder = epochSize === unlabeledCount ? [...Array(unlabeledCount).keys()] : resizeLabeled(unlabeledCount, epochSize, seed, 'unlabeled');
  }

  /** Steps per epoch L. */
  get stepsPerEpoch(): number {
    const per = Math.ceil(this.epochSize / (this.shardOptions.worldSize ?? 1));
    return Math.floor(per / this.batchSize);
  }

  epoch(epoch: number): SemiEpochPlan {
    const labeled = new Random(deriveSeed(this.seed, 'labeled', epoch)).shuffle(this.resized);
    const unlabeled = new Random(deriveSeed(this.seed, 'unlabeled', epoch)).shuffle(this.unlabeledOrder);
    return {
      labeled: batches(shard(labeled, this.shardOptions), this.batchSize, true),
      unlabeled: batches(shard(unlabeled, this.shardOptions), this.batchSize, true),
    };
  }
}

/** §2.5: the labeled list only, reshuffled each epoch, last partial batch kept. */
export class SupervisedSampler {
  private readonly order: number[];
  /** Images per epoch: the labeled count, or the reference's n_sup (the list resized to it). */
  readonly count: number;

  constructor(labeledCount: number, readonly batchSize: number, readonly seed: number, readonly shardOptions: ShardOptions = {}, epochSize = labeledCount) {
    if (labeledCount < 1) throw new Error('supervised training needs labeled samples');
    this.count = epochSize;
    this.order = epochSize === labeledCount ? [...Array(labeledCount).keys()] : resizeLabeled(labeledCount, epochSize, seed, 'supervised');
  }

  /** Batches epoch() gives: a last batch of one image is folded into the one before. */
  get stepsPerEpoch(): number {
    const perReplica = Math.ceil(this.count / (this.shardOptions.worldSize ?? 1));
    const full = Math.ceil(perReplica / this.batchSize);
    return full > 1 && this.batchSize > 1 && perReplica % this.batchSize === 1 ? full - 1 : full;
  }

  epoch(epoch: number): number[][] {
    const order = new Random(deriveSeed(this.seed, 'supervised', epoch)).shuffle(this.order);
    const out = batches(shard(order, this.shardOptions), this.batchSize, false);
    // A last batch of one image cannot train BatchNorm: it joins the batch before it.
    if (out.length > 1 && this.batchSize > 1 && out[out.length - 1].length === 1) out[out.length - 2].push(...(out.pop() as number[]));
    return out;
  }
}
