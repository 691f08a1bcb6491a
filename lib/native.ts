/**
 * The typed surface of the native addon (native/addon/*). Everything that crosses the JS<->C++
 * boundary is declared here and nowhere else.
 */
import fs from 'fs';
import os from 'os';
import path from 'path';

/** Element types a tensor can have on the JS side. */
export type DType = 'float32' | 'float64' | 'uint8' | 'int8' | 'int16' | 'int32' | 'int64';

export type TypedArray = Float32Array | Float64Array | Uint8Array | Int8Array | Int16Array | Int32Array | BigInt64Array;

/**
 * A dense row-major tensor in JS memory. Native code reads `data` in place (no copy); tensors it
 * returns share native memory with their `data` when it can (freed when `data` is collected).
 */
export interface Tensor<T extends TypedArray = TypedArray> {
  data: T;
  shape: number[];
  dtype?: DType;
}

/** A tensor returned by the addon: dtype is always set. */
export interface NativeTensor<T extends TypedArray = TypedArray> extends Tensor<T> {
  dtype: DType;
}

export interface NativeInfo {
  /** The u2pl package version the addon was built from. */
  addonVersion: string;
  /** LibTorch version of the headers the addon was compiled against. */
  libtorchVersion: string;
  /** Which LibTorch the addon loaded, and how the build found it. */
  libtorch: {
    /** The shared library holding ATen in this process (e.g. /usr/lib/x86_64-linux-gnu/libtorch_cpu.so.1.13). */
    library: string;
    /** How the build found LibTorch: 'LIBTORCH', 'Torch_DIR', 'python' or 'system' (scripts/find-libtorch.js). */
    source: string;
    /** The install prefix the build used (CMAKE_PREFIX_PATH). */
    prefix: string;
    /**
     * The BLAS LibTorch calls: 'mkl' or the library file. Debian's libtorch-dev brings the netlib
     * reference BLAS (/usr/lib/x86_64-linux-gnu/blas/libblas.so.3), ten times slower than OpenBLAS
     * for the convolutions oneDNN leaves to it: apt-get install libopenblas0-openmp.
     */
    blas: string;
  };
  /** Intra-op threads LibTorch uses now (see setThreads). */
  threads: number;
  interopThreads: number;
  cudaAvailable: boolean;
  cudnnAvailable: boolean;
  cudaDeviceCount: number;
  /** Whether the addon's own CUDA kernels were compiled in (needs a CUDA LibTorch at build time). */
  cudaKernels: boolean;
  /**
   * Which copy of the CPU loss kernels runs: 'avx2' where the CPU has it, else 'baseline' (SSE2).
   * Both give the same bits; U2PL_DISABLE_AVX2=1 forces 'baseline'.
   */
  lossKernelIsa: 'avx2' | 'baseline';
  /**
   * The CPU features that decide speed: bf16 runs natively only with AVX512-BF16 or AMX-BF16
   * (elsewhere oneDNN emulates it, ~20x slower than fp32); `onednnIsa` is what oneDNN dispatches to
   * ('' when this LibTorch does not export oneDNN's query).
   */
  cpu: { model: string; avx2: boolean; avx512f: boolean; avx512Bf16: boolean; amxBf16: boolean; amxFp16: boolean; onednnIsa: string };
  /** Each CUDA device with its compute capability [major, minor] (empty without the CUDA kernels compiled in). */
  cudaDevices: { name: string; capability: [number, number]; memoryGiB: number }[];
  /** LibTorch's at::get_parallel_info() text. */
  parallelInfo: string;
  /**
   * The CPU tensor allocator: u2pl's caching one (freed blocks of 256 KiB and more are reused, so a
   * training step allocates no new pages) unless U2PL_CPU_ALLOCATOR=system; U2PL_CPU_CACHE_MB caps
   * the free blocks it keeps (default 4096).
   */
  cpuAllocator: { caching: boolean; cachedBytes: number; allocatedBytes: number; hits: number; misses: number };
  /** The c10d backends this build can join ('gloo' on CPU, 'nccl' with a CUDA LibTorch); empty: one process only. */
  distributed: string[];
}

/** Network options as the native constructor takes them (see lib/config/net.ts). */
export interface AddonModelOptions {
  depth?: number;
  deepStem?: boolean;
  replaceStrideWithDilation?: [boolean, boolean, boolean];
  multiGrid?: boolean;
  zeroInitResidual?: boolean;
  numClasses?: number;
  innerPlanes?: number;
  headPlanes?: number;
  dilations?: [number, number, number];
  repHead?: boolean;
  aux?: boolean;
  auxPlanes?: number;
  dropout?: number;
  device?: string;
  seed?: number;
}

export interface AddonForwardOutput {
  pred: NativeTensor<Float32Array>;
  rep?: NativeTensor<Float32Array>;
  aux?: NativeTensor<Float32Array>;
}

export interface AddonLoadReport {
  /** Which entry of the file was loaded ("teacher_state", "model_state", ...), null for the root. */
  key: string | null;
  loaded: number;
  missing: string[];
  unexpected: string[];
}

/** native/addon/model_js.cc */
export interface AddonModel {
  forward(images: Tensor, options?: { train?: boolean }): Promise<AddonForwardOutput>;
  lossAndGradients(images: Tensor, labels: Tensor, ignoreIndex?: number): Promise<{ loss: number }>;
  parameterCount(): number;
  parameterGroups(): { backbone: string[]; head: string[] };
  stateDict(): Record<string, NativeTensor>;
  save(path: string, key?: string): Promise<void>;
  load(path: string, options?: { key?: string; into?: 'model' | 'encoder' }): Promise<AddonLoadReport>;
  copyFrom(other: AddonModel): void;
  emaFrom(student: AddonModel, decay: number): void;
  setChannelsLast(on: boolean): void;
  /** Whether weights and inputs are channels-last (the constructor's option or setChannelsLast). */
  channelsLast(): boolean;
  setAutocast(dtype: 'bfloat16' | 'float16' | null): void;
  seed(seed: number): void;
  predict(image: Tensor, options?: InferenceOptions): Promise<{ prediction: NativeTensor<Uint8Array>; confidence: NativeTensor<Float32Array> }>;
  evaluateBatch(images: Tensor, labels: Tensor, ignoreIndex?: number): Promise<NativeTensor<BigInt64Array>>;
  numClasses(): number;
}

/** How predict() runs (u2pl-method.md §13.3, §13.4). */
export interface InferenceOptions {
  mode?: 'whole' | 'slide';
  scales?: number[];
  flip?: boolean;
  /** Sliding window size: a square side or [height, width]; stride as a fraction of the window. */
  crop?: number | [number, number];
  strideRate?: number;
  /** Sliding: long side at scale 1 (0: the image's own). */
  baseSize?: number;
}

/** Which implementation of a loss runs: the fused kernels or the composite reference (tests, bench). */
export type LossImpl = 'kernel' | 'composite';

/** Where a loss runs: 'cuda' needs a CUDA LibTorch (the addon's CUDA kernels) and a device. */
export type LossDevice = 'cpu' | 'cuda';

/** Options of the contrastive loss (u2pl-method.md §10), in the addon's names. */
export interface AddonContrastiveOptions {
  currentClassThreshold?: number;
  currentClassNegativeThreshold?: number;
  lowRank?: number;
  highRank?: number;
  temperature?: number;
  numQueries?: number;
  numNegatives?: number;
  negativeHighEntropy?: boolean;
  referenceIndexing?: boolean;
  negatives?: 'reference' | 'paper';
  ignoreIndex?: number;
}

/** native/addon/loss_js.cc */
export interface AddonLosses {
  percentile(o: { values: Tensor; q: number; impl?: LossImpl }): Promise<number>;
  entropy(o: { logits: Tensor; height: number; width: number; impl?: LossImpl; device?: LossDevice }): Promise<NativeTensor<Float32Array>>;
  supervisedLoss(o: {
    pred: Tensor; aux?: Tensor; labels: Tensor; ohem?: boolean; thresh?: number; minKept?: number; auxWeight?: number; classWeight?: number[];
    ignoreIndex?: number; impl?: LossImpl;
  }): Promise<{ loss: number; gradPred: NativeTensor<Float32Array>; gradAux?: NativeTensor<Float32Array> }>;
  unsupervisedLoss(o: {
    student: Tensor; teacher: Tensor; pseudo: Tensor; q: number; weighting?: 'reference' | 'paper'; ignoreIndex?: number;
    excludedPixels?: number; impl?: LossImpl; device?: LossDevice;
  }): Promise<{ loss: number; gradStudent: NativeTensor<Float32Array> | null; entropy: NativeTensor<Float32Array>; threshold: number; kept: number; valid: number }>;
  contrastiveLoss(o: AddonContrastiveOptions & {
    rep: Tensor; repTeacher: Tensor; probTeacher: Tensor; labels: Tensor; pseudo: Tensor; entropy: Tensor; alpha: number;
    capacities: number[]; bank?: Tensor[]; seed?: number; impl?: LossImpl; device?: LossDevice;
  }): Promise<{
    loss: number; gradRep: NativeTensor<Float32Array> | null; validClasses: number; processedClasses: number; enqueued: number[];
    bank: NativeTensor<Float32Array>[];
  }>;
  mix(o: { images: Tensor; labels: Tensor; confidence: Tensor; mode: 'cutmix' | 'cutout' | 'classmix'; seed?: number; ignoreIndex?: number }): Promise<{
    images: NativeTensor<Float32Array>; labels: NativeTensor<BigInt64Array>; confidence: NativeTensor<Float32Array>; mask: NativeTensor<Uint8Array>;
  }>;
  cutoutMasks(o: { count: number; height: number; width: number; seed?: number }): Promise<NativeTensor<Uint8Array>>;
  confusionMatrix(o: { prediction: Tensor; groundTruth: Tensor; classes: number; ignoreIndex?: number }): Promise<NativeTensor<BigInt64Array>>;
  benchmarkLosses(o: {
    labeled?: number; unlabeled?: number; classes?: number; height?: number; width?: number; repHeight?: number; repWidth?: number;
    repDim?: number; warmup?: number; runs?: number; impl?: LossImpl;
  }): Promise<number[]>;
}

/** What one AEL step uses, drawn from kappa and the cutmix bank (u2pl-ael-method.md A4.1, A5.2). */
export interface AelPlan {
  /** The classes copy-paste takes from the partners (distinct, ascending; empty without ACP). */
  pasteClasses: number[];
  /** Which of the loaded unlabeled images the step uses (slots of the batch). */
  keep: number[];
  /** For each kept image: the class its box is cut around, and its bank partner (an unlabeled index). */
  mixClasses: number[];
  bankImages: number[];
}

export interface AddonAelOptions {
  /** N_u (the cutmix bank's columns) and the unlabeled images loaded per step. */
  unlabeled: number;
  unlabeledBatch?: number;
  /** The classes ACP may paste (empty: no copy-paste) and its draws per step (acp.number). */
  pasteClasses?: number[];
  pasteDraws?: number;
  adaptiveCutmix?: boolean;
  /** kappa's EMA momentum (0.999). */
  momentum?: number;
  /** Q4: absent classes decay toward 0 (reference, true) or keep their kappa. */
  absentClassesDecay?: boolean;
  /** Q7: one of each replica's loaded unlabeled images (reference, true) or all; replicaBatch images a replica loads (2). */
  useOneUnlabeled?: boolean;
  replicaBatch?: number;
  /** Q5: data parallel, one kappa and bank for all ranks (false: each rank its own, the reference). */
  sharedAcrossRanks?: boolean;
  consistency?: { gamma?: number; gamma2?: number; sample?: boolean; normaliseOverAll?: boolean; sharedSamplingMap?: boolean };
  consistencyWeight?: number;
  /** Q6: the reference's replica count R that scales its losses (L_s/R, L_cons/R, L_c/R^2); 1: none. */
  replicas?: number;
  /** acm.area_thresh / area_thresh2: shares of the image a box component / a bank class needs. */
  boxMinArea?: number;
  bankMinArea?: number;
  /** Q15: the shares are of H^2 (reference) or H*W. */
  squareArea?: boolean;
  /** Q1/Q3: L_cons2 ignores the lowest-entropy pixels (reference) or the highest. */
  ignoreConfident?: boolean;
  /** The fixed entropy percentiles of the contrastive masks (A8): anchors below, negatives above. */
  anchorPercentile?: number;
  negativePercentile?: number;
  /** Q12: a partner exists when its labels sum to non-zero (reference) or by the loader's flag. */
  partnerByLabelSum?: boolean;
}

/** native/addon/ael_js.cc: the AEL variant's components, for tests and inspection. */
export interface AddonAel {
  copyPaste(o: {
    images: Tensor; labels: Tensor; partnerImages: Tensor; partnerLabels: Tensor; hasPartner: number[]; classes: number[]; impl?: LossImpl;
  }): Promise<{ images: NativeTensor<Float32Array>; labels: NativeTensor; pasted: number }>;
  componentBox(o: { prediction: Tensor; cls: number; minPixels: number; seed?: number }): Promise<AelBox | null>;
  randomBox(o: { height: number; width: number; seed?: number }): Promise<AelBox>;
  classPresence(o: { prediction: Tensor; classes: number; minPixels: number }): Promise<boolean[]>;
  consistencyLoss(o: {
    logits: Tensor; confidence: Tensor; target: Tensor; kappa: Tensor; gamma?: number; gamma2?: number; sample?: boolean;
    normaliseOverAll?: boolean; sharedSamplingMap?: boolean; seed?: number; ignoreIndex?: number;
  }): Promise<{ loss: number; gradLogits: NativeTensor<Float32Array> }>;
  classConfidence(o: { prob: Tensor; labels: Tensor; ignoreIndex?: number }): Promise<{ mean: NativeTensor<Float32Array>; present: NativeTensor<Uint8Array> }>;
  pseudoLabels(o: { logits: Tensor; percent: number; ignoreConfident?: boolean; ignoreIndex?: number }): Promise<{
    target: NativeTensor<BigInt64Array>; confidence: NativeTensor<Float32Array>; entropy: NativeTensor<Float32Array>;
  }>;
  classProbabilities(o: { kappa: Tensor; pasteClasses: number[] }): Promise<{ paste: NativeTensor<Float64Array>; mix: NativeTensor<Float64Array> }>;
}

export interface AelBox {
  top: number;
  left: number;
  height: number;
  width: number;
  fromComponent: boolean;
}

export interface AddonStepInputs {
  /**
   * floor, floor-warmup, floor-supervised: the network passes and SGD of those steps only (bench).
   * ael: the AEL variant's step (the trainer needs the `ael` option).
   */
  phase: 'supervised' | 'warmup' | 'semi' | 'ael' | 'floor' | 'floor-warmup' | 'floor-supervised';
  labeledImages: Tensor;
  labels: Tensor;
  unlabeledImages?: Tensor;
  lrBackbone: number;
  lrHead: number;
  copyTeacher?: boolean;
  emaDecay?: number;
  dropPercentile?: number;
  alpha?: number;
  /** B_u x H x W ground truth of the unlabeled batch, for the pseudo-label metrics only (never a loss). */
  unlabeledTruth?: Tensor;
  /**
   * semi: distribution alignment's per-class factors (C floats, soft or hard: lib/train/alignment.ts):
   * the teacher's class probabilities are multiplied by them and renormalised before the argmax.
   */
  classScale?: Tensor;
  /**
   * semi: class-balanced selection's target shares (C floats): a class holding a larger share of the
   * mixed batch's pseudo-labels keeps only its most confident pixels, that share; the rest are ignored
   * and left out of the reference weighting's B*H*W, as those below a confidence threshold are.
   */
  classPrior?: Tensor;
  /**
   * semi: the unlabeled batch's strong views (photometric()), B_u x 3 x H x W: the student's input,
   * mixed as unlabeledImages would be, while the pseudo-labels come from unlabeledImages.
   */
  unlabeledStrongImages?: Tensor;
  /** Data parallel: this rank wants to stop; the result's `stop` says whether any rank does. */
  stop?: boolean;
  /** ael: the labeled images' copy-paste partners (with hasPartner flags). */
  partnerImages?: Tensor;
  partnerLabels?: Tensor;
  hasPartner?: boolean[];
  /** ael: unlabeledImages are [the kept images; their bank partners]; their unlabeled indices, same order. */
  unlabeledIndex?: number[];
  /** ael: this step's plan (aelPlan() for the first, then the previous result's nextPlan). */
  plan?: AelPlan;
  /** ael: percent_e, the entropy share L_cons2 ignores. */
  consistencyPercent?: number;
  /** ael: the contrastive loss is on (epoch >= start_epoch). */
  contrastiveOn?: boolean;
  /** ael: the seed of the next step's plan. */
  nextPlanSeed?: number;
}

export interface AddonStepResult {
  loss: number;
  supervised: number;
  unsupervised: number;
  contrastive: number;
  mixed: boolean;
  unsupThreshold: number;
  unsupKept: number;
  /** Pixels with a pseudo-label (after mixing and the confidence threshold). */
  unsupValid: number;
  validClasses: number;
  /** With unlabeledTruth: labelled pixels, right pseudo-labels, and the same over the pixels L_u keeps. */
  pseudoLabelPixels: number;
  pseudoLabelCorrect: number;
  pseudoLabelKeptPixels: number;
  pseudoLabelKeptCorrect: number;
  /** With unlabeledTruth, per class over those labelled pixels: the truth's, the pseudo-labels' and the right ones; otherwise empty. */
  pseudoLabelClassTruth: number[];
  pseudoLabelClassPredicted: number[];
  pseudoLabelClassRight: number[];
  /** warmup and semi: labelled pixels per class of the labeled batch (summed over the ranks); otherwise empty. */
  labeledClassPixels: number[];
  /** semi: the teacher's class probabilities summed over the unlabeled pixels, before any alignment; otherwise empty. */
  teacherClassMass: number[];
  /** semi: the unlabeled batch's pseudo-labels per class (after classScale, before mixing); otherwise empty. */
  pseudoClassPixels: number[];
  /** With lossScaling: whether the step was skipped (non-finite gradients), and the scale after it (1 without). */
  skipped: boolean;
  lossScale: number;
  /** Native time of the step. */
  seconds: number;
  /** Where the step's time went (seconds; on CPU they add up to `seconds`). */
  phases: StepPhases;
  /** Data parallel: some rank asked to stop after this step (all ranks stop together). */
  stop: boolean;
  /** ael: pixels copy-pasted, boxes cut around a component (the others random), the next step's plan. */
  pasted: number;
  componentBoxes: number;
  nextPlan?: AelPlan;
}

export interface StepPhases {
  pseudoLabels: number;
  mixing: number;
  studentForward: number;
  teacherForward: number;
  losses: number;
  backward: number;
  optimizer: number;
  ema: number;
  other: number;
}

export interface AddonTrainerOptions {
  model: AddonModelOptions;
  semi: boolean;
  momentum?: number;
  weightDecay?: number;
  seed?: number;
  autocast?: 'bfloat16' | 'float16' | null;
  channelsLast?: boolean;
  /**
   * Dynamic loss scaling with torch.cuda.amp.GradScaler's rules (null: none): the loss is scaled
   * before the backward, the gradients unscaled before SGD; a step whose gradients hold inf or NaN
   * is skipped (weights, momentum and EMA teacher unchanged) and the scale multiplied by
   * backoffFactor; after growthInterval good steps in a row it is multiplied by growthFactor.
   * Defaults: initScale 65536, growthFactor 2, backoffFactor 0.5, growthInterval 2000. The state is in checkpoints.
   */
  lossScaling?: { initScale?: number; growthFactor?: number; backoffFactor?: number; growthInterval?: number } | null;
  device?: string;
  /** classWeight: C per-class weights of the cross-entropy (weighted mean), none by default. */
  supervised?: { ohem?: boolean; thresh?: number; minKept?: number; auxWeight?: number; ignoreIndex?: number; classWeight?: number[] };
  unsupervised?: {
    weighting?: 'reference' | 'paper'; weight?: number;
    /** Teacher mode for the pseudo-labels (reference: eval). */
    pseudoLabels?: 'eval' | 'train';
    /** Pseudo-labels below this teacher confidence become ignore (0: none, the reference). */
    confidenceThreshold?: number;
    /** Pseudo-labels from the teacher's logits averaged over the image and its flip (false: one pass, the reference). */
    flipPseudoLabels?: boolean;
  };
  /** The teacher's BN statistics: its own train-mode passes (reference) or the EMA of the student's. */
  teacherBn?: 'own' | 'ema';
  /** Supervised-only: a teacher that follows the student by the EMA (step emaDecay), as U2PL's does; the run is scored with it. */
  emaModel?: boolean;
  /** Data parallel (from joinProcessGroup); absent: one process. */
  processGroup?: AddonProcessGroup;
  /** With a process group: BN statistics over all ranks' batches (net.sync_bn, default true). */
  syncBn?: boolean;
  /** With a process group: the reference's contrastive weight / world size (§10.8 [Q], default true). */
  contrastiveWorldScaling?: boolean;
  contrastive?: (AddonContrastiveOptions & { weight?: number; queueSize?: number[] }) | null;
  mix?: 'cutmix' | 'cutout' | 'classmix' | null;
  /** The AEL variant: its state (kappa, cutmix bank), plans and step. */
  ael?: AddonAelOptions | null;
}

/** native/addon/trainer_js.cc */
export interface AddonTrainer {
  step(inputs: AddonStepInputs): Promise<AddonStepResult>;
  student(): AddonModel;
  teacher(): AddonModel | null;
  /** Data parallel: call it on every rank; rank 0 writes (every rank with everyRank). */
  save(path: string, extra?: Record<string, unknown>, options?: { everyRank?: boolean }): Promise<void>;
  load(path: string): Promise<Record<string, unknown>>;
  loadPretrained(path: string): Promise<{ loaded: number; missing: string[]; unexpected: string[] }>;
  /** Keys held per class of the contrastive memory bank (empty without the contrastive loss). */
  bankSizes(): number[];
  /** Each class's bank capacity. */
  bankCapacities(): number[];
  /** AEL: the plan a step would follow now, from `seed` and the state (the first step's). */
  aelPlan(seed: number): Promise<AelPlan>;
  /** AEL: kappa (3 x C) and the cutmix bank (C x N_u); null without AEL. */
  aelState(): Promise<{ kappa: NativeTensor<Float32Array>; bank: NativeTensor<Float32Array> } | null>;
  /**
   * Releases the networks, optimizer and banks now rather than at garbage collection. Call it
   * once the work on the trainer and its models has settled; both are unusable after.
   */
  dispose(): void;
}

/** native/addon/distributed_js.cc: a c10d process group (Gloo or NCCL). */
export interface AddonProcessGroup {
  rank(): number;
  worldSize(): number;
  /** The element-wise sum of every rank's tensor (a new tensor). */
  allReduceSum<T extends TypedArray>(tensor: Tensor<T>): Promise<NativeTensor<T>>;
  /** Every rank's tensor in rank order (their first dimensions may differ). */
  allGather<T extends TypedArray>(tensor: Tensor<T>): Promise<NativeTensor<T>[]>;
  barrier(): Promise<void>;
}

export interface ProcessGroupOptions {
  backend?: 'gloo' | 'nccl';
  rank: number;
  worldSize: number;
  masterAddr?: string;
  masterPort: number;
  /** A collective that waits longer fails (default 300000). */
  timeoutMs?: number;
  /** Where the collectives run (default 'cpu'; nccl needs the rank's GPU, 'cuda:N'); tensors elsewhere are staged there and back. */
  device?: string;
  /** torchrun's agent serves the store (TORCHELASTIC_USE_AGENT_STORE=True): every rank connects as a client. */
  agentStore?: boolean;
  /** The store's keys live under this prefix (torchrun: one per restart attempt). */
  storePrefix?: string;
}

/** The raw addon, as loaded from build/Release/u2pl.node. */
export interface Addon {
  info(): NativeInfo;
  setThreads(n: number): number;
  /**
   * The CUDA caching allocator's bytes on a device (default: the current one), the numbers of
   * torch.cuda.memory_allocated / max_memory_allocated / memory_reserved / max_memory_reserved;
   * null without the CUDA kernels or a GPU. resetPeak starts the peaks again.
   */
  cudaMemory(options?: { device?: number; resetPeak?: boolean }): { allocatedBytes: number; peakAllocatedBytes: number; reservedBytes: number; peakReservedBytes: number } | null;
  /** Ends the process at once (no exit handlers, no destructors): the second Ctrl-C. */
  exitNow(code: number): never;
  cast(tensor: Tensor, dtype: DType): NativeTensor;
  matmul(a: Tensor, b: Tensor, repeat?: number): Promise<NativeTensor>;
  readCheckpoint(path: string): Promise<unknown>;
  writeCheckpoint(path: string, value: unknown): Promise<void>;
  AddonModel: new (options: AddonModelOptions) => AddonModel;
  AddonTrainer: new (options: AddonTrainerOptions) => AddonTrainer;
  /** Joins a process group: resolves once every rank has joined (rank 0 serves the rendezvous). */
  joinProcessGroup(options: ProcessGroupOptions): Promise<AddonProcessGroup>;
  /**
   * Seconds of each run of one LibTorch kernel on random inputs made natively, fp32 unless
   * options.dtype says bf16 (the bench's practical peak, and each convolution of a network on its
   * own): an m x k by k x n matrix product, or a convolution (square kernel; padding by default
   * keeps the size at stride 1).
   */
  timeKernel(
    kernel: { op: 'gemm'; m: number; k: number; n: number } |
      {
        op: 'conv'; batch: number; channels: number; height: number; width?: number; outChannels?: number; kernel?: number;
        stride?: number; padding?: number; dilation?: number; channelsLast?: boolean;
      },
    options?: { warmup?: number; runs?: number; dtype?: 'fp32' | 'bf16' },
  ): Promise<number[]>;
  losses: AddonLosses;
  ael: AddonAel;
  augment(o: {
    image: Uint8Array; label?: Uint8Array; height: number; width: number; resizedHeight?: number; resizedWidth?: number;
    scaledHeight?: number; scaledWidth?: number; blur?: boolean;
    flip?: boolean; cropTop?: number; cropLeft?: number; cropHeight?: number; cropWidth?: number; mean?: number[]; std?: number[];
    labelPad?: number; impl?: LossImpl;
  }): Promise<{ image: Float32Array; label?: Uint8Array }>;
  /** The strong view of one normalised 3 x H x W image (colour jitter, grayscale, blur); see lib/data/augment.ts. */
  photometric(o: {
    image: Float32Array; height: number; width: number; mean?: number[]; std?: number[];
    jitter?: boolean; brightness?: number; contrast?: number; saturation?: number; order?: number[];
    grayscale?: boolean; blurSigma?: number; impl?: LossImpl;
  }): Promise<Float32Array>;
}

let addon: Addon | undefined;

/** Threads LibTorch should use by default: U2PL_THREADS, else the cores this process may use. */
export function defaultThreadCount(env: NodeJS.ProcessEnv = process.env): number {
  const fromEnv = env.U2PL_THREADS;
  if (fromEnv !== undefined && fromEnv !== '') {
    const n = Number(fromEnv);
    if (!Number.isInteger(n) || n < 1) throw new Error(`U2PL_THREADS must be a positive integer, got '${fromEnv}'`);
    return n;
  }
  return os.availableParallelism();
}

let root: string | undefined;

/** Why the addon did not load, and what to run. */
function addonLoadError(dir: string, e: Error): string {
  const built = fs.existsSync(path.join(dir, 'build', 'Release', 'u2pl.node'));
  if (built) return `u2pl: the native addon ${path.join(dir, 'build', 'Release', 'u2pl.node')} does not load (${e.message.split('\n')[0]}). Rebuild it with 'npx u2pl-setup' (it finds LibTorch again).`;
  return `u2pl: the native addon is not built in ${dir}. npm 11 skips the install scripts of dependencies ` +
    "unless they are allowed: install with 'npm install u2pl --allow-scripts=u2pl' (or add \"allowScripts\": { \"u2pl\": true } " +
    "to your package.json and run 'npm rebuild u2pl'), or build it now with 'npx u2pl-setup'.";
}

/**
 * The folder of the u2pl package (where build/Release/u2pl.node lives): the nearest folder above
 * this file with u2pl's package.json. The same whether this runs from lib/ (ts-jest), dist/ (the
 * installed package) or dist-bench/lib/ (the bench build).
 */
export function packageRoot(): string {
  if (root === undefined) {
    for (let dir = __dirname; ; dir = path.dirname(dir)) {
      const file = path.join(dir, 'package.json');
      if (fs.existsSync(file) && (JSON.parse(fs.readFileSync(file, 'utf8')) as { name?: string }).name === 'u2pl') {
        root = dir;
        break;
      }
      if (path.dirname(dir) === dir) throw new Error(`u2pl: no u2pl package.json above ${__dirname}`);
    }
  }
  return root;
}

/** Loads the addon once (Debian's LibTorch starts with 1 thread, so the thread count is set here). */
export function native(): Addon {
  if (!addon) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const load = require('node-gyp-build') as (dir: string) => Addon;
    const root = packageRoot();
    let loaded: Addon;
    try {
      loaded = load(root);
    } catch (e) {
      throw new Error(addonLoadError(root, e as Error));
    }
    loaded.setThreads(defaultThreadCount());
    addon = loaded;
  }
  return addon;
}
