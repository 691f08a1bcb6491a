/**
 * PyTorch zip checkpoints (torch.save >= 1.6) as plain JS values: dicts become objects, tensors
 * { data, shape, dtype }. Files written here load in Python with torch.load.
 */
import { native } from './native';

export async function readCheckpoint(path: string): Promise<unknown> {
  return native().readCheckpoint(path);
}

/** Atomic: the file appears complete or not at all. Objects whose `data` is a typed array are tensors. */
export async function writeCheckpoint(path: string, value: unknown): Promise<void> {
  return native().writeCheckpoint(path, value);
}
