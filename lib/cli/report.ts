#!/usr/bin/env node
/**
 * u2pl-report RUN [RUN...] --out compare.html — compares runs: their curves overlaid (validation
 * mIoU, losses, pseudo-label accuracy) and their final per-class IoU in one table, with the mean and
 * spread of runs that differ only in the seed. A RUN is a run folder (saver.snapshot_dir, with
 * metrics.jsonl) or a folder above runs (an experiment, or experiments/camvid-small).
 */
import fs from 'fs';
import path from 'path';
import { FileError } from '../errors';
import { compareRuns } from '../eval/report/compare';
import { cliParser, CliOutput, runCli } from './common';

export async function reportMain(args: string[], io: CliOutput): Promise<number> {
  const argv = await cliParser('u2pl-report', args)
    .usage('$0 <runs..>', 'Compare training runs in one self-contained HTML page', (y) =>
      y.positional('runs', { type: 'string', array: true, describe: 'run folders (with metrics.jsonl) or folders above them' }))
    .option('out', { type: 'string', requiresArg: true, default: 'compare.html', describe: 'the HTML file to write' })
    .option('title', { type: 'string', requiresArg: true, describe: 'page title (default: the groups compared)' })
    .demandCommand(1, 'Not enough arguments: give at least one run folder')
    .parse();
  const targets = (argv.runs as string[] | undefined) ?? (argv._ as (string | number)[]).map(String);
  const out = path.resolve(argv.out as string);
  if (fs.existsSync(out) && fs.statSync(out).isDirectory()) throw new FileError(out, '--out: is a folder; give a file name such as compare.html');
  if (!fs.existsSync(path.dirname(out))) throw new FileError(path.dirname(out), '--out: no such folder');
  const { html, groups } = compareRuns(targets, argv.title as string | undefined);
  const tmp = `${out}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, html);
  fs.renameSync(tmp, out);
  const runs = groups.reduce((n, g) => n + g.runs.length, 0);
  io.err(`u2pl-report: ${runs} run(s) in ${groups.length} group(s) (${groups.map((g) => `${g.name}: ${g.runs.length}`).join(', ')}) -> ${out}\n`);
  return 0;
}

if (require.main === module) runCli('u2pl-report', reportMain);
