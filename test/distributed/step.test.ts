/**
 * Data parallel over c10d (Gloo, 2 processes on 127.0.0.1): the distributed step is the method,
 * not an approximation. Every process is bounded (a minute's collective timeout) and stops itself.
 */
import { spawn } from 'child_process';
import fs from 'fs';
import net from 'net';
import path from 'path';
import { readCheckpoint, writeCheckpoint } from '../../lib/checkpoint';
import { AddonModelOptions, AddonTrainerOptions, native } from '../../lib/native';
import { asNumbers, maxAbs, maxAbsDiff } from '../helpers/tensors';
import { tempDir } from '../helpers/temp';

type Obj = Record<string, any>;
const worker = path.join(__dirname, '../helpers/dist-worker.ts');
const tsNode = require.resolve('ts-node/dist/bin.js');
const haveGloo = native().info().distributed.includes('gloo');
const describeGloo = haveGloo ? describe : describe.skip;
if (!haveGloo) process.stdout.write('distributed tests skipped: this build has no Gloo (apt-get install libgloo-dev, then npm run setup)\n');

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** Runs one worker per rank (world 1: one process) and waits for all; rejects with their stderr. */
async function runRanks(world: number, args: Obj): Promise<void> {
  const port = await freePort();
  const runs = Array.from({ length: world }, (_, rank) => new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, [tsNode, '--transpile-only', worker, JSON.stringify({ ...args, rank, world, port })],
      { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, OMP_NUM_THREADS: '1' } });
    let err = '';
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    const guard = setTimeout(() => child.kill('SIGKILL'), 110000);
    child.on('exit', (code) => {
      clearTimeout(guard);
      if (code === 0) resolve();
      else reject(new Error(`rank ${rank} exited with ${code}:\n${err}`));
    });
  }));
  await Promise.all(runs);
}

const model: AddonModelOptions = {
  depth: 18, deepStem: false, replaceStrideWithDilation: [false, false, true], numClasses: 4, innerPlanes: 8, headPlanes: 8, dilations: [1, 2, 3], dropout: 0,
};

async function batches(dir: string, count: number, semi: boolean): Promise<string> {
  let seed = 7;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  const images = () => ({ data: Float32Array.from({ length: 4 * 3 * 32 * 32 }, () => rand() * 2 - 1), shape: [4, 3, 32, 32] });
  const list = Array.from({ length: count }, () => ({
    labeled: images(),
    labels: { data: Uint8Array.from({ length: 4 * 32 * 32 }, () => Math.floor(rand() * 4)), shape: [4, 32, 32] },  // no ignore: equal pixel counts per rank
    ...(semi ? { unlabeled: images() } : {}),
  }));
  const file = path.join(dir, 'batches.pth');
  await writeCheckpoint(file, { batches: list });
  return file;
}

function expectStatesClose(a: Obj, b: Obj, keys: string[], tolerance: number, only?: (name: string) => boolean): void {
  for (const key of keys) {
    for (const name of Object.keys(a[key])) {
      if (only && !only(name)) continue;
      const [x, y] = [asNumbers(a[key][name].data), asNumbers(b[key][name].data)];
      expect([key, name, x.length]).toEqual([key, name, y.length]);
      expect([key, name, maxAbsDiff(x, y) <= tolerance * Math.max(1, maxAbs(x))]).toEqual([key, name, true]);
    }
  }
}

const isParameter = (name: string) => !/running_|num_batches_tracked/.test(name);

describeGloo('data-parallel steps (Gloo, 2 ranks)', () => {
  test.each([
    ['supervised-only', 'supervised', false],
    ['warm-up (the teacher\'s statistics too)', 'warmup', true],
  ] as const)('%s: 2 ranks of batch 2 with SyncBN = 1 process of batch 4 with plain BN (weights and BN statistics)', async (_, phase, semi) => {
    const dir = tempDir('dist');
    const file = await batches(dir, 3, semi);
    const trainer: AddonTrainerOptions = { model: { ...model, repHead: false }, semi, seed: 3, momentum: 0.9, weightDecay: 1e-4 };
    await runRanks(1, { phase, trainer, batches: file, rows: 'all', out: path.join(dir, 'single') });
    await runRanks(2, { phase, trainer, batches: file, out: path.join(dir, 'dist') });
    const single = (await readCheckpoint(path.join(dir, 'single.rank0.pth'))) as Obj;
    const ranks = [0, 1].map((r) => readCheckpoint(path.join(dir, `dist.rank${r}.pth`)));
    const [r0, r1] = (await Promise.all(ranks)) as Obj[];
    const keys = semi ? ['model_state', 'teacher_state'] : ['model_state'];
    expectStatesClose(r0, single, keys, 2e-5);
    expectStatesClose(r0, r1, keys, 0);  // every rank holds the same network
  }, 240000);

  test('a U2PL step: the averaged gradient is the mean of what one process computes on each rank\'s half (its percentiles and draws)', async () => {
    const dir = tempDir('dist');
    const file = await batches(dir, 1, true);
    // lr 1, no momentum, no decay: weights after the step = before - gradient.
    const trainer: AddonTrainerOptions = {
      model: { ...model, repHead: false }, semi: true, seed: 5, momentum: 0, weightDecay: 0, mix: 'cutmix', syncBn: false,
      unsupervised: { weight: 1 },
    };
    const init = path.join(dir, 'init.pth');
    await runRanks(2, { phase: 'semi', trainer, batches: file, out: path.join(dir, 'dist'), saveInit: init, lr: 1 });
    // One process per rank's half, from the same weights and that rank's generators.
    const start = (await readCheckpoint(init)) as Obj;
    for (const r of [0, 1]) {
      const mine = { ...start, rng_state: { ...start.rng_state.ranks[r] } };
      await writeCheckpoint(path.join(dir, `init${r}.pth`), mine);
      await runRanks(1, { phase: 'semi', trainer, batches: file, init: path.join(dir, `init${r}.pth`), out: path.join(dir, `half${r}`),
        part: r, parts: 2, lr: 1 });
    }
    const dist = (await readCheckpoint(path.join(dir, 'dist.rank0.pth'))) as Obj;
    // Without SyncBN each rank's BN statistics come from its own half; rank 0's are broadcast after
    // the step (as DDP's broadcast_buffers), so that validation and checkpoints see one network.
    const dist1 = (await readCheckpoint(path.join(dir, 'dist.rank1.pth'))) as Obj;
    const buffers = (name: string) => /running_/.test(name);
    expect(Object.keys(dist.model_state).filter(buffers).length).toBeGreaterThan(0);
    expectStatesClose(dist, dist1, ['model_state', 'teacher_state'], 0, buffers);
    const halves = (await Promise.all([0, 1].map((r) => readCheckpoint(path.join(dir, `half${r}.rank0.pth`))))) as Obj[];
    expectStatesClose(dist, halves[0], ['model_state', 'teacher_state'], 0, buffers);  // rank 0's own statistics
    expect(maxAbsDiff(Array.from(halves[0].model_state['encoder.bn1.running_mean'].data as Float32Array), Array.from(halves[1].model_state['encoder.bn1.running_mean'].data as Float32Array))).toBeGreaterThan(0);
    for (const name of Object.keys(dist.model_state).filter(isParameter)) {
      const got = dist.model_state[name].data as Float32Array;
      const a = halves[0].model_state[name].data as Float32Array, b = halves[1].model_state[name].data as Float32Array;
      const want = a.map((v, i) => (v + b[i]) / 2);
      expect([name, maxAbsDiff(got, want) <= 2e-5 * Math.max(1, maxAbs(want))]).toEqual([name, true]);
    }
    // The class statistics distribution alignment reads are sums over the ranks, alike on each.
    const stats = (out: string) => JSON.parse(fs.readFileSync(path.join(dir, `${out}.class-stats.json`), 'utf8'))[0];
    const [d0, d1, h0, h1] = [stats('dist.rank0'), stats('dist.rank1'), stats('half0.rank0'), stats('half1.rank0')];
    for (const key of ['labeledClassPixels', 'teacherClassMass', 'pseudoClassPixels']) expect([key, d0[key].length, h0[key].length]).toEqual([key, 4, 4]);
    expect(d1).toEqual(d0);
    for (const key of ['labeledClassPixels', 'pseudoClassPixels']) expect([key, d0[key]]).toEqual([key, h0[key].map((v: number, c: number) => v + h1[key][c])]);
    d0.teacherClassMass.forEach((v: number, c: number) => expect(v).toBeCloseTo(h0.teacherClassMass[c] + h1.teacherClassMass[c], 1));
  }, 240000);

  test('U2PL steps with SyncBN and the contrastive loss: every rank holds the same weights, teacher and banks (channels-last: staged collectives)', async () => {
    const dir = tempDir('dist');
    const file = await batches(dir, 3, true);
    const trainer: AddonTrainerOptions = {
      model: { ...model, repHead: true }, semi: true, seed: 9, mix: 'cutmix', unsupervised: { weight: 1 }, channelsLast: true,
      contrastive: { lowRank: 1, highRank: 3, numQueries: 8, numNegatives: 4, weight: 0.1, queueSize: [200, 200, 200, 200] },
    };
    await runRanks(2, { phase: 'semi', trainer, batches: file, out: path.join(dir, 'dist') });
    const [r0, r1] = (await Promise.all([0, 1].map((r) => readCheckpoint(path.join(dir, `dist.rank${r}.pth`))))) as Obj[];
    expectStatesClose(r0, r1, ['model_state', 'teacher_state'], 0);
    const keys = (x: Obj) => x.memory_bank.keys as { data: Float32Array; shape: number[] }[];
    expect(keys(r0).some((k) => k.shape[0] > 0)).toBe(true);
    keys(r0).forEach((k, c) => {
      expect([c, keys(r1)[c].shape]).toEqual([c, k.shape]);
      expect(Buffer.from(keys(r1)[c].data.buffer).equals(Buffer.from(k.data.buffer))).toBe(true);
    });
    // Each rank kept its own generators (different draws), and the file has them all.
    expect(r0.rng_state.ranks).toHaveLength(2);
    expect(Buffer.from(r0.rng_state.ranks[0].trainer.data).equals(Buffer.from(r0.rng_state.ranks[1].trainer.data))).toBe(false);
  }, 240000);

  test.each([
    ['shared (Q5 fixed): every rank holds the same kappa and cutmix bank', 'shared'],
    ['separate (Q5 reference): each rank keeps its own kappa and bank', 'separate'],
  ] as const)('AEL steps with SyncBN, the consistency and contrastive losses: same weights on every rank; kappa and bank %s', async (_, ranks) => {
    const dir = tempDir('dist');
    const file = await batches(dir, 2, true);
    const trainer: AddonTrainerOptions = {
      model: { ...model, repHead: true }, semi: true, seed: 4,
      contrastive: { lowRank: 1, highRank: 3, numQueries: 8, numNegatives: 4, weight: 0.1, queueSize: [200, 200, 200, 200], negatives: 'paper' },
      ael: { unlabeled: 4, unlabeledBatch: 2, pasteClasses: [1, 2, 3], replicas: 2, sharedAcrossRanks: ranks === 'shared' },
    };
    await runRanks(2, { phase: 'ael', trainer, batches: file, out: path.join(dir, 'dist'), saveAfter: 0 });
    const [r0, r1] = (await Promise.all([0, 1].map((r) => readCheckpoint(path.join(dir, `dist.rank${r}.pth`))))) as Obj[];
    expectStatesClose(r0, r1, ['model_state', 'teacher_state'], 0, isParameter);
    const same = (x: Obj, y: Obj) => Buffer.from(x.data.buffer).equals(Buffer.from(y.data.buffer));
    expect(same(r0.class_criterion, r1.class_criterion)).toBe(ranks === 'shared');
    expect(same(r0.cutmix_bank, r1.cutmix_bank)).toBe(ranks === 'shared');
    if (ranks === 'shared') return;
    // Every rank's kappa and bank are in the file rank 0 writes: N steps = N/2, resume, N/2 on every rank.
    expect(r0.ael_ranks).toHaveLength(2);
    expect(same(r0.ael_ranks[1].class_criterion, r1.class_criterion)).toBe(true);
    await runRanks(2, { phase: 'ael', trainer, batches: file, out: path.join(dir, 'second'), first: 1, init: path.join(dir, 'dist.after0.rank0.pth') });
    const resumed = (await Promise.all([0, 1].map((r) => readCheckpoint(path.join(dir, `second.rank${r}.pth`))))) as Obj[];
    for (const r of [0, 1]) {
      const straight = [r0, r1][r];
      expect([r, same(resumed[r].class_criterion, straight.class_criterion), same(resumed[r].cutmix_bank, straight.cutmix_bank)]).toEqual([r, true, true]);
      expectStatesClose(resumed[r], straight, ['model_state', 'teacher_state'], 0);
    }
  }, 360000);
});

// NCCL: where a CUDA LibTorch is built in and two GPUs are visible (a GPU machine); skipped, and said so, elsewhere.
const nccl = native().info().distributed.includes('nccl') && native().info().cudaDeviceCount >= 2;
if (!nccl) process.stdout.write('NCCL test skipped: needs a CUDA LibTorch build with NCCL and 2 GPUs\n');
(nccl ? test : test.skip)('NCCL: 2 GPUs with SyncBN = 1 process of the whole batch (supervised)', async () => {
  const dir = tempDir('nccl');
  const file = await batches(dir, 2, false);
  const trainer: AddonTrainerOptions = { model: { ...model, repHead: false }, semi: false, seed: 3 };
  await runRanks(1, { phase: 'supervised', trainer, batches: file, rows: 'all', out: path.join(dir, 'single'), backend: 'nccl' });
  await runRanks(2, { phase: 'supervised', trainer, batches: file, out: path.join(dir, 'dist'), backend: 'nccl' });
  const [single, r0] = (await Promise.all([readCheckpoint(path.join(dir, 'single.rank0.pth')), readCheckpoint(path.join(dir, 'dist.rank0.pth'))])) as Obj[];
  expectStatesClose(r0, single, ['model_state'], 1e-4);
}, 240000);

test('info() lists the distributed backends of this build', () => {
  expect(Array.isArray(native().info().distributed)).toBe(true);
  if (fs.existsSync('/usr/include/gloo/config.h') && haveGloo) expect(native().info().distributed).toContain('gloo');
});
