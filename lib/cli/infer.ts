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
import { defaultCheckpoint, loadModel, predict } from '../eval/api';
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
  const model = await loadModel(config, argv.checkpoint ?? defaultCheckpoint(config));
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
    const { prediction } = await predict(model, img, { scales, flip: argv.flip, mean, std });
    const name = path.basename(file).replace(/\.[^.]+$/, '');
    await writePngFile(path.join(out, `${name}.png`), prediction.data, img.width, img.height, 1);
    await writePngFile(path.join(out, `${name}_overlay.png`), overlay(img.data, colourise(prediction.data, info.palette)), img.width, img.height, 3);
    process.stdout.write(`${file} -> ${path.join(out, `${name}.png`)}\n`);
  }
});
