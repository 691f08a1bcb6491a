#!/usr/bin/env node
/**
 * u2pl-data check <config>              validate a dataset and print a summary
 * u2pl-data split --list L --count N     seeded labeled/unlabeled split in the published format
 * u2pl-data prepare-cityscapes <root>    write *_labelTrainIds.png from *_labelIds.png
 */
import fs from 'fs';
import path from 'path';
import { prepareCityscapes } from '../data/cityscapes';
import { readList } from '../data/datasets';
import { checkSamples, datasetWarnings, DatasetSummary, DecodeCache, prepareData } from '../data/prepare';
import { medianFrequencyWeights } from '../data/class-frequency';
import { DECODE_CACHE } from '../train/train';
import { makeSplit, writeSplit } from '../data/splits';
import { FileError, UsageError } from '../errors';
import { cliParser, configFromArgs, integerFlag, numberFlag, CliOutput, runCli } from './common';

export async function dataMain(args: string[], io: CliOutput): Promise<number> {
  let code = 0;
  await cliParser('u2pl-data', args)
    .command('check [experiment]', 'validate every image and label of a config\'s lists', (y) => y
      .positional('experiment', { type: 'string', default: '.' })
      .option('data-root', { type: 'string', requiresArg: true }), async (a) => {
      const config = configFromArgs(a.experiment as string, { dataRoot: a['data-root'] as string | undefined });
      for (const w of config.warnings) io.out(`warning: ${w}\n`);
      const classes = config.net.model.numClasses;
      const data = await prepareData(config.dataset, classes);
      const parts: [string, typeof data.labeled, boolean][] = [['labeled', data.labeled, true], ['unlabeled', data.unlabeled, false], ['val', data.val, true], ['test', data.test, true]];
      // A run's folder keeps the images that decoded before; a check there decodes only what changed.
      const cache = new DecodeCache(path.join(config.saver.snapshotDir, DECODE_CACHE));
      let problems = 0;
      const summaries: DatasetSummary[] = [];
      for (const [name, samples, withLabels] of parts) {
        if (samples.length === 0) continue;
        const s = await checkSamples(samples, data.info, classes, config.dataset.ignoreLabel, withLabels, 8, cache);
        summaries.push(s);
        const total = s.frequencies.pixels.reduce((x, y) => x + y, 0) + s.ignorePixels;
        io.out(`${name}: ${s.images} images, sizes ${Object.entries(s.sizes).map(([k, v]) => `${k} x${v}`).join(', ')}\n`);
        if (withLabels && total > 0) {
          // The labeled split's median-frequency weights: what criterion.kwargs.class_weight: median_frequency trains with.
          const weights = name === 'labeled' && s.frequencies.pixels.some((n) => n > 0) ? medianFrequencyWeights(s.frequencies) : undefined;
          if (weights) io.out('  (class, pixel share, median-frequency weight)\n');
          for (let c = 0; c < classes; c++) {
            const weight = weights ? `  ${weights[c].toFixed(3).padStart(8)}` : '';
            io.out(`  ${String(c).padStart(3)} ${(data.info.classNames[c] ?? '').padEnd(14)} ${(100 * s.frequencies.pixels[c] / total).toFixed(2).padStart(6)} %${weight}\n`);
          }
          io.out(`  ign ${'(ignore)'.padEnd(14)} ${(100 * s.ignorePixels / total).toFixed(2).padStart(6)} %\n`);
        }
        for (const p of s.problems) io.out(`  problem: ${p.file}: ${p.problem}\n`);
        problems += s.problems.length;
      }
      cache.save();
      for (const w of datasetWarnings(config.dataset, data, summaries)) io.out(`warning: ${w}\n`);
      io.out(problems ? `${problems} problem(s) found\n` : 'no problems found\n');
      code = problems ? 1 : 0;
    })
    .command('split', 'make a seeded labeled/unlabeled split of a list', (y) => y
      .option('list', { type: 'string', demandOption: true, requiresArg: true, describe: 'list of all training entries' })
      .option('count', { type: 'string', requiresArg: true, coerce: integerFlag('count', 1), describe: 'labeled entries, an integer >= 1' })
      .option('fraction', { type: 'string', requiresArg: true, coerce: numberFlag('fraction', 0, 1), describe: 'labeled fraction in (0, 1)' })
      .option('seed', { type: 'string', requiresArg: true, default: '0', coerce: integerFlag('seed', 0) })
      .option('out', { type: 'string', demandOption: true, requiresArg: true, describe: 'folder for labeled.txt and unlabeled.txt' })
      .conflicts('count', 'fraction'), (a) => {
      const amount = (a.count as number | undefined) ?? (a.fraction as number | undefined);
      if (amount === undefined) throw new UsageError('split: give --count N or --fraction F');
      if (a.fraction === 1) throw new UsageError("--fraction: expected a number in (0, 1), got '1'");
      const split = makeSplit(readList(path.resolve(a.list)), amount, a.seed as number);
      writeSplit(path.resolve(a.out), split);
      io.out(`${split.labeled.length} labeled, ${split.unlabeled.length} unlabeled -> ${path.resolve(a.out)}\n`);
    })
    .command('prepare-cityscapes <root>', 'convert gtFine *_labelIds.png to *_labelTrainIds.png', (y) => y
      .positional('root', { type: 'string', demandOption: true })
      .option('overwrite', { type: 'boolean', default: false }), async (a) => {
      const root = path.resolve(a.root as string);
      if (!fs.existsSync(path.join(root, 'gtFine'))) throw new FileError(root, 'no gtFine folder (expected a Cityscapes root with gtFine/ and leftImg8bit/)');
      const n = await prepareCityscapes(root, a.overwrite);
      io.out(`${n} label files written\n`);
    })
    .demandCommand(1, 'give a command: check, split or prepare-cityscapes')
    .parse();
  return code;
}

if (require.main === module) runCli('u2pl-data', dataMain);
