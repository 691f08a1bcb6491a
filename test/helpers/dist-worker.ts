/**
 * One rank (or the single process) of the data-parallel equivalence tests, run as its own process:
 *   ts-node dist-worker.ts '{"rank":0,"world":2,"port":29571,"phase":"supervised","batches":"...","out":"..."}'
 * It joins the process group (world > 1), builds the trainer from `trainer` options, optionally
 * loads `init`, runs one step per batch (its rank's rows of each), and saves its whole state (every
 * rank writes its own file: `out`.rank<r>.pth) and the class statistics of its steps (`out`.rank<r>.class-stats.json).
 */
import fs from 'fs';
import { readCheckpoint } from '../../lib/checkpoint';
import { AddonStepInputs, AddonStepResult, AddonTrainerOptions, native, Tensor } from '../../lib/native';

interface Args {
  rank: number;
  world: number;
  port: number;
  phase: AddonStepInputs['phase'];
  trainer: AddonTrainerOptions;
  batches: string;
  /** Rows of each batch this process takes: its rank's share (default), all of them, or part `part` of `parts`. */
  rows?: 'share' | 'all';
  part?: number;
  parts?: number;
  init?: string;
  saveInit?: string;
  out: string;
  lr?: number;
  /** nccl: one GPU per rank (device cuda:<rank>). */
  backend?: 'gloo' | 'nccl';
  /** The batches to run: from index `first` (default 0); steps are numbered by batch index. */
  first?: number;
  /** Also save every rank's state after the step of this batch index, as `out`.after<i>.rank<r>.pth. */
  saveAfter?: number;
}

type Batch = { labeled: Tensor<Float32Array>; labels: Tensor<Uint8Array>; unlabeled?: Tensor<Float32Array> };

function rows<T extends Float32Array | Uint8Array>(t: Tensor<T>, from: number, to: number): Tensor<T> {
  const per = t.data.length / t.shape[0];
  return { data: t.data.slice(from * per, to * per) as T, shape: [to - from, ...t.shape.slice(1)] };
}

async function main(): Promise<void> {
  const a = JSON.parse(process.argv[2]) as Args;
  native().setThreads(1);
  const processGroup = a.world > 1 ? await native().joinProcessGroup({ backend: a.backend ?? 'gloo', rank: a.rank, worldSize: a.world, masterPort: a.port, timeoutMs: 60000 }) : undefined;
  const device = a.backend === 'nccl' ? `cuda:${a.rank}` : 'cpu';
  const trainer = new (native().AddonTrainer)({ ...a.trainer, device, model: { ...a.trainer.model, device }, processGroup });
  if (a.init) await trainer.load(a.init);
  if (a.saveInit) await trainer.save(a.saveInit);
  const { batches } = (await readCheckpoint(a.batches)) as { batches: Batch[] };
  const classStats: Pick<AddonStepResult, 'labeledClassPixels' | 'teacherClassMass' | 'pseudoClassPixels'>[] = [];
  const first = a.first ?? 0;
  for (const [i, b] of batches.slice(first).entries()) {
    const step = first + i;
    const n = b.labeled.shape[0];
    const [part, parts] = a.parts ? [a.part ?? 0, a.parts] : a.rows === 'all' ? [0, 1] : [a.rank, a.world];
    const [from, to] = [(part * n) / parts, ((part + 1) * n) / parts];
    let unlabeledImages = b.unlabeled ? rows(b.unlabeled, from, to) : undefined;
    let ael: Partial<AddonStepInputs> = {};
    if (a.phase === 'ael' && unlabeledImages) {
      // The plan keeps one of the rank's two unlabeled rows; the other stands in for its bank image.
      const plan = await trainer.aelPlan(1000 * a.rank + step);
      const keep = plan.keep[0];
      unlabeledImages = { data: new Float32Array([...rows(unlabeledImages, keep, keep + 1).data, ...rows(unlabeledImages, 1 - keep, 2 - keep).data]), shape: unlabeledImages.shape };
      ael = { plan, unlabeledIndex: [2 * a.rank + keep, plan.bankImages[0]], consistencyPercent: 20, contrastiveOn: true, nextPlanSeed: 0 };
    }
    const r = await trainer.step({
      phase: a.phase, labeledImages: rows(b.labeled, from, to), labels: rows(b.labels, from, to), unlabeledImages,
      lrBackbone: a.lr ?? 0.01, lrHead: (a.lr ?? 0.01) * 10, emaDecay: 0.9, dropPercentile: 80, alpha: 20, ...ael,
    });
    if (!Number.isFinite(r.loss)) throw new Error(`loss ${r.loss}`);
    if (step === a.saveAfter) await trainer.save(`${a.out}.after${step}.rank${a.rank}.pth`, {}, { everyRank: true });
    classStats.push({ labeledClassPixels: r.labeledClassPixels, teacherClassMass: r.teacherClassMass, pseudoClassPixels: r.pseudoClassPixels });
  }
  await trainer.save(`${a.out}.rank${a.rank}.pth`, {}, { everyRank: true });
  fs.writeFileSync(`${a.out}.rank${a.rank}.class-stats.json`, JSON.stringify(classStats));
  trainer.dispose();
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
