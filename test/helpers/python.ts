/** Runs Debian's python3 with torch (python3-torch), which tests use to write and read checkpoints. */
import { spawnSync } from 'child_process';
import path from 'path';

const candidates = [process.env.U2PL_TEST_PYTHON, '/usr/bin/python3', 'python3'].filter(Boolean) as string[];

let cached: string | null | undefined;

/** The first interpreter that imports torch, or null. */
export function pythonWithTorch(): string | null {
  if (cached !== undefined) return cached;
  cached = null;
  for (const python of candidates) {
    const r = spawnSync(python, ['-c', 'import torch'], { stdio: 'ignore' });
    if (r.status === 0) {
      cached = python;
      break;
    }
  }
  return cached;
}

/** describe() that needs Python torch: required in CI (which installs python3-torch), skipped elsewhere. */
export function describeWithPython(name: string, fn: () => void): void {
  if (pythonWithTorch() || process.env.CI) describe(name, fn);
  else describe.skip(`${name} (no python3 with torch)`, fn);
}

/** Runs a Python script (bench/python on the import path); returns stdout; throws with stderr. */
export function runPython(script: string, args: string[] = []): string {
  const python = pythonWithTorch();
  if (!python) throw new Error('no python3 with torch: apt-get install python3-torch');
  const r = spawnSync(python, ['-c', script, ...args], {
    encoding: 'utf8',
    env: { ...process.env, PYTHONPATH: path.join(__dirname, '../../bench/python'), OMP_NUM_THREADS: '2' },
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.status !== 0) throw new Error(`python failed (${r.status}):\n${r.stderr}`);
  return r.stdout;
}
