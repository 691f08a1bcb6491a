/** Timing harness for `npm run bench`: medians after warm-up, one JSON line per measurement. */
import { spawnSync } from 'child_process';
import path from 'path';
import { cpuIsaName } from '../lib/model/precision';
import { native, packageRoot } from '../lib/native';

export interface Measurement {
  name: string;
  median_s: number;
  min_s: number;
  runs: number;
  threads: number;
  [field: string]: string | number | boolean;
}

export interface BenchContext {
  quick: boolean;
  threads: number;
  /** `--precision fp32,bf16+cl`: the step cases' precisions (default: all; on CUDA fp32 and bf16+cl). */
  precisions?: string[];
  /** `--device cuda`: the step case's two sides on the GPU (default cpu). */
  device: 'cpu' | 'cuda';
  /** `--recipe voc-513,camvid-small`: the step case's recipes (default: voc-321; on CUDA voc-513 and camvid-small). */
  recipes?: string[];
  results: Measurement[];
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

let machine: Record<string, string> | undefined;

/**
 * The machine every line was measured on: the CPU model, the instruction set that decides its speed
 * (avx2, avx512, avx512-bf16 or amx-bf16) and what oneDNN dispatches to; figures from different
 * machine types are not comparable (BENCHMARKS.md keeps a table per type).
 */
export function machineFields(): Record<string, string> {
  if (!machine) {
    const c = native().info().cpu;
    machine = { cpu: c.model || 'unknown', isa: cpuIsaName(c), onednn: c.onednnIsa || 'unknown' };
  }
  return machine;
}

/** Records a measurement taken elsewhere (e.g. by the Python side) and prints its JSON line. */
export function record(ctx: BenchContext, name: string, seconds: number[], fields: Record<string, string | number | boolean> = {}): Measurement {
  const m: Measurement = {
    name,
    median_s: Number(median(seconds).toPrecision(4)),
    min_s: Number(Math.min(...seconds).toPrecision(4)),
    runs: seconds.length,
    threads: ctx.threads,
    ...fields,
    ...machineFields(),
  };
  ctx.results.push(m);
  process.stdout.write(`${JSON.stringify(m)}\n`);
  return m;
}

/** Runs fn `warmup` times untimed, then `runs` times timed. */
export async function measure(
  ctx: BenchContext, name: string, fn: () => Promise<unknown> | unknown,
  options: { warmup?: number; runs?: number; fields?: Record<string, string | number | boolean> } = {},
): Promise<Measurement> {
  const warmup = options.warmup ?? 1;
  const runs = options.runs ?? (ctx.quick ? 2 : 5);
  for (let i = 0; i < warmup; i++) await fn();
  const seconds: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    await fn();
    seconds.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return record(ctx, name, seconds, options.fields);
}

/** Debian's python3 with torch (the same LibTorch 1.13 as the system package), or null. */
export function pythonWithTorch(): string | null {
  for (const python of [process.env.U2PL_BENCH_PYTHON, '/usr/bin/python3', 'python3'].filter(Boolean) as string[]) {
    if (spawnSync(python, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0) return python;
  }
  return null;
}

/** Runs a script of bench/python; it prints one JSON object. */
export function runPythonBench(python: string, script: string, args: Record<string, unknown>): Record<string, unknown> {
  const r = spawnSync(python, [path.join(packageRoot(), 'bench/python', script), JSON.stringify(args)], {
    encoding: 'utf8', maxBuffer: 16 * 1024 * 1024,
  });
  if (r.status !== 0) throw new Error(`bench/python/${script} failed:\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop() as string) as Record<string, unknown>;
}

export function printTable(results: Measurement[]): void {
  const rows = results.map((m) => {
    const extra = Object.entries(m)
      .filter(([k]) => !['name', 'median_s', 'min_s', 'runs', 'threads', 'cpu', 'isa', 'onednn'].includes(k))
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
    return [m.name, m.median_s.toFixed(4), m.min_s.toFixed(4), String(m.runs), String(m.threads), extra];
  });
  const header = ['name', 'median s', 'min s', 'runs', 'thr', 'details'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 || i === 5 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  const m = machineFields();
  process.stdout.write(`\n# ${m.cpu}, ${m.isa} (oneDNN: ${m.onednn})\n${line(header)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n`);
  for (const r of rows) process.stdout.write(`${line(r)}\n`);
}
