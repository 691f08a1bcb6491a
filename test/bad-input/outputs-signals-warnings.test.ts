/** u2pl-infer's outputs never overwrite inputs; a second Ctrl-C ends at once; warnings by key. */
import { spawn } from 'child_process';
import fs from 'fs';
import path from 'path';
import yaml from 'js-yaml';
import sharp from 'sharp';
import { dataMain } from '../../lib/cli/data';
import { inferMain } from '../../lib/cli/infer';
import { trainMain } from '../../lib/cli/train';
import { loadConfig, parseConfig } from '../../lib/config/config';
import { datasetWarnings, prepareData } from '../../lib/data/prepare';
import { outputNames } from '../../lib/eval/output';
import { readCheckpoint } from '../../lib/checkpoint';
import { train } from '../../lib/train/train';
import { expectOneLineInputError, runTool } from '../helpers/cli';
import { tinyConfig, writeExperiment } from '../helpers/experiment';
import { tempDir } from '../helpers/temp';

type Obj = Record<string, any>;
const tsNode = require.resolve('ts-node/dist/bin.js');

describe('u2pl-infer outputs', () => {
  let exp: string;
  beforeAll(async () => {
    exp = writeExperiment(tinyConfig(false, { trainer: { ...(tinyConfig(false).trainer as object), epochs: 1 } }));
    await train(loadConfig(exp));
  });

  test('--out equal to an input folder is refused before anything is written', async () => {
    const images = tempDir('inputs');
    fs.copyFileSync(path.join(exp, 'data/images/val_0016.png'), path.join(images, 'a.png'));
    const before = fs.readFileSync(path.join(images, 'a.png'));
    expectOneLineInputError(await runTool('u2pl-infer', inferMain, [images, '--config', path.join(exp, 'config.yaml'), '--out', images]), /--out .* is an input folder/);
    expect(fs.readdirSync(images)).toEqual(['a.png']);
    expect(fs.readFileSync(path.join(images, 'a.png')).equals(before)).toBe(true);
  });

  test('an output that would be an input file is refused', () => {
    expect(() => outputNames(['/x/a.jpg', '/x/a_overlay.png'], '/x')).toThrow('--out: writing /x/a_overlay.png would overwrite an input image');
    expect(() => outputNames(['/in/a.png'], '/in')).toThrow('--out: writing /in/a.png would overwrite an input image');
  });

  test('a.jpg and a.png get their own outputs; an unreadable image is reported, the others written, exit 1', async () => {
    const images = tempDir('inputs');
    const src = path.join(exp, 'data/images/val_0016.png');
    fs.copyFileSync(src, path.join(images, 'a.png'));
    await sharp(src).jpeg().toFile(path.join(images, 'a.jpg'));
    fs.writeFileSync(path.join(images, 'broken.png'), 'not a png');
    fs.copyFileSync(src, path.join(images, 'c.png'));
    const out = path.join(tempDir('out'), 'masks');
    const r = await runTool('u2pl-infer', inferMain, [images, '--config', path.join(exp, 'config.yaml'), '--out', out]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/skipped .*broken\.png: not a readable image/);
    expect(r.err).toContain('1 of 4 images could not be read');
    expect(fs.readdirSync(out).sort()).toEqual(['a_jpg.png', 'a_jpg_overlay.png', 'a_png.png', 'a_png_overlay.png', 'c.png', 'c_overlay.png']);
  });
});

describe('signals', () => {
  test('a second Ctrl-C mid-write ends the run at once with 130 (no crash): the half-written checkpoint goes, the last one stays', async () => {
    // Steps of a few seconds and a checkpoint of a few hundred MB (ResNet-101 at 192 x 192), so that
    // the checkpoint the first Ctrl-C asks for takes long enough to write for the second to land in it.
    const c = JSON.parse(JSON.stringify(tinyConfig(false))) as Obj;
    c.trainer.epochs = 500;
    c.dataset.procedural.size = 192;
    c.dataset.train.crop.size = [192, 192];
    c.net.encoder = { type: 'resnet101', kwargs: { replace_stride_with_dilation: [false, true, true] } };
    c.net.decoder.kwargs = { ...c.net.decoder.kwargs, inner_planes: 64, head_planes: 64 };
    delete c.dataset.val;
    const dir = writeExperiment(c);
    const snapshot = path.join(dir, 'checkpoints');
    const child = spawn(process.execPath, [tsNode, '--transpile-only', path.join(__dirname, '../../lib/cli/train.ts'), dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    let sent = 0;
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      if (sent === 0 && /epoch 2\/500 step 2\/2/.test(err)) {
        child.kill('SIGINT');
        sent = 1;
      }
    });
    // The second Ctrl-C the moment the child's temporary checkpoint file appears.
    const mine = `.tmp-${child.pid}`;
    const watch = setInterval(() => {
      // After the child has taken the first (two signals sent back to back can arrive as one).
      if (sent === 1 && /interrupted, saving a checkpoint/.test(err) && fs.existsSync(snapshot) && fs.readdirSync(snapshot).some((f) => f.endsWith(mine))) {
        child.kill('SIGINT');
        sent = 2;
      }
    }, 2);
    const guard = setTimeout(() => child.kill('SIGKILL'), 100000); // never outlive the test
    const { code, signal } = await exited;
    clearInterval(watch);
    clearTimeout(guard);
    expect(sent).toBe(2);
    expect({ code, signal }).toEqual({ code: 130, signal: null });
    expect(err).toContain('interrupted again, quitting without a checkpoint');
    const files = fs.readdirSync(snapshot);
    expect(files.filter((f) => f.includes('.tmp-'))).toEqual([]);
    // The last complete checkpoint: it reads, at the end of a finished epoch.
    const last = (await readCheckpoint(path.join(snapshot, 'ckpt.pth'))) as Obj;
    expect([last.epoch >= 1, last.step_in_epoch]).toEqual([true, 0]);
  });
});

describe('warnings by key', () => {
  const dir = '/experiments/w';
  const base = () => JSON.parse(JSON.stringify(tinyConfig(true))) as Obj;

  test('ignore_label outside 0-255, an unset ${VAR}, class_names of the wrong length', () => {
    const c = base();
    c.dataset.ignore_label = 300;
    c.dataset.class_names = ['a', 'b', 'c'];
    c.saver.snapshot_dir = '${RUNS}/tiny';
    const w = parseConfig(c, dir, {}).warnings;
    expect(w).toEqual(expect.arrayContaining([
      'dataset.ignore_label: 300 is outside 0-255: label PNGs hold values 0-255, so no pixel will be ignored',
      "saver.snapshot_dir: ${RUNS} is not set (it expands to '')",
      'dataset.class_names: 3 names for net.num_classes 4',
    ]));
  });

  test('duplicates in a list, validation images among the training ones, crops far larger than the images', async () => {
    const e = writeExperiment(tinyConfig(true));
    const config = loadConfig(e);
    await prepareData(config.dataset, 4);
    const labeled = path.join(e, 'data/splits/4/labeled.txt');
    fs.appendFileSync(labeled, 'images/train_0000.png\n');
    fs.appendFileSync(path.join(e, 'data/splits/4/unlabeled.txt'), 'images/val_0016.png\n');
    const data = await prepareData(config.dataset, 4);
    const big = loadConfig(e);
    big.dataset.train.augment.crop = { type: 'rand', size: [200, 200] };
    const w = datasetWarnings(big.dataset, data, [{ images: 5, sizes: { '40x40': 5 }, frequencies: { pixels: [], imagePixels: [] }, ignorePixels: 0, problems: [] }]);
    expect(w).toEqual([
      `dataset.train.data_list: ${labeled} lists 1 image(s) more than once (e.g. ${path.join(e, 'data/images/train_0000.png')})`,
      `dataset.val.data_list: 1 validation image(s) are also in the unlabeled training list (e.g. ${path.join(e, 'data/images/val_0016.png')}): the validation score would not measure unseen images`,
      'dataset.train.crop.size: [200, 200] is more than twice the images (at most 40x40, x1.25 at the largest random scale): most of every crop is padding',
    ]);
    // u2pl-data check and training print them too.
    const r = await runTool('u2pl-data', dataMain, ['check', e]);
    expect(r.out).toMatch(/warning: dataset\.train\.data_list: .* more than once/);
    expect(r.out).toMatch(/warning: dataset\.val\.data_list: 1 validation image/);
    const logs: string[] = [];
    await train(loadConfig(e), { maxSteps: 1, onLog: (m) => logs.push(m) });
    expect(logs.filter((m) => m.startsWith('warning: dataset.'))).toHaveLength(2);
  });

  test('a held-out test list that overlaps validation or training is warned about, by key', async () => {
    const e = writeExperiment(tinyConfig(true));
    await prepareData(loadConfig(e).dataset, 4);
    fs.writeFileSync(path.join(e, 'data/test.txt'), 'images/val_0016.png\nimages/train_0004.png\n');
    const base = tinyConfig(true);
    fs.writeFileSync(path.join(e, 'config.yaml'), yaml.dump({ ...base, dataset: { ...(base.dataset as object), test: { data_root: 'data', data_list: 'data/test.txt' } } }));
    const config = loadConfig(e);
    const data = await prepareData(config.dataset, 4);
    expect(data.test.map((s) => path.basename(s.image))).toEqual(['val_0016.png', 'train_0004.png']);
    expect(datasetWarnings(config.dataset, data)).toEqual([
      `dataset.test.data_list: 1 test image(s) are also in the unlabeled training list (e.g. ${path.join(e, 'data/images/train_0004.png')}): the test score would not measure unseen images`,
      `dataset.test.data_list: 1 test image(s) are also validation images (e.g. ${path.join(e, 'data/images/val_0016.png')}): the best checkpoint is chosen on them, so the test score is not held out`,
    ]);
  });

  test('a run that never validated says so instead of "best mIoU 0.00"', async () => {
    const c = JSON.parse(JSON.stringify(tinyConfig(false))) as Obj;
    c.trainer.epochs = 1;
    c.trainer.eval_on = false;
    const e = writeExperiment(c);
    const r = await runTool('u2pl-train', trainMain, [e, '--quiet']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/: no validation ran\n$/);
    expect(r.out).not.toContain('0.00');
  });
});
