/**
 * Bad data files: found by the checks before training (every image decoded), and when one goes bad
 * during a run, the run stops with a checkpoint and an error naming the file, then resumes.
 */
import fs from 'fs';
import path from 'path';
import sharp from 'sharp';
import { loadConfig } from '../../lib/config/config';
import { dataMain } from '../../lib/cli/data';
import { prepareData } from '../../lib/data/prepare';
import { readCheckpoint } from '../../lib';
import { train } from '../../lib/train/train';
import { runTool } from '../helpers/cli';
import { tinyConfig, writeExperiment } from '../helpers/experiment';

type Obj = Record<string, any>;

/** A tiny supervised experiment with its procedural data generated. */
async function experiment(overrides: (c: Obj) => void = () => undefined): Promise<string> {
  const c = JSON.parse(JSON.stringify(tinyConfig(false))) as Obj;
  overrides(c);
  const dir = writeExperiment(c);
  await prepareData(loadConfig(dir).dataset, 4);
  return dir;
}

const image = (dir: string, name: string) => path.join(dir, 'data/images', name);
const truncate = (file: string) => fs.writeFileSync(file, fs.readFileSync(file).subarray(0, Math.floor(fs.statSync(file).size / 2)));

describe('corrupt images are found before training', () => {
  test.each([
    ['a truncated PNG', (f: string) => truncate(f), /not a readable image/],
    ['an empty file', (f: string) => fs.writeFileSync(f, ''), /not a readable image/],
    ['text named .png', (f: string) => fs.writeFileSync(f, 'not an image at all\n'), /not a readable image/],
    ['a truncated JPEG', async (f: string) => {
      const jpeg = await sharp(f).jpeg().toBuffer();
      fs.writeFileSync(f, jpeg.subarray(0, Math.floor(jpeg.length * 0.6)));
    }, /not a readable image/],
    ['a missing file', (f: string) => fs.rmSync(f), /file not found/],
  ])('%s: u2pl-data check lists it, train() refuses before the first step', async (_, damage, problem) => {
    const dir = await experiment();
    const bad = image(dir, 'train_0002.png');
    await damage(bad);
    const r = await runTool('u2pl-data', dataMain, ['check', dir]);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(new RegExp(`problem: ${bad}: ${problem.source}`));
    expect(r.out).toContain('1 problem(s) found');
    let steps = 0;
    await expect(train(loadConfig(dir), { onProgress: () => { steps++; } })).rejects.toThrow(new RegExp(`${bad}: ${problem.source}`));
    expect(steps).toBe(0);
  });

  test('an image whose label has another size, and a label with a class out of range', async () => {
    const dir = await experiment();
    await sharp(image(dir, 'train_0001.png')).resize(20, 20).toFile(image(dir, 'small.png'));
    fs.renameSync(image(dir, 'small.png'), image(dir, 'train_0001.png'));
    const label = path.join(dir, 'data/labels/train_0003.png');
    await sharp(Buffer.alloc(40 * 40, 9), { raw: { width: 40, height: 40, channels: 1 } }).toColourspace('b-w').png().toFile(label);
    const r = await runTool('u2pl-data', dataMain, ['check', dir]);
    expect(r.out).toMatch(/labels\/train_0001\.png: label is 40x40 but its image train_0001\.png is 20x20/);
    expect(r.out).toMatch(/labels\/train_0003\.png: label value 9 at \(0, 0\) is outside \[0, 4\)/);
    expect(r.out).toContain('2 problem(s) found');
  });

  test('a second check decodes only the images that changed (the run folder keeps what decoded)', async () => {
    const dir = await experiment();
    fs.mkdirSync(path.join(dir, 'checkpoints'));
    expect((await runTool('u2pl-data', dataMain, ['check', dir])).out).toContain('no problems found');
    const cache = JSON.parse(fs.readFileSync(path.join(dir, 'checkpoints/.u2pl-decoded.json'), 'utf8')) as Record<string, number[]>;
    expect(Object.keys(cache)).toHaveLength(8); // 4 labeled + 4 val
    truncate(image(dir, 'val_0017.png')); // changed: its size and time no longer match the cache
    expect((await runTool('u2pl-data', dataMain, ['check', dir])).out).toMatch(/val_0017\.png: not a readable image/);
  });
});

describe('a file that goes bad during a run', () => {
  test('a training image: the run stops with a checkpoint and names the file; after the fix it resumes', async () => {
    const dir = await experiment((c) => { c.dataset.cache_mb = 0; c.trainer.epochs = 3; });
    const config = loadConfig(dir);
    const victim = image(dir, 'train_0000.png');
    const original = fs.readFileSync(victim);
    const error = await train(config, { onEpoch: (e) => { if (e.epoch === 0) truncate(victim); } }).then(() => null, (e: Error) => e);
    expect(error?.message).toMatch(new RegExp(`^${victim}: not a readable image \\(.*\\)\\. Training stopped at epoch 2, step [12] and saved .*ckpt\\.pth: fix or remove the file`));
    const step = Number(/step (\d)/.exec((error as Error).message)?.[1]);
    const ckpt = (await readCheckpoint(path.join(dir, 'checkpoints/ckpt.pth'))) as Obj;
    expect([ckpt.epoch, ckpt.step_in_epoch]).toEqual([1, step - 1]); // the failed step is the next to run
    fs.writeFileSync(victim, original);
    const logs: string[] = [];
    const again = await train(loadConfig(dir), { onLog: (m) => logs.push(m) });
    expect(logs.some((m) => new RegExp(`resumed from .*epoch 2, step ${step}`).test(m))).toBe(true);
    expect(again.globalStep).toBe(6);
  });

  test('a validation image: the epoch is saved before the error, the next run goes on from the next epoch', async () => {
    const dir = await experiment((c) => { c.dataset.cache_mb = 0; c.trainer.epochs = 3; });
    const victim = image(dir, 'val_0016.png');
    const original = fs.readFileSync(victim);
    let corrupted = false;
    const run = train(loadConfig(dir), { onProgress: (p) => { if (p.epoch === 1 && !corrupted) { truncate(victim); corrupted = true; } } });
    await expect(run).rejects.toThrow(new RegExp(`${victim}: .*Training stopped at the validation after epoch 2 \\(the next run starts at epoch 3\\)`));
    expect(((await readCheckpoint(path.join(dir, 'checkpoints/ckpt.pth'))) as Obj).epoch).toBe(2);
    fs.writeFileSync(victim, original);
    expect((await train(loadConfig(dir))).globalStep).toBe(6);
  });

  test('with dataset.skip_unreadable, a bad unlabeled image is skipped with a warning and the run completes', async () => {
    const c = JSON.parse(JSON.stringify(tinyConfig(true))) as Obj;
    c.dataset.cache_mb = 0;
    c.dataset.skip_unreadable = true;
    c.trainer.epochs = 2;
    const dir = writeExperiment(c);
    await prepareData(loadConfig(dir).dataset, 4);
    const victim = image(dir, 'train_0007.png'); // an unlabeled scene
    const logs: string[] = [];
    const result = await train(loadConfig(dir), { onLog: (m) => logs.push(m), onEpoch: (e) => { if (e.epoch === 0) truncate(victim); } });
    expect(result.globalStep).toBe(12);
    expect(logs.filter((m) => m.includes(`skipped ${victim}: not a readable image`))).toHaveLength(1);
  });
});
