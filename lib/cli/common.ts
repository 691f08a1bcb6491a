/** Shared pieces of the u2pl-* command-line tools: parsing, flag checks, errors and exit codes. */
import fs from 'fs';
import path from 'path';
import yargs, { Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { loadConfig, U2plConfig } from '../config/config';
import { FileError, InputError, UsageError } from '../errors';
import { native, packageRoot } from '../native';

/** Exit codes: 2 for bad input (config, file, flag), 1 for a failure during the work, 130 when interrupted. */
export const EXIT_INPUT = 2;
export const EXIT_FAILURE = 1;
export const EXIT_INTERRUPTED = 130;

function packageVersion(): string {
  return (JSON.parse(fs.readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}

/**
 * A yargs parser for one tool: strict flags, --help, --version, --verbose; a bad flag or argument
 * becomes a UsageError (one line, exit 2) instead of yargs' help dump.
 */
export function cliParser(name: string, args: string[]): Argv {
  return yargs(args)
    .scriptName(name)
    .parserConfiguration({ 'camel-case-expansion': false })  // flags keep their dashed names (no duplicate in errors)
    .option('verbose', { type: 'boolean', default: false, describe: 'print stack traces with errors (also U2PL_DEBUG=1)' })
    .strict()
    .showHelpOnFail(false)
    .fail((message, error) => {
      // yargs wraps errors thrown by a flag's coerce in its own YError; a command handler's pass as they are.
      if (error && error.name !== 'YError') throw error;
      const text = (message ?? error?.message ?? 'bad arguments').replace(/:\s*\n\s*/g, ': ').replace(/\s*\n\s*/g, '; ');
      throw new UsageError(`${text}${/Unknown argument|Not enough|Missing required/.test(text) ? ` (see ${name} --help)` : ''}`);
    })
    .version(packageVersion())
    .help()
    .wrap(Math.min(110, process.stdout.columns || 110));
}

const INTEGER = /^[+]?\d+$/;
const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

/** yargs coerce for an integer flag >= min (the flag's value arrives as text so that 'abc' can be named). */
export function integerFlag(flag: string, min: number): (value: unknown) => number | undefined {
  return (value: unknown) => {
    if (value === undefined) return undefined;
    const text = String(Array.isArray(value) ? value[value.length - 1] : value).trim();
    const n = Number(text);
    if (!INTEGER.test(text) || !Number.isSafeInteger(n) || n < min) throw new UsageError(`--${flag}: expected an integer >= ${min}, got '${text}'`);
    return n;
  };
}

/** yargs coerce for a number flag in (min, max] or [min, max]. */
export function numberFlag(flag: string, min: number, max = Infinity, minInclusive = false): (value: unknown) => number | undefined {
  return (value: unknown) => {
    if (value === undefined) return undefined;
    const text = String(Array.isArray(value) ? value[value.length - 1] : value).trim();
    const n = Number(text);
    const ok = NUMBER.test(text) && (minInclusive ? n >= min : n > min) && n <= max;
    if (!ok) throw new UsageError(`--${flag}: expected a number ${minInclusive ? '>=' : '>'} ${min}${max < Infinity ? ` and <= ${max}` : ''}, got '${text}'`);
    return n;
  };
}

/** yargs coerce for a comma-separated list of positive numbers (e.g. --scales 0.75,1,1.25). */
export function positiveListFlag(flag: string): (value: unknown) => number[] {
  return (value: unknown) => {
    const text = String(Array.isArray(value) ? value[value.length - 1] : value).trim();
    const parts = text.split(',').map((p) => p.trim());
    if (parts.some((p) => !NUMBER.test(p) || !(Number(p) > 0))) throw new UsageError(`--${flag}: expected comma-separated positive numbers (e.g. 0.75,1,1.25), got '${text}'`);
    return parts.map(Number);
  };
}

/** Loads a config from a file or experiment folder, applying --data-root and --threads. */
export function configFromArgs(target: string, args: { dataRoot?: string; threads?: number }): U2plConfig {
  const env = { ...process.env };
  if (args.dataRoot) env.U2PL_DATA_ROOT = path.resolve(args.dataRoot);
  const config = loadConfig(target, env);
  if (args.threads) config.runtime.threads = args.threads;
  if (config.runtime.threads) native().setThreads(config.runtime.threads);
  return config;
}

/** Experiment folders to run for a target: itself if it has a config, else its sub-folders that do. */
export function experimentTargets(target: string): string[] {
  const abs = path.resolve(target);
  if (!fs.existsSync(abs)) throw new FileError(abs, 'no such file or folder');
  if (fs.statSync(abs).isFile() || fs.existsSync(path.join(abs, 'config.yaml')) || fs.existsSync(path.join(abs, 'config.json'))) return [abs];
  const subs = fs.readdirSync(abs, { withFileTypes: true })
    .filter((e) => e.isDirectory() && (fs.existsSync(path.join(abs, e.name, 'config.yaml')) || fs.existsSync(path.join(abs, e.name, 'config.json'))))
    .map((e) => path.join(abs, e.name)).sort();
  if (subs.length === 0) throw new FileError(abs, 'no config.yaml here or in its sub-folders');
  return subs;
}

/** Where a tool writes: the process's streams, or a buffer in tests. */
export interface CliOutput {
  out(text: string): void;
  err(text: string): void;
  /** Whether err is a terminal (progress lines rewrite themselves). */
  tty: boolean;
}

export const processOutput: CliOutput = {
  out: (text) => { process.stdout.write(text); },
  err: (text) => { process.stderr.write(text); },
  tty: Boolean(process.stderr.isTTY),
};

/** A tool's main: its arguments (without node and the script) -> the exit code. */
export type CliMain = (args: string[], io: CliOutput) => Promise<number | void>;

/** Whether errors should show their stack: U2PL_DEBUG=1 or --verbose. */
export function debugMode(args: string[]): boolean {
  return process.env.U2PL_DEBUG === '1' || args.includes('--verbose');
}

/**
 * Runs a tool's main and returns its exit code. Bad input (InputError: config, file, flag) prints
 * one line and gives 2; any other error prints its message and gives 1; stacks only in debug mode.
 */
export async function invokeCli(name: string, main: CliMain, args: string[], io: CliOutput): Promise<number> {
  try {
    return (await main(args, io)) ?? 0;
  } catch (e) {
    const error = e instanceof Error ? e : new Error(String(e));
    const input = error instanceof InputError;
    const text = debugMode(args) && error.stack ? error.stack : error.message;
    io.err(`${name}: ${input ? '' : 'error: '}${text}\n`);
    return input ? EXIT_INPUT : EXIT_FAILURE;
  }
}

/** The bin entry: runs `main` on the process's arguments and sets the exit code. */
export function runCli(name: string, main: CliMain): void {
  void invokeCli(name, main, hideBin(process.argv), processOutput).then((code) => {
    process.exitCode = code;
  });
}

export function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = Math.floor(s % 60);
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : `${m}m${String(sec).padStart(2, '0')}s`;
}

/** A per-class IoU table with the mean. */
export function iouTable(classNames: string[], iou: number[], miou: number): string {
  const width = Math.max(5, ...classNames.map((n) => n.length));
  const rows = classNames.map((n, i) => `${n.padEnd(width)}  ${(100 * iou[i]).toFixed(2).padStart(6)}`);
  return [`${'class'.padEnd(width)}  ${'IoU %'.padStart(6)}`, ...rows, `${'mIoU'.padEnd(width)}  ${(100 * miou).toFixed(2).padStart(6)}`].join('\n');
}
