/** A tiny experiment (procedural data, small network) for training tests. */
import fs from 'fs';
import path from 'path';
import yaml from 'js-yaml';
import { tempDir } from './temp';

export function tinyConfig(semi: boolean, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const base: Record<string, unknown> = {
    seed: 3,
    dataset: {
      type: semi ? 'folder_semi' : 'folder',
      procedural: { seed: 1, train: 16, labeled: 4, val: 4, size: 40 },
      label_dir: 'labels',
      train: { data_root: 'data', data_list: 'data/splits/4/labeled.txt', flip: true, rand_resize: [0.75, 1.25], crop: { type: 'rand', size: [32, 32] } },
      val: { data_root: 'data', data_list: 'data/val.txt', crop: { type: 'center', size: [40, 40] } },
      batch_size: 2,
      cache_mb: 16,
    },
    trainer: {
      epochs: 2,
      sup_only_epoch: 1,
      optimizer: { type: 'SGD', kwargs: { lr: 0.01, momentum: 0.9, weight_decay: 0.0001 } },
      lr_scheduler: { mode: 'poly', kwargs: { power: 0.9 } },
      ...(semi ? {
        unsupervised: { drop_percent: 80, apply_aug: 'cutmix' },
        contrastive: { low_rank: 1, high_rank: 3, num_queries: 16, num_negatives: 8, temperature: 0.5, loss_weight: 0.1, low_entropy_threshold: 20, queue_size: [500, 300, 300, 300] },
      } : {}),
    },
    saver: { snapshot_dir: 'checkpoints', auto_resume: true },
    criterion: { type: 'CELoss' },
    net: {
      num_classes: 4,
      ema_decay: 0.99,
      encoder: { type: 'resnet18', kwargs: { deep_stem: false, replace_stride_with_dilation: [false, false, true] } },
      decoder: { type: 'dec_deeplabv3_plus', kwargs: { inner_planes: 16, head_planes: 16, dilations: [1, 2, 3], rep_head: semi } },
    },
  };
  return { ...base, ...overrides };
}

/** Writes config.yaml into a new folder (its procedural data is generated on first use). */
export function writeExperiment(config: Record<string, unknown>): string {
  const dir = tempDir('exp');
  fs.writeFileSync(path.join(dir, 'config.yaml'), yaml.dump(config));
  return dir;
}
