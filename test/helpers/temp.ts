import fs from 'fs';
import os from 'os';
import path from 'path';

// Every folder a test makes, removed after its file's tests (test/setup/remove-temp-dirs.ts): a full
// run writes experiments, checkpoints and data of several GB, which would otherwise pile up in /tmp.
// U2PL_KEEP_TEST_DIRS=1 keeps them to look into a failure.
const made: string[] = [];

export function tempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `u2pl-${prefix}-`));
  made.push(dir);
  return dir;
}

export function removeTempDirs(): void {
  if (process.env.U2PL_KEEP_TEST_DIRS === '1') return;
  for (const dir of made.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
}
