#!/usr/bin/env node
/**
 * u2pl-eval: evaluates a checkpoint on the config's validation list (whole image or sliding
 * window, optional scales and flip), prints per-class IoU and mIoU, optionally writes predictions.
 */
import fs from 'fs';
import path from 'path';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { BatchLoader } from '../data/loader';
import { listSamples } from '../data/datasets';
import { prepareData } from '../data/prepare';
import { evaluateFullImages } from '../eval/evaluate';
import { colourise, writePngFile } from '../eval/output';
import { defaultCheckpoint, loadModel } from '../eval/api';
import { configFromArgs, iouTable, runCli } from './common';

runCli(async () => {
  const argv = await yargs(hideBin(process.argv))
    .scriptName('u2pl-eval')
    .usage('$0 [experiment]', 'Evaluate a checkpoint on the validation list', (y) =>
      y.positional('experiment', { type: 'string', default: '.', describe: 'experiment folder or config file' }))
    .option('config', { type: 'string' })
    .option('checkpoint', { type: 'string', describe: 'default: snapshot_dir/ckpt_best.pth, else ckpt.pth' })
    .option('list', { type: 'string', describe: 'list file to evaluate (default: dataset.val.data_list)' })
    .option('mode', { choices: ['whole', 'slide'] as const, default: 'whole' as const })
    .option('scales', { type: 'string', default: '1', describe: 'comma-separated, e.g. 0.75,1,1.25' })
    .option('flip', { type: 'boolean', default: false })
    .option('crop', { type: 'number', describe: 'sliding window size (default: the val crop)' })
    .option('base-size', { type: 'number', default: 0, describe: 'sliding: long side at scale 1 (0: image size)' })
    .option('save-dir', { type: 'string', describe: 'write colour and index predictions here' })
    .option('data-root', { type: 'string' })
    .option('threads', { type: 'number' })
    .strict().help().parse();
  const config = configFromArgs((argv.config as string | undefined) ?? (argv.experiment as string), { dataRoot: argv['data-root'] as string | undefined, threads: argv.threads as number | undefined });
  const checkpoint = argv.checkpoint ?? defaultCheckpoint(config);
  const model = await loadModel(config, checkpoint);
  const data = await prepareData(config.dataset, config.net.model.numClasses);
  const split = config.dataset.val ?? config.dataset.train;
  const samples = argv.list ? listSamples({ kind: config.dataset.kind, root: split.dataRoot, imageDir: config.dataset.imageDir, labelDir: config.dataset.labelDir, labelExt: config.dataset.labelExt, palette: config.dataset.palette }, path.resolve(argv.list)) : data.val;
  if (samples.length === 0) throw new Error('nothing to evaluate: the config has no dataset.val (give --list)');
  const loader = new BatchLoader({
    samples, augment: split.augment, train: false, withLabels: true, labelOptions: data.info.labelOptions,
    classes: config.net.model.numClasses, ignoreLabel: config.dataset.ignoreLabel, seed: 0,
  });
  const saveDir = argv['save-dir'] ? path.resolve(argv['save-dir']) : undefined;
  if (saveDir) fs.mkdirSync(saveDir, { recursive: true });
  const scales = String(argv.scales).split(',').map(Number);
  if (scales.some((s) => !(s > 0))) throw new Error(`--scales must be positive numbers, got '${argv.scales}'`);
  process.stderr.write(`u2pl-eval: ${samples.length} images, ${argv.mode}, scales ${scales.join(',')}${argv.flip ? ', flip' : ''}, ${checkpoint}\n`);
  const result = await evaluateFullImages(model.handle, loader, {
    mode: argv.mode, scales, flip: argv.flip, crop: argv.crop ?? split.augment.crop.size[0], baseSize: argv['base-size'],
  }, config.dataset.ignoreLabel, async (p) => {
    if (!saveDir) return;
    const name = path.basename(samples[p.index].image).replace(/\.[^.]+$/, '');
    await writePngFile(path.join(saveDir, `${name}.png`), p.prediction, p.width, p.height, 1);
    await writePngFile(path.join(saveDir, `${name}_colour.png`), colourise(p.prediction, data.info.palette), p.width, p.height, 3);
  });
  process.stdout.write(`${iouTable(data.info.classNames, result.iou, result.miou)}\npixel accuracy ${(100 * result.pixelAccuracy).toFixed(2)}\n`);
});
