/**
 * The run folder (saver.snapshot_dir): one training run at a time (a lock file with the owner's
 * pid), no temporary files left behind by writes that failed or were killed, and file copies that
 * are atomic.
 */
import fs from 'fs';
import os from 'os';
import path from 'path';
import { FileError } from '../errors';

export const LOCK = '.u2pl-train.lock';

interface LockInfo {
  pid: number;
  host: string;
  started: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';  // exists, owned by someone else
  }
}

/**
 * Takes the folder's lock, or throws naming the run that holds it. A lock whose process is gone
 * (same host) is stale and taken over; `onLog` hears about it. Returns the release function.
 */
export function lockRunDir(dir: string, onLog: (m: string) => void = () => undefined): () => void {
  const file = path.join(dir, LOCK);
  const mine: LockInfo = { pid: process.pid, host: os.hostname(), started: new Date().toISOString() };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(file, `${JSON.stringify(mine)}\n`, { flag: 'wx' });
      let released = false;
      return () => {
        if (released) return;
        released = true;
        try {
          const held = JSON.parse(fs.readFileSync(file, 'utf8')) as LockInfo;
          if (held.pid === mine.pid && held.host === mine.host) fs.rmSync(file, { force: true });
        } catch {
          // already gone
        }
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new FileError(file, `cannot create the run lock (${(e as Error).message})`);
    }
    let held: LockInfo | undefined;
    try {
      held = JSON.parse(fs.readFileSync(file, 'utf8')) as LockInfo;
    } catch {
      held = undefined;  // unreadable: a crash while writing it; treat as stale
    }
    if (held && (held.host !== mine.host || alive(held.pid))) {
      throw new FileError(dir, `is in use by another u2pl-train (pid ${held.pid} on ${held.host}, since ${held.started}): ` +
        `two runs in one saver.snapshot_dir would mix their checkpoints and metrics. Wait for it, stop it, or choose another snapshot_dir` +
        `${held.host !== mine.host ? `; if that run is gone, delete ${file}` : ''}`);
    }
    onLog(`took over a stale lock in ${dir}${held ? ` (pid ${held.pid} is gone)` : ''}`);
    fs.rmSync(file, { force: true });
  }
  throw new FileError(file, 'cannot take the run lock (another run took it at the same moment)');
}

/** Removes `<name>.tmp-<pid>` files left by writes of processes that are gone (killed mid-write). */
export function removeStaleTemporaries(dir: string, onLog: (m: string) => void = () => undefined): void {
  if (!fs.existsSync(dir)) return;
  for (const name of fs.readdirSync(dir)) {
    const m = /\.tmp-(\d+)$/.exec(name);
    if (!m || (Number(m[1]) !== process.pid && alive(Number(m[1])))) continue;
    fs.rmSync(path.join(dir, name), { force: true });
    onLog(`removed ${name}, left by an interrupted write`);
  }
}

/** Removes this process's own `<name>.tmp-<pid>` files: a quit at once (exit mid-write) leaves no partial file. */
export function removeOwnTemporaries(dir: string): void {
  if (!fs.existsSync(dir)) return;
  const mine = `.tmp-${process.pid}`;
  for (const name of fs.readdirSync(dir)) if (name.endsWith(mine)) fs.rmSync(path.join(dir, name), { force: true });
}

function syncToDisk(file: string): void {
  const fd = fs.openSync(file, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Copies a file atomically (temporary file flushed to the disk, rename, folder flushed); a failed copy
 * leaves nothing behind.
 */
export function copyAtomic(from: string, to: string): void {
  const tmp = `${to}.tmp-${process.pid}`;
  try {
    fs.copyFileSync(from, tmp);
    syncToDisk(tmp);  // a machine that goes down after the rename must not leave an empty file under the name
    fs.renameSync(tmp, to);
    syncToDisk(path.dirname(to));  // ... nor the name pointing to the previous copy
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw new FileError(to, `cannot write (${(e as Error).message}); the previous file, if any, is unchanged`);
  }
}
