import fs from 'fs';
import os from 'os';
import { execFileSync } from 'child_process';
import path from 'path';
import { defaultThreadCount, info, setThreads } from '../../lib';
import { native } from '../../lib/native';

const pkg = require('../../package.json') as { version: string };

describe('info()', () => {
  test('reports versions, threads and CUDA state', () => {
    const i = info();
    expect(i.addonVersion).toBe(pkg.version);
    const found = JSON.parse(execFileSync(process.execPath, [path.join(__dirname, '../../scripts/find-libtorch.js')]).toString());
    expect(i.libtorchVersion).toBe(found.version);
    expect(i.libtorchVersion).toMatch(/^\d+\.\d+\.\d+/);
    expect(typeof i.cudaAvailable).toBe('boolean');
    expect(typeof i.cudnnAvailable).toBe('boolean');
    expect(typeof i.cudaKernels).toBe('boolean');
    // CUDA devices: none without CUDA; with it, one per /dev/nvidiaN the process can see.
    const gpus = fs.readdirSync('/dev').filter((f) => /^nvidia\d+$/.test(f)).length;
    if (i.cudaAvailable) {
      expect(i.cudaDeviceCount).toBeGreaterThanOrEqual(1);
      expect(i.cudaDeviceCount).toBeLessThanOrEqual(gpus);
    } else {
      expect(i.cudaDeviceCount).toBe(0);
    }
    expect(i.parallelInfo).toContain('ATen/Parallel');
  });

  test('libtorch names the library this process loaded and how the build found it', () => {
    const found = JSON.parse(execFileSync(process.execPath, [path.join(__dirname, '../../scripts/find-libtorch.js')]).toString());
    const { libtorch } = info();
    expect(libtorch.source).toBe(found.source);
    expect(libtorch.prefix).toBe(found.cmakePrefix);
    expect(path.basename(libtorch.library)).toMatch(/^libtorch_cpu\.so/);
    // The loaded file is the one in the found install's library folder, and this process mapped it.
    expect(libtorch.library).toBe(fs.realpathSync(path.join(found.libDir, path.basename(libtorch.library))));
    expect(fs.readFileSync('/proc/self/maps', 'utf8')).toContain(libtorch.library);
  });

  test('threads default to the available cores (or U2PL_THREADS)', () => {
    const expected = process.env.U2PL_THREADS ? Number(process.env.U2PL_THREADS) : os.availableParallelism();
    expect(info().threads).toBe(expected);
    expect(defaultThreadCount({ U2PL_THREADS: '3' })).toBe(3);
    expect(() => defaultThreadCount({ U2PL_THREADS: 'two' })).toThrow("U2PL_THREADS must be a positive integer, got 'two'");
  });

  test("cudaMemory(): null without CUDA, else the caching allocator's byte counts (the bench's peak GPU memory)", () => {
    const i = info();
    const m = native().cudaMemory();
    if (!i.cudaKernels || !i.cudaAvailable) {
      expect(m).toBeNull();
      return;
    }
    expect(m).toEqual({ allocatedBytes: expect.any(Number), peakAllocatedBytes: expect.any(Number), reservedBytes: expect.any(Number), peakReservedBytes: expect.any(Number) });
    expect(m!.peakAllocatedBytes).toBeGreaterThanOrEqual(m!.allocatedBytes);
    expect(m!.peakReservedBytes).toBeGreaterThanOrEqual(m!.reservedBytes);
    native().cudaMemory({ resetPeak: true });
    expect(native().cudaMemory()!.peakAllocatedBytes).toBe(native().cudaMemory()!.allocatedBytes);
  });

  test('setThreads changes the count and rejects bad values', () => {
    const before = info().threads;
    expect(setThreads(1)).toBe(1);
    expect(info().threads).toBe(1);
    expect(setThreads(before)).toBe(before);
    expect(() => setThreads(0)).toThrow('positive integer');
    expect(() => setThreads(1.5)).toThrow('positive integer');
  });
});

describe('timeKernel() (the bench\'s peak and per-layer timings)', () => {
  test('times each run of a GEMM or a convolution, in fp32 or bf16; refuses what it cannot time', async () => {
    for (const dtype of ['fp32', 'bf16'] as const) {
      const gemm = await native().timeKernel({ op: 'gemm', m: 64, k: 32, n: 16 }, { warmup: 1, runs: 3, dtype });
      const conv = await native().timeKernel({ op: 'conv', batch: 1, channels: 8, height: 9, kernel: 3, dilation: 2, channelsLast: true }, { warmup: 0, runs: 2, dtype });
      expect([dtype, gemm.length, conv.length]).toEqual([dtype, 3, 2]);
      for (const s of [...gemm, ...conv]) expect(s).toBeGreaterThan(0);
    }
    expect(() => native().timeKernel({ op: 'gemm', m: 4, k: 4, n: 4 }, { dtype: 'fp16' as 'bf16' })).toThrow("timeKernel: dtype must be 'fp32' or 'bf16', got 'fp16'");
    expect(() => native().timeKernel({ op: 'sum' } as never)).toThrow("timeKernel: op must be 'gemm' or 'conv', got 'sum'");
    await expect(native().timeKernel({ op: 'gemm', m: 0, k: 4, n: 4 })).rejects.toThrow('timeKernel gemm: m, k and n must be positive');
  });
});
