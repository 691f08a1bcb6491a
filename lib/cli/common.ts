/** Shared pieces of the u2pl-* command-line tools. */
import fs from 'fs';
import path from 'path';
import { loadConfig, U2plConfig } from '../config/config';
import { ConfigError } from '../config/errors';
import { DataError } from '../data/image-io';
import { native } from '../native';

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
  if (!fs.existsSync(abs)) throw new Error(`${abs}: no such file or folder`);
  if (fs.statSync(abs).isFile() || fs.existsSync(path.join(abs, 'config.yaml')) || fs.existsSync(path.join(abs, 'config.json'))) return [abs];
  const subs = fs.readdirSync(abs, { withFileTypes: true })
    .filter((e) => e.isDirectory() && (fs.existsSync(path.join(abs, e.name, 'config.yaml')) || fs.existsSync(path.join(abs, e.name, 'config.json'))))
    .map((e) => path.join(abs, e.name)).sort();
  if (subs.length === 0) throw new Error(`${abs}: no config.yaml here or in its sub-folders`);
  return subs;
}

/** Runs a CLI main: known errors print as one line and exit 1; others with their stack. */
export function runCli(main: () => Promise<number | void>): void {
  main().then((code) => {
    process.exitCode = code ?? 0;
  }, (e: unknown) => {
    const known = e instanceof ConfigError || e instanceof DataError || (e instanceof Error && /^\//.test(e.message));
    process.stderr.write(`error: ${known ? (e as Error).message : (e as Error).stack ?? String(e)}\n`);
    process.exitCode = 1;
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
