#!/usr/bin/env node
/**
 * u2pl-train [experiment folder | config file] — trains as the config says; a folder without a
 * config trains each sub-folder that has one (e.g. experiments/demo: suponly, then u2pl).
 */
import fs from 'fs';
import path from 'path';
import { FileError } from '../errors';
import { native } from '../native';
import { distributedFromEnv } from '../train/distributed';
import { removeOwnTemporaries } from '../train/run-dir';
import { train, Progress } from '../train/train';
import { launchRanks, watchLauncher } from './launch';
import { cliParser, configFromArgs, EXIT_INTERRUPTED, experimentTargets, formatSeconds, integerFlag, CliOutput, runCli } from './common';

function progressLine(p: Progress): string {
  const r = p.result;
  const losses = p.phase === 'semi' || p.phase === 'ael'
    ? `loss ${r.loss.toFixed(3)} (sup ${r.supervised.toFixed(3)} ${p.phase === 'ael' ? 'cons' : 'unsup'} ${r.unsupervised.toFixed(3)} contra ${r.contrastive.toFixed(3)})`
    : `loss ${r.loss.toFixed(3)}`;
  return `epoch ${p.epoch + 1}/${p.epochs} step ${p.step + 1}/${p.stepsPerEpoch} [${p.phase}] ${losses} lr ${p.lr.toExponential(2)} ` +
    `data ${p.dataSeconds.toFixed(2)}s step ${p.stepSeconds.toFixed(2)}s ETA ${formatSeconds(p.etaSeconds)}`;
}

interface TrainArgs {
  resume?: string;
  'data-root'?: string;
  threads?: number;
  'max-steps'?: number;
  'allow-config-change': boolean;
  quiet: boolean;
}

export async function trainMain(args: string[], io: CliOutput): Promise<number> {
  const argv = await cliParser('u2pl-train', args)
    .usage('$0 [experiment]', 'Train supervised-only or U2PL from a reference-style config.yaml', (y) =>
      y.positional('experiment', { type: 'string', default: '.', describe: 'experiment folder (with config.yaml) or config file' }))
    .option('config', { type: 'string', requiresArg: true, describe: 'config file (instead of the positional experiment)' })
    .option('resume', { type: 'string', requiresArg: true, describe: 'resume from this checkpoint' })
    .option('data-root', { type: 'string', requiresArg: true, describe: 'sets U2PL_DATA_ROOT, which configs may use for their data paths' })
    .option('threads', { type: 'string', requiresArg: true, coerce: integerFlag('threads', 1), describe: 'LibTorch threads, an integer >= 1 (default: available cores)' })
    .option('max-steps', { type: 'string', requiresArg: true, coerce: integerFlag('max-steps', 1), describe: 'stop (with a checkpoint) after this many steps, an integer >= 1' })
    .option('quiet', { type: 'boolean', default: false, describe: 'no progress line' })
    .option('allow-config-change', { type: 'boolean', default: false, describe: 'resume even where the config\'s training settings differ from those the checkpoint was saved under (refused otherwise, naming them)' })
    .option('nproc', { type: 'string', requiresArg: true, coerce: integerFlag('nproc', 1), describe: 'data-parallel processes on this machine (Gloo on CPU, NCCL with runtime.device cuda); several machines: run under torchrun or with RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT set' })
    .parse();
  const nproc = (argv.nproc as number | undefined) ?? 1;
  // --nproc 1 too is a (one-rank) data-parallel job: one GPU drives every collective through NCCL.
  if (argv.nproc !== undefined && process.env.WORLD_SIZE === undefined) return launchRanks(nproc, io);
  const dist = distributedFromEnv();
  if (dist) watchLauncher((code) => native().exitNow(code));
  const resume = argv.resume as string | undefined;
  if (resume !== undefined && !fs.existsSync(path.resolve(resume))) throw new FileError(path.resolve(resume), '--resume: no such checkpoint');
  const targets = experimentTargets((argv.config as string | undefined) ?? (argv.experiment as string));
  const lead = !dist || dist.rank === 0;
  const controller = new AbortController();
  const active: ActiveRun = {};
  let interrupts = 0;
  const onInterrupt = () => {
    interrupts++;
    if (interrupts > 1) {
      io.err('\nu2pl-train: interrupted again, quitting without a checkpoint (the last one stays)\n');
      // A checkpoint being written now is left half done: its temporary file goes, the last complete one stays
      // (a folder that cannot be read is left as it is: the next run removes what is stale).
      try {
        if (active.dir) removeOwnTemporaries(active.dir);
      } finally {
        native().exitNow(EXIT_INTERRUPTED);
      }
    }
    io.err('\nu2pl-train: interrupted, saving a checkpoint after this step (Ctrl-C again to quit at once)\n');
    controller.abort();
  };
  process.on('SIGINT', onInterrupt);
  try {
    return await trainTargets(targets, argv, controller, io, lead, active);
  } finally {
    process.off('SIGINT', onInterrupt);
  }
}

/** The run folder being written, for a quit at once. */
interface ActiveRun {
  dir?: string;
}

async function trainTargets(targets: string[], argv: TrainArgs, controller: AbortController, io: CliOutput, lead: boolean, active: ActiveRun): Promise<number> {
  const resume = argv.resume;
  const results: { name: string; best: number | null; last: number | null }[] = [];
  const tty = io.tty;
  let lastPrint = 0;
  for (const target of targets) {
    const config = configFromArgs(target, { dataRoot: argv['data-root'] as string | undefined, threads: argv.threads as number | undefined });
    const name = path.relative(process.cwd(), config.dir) || '.';
    if (lead) io.err(`u2pl-train: ${name} (${config.dataset.type}, ${config.trainer.epochs} epochs) -> ${config.saver.snapshotDir}\n`);
    active.dir = config.saver.snapshotDir;
    const result = await train(config, {
      signal: controller.signal,
      resume: resume === undefined ? undefined : path.resolve(resume),
      maxSteps: argv['max-steps'] as number | undefined,
      allowConfigChange: argv['allow-config-change'],
      onLog: (m) => io.err(`u2pl-train: ${m}\n`),
      onProgress: (p) => {
        if (argv.quiet) return;
        const now = Date.now();
        if (tty) io.err(`\r\x1b[K${progressLine(p)}`);
        else if (now - lastPrint > 10000 || p.step + 1 === p.stepsPerEpoch) {
          io.err(`${progressLine(p)}\n`);
          lastPrint = now;
        }
      },
      onEpoch: (e) => {
        if (tty && !argv.quiet) io.err('\n');
        const miou = Number.isNaN(e.miou) ? 'no validation' : `mIoU ${(100 * e.miou).toFixed(2)} (best ${(100 * (e.bestMiou ?? e.miou)).toFixed(2)})`;
        const test = e.testMiou === undefined ? '' : `, test mIoU ${(100 * e.testMiou).toFixed(2)}`;
        io.err(`epoch ${e.epoch + 1}: ${miou}${test}, ${formatSeconds(e.seconds)}\n`);
      },
    });
    results.push({ name, best: result.bestMiou, last: result.lastMiou });
    if (result.interrupted) {
      if (lead) io.err(`u2pl-train: stopped; checkpoint ${result.checkpoint} (run again to resume)\n`);
      break;
    }
  }
  if (!lead) return controller.signal.aborted ? EXIT_INTERRUPTED : 0;
  for (const r of results) {
    const best = r.best === null ? 'no validation ran' : `best mIoU ${(100 * r.best).toFixed(2)}`;
    io.out(`${r.name}: ${best}${r.last === null ? '' : `, last ${(100 * r.last).toFixed(2)}`}\n`);
  }
  return controller.signal.aborted ? EXIT_INTERRUPTED : 0;
}

if (require.main === module) runCli('u2pl-train', trainMain);
