/**
 * u2pl: semi-supervised semantic segmentation with U2PL on LibTorch.
 */
import { native, NativeInfo, NativeTensor, Tensor, DType } from './native';
import { AutocastDtype, choosePrecision } from './model/precision';

export type { DType, NativeInfo, NativeTensor, Tensor, TypedArray } from './native';
export { defaultThreadCount } from './native';
export { choosePrecision } from './model/precision';
export type { AutocastDtype, Precision, RuntimeSettings } from './model/precision';

export interface Info extends NativeInfo {
  /**
   * What `runtime.autocast: auto` and `runtime.channels_last: auto` choose on this machine: for
   * the CPU, and for each CUDA device (lib/model/precision.ts).
   */
  defaults: { cpu: DeviceDefaults; cuda: DeviceDefaults[] };
}

export interface DeviceDefaults {
  autocast: AutocastDtype;
  channelsLast: boolean;
  /** What was chosen and why, as a run logs it. */
  summary: string;
}

/** What the addon was built with and runs on (LibTorch, threads, CPU features, CUDA) and the defaults it leads to. */
export function info(): Info {
  const i = native().info();
  const pick = (device: string): DeviceDefaults => {
    const { autocast, channelsLast, summary } = choosePrecision({ device, autocast: 'auto', channelsLast: 'auto' }, i);
    return { autocast, channelsLast, summary };
  };
  return { ...i, defaults: { cpu: pick('cpu'), cuda: i.cudaDevices.map((_, k) => pick(`cuda:${k}`)) } };
}

/** Sets LibTorch's intra-op thread count for this process; returns the count now in force. */
export function setThreads(n: number): number {
  return native().setThreads(n);
}

/** Converts a tensor to another element type (a copy unless the type is unchanged). */
export function cast(tensor: Tensor, dtype: DType): NativeTensor {
  return native().cast(tensor, dtype);
}

/** Matrix product on a worker thread (LibTorch's matmul broadcasting rules); `repeat` runs it n times. */
export async function matmul(a: Tensor, b: Tensor, repeat = 1): Promise<NativeTensor> {
  return native().matmul(a, b, repeat);
}

export { Model } from './model/model';
export type { ForwardOutput, LoadOptions, LoadReport } from './model/model';
export { parseNetConfig, defaultModelOptions } from './config/net';
export type { ModelOptions, NetConfig } from './config/net';
export { ConfigError } from './config/errors';
export { readCheckpoint, writeCheckpoint } from './checkpoint';
export * as losses from './losses';

export { loadConfig, parseConfig } from './config/config';
export type { U2plConfig, DatasetConfig, TrainerConfig } from './config/config';
export { train } from './train/train';
export type { TrainOptions, TrainResult, Progress, EpochSummary } from './train/train';
export { evaluate, loadModel, predict, defaultCheckpoint } from './eval/api';
export type { CheckpointWeights } from './eval/api';
export type { EvalResult } from './eval/evaluate';
export type { InferenceOptions } from './native';
