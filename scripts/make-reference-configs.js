#!/usr/bin/env node
'use strict';
// Writes experiments/pascal/<split>/{suponly,ours} and experiments/cityscapes/<split>/{suponly,ours,ael}:
// the reference's shipped configs (u2pl-method.md §15.4) for one process over the global batch
// (batch = replicas x per-replica batch; contrastive loss_weight = 1/R; OHEM min_kept x R). The
// reference's keys without effect (workers, noise_std, TTA, acm.number; unsupervised_entropy_ignore
// outside AEL) are left out.
// `ael` is the with_AEL branch's city_744 recipe (u2pl-ael-method.md A12) for each split: the
// branch's loss scaling for its 8 replicas (trainer.ael.replicas) and one used unlabeled image per
// replica batch of 2 (trainer.ael.replica_batch) reproduce the reference in one process.
const fs = require('fs');
const path = require('path');
const yaml = require('js-yaml');

const root = path.resolve(__dirname, '../experiments');
const splits = "${U2PL_SPLITS:-../../../../../shared/data/u2pl-splits}";
const norm = { mean: [123.675, 116.28, 103.53], std: [58.395, 57.12, 57.375], ignore_label: 255 };
const encoder = (pretrained) => ({
  type: 'u2pl.models.resnet.resnet101',
  pretrained,
  kwargs: { multi_grid: true, zero_init_residual: true, fpn: true, replace_stride_with_dilation: [false, true, true] },
});
const contrastive = (weight) => ({
  negative_high_entropy: true, low_rank: 3, high_rank: 20, current_class_threshold: 0.3, current_class_negative_threshold: 1,
  low_entropy_threshold: 20, num_negatives: 50, num_queries: 256, temperature: 0.5, loss_weight: weight,
});

function pascal(split, semi) {
  return {
    seed: 2,
    dataset: {
      type: semi ? 'pascal_semi' : 'pascal',
      train: {
        data_root: '${U2PL_DATA_ROOT:-/data/VOC2012}', data_list: `${splits}/pascal/${split}/labeled.txt`,
        flip: true, GaussianBlur: false, rand_resize: [0.5, 2.0], crop: { type: 'rand', size: [513, 513] },
      },
      val: { data_root: '${U2PL_DATA_ROOT:-/data/VOC2012}', data_list: `${splits}/pascal/val.txt`, crop: { type: 'center', size: [513, 513] } },
      batch_size: 16, // reference: 4 replicas x 4 (semi), 2 x 8 (sup)
      n_sup: split, ...norm,
    },
    trainer: {
      epochs: 80, eval_on: true,
      optimizer: { type: 'SGD', kwargs: { lr: 0.001, momentum: 0.9, weight_decay: 0.0001 } },
      lr_scheduler: { mode: 'poly', kwargs: { power: 0.9 } },
      ...(semi ? { unsupervised: { drop_percent: 80, apply_aug: 'cutmix' }, contrastive: contrastive(0.25) } : {}),
    },
    saver: { auto_resume: true, snapshot_dir: 'checkpoints', pretrain: '' },
    criterion: { type: 'CELoss', kwargs: { use_weight: false } },
    net: {
      num_classes: 21, sync_bn: true, ...(semi ? { ema_decay: 0.99 } : {}),
      encoder: encoder('${U2PL_PRETRAINED:-}'),
      decoder: { type: 'u2pl.models.decoder.dec_deeplabv3_plus', kwargs: { inner_planes: 256, dilations: [12, 24, 36], rep_head: semi } },
    },
    runtime: { device: '${U2PL_DEVICE:-cuda}' },
  };
}

function cityscapes(split, semi) {
  return {
    seed: 2,
    dataset: {
      type: semi ? 'cityscapes_semi' : 'cityscapes',
      train: {
        data_root: '${U2PL_DATA_ROOT:-/data/cityscapes}', data_list: `${splits}/cityscapes/${split}/labeled.txt`,
        flip: true, GaussianBlur: false, rand_resize: [0.5, 2.0], crop: { type: 'rand', size: [769, 769] },
      },
      val: { data_root: '${U2PL_DATA_ROOT:-/data/cityscapes}', data_list: `${splits}/cityscapes/val.txt`, crop: { type: 'center', size: [769, 769] } },
      batch_size: 16, // reference: 8 replicas x 2 (semi), 4 x 4 (sup)
      n_sup: split, ...norm,
    },
    trainer: {
      epochs: 200, eval_on: true, ...(semi ? { sup_only_epoch: 0 } : {}),
      optimizer: { type: 'SGD', kwargs: { lr: 0.01, momentum: 0.9, weight_decay: 0.0005 } },
      lr_scheduler: { mode: 'poly', kwargs: { power: 0.9 } },
      ...(semi ? { unsupervised: { drop_percent: 80, apply_aug: 'cutmix' }, contrastive: contrastive(0.125) } : {}),
    },
    saver: { auto_resume: true, snapshot_dir: 'checkpoints', pretrain: '' },
    // OHEM's min_kept was per replica: scaled by the replica count for one process (§6.2).
    criterion: { type: 'ohem', kwargs: { thresh: 0.7, min_kept: semi ? 800000 : 400000 } },
    net: {
      num_classes: 19, sync_bn: true, ...(semi ? { ema_decay: 0.99 } : {}),
      aux_loss: { aux_plane: 1024, loss_weight: 0.4 },
      encoder: encoder('${U2PL_PRETRAINED:-}'),
      decoder: { type: 'u2pl.models.decoder.dec_deeplabv3_plus', kwargs: { inner_planes: 256, dilations: [12, 24, 36], rep_head: semi } },
    },
    runtime: { device: '${U2PL_DEVICE:-cuda}' },
  };
}

function cityscapesAel(split) {
  const c = cityscapes(split, true);
  return {
    seed: 1,  // train.sh
    dataset: {
      ...c.dataset,
      type: 'cityscapes_semi_cp',
      train: { ...c.dataset.train, acm: { area_thresh: 0.005, area_thresh2: 0.01, no_pad: true, no_slim: true } },
      head_lr_multiplier: 10,  // aux + decoder at 0.1
      acp: { rand_resize: [0.1, 2.0], prob: 0.5, momentum: 0.999, number: 3 },
    },
    trainer: {
      epochs: 200, eval_on: true,
      optimizer: { type: 'SGD', kwargs: { lr: 0.01, momentum: 0.9, weight_decay: 0.0001 } },
      lr_scheduler: { mode: 'poly', kwargs: { power: 0.9 } },
      contrastive: { ...contrastive(undefined), unsupervised_entropy_ignore: 80, start_epoch: 20 },
      ael: { replicas: 8, replica_batch: 2 },
    },
    saver: c.saver,
    criterion: { type: 'ohem', kwargs: { thresh: 0.7, min_kept: 800000 }, cons: { sample: true, gamma: 2 }, consist_weight: 1, contra_weight: 0.1 },
    net: c.net,
    runtime: c.runtime,
  };
}

const header = (name) => `# ${name}: generated by scripts/make-reference-configs.js from the reference's shipped config.\n` +
  '# Set U2PL_DATA_ROOT (dataset), U2PL_SPLITS (the published split lists), U2PL_PRETRAINED (ImageNet\n' +
  '# deep-stem ResNet-101 checkpoint) and U2PL_DEVICE (cuda by default).\n';

for (const split of [92, 183, 366, 732, 1464, 662, 1323, 2646, 5291]) {
  for (const [name, semi] of [['suponly', false], ['ours', true]]) {
    const dir = path.join(root, 'pascal', String(split), name);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'config.yaml'), header(`pascal ${split} ${name}`) + yaml.dump(pascal(split, semi), { lineWidth: 140, flowLevel: 3 }));
  }
}
for (const split of [186, 372, 744, 1488]) {
  for (const [name, config] of [['suponly', cityscapes(split, false)], ['ours', cityscapes(split, true)], ['ael', cityscapesAel(split)]]) {
    const dir = path.join(root, 'cityscapes', String(split), name);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'config.yaml'), header(`cityscapes ${split} ${name}`) + yaml.dump(config, { lineWidth: 140, flowLevel: 3, skipInvalid: true }));
  }
}
