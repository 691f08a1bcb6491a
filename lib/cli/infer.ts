#!/usr/bin/env node
/** u2pl-infer: index PNG masks and colour overlays for images or folders of images. */
import fs from 'fs';
import path from 'path';
import { datasetInfo } from '../data/datasets';
import { readImage } from '../data/image-io';
import { PROCEDURAL_CLASSES } from '../data/procedural';
import { FileError, UsageError } from '../errors';
import { colourise, outputNames, overlay, writePngFile } from '../eval/output';
import { defaultCheckpoint, loadModel, predict } from '../eval/api';
import { cliParser, configFromArgs, EXIT_FAILURE, integerFlag, positiveListFlag, CliOutput, runCli } from './common';

const IMAGE = /\.(jpe?g|png|webp|tiff?|bmp|gif|avif)$/i;

export async function inferMain(args: string[], io: CliOutput): Promise<number> {
  const argv = await cliParser('u2pl-infer', args)
    .usage('$0 <inputs..>', 'Predict masks for images (files or folders)', (y) =>
      y.positional('inputs', { type: 'string', array: true, demandOption: true }))
    .option('config', { type: 'string', requiresArg: true, default: 'config.yaml', describe: 'experiment config (network and normalisation)' })
    .option('checkpoint', { type: 'string', requiresArg: true })
    .option('weights', { choices: ['teacher', 'student'] as const, describe: "which network of a training checkpoint: teacher (U2PL's, or a supervised-only run's EMA model) or student (default: the teacher where the file has one)" })
    .option('out', { type: 'string', requiresArg: true, default: 'predictions', describe: 'output folder (never one of the input folders)' })
    .option('scales', { type: 'string', requiresArg: true, default: '1', coerce: positiveListFlag('scales') })
    .option('flip', { type: 'boolean', default: false })
    .option('threads', { type: 'string', requiresArg: true, coerce: integerFlag('threads', 1), describe: 'LibTorch threads, an integer >= 1' })
    .parse();
  const out = path.resolve(argv.out);
  const files = (argv.inputs as string[]).flatMap((input) => {
    const abs = path.resolve(input);
    if (!fs.existsSync(abs)) throw new FileError(abs, 'no such file or folder');
    if (!fs.statSync(abs).isDirectory()) return [abs];
    if (abs === out) throw new UsageError(`--out ${out} is an input folder: the masks would land among (and could overwrite) the images; choose another --out`);
    return fs.readdirSync(abs).filter((f) => IMAGE.test(f)).sort().map((f) => path.join(abs, f));
  });
  if (files.length === 0) throw new UsageError('no images found in the inputs (looked for .jpg, .png, .webp, .tif, .bmp, .gif, .avif)');
  const names = outputNames(files, out);
  const config = configFromArgs(argv.config, { threads: argv.threads as number | undefined });
  if (argv.checkpoint !== undefined && !fs.existsSync(path.resolve(argv.checkpoint))) throw new FileError(path.resolve(argv.checkpoint), '--checkpoint: no such file');
  const model = await loadModel(config, argv.checkpoint ? path.resolve(argv.checkpoint) : defaultCheckpoint(config), argv.weights);
  const classes = config.net.model.numClasses;
  const info = datasetInfo(config.dataset.kind, classes, { palette: config.dataset.palette }, config.dataset.classNames ?? (config.dataset.procedural ? PROCEDURAL_CLASSES : undefined));
  fs.mkdirSync(out, { recursive: true });
  const { mean, std } = (config.dataset.val ?? config.dataset.train).augment;
  const failed: string[] = [];
  for (const n of names) {
    let img;
    try {
      img = await readImage(n.file);
    } catch (e) {
      // One unreadable image does not stop the others; the exit code says something failed.
      io.err(`u2pl-infer: skipped ${(e as Error).message}\n`);
      failed.push(n.file);
      continue;
    }
    const { prediction } = await predict(model, img, { scales: argv.scales as number[], flip: argv.flip, mean, std });
    await writePngFile(n.mask, prediction.data, img.width, img.height, 1);
    await writePngFile(n.overlay, overlay(img.data, colourise(prediction.data, info.palette)), img.width, img.height, 3);
    io.out(`${n.file} -> ${n.mask}\n`);
  }
  if (failed.length) {
    io.err(`u2pl-infer: ${failed.length} of ${files.length} images could not be read (listed above)\n`);
    return EXIT_FAILURE;
  }
  return 0;
}

if (require.main === module) runCli('u2pl-infer', inferMain);
