/**
 * Bad checkpoints and run folders: every error names the file, says how it was chosen and how to
 * go on; failed writes leave nothing behind; one run per folder.
 */
import { spawnSync } from 'child_process';
import fs from 'fs';
import path from 'path';
import { loadConfig } from '../../lib/config/config';
import { Model, readCheckpoint, writeCheckpoint } from '../../lib';
import { native } from '../../lib/native';
import { train } from '../../lib/train/train';
import { copyAtomic, LOCK, lockRunDir, removeOwnTemporaries, removeStaleTemporaries } from '../../lib/train/run-dir';
import { tinyConfig, writeExperiment } from '../helpers/experiment';
import { tempDir } from '../helpers/temp';

type Obj = Record<string, any>;

async function trainedRun(): Promise<string> {
  const dir = writeExperiment(tinyConfig(false, { trainer: { ...(tinyConfig(false).trainer as object), epochs: 1 } }));
  await train(loadConfig(dir));
  return dir;
}

describe('a checkpoint that cannot be resumed', () => {
  let dir: string;
  let ckpt: string;
  let good: Buffer;
  beforeAll(async () => {
    dir = await trainedRun();
    ckpt = path.join(dir, 'checkpoints/ckpt.pth');
    good = fs.readFileSync(ckpt);
  });
  afterEach(() => fs.writeFileSync(ckpt, good));

  const autoResumeAdvice = /saver\.auto_resume found it in saver\.snapshot_dir: move it aside \(or delete it\) to start over, give --resume another checkpoint, or set saver\.auto_resume: false/;

  test.each([
    ['truncated', (f: string) => fs.writeFileSync(f, good.subarray(0, good.length >> 1)), /truncated or damaged \(the zip archive is incomplete/],
    ['empty', (f: string) => fs.writeFileSync(f, ''), /is empty \(0 bytes\): not a checkpoint/],
    ['a zip that torch.save did not write', (f: string) => {
      const zip = spawnSync('python3', ['-c', 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1], "w"); z.writestr("readme.txt", "hello"); z.close()', f]);
      expect(zip.status).toBe(0);
    }, /a zip file, but not a PyTorch checkpoint/],
    ['a text file', (f: string) => fs.writeFileSync(f, 'epoch: 3\n'), /not a PyTorch checkpoint \(a zip file written by torch\.save >= 1\.6 was expected\)/],
    ['the legacy pickle format', (f: string) => fs.writeFileSync(f, Buffer.from([0x80, 0x02, 0x8a, 0x0a])), /a PyTorch checkpoint in the legacy \(pre-1\.6\) format; re-save it with torch\.save/],
  ])('%s, found by auto_resume: names the file, the cause and how to go on', async (_, damage, cause) => {
    damage(ckpt);
    const error = await train(loadConfig(dir)).then(() => null, (e: Error) => e);
    expect(error?.message).toMatch(new RegExp(`^${ckpt}: ${cause.source}`));
    expect(error?.message).toMatch(autoResumeAdvice);
    if (!/legacy/.test(cause.source)) expect(error?.message).not.toMatch(/legacy/);
  });

  test('a folder in the checkpoint\'s place', async () => {
    fs.rmSync(ckpt);
    fs.mkdirSync(ckpt);
    try {
      await expect(train(loadConfig(dir))).rejects.toThrow(new RegExp(`^${ckpt}: is a folder, not a checkpoint file`));
    } finally {
      fs.rmdirSync(ckpt);
    }
  });

  test('a checkpoint of another architecture: the mismatch and the advice; --resume gives other advice', async () => {
    const c = loadConfig(dir);
    const other = new Model({ ...c.net.model, depth: 34 });
    const file = path.join(tempDir('arch'), 'other.pth');
    await writeCheckpoint(file, { epoch: 1, model_state: other.stateDict() });
    fs.copyFileSync(file, ckpt);
    await expect(train(c)).rejects.toThrow(/'model_state' does not match the model \(.*missing.*unexpected.*\)\. saver\.auto_resume found it/);
    await expect(train(c, { resume: file })).rejects.toThrow(new RegExp(`^${file}: .*does not match the model.*give --resume a checkpoint written by this config`));
  });
});

describe('writes that fail leave nothing behind', () => {
  test('a checkpoint write beyond the file size limit: no .tmp file, the error names the file, the old one is intact', () => {
    const dir = tempDir('fsize');
    const target = path.join(dir, 'ckpt.pth');
    fs.writeFileSync(target, 'previous');
    // A child process with a 64 KiB file size limit (SIGXFSZ ignored, so write() fails with EFBIG).
    const script = `require(${JSON.stringify(path.resolve(__dirname, '../../node_modules/ts-node'))}).register({ transpileOnly: true });
      const { writeCheckpoint } = require(${JSON.stringify(path.resolve(__dirname, '../../lib'))});
      writeCheckpoint(process.argv[1], { w: { data: new Float32Array(1 << 20), shape: [1 << 20] } }).then(() => process.exit(0), (e) => { console.error(e.message); process.exit(3); });`;
    const r = spawnSync('bash', ['-c', 'trap "" XFSZ; ulimit -f 64; exec "$0" -e "$1" "$2"', process.execPath, script, target], { encoding: 'utf8' });
    expect(r.status).toBe(3);
    expect(r.stderr).toContain(`${target}: cannot write the checkpoint (File too large); the previous one, if any, is unchanged`);
    expect(fs.readdirSync(dir)).toEqual(['ckpt.pth']);
    expect(fs.readFileSync(target, 'utf8')).toBe('previous');
  });

  // strace (Debian's strace, installed by .ci/run) shows the system calls: the data reach the disk
  // before the name points to them, so a machine that goes down cannot leave an empty checkpoint.
  const strace = spawnSync('strace', ['-V']).status === 0;
  (strace ? test : test.skip)('checkpoints and their copies are flushed to the disk before the rename, and the folder after', () => {
    const dir = fs.realpathSync(tempDir('fsync'));  // strace -y prints the real path of each descriptor
    const script = `require(${JSON.stringify(path.resolve(__dirname, '../../node_modules/ts-node'))}).register({ transpileOnly: true });
      const { writeCheckpoint } = require(${JSON.stringify(path.resolve(__dirname, '../../lib'))});
      const { copyAtomic } = require(${JSON.stringify(path.resolve(__dirname, '../../lib/train/run-dir'))});
      writeCheckpoint(process.argv[1] + '/ckpt.pth', { w: { data: new Float32Array(1000), shape: [1000] } })
        .then(() => copyAtomic(process.argv[1] + '/ckpt.pth', process.argv[1] + '/ckpt_best.pth'));`;
    const log = path.join(tempDir('strace'), 'calls.txt');
    const r = spawnSync('strace', ['-f', '-qq', '-y', '-e', 'trace=fsync,rename,renameat,renameat2', '-o', log, process.execPath, '-e', script, dir], { encoding: 'utf8' });
    expect([r.status, r.stderr]).toEqual([0, '']);
    const calls = fs.readFileSync(log, 'utf8').split('\n').filter((l) => l.includes(dir));
    const at = (re: RegExp) => calls.findIndex((l) => re.test(l));
    const esc = dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const folderSynced = new RegExp(`fsync\\(\\d+<${esc}>\\)\\s+= 0`);
    for (const name of ['ckpt.pth', 'ckpt_best.pth']) {
      const synced = at(new RegExp(`fsync\\(\\d+<${esc}/${name}\\.tmp-\\d+>\\)\\s+= 0`));
      const renamed = at(new RegExp(`rename.*"${esc}/${name}\\.tmp-\\d+".*"${esc}/${name}"`));
      // the file's data before its name, the folder (the name itself) right after
      expect([name, synced >= 0, renamed > synced, folderSynced.test(calls[renamed + 1] ?? '')]).toEqual([name, true, true, true]);
    }
  });

  test('a failed copy (ckpt -> ckpt_best) removes its temporary file and names the target', () => {
    const dir = tempDir('copy');
    fs.writeFileSync(path.join(dir, 'a'), 'x');
    fs.mkdirSync(path.join(dir, 'best'));
    fs.writeFileSync(path.join(dir, 'best', 'inside'), 'y'); // renaming a file over a non-empty folder fails
    expect(() => copyAtomic(path.join(dir, 'a'), path.join(dir, 'best'))).toThrow(`${path.join(dir, 'best')}: cannot write`);
    expect(fs.readdirSync(dir).sort()).toEqual(['a', 'best']);
  });

  test('temporary files of writes killed mid-way are removed when the next run starts', async () => {
    const dir = writeExperiment(tinyConfig(false, { trainer: { ...(tinyConfig(false).trainer as object), epochs: 1 } }));
    fs.mkdirSync(path.join(dir, 'checkpoints'));
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
    fs.writeFileSync(path.join(dir, `checkpoints/ckpt.pth.tmp-${dead}`), 'partial');
    const logs: string[] = [];
    await train(loadConfig(dir), { onLog: (m) => logs.push(m) });
    expect(fs.existsSync(path.join(dir, `checkpoints/ckpt.pth.tmp-${dead}`))).toBe(false);
    expect(logs).toContain(`removed ckpt.pth.tmp-${dead}, left by an interrupted write`);
    removeStaleTemporaries(path.join(dir, 'nothing-here')); // a missing folder is fine
  });

  test("a quit at once (a second Ctrl-C) removes this process's own half-written files, not others' or complete ones", () => {
    const dir = tempDir('own-temporaries');
    const names = ['ckpt.pth', `ckpt.pth.tmp-${process.pid}`, `report.html.tmp-${process.pid}`, `ckpt.pth.tmp-${process.pid}0`, 'ckpt.pth.tmp-1'];
    for (const n of names) fs.writeFileSync(path.join(dir, n), 'x');
    removeOwnTemporaries(dir);
    expect(fs.readdirSync(dir).sort()).toEqual(['ckpt.pth', `ckpt.pth.tmp-${process.pid}0`, 'ckpt.pth.tmp-1'].sort());
    removeOwnTemporaries(path.join(dir, 'nothing-here'));
  });
});

describe('one run per snapshot_dir', () => {
  test('a second run is refused with the owner\'s pid while the first holds the lock; released after', async () => {
    const dir = writeExperiment(tinyConfig(false, { trainer: { ...(tinyConfig(false).trainer as object), epochs: 1 } }));
    const snapshot = path.join(dir, 'checkpoints');
    fs.mkdirSync(snapshot);
    const release = lockRunDir(snapshot);
    await expect(train(loadConfig(dir))).rejects.toThrow(new RegExp(`^${snapshot}: is in use by another u2pl-train \\(pid ${process.pid} on .*choose another snapshot_dir`));
    release();
    expect(fs.existsSync(path.join(snapshot, LOCK))).toBe(false);
    await train(loadConfig(dir));
    expect(fs.existsSync(path.join(snapshot, LOCK))).toBe(false); // released after a run
  });

  test('a lock left by a process that is gone is taken over, with a note', async () => {
    const dir = writeExperiment(tinyConfig(false, { trainer: { ...(tinyConfig(false).trainer as object), epochs: 1 } }));
    const snapshot = path.join(dir, 'checkpoints');
    fs.mkdirSync(snapshot);
    const dead = Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout);
    fs.writeFileSync(path.join(snapshot, LOCK), JSON.stringify({ pid: dead, host: require('os').hostname(), started: 'earlier' }));
    const logs: string[] = [];
    await train(loadConfig(dir), { onLog: (m) => logs.push(m) });
    expect(logs).toContain(`took over a stale lock in ${snapshot} (pid ${dead} is gone)`);
  });

  test('the lock is released when a run fails', async () => {
    const dir = writeExperiment(tinyConfig(false));
    const snapshot = path.join(dir, 'checkpoints');
    fs.mkdirSync(snapshot);
    fs.writeFileSync(path.join(snapshot, 'ckpt.pth'), '');
    await expect(train(loadConfig(dir))).rejects.toThrow('is empty');
    expect(fs.existsSync(path.join(snapshot, LOCK))).toBe(false);
  });
});

describe('reading checkpoints directly', () => {
  test('readCheckpoint names the file and the cause', async () => {
    const dir = tempDir('read');
    fs.writeFileSync(path.join(dir, 'empty.pth'), '');
    await expect(readCheckpoint(path.join(dir, 'empty.pth'))).rejects.toThrow(`${path.join(dir, 'empty.pth')}: is empty (0 bytes)`);
    await expect(readCheckpoint(path.join(dir, 'missing.pth'))).rejects.toThrow(`${path.join(dir, 'missing.pth')}: cannot open (No such file or directory)`);
    await expect(native().readCheckpoint(dir)).rejects.toThrow(`${dir}: is a folder, not a checkpoint file`);
  });

  test('best_miou from a run without validation is not reported as 0', async () => {
    const c = JSON.parse(JSON.stringify(tinyConfig(false))) as Obj;
    c.trainer.epochs = 1;
    c.trainer.eval_on = false;
    const result = await train(loadConfig(writeExperiment(c)));
    expect(result.bestMiou).toBeNull();
  });
});
