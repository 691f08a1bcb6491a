/**
 * The U2PL network (ResNet + DeepLabv3+) as a JS object. Weights live in native memory; every
 * long operation runs on a worker thread and returns a Promise.
 */
import { AddonForwardOutput, AddonLoadReport, AddonModel, InferenceOptions, native, Tensor } from '../native';
import { ModelOptions, defaultModelOptions, parseNetConfig } from '../config/net';

export type ForwardOutput = AddonForwardOutput;
export type LoadReport = AddonLoadReport;

export interface LoadOptions {
  /** Entry of the checkpoint to load; default: teacher_state, model_state, state_dict, model, or the root. */
  key?: string;
  /** "encoder" loads an ImageNet backbone checkpoint (names without the "encoder." prefix). */
  into?: 'model' | 'encoder';
}

export class Model {
  /** @internal */
  readonly handle: AddonModel;
  readonly options: ModelOptions;
  /** The report of the last load(): which entry of the file was read, what was missing. */
  loaded?: LoadReport;

  constructor(options: Partial<ModelOptions> = {}) {
    this.options = { ...defaultModelOptions, ...options };
    this.handle = new (native().AddonModel)(this.options);
  }

  /** Builds the network from the `net` section of a reference-style config. */
  static fromNetConfig(net: unknown, overrides: Partial<ModelOptions> = {}): Model {
    return new Model({ ...parseNetConfig(net).model, ...overrides });
  }

  /** Forward pass without gradients. train: BN batch statistics (and running-stat updates) and dropout. */
  async forward(images: Tensor, options: { train?: boolean } = {}): Promise<ForwardOutput> {
    return this.handle.forward(images, options);
  }

  /**
   * Class map (and the winning probability) at the input's size for one 1 x 3 x H x W image:
   * whole image or sliding window, optional scales and flips (u2pl-method.md §13).
   */
  async predict(image: Tensor, options: InferenceOptions = {}) {
    return this.handle.predict(image, options);
  }

  /** Train-mode forward, cross-entropy (ignore label) on `pred` upsampled to the labels, backward. */
  async lossAndGradients(images: Tensor, labels: Tensor, ignoreIndex = 255): Promise<{ loss: number }> {
    return this.handle.lossAndGradients(images, labels, ignoreIndex);
  }

  parameterCount(): number {
    return this.handle.parameterCount();
  }

  /** Parameter names of the two learning-rate groups: backbone (encoder) and heads (decoder, aux). */
  parameterGroups(): { backbone: string[]; head: string[] } {
    return this.handle.parameterGroups();
  }

  /** Copies of every parameter and buffer, keyed by the reference's state-dict names. */
  stateDict() {
    return this.handle.stateDict();
  }

  /** Writes a PyTorch zip checkpoint { [key]: state_dict } (readable by Python's torch.load). */
  async save(path: string, key = 'model_state'): Promise<void> {
    return this.handle.save(path, key);
  }

  /** Loads weights from a PyTorch checkpoint (a leading "module." is stripped); reports missing/unexpected names. */
  async load(path: string, options: LoadOptions = {}): Promise<LoadReport> {
    const report = await this.handle.load(path, options);
    this.loaded = report;
    return report;
  }

  /** Copies all parameters and buffers from a model of the same architecture. */
  copyFrom(other: Model): void {
    this.handle.copyFrom(other.handle);
  }

  /** Teacher update: parameters <- decay * own + (1 - decay) * student's (buffers untouched). */
  emaFrom(student: Model, decay: number): void {
    this.handle.emaFrom(student.handle, decay);
  }

  /** Channels-last memory layout for weights and inputs (faster convolutions on many CPUs). */
  setChannelsLast(on: boolean): void {
    this.handle.setChannelsLast(on);
  }

  /** Whether weights and inputs are channels-last (the native model's own flag). */
  get channelsLast(): boolean {
    return this.handle.channelsLast();
  }

  /** Mixed precision for forward passes: 'bfloat16' (CPU or CUDA), 'float16' (CUDA), or null for fp32. */
  setAutocast(dtype: 'bfloat16' | 'float16' | null): void {
    this.handle.setAutocast(dtype);
  }
}
