/**
 * The distributed bench's worker: joins a Gloo group (world > 1) and either all-reduces a tensor
 * the size of R50 DeepLabv3+'s gradients, or runs U2PL steps of the camvid-small network on its
 * share of a global batch. Prints rank 0's seconds as JSON.
 *   node dist-bench/bench/child/dist-step.js '{"rank":0,"world":2,"port":29600,"mode":"allreduce"|"step",...}'
 */
import { native } from '../../lib/native';

interface Args { rank: number; world: number; port: number; threads: number; mode: 'allreduce' | 'step'; elements: number; global: number; runs: number; warmup: number }

function random(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) out[i] = ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
  return out;
}

async function main(): Promise<void> {
  const a = JSON.parse(process.argv[2]) as Args;
  native().setThreads(a.threads);
  const group = a.world > 1 ? await native().joinProcessGroup({ rank: a.rank, worldSize: a.world, masterPort: a.port }) : undefined;
  const seconds: number[] = [];
  if (a.mode === 'allreduce') {
    const grads = { data: random(a.elements, 3), shape: [a.elements] };
    for (let i = 0; i < a.warmup + a.runs; i++) {
      const t0 = process.hrtime.bigint();
      await group?.allReduceSum(grads);
      if (i >= a.warmup) seconds.push(Number(process.hrtime.bigint() - t0) / 1e9);
    }
  } else {
    const trainer = new (native().AddonTrainer)({
      model: { depth: 50, numClasses: 11, multiGrid: true, replaceStrideWithDilation: [false, false, true], dilations: [6, 12, 18], zeroInitResidual: true },
      semi: true, seed: 0, mix: 'cutmix', unsupervised: { weight: 1 }, contrastive: { weight: 1 }, processGroup: group,
    });
    const per = a.global / a.world, size = 161;
    const images = (seed: number) => ({ data: random(per * 3 * size * size, seed + a.rank), shape: [per, 3, size, size] });
    const labels = { data: Uint8Array.from(random(per * size * size, 11 + a.rank), (v) => Math.floor((v + 1) * 5.5) % 11), shape: [per, size, size] };
    const phases: Record<string, number> = {};
    for (let i = 0; i < a.warmup + a.runs; i++) {
      const t0 = process.hrtime.bigint();
      const r = await trainer.step({ phase: 'semi', labeledImages: images(1), labels, unlabeledImages: images(2), lrBackbone: 0.01, lrHead: 0.1, emaDecay: 0.99, dropPercentile: 83, alpha: 17 });
      if (i >= a.warmup) {
        seconds.push(Number(process.hrtime.bigint() - t0) / 1e9);
        for (const [k, v] of Object.entries(r.phases)) phases[k] = (phases[k] ?? 0) + v / a.runs;
      }
    }
    trainer.dispose();
    if (a.rank === 0 && process.env.U2PL_BENCH_PHASES) process.stderr.write(`${JSON.stringify(phases)}\n`);
  }
  if (a.rank === 0) process.stdout.write(`${JSON.stringify({ seconds })}\n`);
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
