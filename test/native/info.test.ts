import os from 'os';
import { execFileSync } from 'child_process';
import path from 'path';
import { defaultThreadCount, info, setThreads } from '../../lib';

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
    expect(i.cudaDeviceCount).toBe(i.cudaAvailable ? i.cudaDeviceCount : 0);
    expect(i.parallelInfo).toContain('ATen/Parallel');
  });

  test('threads default to the available cores (or U2PL_THREADS)', () => {
    const expected = process.env.U2PL_THREADS ? Number(process.env.U2PL_THREADS) : os.availableParallelism();
    expect(info().threads).toBe(expected);
    expect(defaultThreadCount({ U2PL_THREADS: '3' })).toBe(3);
    expect(() => defaultThreadCount({ U2PL_THREADS: 'two' })).toThrow("U2PL_THREADS must be a positive integer, got 'two'");
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
