#!/usr/bin/env node
/** u2pl-infer: index PNG masks and colour overlays for images or folders of images. */
import fs from 'fs';
import path from 'path';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { datasetInfo } from '../data/datasets';
import { readImage } from '../data/image-io';
import { PROCEDURAL_CLASSES } from '../data/procedural';
import { colourise, overlay, writePngFile } from '../eval/output';
import { Model } from '../model/model';
import { BEST_CHECKPOINT, CHECKPOINT } from '../train/train';
import { configFromArgs, runCli } from './common';

const IMAGE = /\.(jpe?g|png|webp|tiff?|bmp)$/i;

runCli(async () => {
  const argv = await yargs(hideBin(process.argv))
    .scriptName('u2pl-infer')
    .usage('$0 <inputs..>', 'Predict masks for images (files or folders)', (y) =>
      y.positional('inputs', { type: 'string', array: true, demandOption: true }))
    .option('config', { type: 'string', default: 'config.yaml', describe: 'experiment config (network and normalisation)' })
    .option('checkpoint', { type: 'string' })
    .option('out', { type: 'string', default: 'predictions' })
    .option('scales', { type: 'string', default: '1' })
    .option('flip', { type: 'boolean', default: false })
    .option('threads', { type: 'number' })
    .strict().help().parse();
  const config = configFromArgs(argv.config, { threads: argv.threads as number | undefined });
  const checkpoint = argv.checkpoint ?? [BEST_CHECKPOINT, CHECKPOINT].map((f) => path.join(config.saver.snapshotDir, f)).find((f) => fs.existsSync(f));
  if (!checkpoint) throw new Error(`${config.saver.snapshotDir}: no checkpoint found (give --checkpoint)`);
  const model = new Model(config.net.model);
  const report = await model.load(checkpoint);
  if (report.missing.length) throw new Error(`${checkpoint}: ${report.missing.length} weights missing for this config's network`);
  const classes = config.net.model.numClasses;
  const info = datasetInfo(config.dataset.kind, classes, { palette: config.dataset.palette }, config.dataset.classNames ?? (config.dataset.procedural ? PROCEDURAL_CLASSES : undefined));
  const files = (argv.inputs as string[]).flatMap((input) => {
    const abs = path.resolve(input);
    if (!fs.existsSync(abs)) throw new Error(`${abs}: no such file or folder`);
    return fs.statSync(abs).isDirectory() ? fs.readdirSync(abs).filter((f) => IMAGE.test(f)).sort().map((f) => path.join(abs, f)) : [abs];
  });
  const out = path.resolve(argv.out);
  fs.mkdirSync(out, { recursive: true });
  const { mean, std } = (config.dataset.val ?? config.dataset.train).augment;
  const scales = String(argv.scales).split(',').map(Number);
  for (const file of files) {
    const img = await readImage(file);
    const plane = img.width * img.height;
    const x = new Float32Array(3 * plane);
    for (let c = 0; c < 3; c++) for (let p = 0; p < plane; p++) x[c * plane + p] = (img.data[p * 3 + c] - mean[c]) / std[c];
    const { prediction } = await model.predict({ data: x, shape: [1, 3, img.height, img.width] }, { scales, flip: argv.flip });
    const name = path.basename(file).replace(/\.[^.]+$/, '');
    await writePngFile(path.join(out, `${name}.png`), prediction.data, img.width, img.height, 1);
    await writePngFile(path.join(out, `${name}_overlay.png`), overlay(img.data, colourise(prediction.data, info.palette)), img.width, img.height, 3);
    process.stdout.write(`${file} -> ${path.join(out, `${name}.png`)}\n`);
  }
});
