#!/usr/bin/env node
/**
 * u2pl-eval: evaluates a checkpoint on the config's validation list (whole image or sliding
 * window, optional scales and flip), prints per-class IoU and mIoU, optionally writes predictions.
 */
import fs from 'fs';
import path from 'path';
import { BatchLoader } from '../data/loader';
import { listSamples } from '../data/datasets';
import { prepareData } from '../data/prepare';
import { evaluateFullImages } from '../eval/evaluate';
import { colourise, writePngFile } from '../eval/output';
import { defaultCheckpoint, loadModel, slidingWindow } from '../eval/api';
import { ConfigError } from '../config/errors';
import { FileError } from '../errors';
import { cliParser, configFromArgs, integerFlag, iouTable, positiveListFlag, CliOutput, runCli } from './common';

export async function evalMain(args: string[], io: CliOutput): Promise<number> {
  const argv = await cliParser('u2pl-eval', args)
    .usage('$0 [experiment]', 'Evaluate a checkpoint on the validation list', (y) =>
      y.positional('experiment', { type: 'string', default: '.', describe: 'experiment folder or config file' }))
    .option('config', { type: 'string', requiresArg: true })
    .option('checkpoint', { type: 'string', requiresArg: true, describe: 'default: snapshot_dir/ckpt_best.pth, else ckpt.pth' })
    .option('split', { choices: ['val', 'test'] as const, default: 'val' as const, describe: "the config's list to evaluate: dataset.val or dataset.test" })
    .option('weights', { choices: ['teacher', 'student'] as const, describe: "which network of a training checkpoint: teacher (U2PL's, or a supervised-only run's EMA model) or student (default: the teacher where the file has one)" })
    .option('list', { type: 'string', requiresArg: true, describe: 'list file to evaluate (default: the --split list)' })
    .option('mode', { choices: ['whole', 'slide'] as const, default: 'whole' as const })
    .option('scales', { type: 'string', requiresArg: true, default: '1', coerce: positiveListFlag('scales'), describe: 'comma-separated positive numbers, e.g. 0.75,1,1.25' })
    .option('flip', { type: 'boolean', default: false })
    .option('crop', { type: 'string', requiresArg: true, coerce: integerFlag('crop', 1), describe: 'sliding window side, an integer >= 1 (default: the val crop, crop_h x crop_w)' })
    .option('base-size', { type: 'string', requiresArg: true, default: '0', coerce: integerFlag('base-size', 0), describe: 'sliding: long side at scale 1 (0: image size)' })
    .option('save-dir', { type: 'string', requiresArg: true, describe: 'write colour and index predictions here' })
    .option('data-root', { type: 'string', requiresArg: true })
    .option('threads', { type: 'string', requiresArg: true, coerce: integerFlag('threads', 1), describe: 'LibTorch threads, an integer >= 1' })
    .parse();
  const config = configFromArgs((argv.config as string | undefined) ?? (argv.experiment as string), { dataRoot: argv['data-root'] as string | undefined, threads: argv.threads as number | undefined });
  if (argv.checkpoint !== undefined && !fs.existsSync(path.resolve(argv.checkpoint))) throw new FileError(path.resolve(argv.checkpoint), '--checkpoint: no such file');
  if (argv.list !== undefined && !fs.existsSync(path.resolve(argv.list))) throw new FileError(path.resolve(argv.list), '--list: no such file');
  const checkpoint = argv.checkpoint ? path.resolve(argv.checkpoint) : defaultCheckpoint(config);
  const model = await loadModel(config, checkpoint, argv.weights);
  const data = await prepareData(config.dataset, config.net.model.numClasses);
  const which = argv.split;
  const split = config.dataset[which] ?? config.dataset.val ?? config.dataset.train;
  const samples = argv.list ? listSamples({ kind: config.dataset.kind, root: split.dataRoot, imageDir: config.dataset.imageDir, labelDir: config.dataset.labelDir, labelExt: config.dataset.labelExt, palette: config.dataset.palette }, path.resolve(argv.list)) : data[which];
  if (samples.length === 0) throw new ConfigError(`dataset.${which}`, `nothing to evaluate: the config has no dataset.${which} (give --list)`);
  const loader = new BatchLoader({
    samples, augment: split.augment, train: false, withLabels: true, labelOptions: data.info.labelOptions,
    classes: config.net.model.numClasses, ignoreLabel: config.dataset.ignoreLabel, seed: 0,
  });
  const saveDir = argv['save-dir'] ? path.resolve(argv['save-dir']) : undefined;
  if (saveDir) fs.mkdirSync(saveDir, { recursive: true });
  const scales = argv.scales as number[];
  io.err(`u2pl-eval: ${samples.length} images, ${argv.mode}, scales ${scales.join(',')}${argv.flip ? ', flip' : ''}, ${checkpoint} (${model.loaded?.key ?? 'root'})\n`);
  const result = await evaluateFullImages(model.handle, loader, {
    mode: argv.mode, scales, flip: argv.flip, crop: (argv.crop as number | undefined) ?? slidingWindow(config), baseSize: argv['base-size'] as number,
  }, config.dataset.ignoreLabel, async (p) => {
    if (!saveDir) return;
    const name = path.basename(samples[p.index].image).replace(/\.[^.]+$/, '');
    await writePngFile(path.join(saveDir, `${name}.png`), p.prediction, p.width, p.height, 1);
    await writePngFile(path.join(saveDir, `${name}_colour.png`), colourise(p.prediction, data.info.palette), p.width, p.height, 3);
  });
  io.out(`${iouTable(data.info.classNames, result.iou, result.miou)}\npixel accuracy ${(100 * result.pixelAccuracy).toFixed(2)}\n`);
  return 0;
}

if (require.main === module) runCli('u2pl-eval', evalMain);
