/**
 * `u2pl-train --nproc N` on one machine: N copies of this command, one per rank, with torchrun's
 * variables (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR=127.0.0.1, MASTER_PORT on a free port) and
 * the cores shared out. Rank 0 prints the progress; the others' errors are prefixed with their
 * rank. Ctrl-C goes to every rank (they stop after the same step, rank 0 saves); when one rank
 * fails, the others are stopped, so no process outlives the job.
 */
import { ChildProcess, spawn } from 'child_process';
import net from 'net';
import os from 'os';
import { CliOutput, EXIT_FAILURE, EXIT_INTERRUPTED } from './common';

/** A port nobody listens on now (rank 0's rendezvous binds it a moment later). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

/** This process's command line without --nproc (its value too), for the ranks to run. */
function rankCommand(): string[] {
  const args = process.argv.slice(1);
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--nproc') i++;
    else if (!args[i].startsWith('--nproc=')) out.push(args[i]);
  }
  return [...process.execArgv, ...out];
}

export async function launchRanks(nproc: number, io: CliOutput): Promise<number> {
  const port = await freePort();
  const threads = process.env.U2PL_THREADS ?? String(Math.max(1, Math.floor(os.availableParallelism() / nproc)));
  io.err(`u2pl-train: ${nproc} rank${nproc === 1 ? '' : 's'} on 127.0.0.1:${port}, ${threads} thread(s) each\n`);
  const children: ChildProcess[] = [];
  let firstFailure: { rank: number; code: number } | undefined;
  let interrupted = false;
  const stopAll = (signal: NodeJS.Signals) => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null && c.pid) process.kill(c.pid, signal);
  };
  let killTimer: NodeJS.Timeout | undefined;
  const onInterrupt = () => {
    interrupted = true;
    stopAll('SIGINT');  // each Ctrl-C once to every rank (they run in their own process group)
  };
  process.on('SIGINT', onInterrupt);
  const exits = Array.from({ length: nproc }, (_, rank) => new Promise<number>((resolve) => {
    const args = [...rankCommand(), ...(rank === 0 ? [] : ['--quiet'])];
    const child = spawn(process.execPath, args, {
      detached: true,
      stdio: ['ignore', rank === 0 ? 'inherit' : 'ignore', rank === 0 ? 'inherit' : 'pipe'],
      env: {
        ...process.env, RANK: String(rank), WORLD_SIZE: String(nproc), LOCAL_RANK: String(rank), MASTER_ADDR: '127.0.0.1',
        MASTER_PORT: String(port), U2PL_THREADS: threads, U2PL_LAUNCHER_PID: String(process.pid),
      },
    });
    children.push(child);
    let pending = '';
    child.stderr?.on('data', (d: Buffer) => {
      pending += d.toString();
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) if (line.trim()) io.err(`[rank ${rank}] ${line}\n`);
    });
    child.on('exit', (code, signal) => {
      const status = code ?? (signal === 'SIGINT' ? EXIT_INTERRUPTED : EXIT_FAILURE);
      if (status !== 0 && status !== EXIT_INTERRUPTED && !firstFailure) {
        firstFailure = { rank, code: status };
        io.err(`u2pl-train: rank ${rank} ${code === null ? `was killed (${signal})` : `exited with code ${code}`}; stopping the other ranks\n`);
        stopAll('SIGTERM');
        killTimer = setTimeout(() => stopAll('SIGKILL'), 10000);
      }
      resolve(status);
    });
  }));
  const codes = await Promise.all(exits);
  if (killTimer) clearTimeout(killTimer);
  process.off('SIGINT', onInterrupt);
  if (firstFailure) return firstFailure.code;
  if (interrupted || codes.includes(EXIT_INTERRUPTED)) return EXIT_INTERRUPTED;
  return codes.find((c) => c !== 0) ?? 0;
}

/** In a rank started by launchRanks: end when the launcher is gone (no orphan outlives its job). */
export function watchLauncher(exit: (code: number) => void): void {
  const pid = Number(process.env.U2PL_LAUNCHER_PID);
  if (!Number.isInteger(pid) || pid <= 0) return;
  setInterval(() => {
    try {
      process.kill(pid, 0);
    } catch {
      exit(EXIT_FAILURE);
    }
  }, 2000).unref();
}
