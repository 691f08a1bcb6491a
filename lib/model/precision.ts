/**
 * The precision and memory layout a run uses on this machine: `runtime.autocast: auto` and
 * `runtime.channels_last: auto` resolved from what the hardware computes fast.
 *
 * - CPU: bf16 autocast only where the CPU has AVX512-BF16 or AMX-BF16. Elsewhere oneDNN emulates
 *   bf16 and a camvid-small step is about 20x slower than in fp32 (91 s against 4.3 s measured on
 *   an AVX2-only EPYC); fp32 there.
 * - CUDA: bf16 from compute capability 8.0 (Ampere) on; fp16 with dynamic loss scaling on 7.x
 *   (V100, T4: tensor cores, no bf16); fp32 below.
 * - Channels-last: on CPUs for bf16, and for fp32 where the CPU has AVX-512 (oneDNN's blocked
 *   kernels: 5-12 % faster steps there), off for fp32 on AVX2-only CPUs, where the reorders cost more
 *   than they save (BENCHMARKS.md); on CUDA with autocast (tensor cores), off for CUDA fp32.
 */
import { NativeInfo } from '../native';

export type AutocastDtype = 'bfloat16' | 'float16' | null;

/** What decides the choice: the addon's description of the machine. */
export type Machine = Pick<NativeInfo, 'cpu' | 'cudaDevices'>;

export interface RuntimeSettings {
  /** 'cpu', 'cuda' or 'cuda:N'. */
  device: string;
  autocast: 'auto' | AutocastDtype;
  channelsLast: 'auto' | boolean;
}

export interface Precision {
  autocast: AutocastDtype;
  channelsLast: boolean;
  /** fp16 needs dynamic loss scaling (its gradients underflow otherwise). */
  lossScaling: boolean;
  /** One line saying what was chosen and why (logged once per run). */
  summary: string;
  /** What is legal but slow, by key. */
  warnings: string[];
}

/** Whether this CPU computes bf16 natively (oneDNN's bf16 kernels need one of these). */
export function cpuHasBf16(cpu: Machine['cpu']): boolean {
  return cpu.avx512Bf16 || cpu.amxBf16;
}

/**
 * The instruction set that decides this CPU's speed and what `autocast: auto` trains in:
 * amx-bf16, avx512-bf16, avx512, avx2 or sse (the bench's and the camvid-small study's machine type).
 */
export function cpuIsaName(cpu: Machine['cpu']): string {
  return cpu.amxBf16 ? 'amx-bf16' : cpu.avx512Bf16 ? 'avx512-bf16' : cpu.avx512f ? 'avx512' : cpu.avx2 ? 'avx2' : 'sse';
}

function cudaIndex(device: string): number {
  const m = /^cuda:(\d+)$/.exec(device);
  return m ? Number(m[1]) : 0;
}

const name = (a: AutocastDtype) => a ?? 'fp32';

/** Resolves runtime.autocast and runtime.channels_last for the device this process trains on. */
export function choosePrecision(runtime: RuntimeSettings, machine: Machine): Precision {
  const warnings: string[] = [];
  let autocast: AutocastDtype;
  let why: string;
  if (runtime.device.startsWith('cuda')) {
    const gpu = machine.cudaDevices[cudaIndex(runtime.device)];
    const cc = gpu ? gpu.capability[0] + gpu.capability[1] / 10 : undefined;
    if (runtime.autocast !== 'auto') {
      autocast = runtime.autocast;
      why = 'runtime.autocast';
      if (autocast === 'bfloat16' && cc !== undefined && cc < 8) warnings.push(`runtime.autocast: bfloat16 on ${gpu.name} (compute capability ${cc.toFixed(1)}): bf16 needs 8.0 or later to run fast; use auto (fp16 with loss scaling there)`);
    } else if (cc === undefined) {
      autocast = null;
      why = 'auto: this build cannot read the GPU\'s compute capability (no CUDA kernels compiled); set runtime.autocast to choose';
    } else if (cc >= 8) {
      autocast = 'bfloat16';
      why = `auto: ${gpu.name} (compute capability ${cc.toFixed(1)}) has bf16`;
    } else if (cc >= 7) {
      autocast = 'float16';
      why = `auto: ${gpu.name} (compute capability ${cc.toFixed(1)}) has fp16 tensor cores but no bf16`;
    } else {
      autocast = null;
      why = `auto: ${gpu.name} (compute capability ${cc.toFixed(1)}) has no tensor cores`;
    }
  } else {
    const native = cpuHasBf16(machine.cpu);
    const cpuName = machine.cpu.model || 'this CPU';
    if (runtime.autocast !== 'auto') {
      autocast = runtime.autocast;
      why = 'runtime.autocast';
      if (autocast === 'bfloat16' && !native) {
        warnings.push(`runtime.autocast: bfloat16 on ${cpuName}, which has no AVX512-BF16 or AMX-BF16 instructions: bf16 is emulated there, about 20x slower than fp32 (a camvid-small step: 91 s against 4.3 s on an AVX2 EPYC); use auto or leave the key out`);
      }
    } else if (native) {
      autocast = 'bfloat16';
      why = `auto: ${cpuName} has ${machine.cpu.amxBf16 ? 'AMX-BF16' : 'AVX512-BF16'}`;
    } else {
      autocast = null;
      why = `auto: ${cpuName} has no AVX512-BF16 or AMX-BF16 (bf16 would be emulated, about 20x slower)`;
    }
  }
  let channelsLast: boolean;
  let layoutWhy: string;
  if (runtime.channelsLast !== 'auto') {
    channelsLast = runtime.channelsLast;
    layoutWhy = 'runtime.channels_last';
  } else if (runtime.device.startsWith('cuda')) {
    channelsLast = autocast !== null;
    layoutWhy = autocast !== null ? 'auto: tensor cores' : 'auto: CUDA fp32';
  } else {
    channelsLast = autocast !== null || machine.cpu.avx512f;
    layoutWhy = autocast !== null ? 'auto: bf16 on CPU' : machine.cpu.avx512f ? 'auto: fp32 on AVX-512' : 'auto: fp32 on an AVX2 CPU, where contiguous is faster';
  }
  return {
    autocast,
    channelsLast,
    lossScaling: autocast === 'float16',
    summary: `precision ${name(autocast)}${autocast === 'float16' ? ' with dynamic loss scaling' : ''} (${why}), ` +
      `${channelsLast ? 'channels-last' : 'contiguous'} layout (${layoutWhy}) on ${runtime.device}`,
    warnings,
  };
}
