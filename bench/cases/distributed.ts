/**
 * Data parallel on this machine (Gloo, 2 ranks on 127.0.0.1): the all-reduce of R50 DeepLabv3+'s
 * gradients (what each step adds), and the camvid-small U2PL step on 2 ranks (1 thread each, 2+2
 * images per rank) against one process (2 threads) on the same global batch of 4+4.
 */
import { spawn } from 'child_process';
import path from 'path';
import { native, packageRoot } from '../../lib/native';
import { freePort } from '../../lib/cli/launch';
import { BenchContext, record } from '../harness';

const R50_GRADIENTS = 45_465_291;  // parameters of the camvid-small student (R50 deep stem, OS16, 11 classes, rep head)

async function ranks(world: number, args: Record<string, unknown>): Promise<number[]> {
  const port = await freePort();
  const script = path.join(packageRoot(), 'dist-bench/bench/child/dist-step.js');
  const outs = await Promise.all(Array.from({ length: world }, (_, rank) => new Promise<string>((resolve, reject) => {
    const child = spawn(process.execPath, [script, JSON.stringify({ ...args, rank, world, port })], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`rank ${rank}: ${err}`))));
  })));
  return (JSON.parse(outs[0].trim()) as { seconds: number[] }).seconds;
}

export async function benchDistributed(ctx: BenchContext): Promise<void> {
  if (!native().info().distributed.includes('gloo')) {
    process.stdout.write('# distributed: this build has no Gloo (apt-get install libgloo-dev, npx u2pl-setup); skipped\n');
    return;
  }
  const runs = ctx.quick ? 3 : 6;
  const reduce = await ranks(2, { mode: 'allreduce', elements: R50_GRADIENTS, threads: 1, runs, warmup: 1 });
  record(ctx, 'distributed.allreduce', reduce, { backend: 'gloo', ranks: 2, floats: R50_GRADIENTS, mb: Math.round((R50_GRADIENTS * 4) / 2 ** 20) });
  const stepArgs = { mode: 'step', global: 4, runs: ctx.quick ? 2 : 4, warmup: 2 };
  const two = record(ctx, 'distributed.step.u2pl', await ranks(2, { ...stepArgs, threads: Math.max(1, Math.floor(ctx.threads / 2)) }),
    { recipe: 'camvid-small', global_batch: '4+4', ranks: 2, per_rank: '2+2', precision: 'fp32' });
  const one = record(ctx, 'distributed.step.u2pl', await ranks(1, { ...stepArgs, threads: ctx.threads }),
    { recipe: 'camvid-small', global_batch: '4+4', ranks: 1, per_rank: '4+4', precision: 'fp32' });
  two.vs_one_process = Number((one.median_s / two.median_s).toFixed(3));
}
