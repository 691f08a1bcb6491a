/** High-level evaluation and inference on a config: evaluate(), loadModel(), predict(). */
import fs from 'fs';
import path from 'path';
import { U2plConfig } from '../config/config';
import { ConfigError } from '../config/errors';
import { FileError } from '../errors';
import { readImage, RgbImage } from '../data/image-io';
import { BatchLoader } from '../data/loader';
import { prepareData } from '../data/prepare';
import { Model } from '../model/model';
import { InferenceOptions, NativeTensor } from '../native';
import { BEST_CHECKPOINT, CHECKPOINT, runtimePrecision } from '../train/train';
import { evaluateFullImages, EvalResult } from './evaluate';
import { normalise } from './render';

/** The run's best checkpoint, else its last one. */
export function defaultCheckpoint(config: U2plConfig): string {
  const found = [BEST_CHECKPOINT, CHECKPOINT].map((f) => path.join(config.saver.snapshotDir, f)).find((f) => fs.existsSync(f));
  if (!found) throw new FileError(config.saver.snapshotDir, `no checkpoint found (looked for ${BEST_CHECKPOINT} and ${CHECKPOINT}; train first or give one)`);
  return found;
}

/** The sliding window of a config: the val crop (crop_h x crop_w), else the training crop (§13.3). */
export function slidingWindow(config: U2plConfig): [number, number] {
  return (config.dataset.val?.augment.crop ?? config.dataset.train.augment.crop ?? { size: [769, 769] as [number, number] }).size;
}

/**
 * Which network of a training checkpoint: the teacher (U2PL's, or the EMA model of a supervised-only
 * run with trainer.ema_model; `teacher_state`) or the student (`model_state`).
 */
export type CheckpointWeights = 'teacher' | 'student';

const WEIGHTS_KEY: Record<CheckpointWeights, string> = { teacher: 'teacher_state', student: 'model_state' };

/**
 * The config's network with a checkpoint's weights (by default teacher_state when present, §14; or
 * the network `weights` names), in the memory layout `runtime.channels_last` chooses for this
 * machine (lib/model/precision.ts; same results). `model.loaded` says which entry was read.
 */
export async function loadModel(config: U2plConfig, checkpoint = defaultCheckpoint(config), weights?: CheckpointWeights): Promise<Model> {
  const model = new Model(config.net.model);
  if (weights !== undefined && !(weights in WEIGHTS_KEY)) throw new TypeError(`weights: expected teacher or student, got ${JSON.stringify(weights)}`);
  let report;
  try {
    report = await model.load(checkpoint, weights ? { key: WEIGHTS_KEY[weights] } : {});
  } catch (e) {
    if (weights && String((e as Error).message).includes(`no key '${WEIGHTS_KEY[weights]}'`)) {
      throw new FileError(checkpoint, weights === 'teacher'
        ? 'holds no teacher (teacher_state): only U2PL runs and supervised-only runs with trainer.ema_model save one; its student is --weights student'
        : 'holds no student (model_state): not a training checkpoint; leave out --weights to load what it holds');
    }
    throw e;
  }
  if (report.missing.length) throw new FileError(checkpoint, `${report.missing.length} weights missing for this config's network (e.g. ${report.missing[0]}): was it trained with another net section?`);
  if (runtimePrecision(config).channelsLast) model.setChannelsLast(true);
  return model;
}

/** Whole-image or sliding-window evaluation of the validation list (§13.3, §13.4). */
export async function evaluate(config: U2plConfig, options: InferenceOptions & { checkpoint?: string; weights?: CheckpointWeights } = {}): Promise<EvalResult> {
  const model = await loadModel(config, options.checkpoint, options.weights);
  const data = await prepareData(config.dataset, config.net.model.numClasses);
  if (data.val.length === 0) throw new ConfigError('dataset.val', 'required to evaluate (a data_root and data_list)');
  const split = config.dataset.val ?? config.dataset.train;
  const loader = new BatchLoader({
    samples: data.val, augment: split.augment, train: false, withLabels: true, labelOptions: data.info.labelOptions,
    classes: config.net.model.numClasses, ignoreLabel: config.dataset.ignoreLabel, seed: 0,
  });
  return evaluateFullImages(model.handle, loader, { crop: slidingWindow(config), ...options }, config.dataset.ignoreLabel);
}

/** Class indices (and confidences) for an image (file or decoded RGB), normalised with mean/std. */
export async function predict(
  model: Model, image: string | RgbImage, options: InferenceOptions & { mean?: number[]; std?: number[] } = {},
): Promise<{ prediction: NativeTensor<Uint8Array>; confidence: NativeTensor<Float32Array>; width: number; height: number }> {
  const mean = options.mean ?? [123.675, 116.28, 103.53];
  const std = options.std ?? [58.395, 57.12, 57.375];
  const img = typeof image === 'string' ? await readImage(image) : image;
  const x = normalise(img.data, img.height, img.width, mean, std);
  const out = await model.predict({ data: x, shape: [1, 3, img.height, img.width] }, options);
  return { ...out, width: img.width, height: img.height };
}
