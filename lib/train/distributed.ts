/**
 * Where a process stands in a data-parallel job: torchrun's variables (RANK, WORLD_SIZE,
 * LOCAL_RANK, MASTER_ADDR, MASTER_PORT), which `u2pl-train --nproc N` sets for the processes it
 * starts and torchrun, Slurm scripts or Kubernetes set for any PyTorch job.
 */
import { ConfigError } from '../config/errors';
import { InputError } from '../errors';

export interface DistributedSettings {
  rank: number;
  worldSize: number;
  /** The process's index on its machine (its GPU with runtime.device cuda). */
  localRank: number;
  masterAddr: string;
  masterPort: number;
  /**
   * torchrun (2.x, and 1.x with its static rendezvous) serves the rendezvous store in its agent and
   * says so with TORCHELASTIC_USE_AGENT_STORE=True: then every rank connects as a client, with the
   * keys of the restart attempt (TORCHELASTIC_RESTART_COUNT) under a prefix of their own.
   */
  agentStore?: { prefix: string };
}

function envInt(env: NodeJS.ProcessEnv, name: string, min: number, fallback?: number): number {
  const text = env[name];
  if (text === undefined || text === '') {
    if (fallback === undefined) throw new InputError(`${name} is not set: a data-parallel process needs RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT (torchrun sets them; u2pl-train --nproc N does on one machine)`);
    return fallback;
  }
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || n < min) throw new InputError(`${name}: expected an integer >= ${min}, got '${text}'`);
  return n;
}

/**
 * Whether WORLD_SIZE=1 means a data-parallel job of one rank: under torchrun (TORCHELASTIC_RUN_ID)
 * or `u2pl-train --nproc 1` (U2PL_LAUNCHER_PID), so that one GPU drives every collective through
 * NCCL; a stray WORLD_SIZE=1 elsewhere is one plain process.
 */
function singleRankJob(env: NodeJS.ProcessEnv): boolean {
  return !!env.TORCHELASTIC_RUN_ID || !!env.U2PL_LAUNCHER_PID;
}

/** The job this process is part of, or undefined for a single process (no WORLD_SIZE, or 1 outside a launcher). */
export function distributedFromEnv(env: NodeJS.ProcessEnv = process.env): DistributedSettings | undefined {
  if (env.WORLD_SIZE === undefined || env.WORLD_SIZE === '') return undefined;
  if (env.WORLD_SIZE === '1' && !singleRankJob(env)) return undefined;
  const worldSize = envInt(env, 'WORLD_SIZE', 1);
  const rank = envInt(env, 'RANK', 0);
  if (rank >= worldSize) throw new InputError(`RANK ${rank} is not below WORLD_SIZE ${worldSize}`);
  const masterPort = envInt(env, 'MASTER_PORT', 1);
  if (masterPort > 65535) throw new InputError(`MASTER_PORT: expected a port (1-65535), got ${masterPort}`);
  const masterAddr = env.MASTER_ADDR;
  if (!masterAddr) throw new InputError('MASTER_ADDR is not set: the address of the rank-0 machine (127.0.0.1 on one machine)');
  const agentStore = env.TORCHELASTIC_USE_AGENT_STORE === 'True' ? { prefix: `/worker/attempt_${envInt(env, 'TORCHELASTIC_RESTART_COUNT', 0, 0)}/u2pl` } : undefined;
  return { rank, worldSize, localRank: envInt(env, 'LOCAL_RANK', 0, rank), masterAddr, masterPort, ...(agentStore ? { agentStore } : {}) };
}

/** The device of this rank: runtime.device cuda maps LOCAL_RANK to its GPU. */
export function rankDevice(device: string, d: DistributedSettings | undefined): string {
  if (!d || device !== 'cuda') return device;
  return `cuda:${d.localRank}`;
}

/** The c10d backend for a device (runtime.dist_backend overrides). */
export function defaultBackend(device: string, chosen?: string): 'gloo' | 'nccl' {
  const backend = chosen ?? (device.startsWith('cuda') ? 'nccl' : 'gloo');
  if (backend !== 'gloo' && backend !== 'nccl') throw new ConfigError('runtime.dist_backend', `expected gloo or nccl, got '${backend}'`);
  return backend;
}
