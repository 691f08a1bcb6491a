#!/usr/bin/env node
/**
 * u2pl-data check <config>              validate a dataset and print a summary
 * u2pl-data split --list L --count N     seeded labeled/unlabeled split in the published format
 * u2pl-data prepare-cityscapes <root>    write *_labelTrainIds.png from *_labelIds.png
 */
import fs from 'fs';
import path from 'path';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { prepareCityscapes } from '../data/cityscapes';
import { readList } from '../data/datasets';
import { checkSamples, prepareData } from '../data/prepare';
import { makeSplit, writeSplit } from '../data/splits';
import { configFromArgs, runCli } from './common';

runCli(async () => {
  let code = 0;
  await yargs(hideBin(process.argv))
    .scriptName('u2pl-data')
    .command('check [experiment]', 'validate every image and label of a config\'s lists', (y) => y
      .positional('experiment', { type: 'string', default: '.' })
      .option('data-root', { type: 'string' }), async (a) => {
      const config = configFromArgs(a.experiment as string, { dataRoot: a['data-root'] as string | undefined });
      const classes = config.net.model.numClasses;
      const data = await prepareData(config.dataset, classes);
      const parts: [string, typeof data.labeled, boolean][] = [['labeled', data.labeled, true], ['unlabeled', data.unlabeled, false], ['val', data.val, true]];
      let problems = 0;
      for (const [name, samples, withLabels] of parts) {
        if (samples.length === 0) continue;
        const s = await checkSamples(samples, data.info, classes, config.dataset.ignoreLabel, withLabels);
        const total = s.classPixels.reduce((x, y) => x + y, 0) + s.ignorePixels;
        process.stdout.write(`${name}: ${s.images} images, sizes ${Object.entries(s.sizes).map(([k, v]) => `${k} x${v}`).join(', ')}\n`);
        if (withLabels && total > 0) {
          for (let c = 0; c < classes; c++) process.stdout.write(`  ${String(c).padStart(3)} ${(data.info.classNames[c] ?? '').padEnd(14)} ${(100 * s.classPixels[c] / total).toFixed(2).padStart(6)} %\n`);
          process.stdout.write(`  ign ${'(ignore)'.padEnd(14)} ${(100 * s.ignorePixels / total).toFixed(2).padStart(6)} %\n`);
        }
        for (const p of s.problems) process.stdout.write(`  problem: ${p.file}: ${p.problem}\n`);
        problems += s.problems.length;
      }
      process.stdout.write(problems ? `${problems} problem(s) found\n` : 'no problems found\n');
      code = problems ? 1 : 0;
    })
    .command('split', 'make a seeded labeled/unlabeled split of a list', (y) => y
      .option('list', { type: 'string', demandOption: true, describe: 'list of all training entries' })
      .option('count', { type: 'number', describe: 'labeled entries' })
      .option('fraction', { type: 'number', describe: 'labeled fraction in (0, 1)' })
      .option('seed', { type: 'number', default: 0 })
      .option('out', { type: 'string', demandOption: true, describe: 'folder for labeled.txt and unlabeled.txt' }), (a) => {
      const amount = a.count ?? a.fraction;
      if (amount === undefined) throw new Error('give --count or --fraction');
      const split = makeSplit(readList(path.resolve(a.list)), amount, a.seed);
      writeSplit(path.resolve(a.out), split);
      process.stdout.write(`${split.labeled.length} labeled, ${split.unlabeled.length} unlabeled -> ${path.resolve(a.out)}\n`);
    })
    .command('prepare-cityscapes <root>', 'convert gtFine *_labelIds.png to *_labelTrainIds.png', (y) => y
      .positional('root', { type: 'string', demandOption: true })
      .option('overwrite', { type: 'boolean', default: false }), async (a) => {
      const root = path.resolve(a.root as string);
      if (!fs.existsSync(path.join(root, 'gtFine'))) throw new Error(`${root}: no gtFine folder`);
      const n = await prepareCityscapes(root, a.overwrite);
      process.stdout.write(`${n} label files written\n`);
    })
    .demandCommand(1)
    .strict().help().parse();
  return code;
});
