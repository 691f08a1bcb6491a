/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * Issue #35: report.html of a real camvid-small U2PL run (the u2pl preset), and u2pl-report's
 * comparison of it with supervised-only, opened in headless Chromium as a reader would open them.
 * The runs are the experiments' own configs, shortened through the API (2 epochs of 2 steps, a
 * spread-out subset of the validation and unlabeled lists, fp32) to keep the file to a few minutes.
 * Screenshots go to U2PL_REPORT_SCREENSHOTS (a folder) or a temporary one; they show CamVid pixels,
 * so they are never written into the repository (docs/ holds ones of the procedural demo).
 */
import fs from 'fs';
import path from 'path';
import type { Browser } from 'playwright-core';
import { loadConfig, U2plConfig } from '../../lib/config/config';
import { train } from '../../lib/train/train';
import { reportMain } from '../../lib/cli/report';
import { spread } from '../../lib/eval/report/collect';
import { renderReport } from '../../lib/eval/report';
import { checkCharts, describeWithChromium, expectReadableCharts, launchChromium, openFile } from '../helpers/browser';
import { runTool } from '../helpers/cli';
import { CAMVID } from '../helpers/datasets';
import { tempDir } from '../helpers/temp';

const EXPERIMENTS = path.join(__dirname, '../../experiments/camvid-small');

/** A list file with `count` entries of `list` spread over it (whole lines: CamVid's val list has image and label). */
function spreadList(list: string, count: number, out: string): string[] {
  const lines = fs.readFileSync(list, 'utf8').split('\n').filter((l) => l.trim());
  const kept = spread(lines.length, count).map((i) => lines[i]);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, `${kept.join('\n')}\n`);
  return kept;
}

/** camvid-small/<variant> as it is, shortened: 2 epochs of 2 steps, 12 validation and 6 test images, 24 unlabeled, fp32. */
function shortRun(variant: string, root: string): U2plConfig {
  const c = loadConfig(path.join(EXPERIMENTS, variant), { ...process.env, U2PL_DATA_ROOT: CAMVID, U2PL_SEED: '0', U2PL_AUTOCAST: '' });
  const splits = path.join(root, 'splits');
  fs.mkdirSync(path.join(splits, '46'), { recursive: true });
  fs.copyFileSync(path.join(CAMVID, 'splits/46/labeled.txt'), path.join(splits, '46/labeled.txt'));
  spreadList(path.join(CAMVID, 'splits/46/unlabeled.txt'), 24, path.join(splits, '46/unlabeled.txt'));
  spreadList(path.join(EXPERIMENTS, 'splits/val-select.txt'), 12, path.join(splits, 'val.txt'));
  spreadList(path.join(EXPERIMENTS, 'splits/val-report.txt'), 6, path.join(splits, 'test.txt'));
  c.dataset.train.dataList = path.join(splits, '46/labeled.txt');
  if (c.dataset.val) c.dataset.val.dataList = path.join(splits, 'val.txt');
  if (c.dataset.test) c.dataset.test.dataList = path.join(splits, 'test.txt');
  c.trainer.epochs = 2;
  c.trainer.stepsPerEpoch = 2;
  c.runtime.autocast = null;  // bf16 is emulated (slow) on CPUs without bf16 instructions
  c.saver.snapshotDir = path.join(root, variant, 'checkpoints', 'seed-0');
  return c;
}

describeWithChromium('report.html and u2pl-report in Chromium (#35)', () => {
  let browser: Browser;
  let root: string;
  let shots: string;
  let preset: string;
  let suponly: string;

  beforeAll(async () => {
    root = tempDir('report-browser');
    shots = process.env.U2PL_REPORT_SCREENSHOTS ? path.resolve(process.env.U2PL_REPORT_SCREENSHOTS) : path.join(root, 'screenshots');
    fs.mkdirSync(shots, { recursive: true });
    const t0 = Date.now();
    const u2pl = shortRun('u2pl-preset', root);
    expect(u2pl.trainer.supOnlyEpoch).toBe(1);  // epoch 1 warm-up, epoch 2 U2PL: the report's U2PL parts have one epoch to show
    preset = (await train(u2pl)).snapshotDir;
    suponly = (await train(shortRun('suponly', root))).snapshotDir;
    // eslint-disable-next-line no-console
    console.log(`two short camvid-small runs: ${((Date.now() - t0) / 1000).toFixed(0)} s; screenshots in ${shots}`);
    browser = await launchChromium();
  }, 900000);

  afterAll(async () => {
    await browser?.close();
  });

  test('metrics.jsonl has the schedules the report draws, run.json the class names', () => {
    const records = fs.readFileSync(path.join(preset, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const semi = records.filter((r) => r.type === 'step' && r.phase === 'semi');
    expect(semi.length).toBe(2);
    for (const r of semi) {
      expect(r.ema_decay).toBeGreaterThanOrEqual(0);
      expect(r.ema_decay).toBeLessThanOrEqual(0.99);
      expect(r.drop_percentile).toBeCloseTo(90, 6);  // q = 100 - (100 - 80)(1 - 1/2) in epoch 2 of 2
    }
    const info = JSON.parse(fs.readFileSync(path.join(preset, 'run.json'), 'utf8'));
    expect(info).toMatchObject({ epochs: 2, stepsPerEpoch: 2, semi: true, validation: 12 });
    expect(info.classNames).toHaveLength(11);
  });

  test('report.html of the preset run: charts with series and axes, the U2PL section, the method, spread samples', async () => {
    const file = path.join(preset, 'report.html');
    const { page, problems, loadMs } = await openFile(browser, file);
    expect(problems).toEqual([]);
    expect(loadMs).toBeLessThan(10000);
    const charts = await checkCharts(page);
    expectReadableCharts(charts);
    const titles = charts.map((c) => c.title);
    for (const t of ['Validation mIoU', 'Per-class IoU', 'Training losses', 'Learning rate', 'Teacher EMA decay', 'Unreliable-pixel percentile',
      'Pseudo-labels per epoch', 'Valid contrastive classes', 'Memory bank fill', 'Class shares, epoch 2']) {
      expect(titles).toContain(t);
    }
    // The held-out test list (val-report) beside val (val-select): two mIoU curves, 2 validated epochs each.
    const curves = await page.$$eval('svg.chart[aria-label="Validation mIoU"] g.legend .legend-item', (items) => items.map((i) => i.getAttribute('data-name')));
    expect(curves).toEqual(['val mIoU', 'test mIoU (held out)']);
    expect(await page.$$eval('svg.chart[aria-label="Validation mIoU"] g.series circle', (c) => c.length)).toBe(4);
    // The losses: each of the four drawn smoothed, with its raw series faint behind.
    const losses = await page.$$eval('svg.chart[aria-label="Training losses"] g.series', (gs) => gs.map((g) => `${g.getAttribute('data-name')}${g.classList.contains('faint') ? ' (faint)' : ''}`));
    expect(losses).toEqual(expect.arrayContaining(['total', 'supervised', 'unsupervised', 'contrastive', 'total (raw) (faint)']));
    // The per-class heat map: 11 classes x 2 validated epochs.
    const heat = await page.$eval('svg.chart[aria-label="Per-class IoU"]', (s) => [s.getAttribute('data-rows'), s.getAttribute('data-cols'), s.querySelectorAll('rect.cell').length]);
    expect(heat).toEqual(['11', '2', 22]);
    // The bars of labels, teacher and pseudo-labels side by side, for every class.
    const bars = await page.$$eval('svg.chart[aria-label="Class shares, epoch 2"] g.series', (gs) => gs.map((g) => [g.getAttribute('data-name'), g.querySelectorAll('rect').length]));
    expect(bars.map((b) => b[0])).toEqual(['labels', 'teacher predictions', 'pseudo-labels']);
    // The method: 4 unlabeled images spread over the (24-image) list, each with prediction, entropy and unreliable pixels.
    const method = await page.$$eval('#method ~ .samples.method figure', (fs) => fs.map((f) => [f.querySelectorAll('img').length, f.querySelector('figcaption')?.textContent ?? '']));
    expect(method.map((m) => m[0])).toEqual([4, 4, 4, 4]);
    expect(method.map((m) => /^unlabeled #(\d+)/.exec(String(m[1]))?.[1])).toEqual(spread(24, 4).map(String));
    expect(String(method[0][1])).toContain('90th percentile');
    // The samples: spread over the validation list (not its first images), each with its own mIoU; the worst below.
    const samples = await page.$$eval('#samples ~ .samples figure.sample', (fs) => fs.map((f) => [Number(f.getAttribute('data-index')), f.classList.contains('worst'), f.querySelector('figcaption')?.textContent ?? '']));
    const shown = samples.filter((s) => !s[1]);
    expect(shown.map((s) => s[0])).toEqual(spread(12, 8).map((k) => spread(12, 12)[k]));
    for (const s of samples) expect(String(s[2])).toMatch(/mIoU \d+\.\d %/);
    expect(samples.filter((s) => s[1])).toHaveLength(3);
    const text = await page.evaluate(() => document.body.innerText);
    expect(text).not.toMatch(/\bNaN\b|undefined/);
    expect(text).toContain('Pseudo-labels (epoch 2) right on');
    // Readable at a laptop's width: nothing wider than the window.
    expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).toBe(true);
    await page.screenshot({ path: path.join(shots, 'report.png'), fullPage: true });
    expect(fs.statSync(path.join(shots, 'report.png')).size).toBeGreaterThan(10000);
    await page.close();
  });

  test('report.html of the supervised-only run has no U2PL parts and still reads', async () => {
    const { page, problems } = await openFile(browser, path.join(suponly, 'report.html'));
    expect(problems).toEqual([]);
    expectReadableCharts(await checkCharts(page));
    expect(await page.$('#u2pl')).toBeNull();
    expect(await page.$('#method')).toBeNull();
    await page.close();
  });

  test('a 200,000-step report (curves downsampled) opens as fast as a short one', async () => {
    const steps = Array.from({ length: 200000 }, (_, k) => ({
      type: 'step' as const, epoch: Math.floor(k / 2500), step: k % 2500, global_step: k, phase: k < 10000 ? 'warmup' : 'semi', lr: 0.01 * (1 - k / 200000) ** 0.9,
      loss: 2 / (1 + k / 1000) + (k % 7) / 10, supervised: 1 + (k % 5) / 10, ...(k >= 10000 ? { unsupervised: 0.5, contrastive: 0.25, ema_decay: 0.99, drop_percentile: 80 + k / 10000 } : {}),
    }));
    const epochs = Array.from({ length: 80 }, (_, e) => ({ type: 'epoch' as const, epoch: e, phase: e < 4 ? 'warmup' : 'semi', miou: 0.5 + e / 1000, iou: [0.5, 0.6] }));
    const file = path.join(root, 'long-report.html');
    fs.writeFileSync(file, renderReport({ title: 'long run', steps, epochs, epochsTotal: 80, classNames: ['a', 'b'], samples: [], summary: {} }));
    const { page, problems, loadMs } = await openFile(browser, file);
    expect(problems).toEqual([]);
    expect(loadMs).toBeLessThan(5000);
    expectReadableCharts(await checkCharts(page));
    await page.close();
  });

  test('u2pl-report: supervised-only against the preset in one page, curves overlaid and the per-class table', async () => {
    const out = path.join(root, 'compare.html');
    const r = await runTool('u2pl-report', reportMain, [path.join(root, 'suponly'), path.join(root, 'u2pl-preset'), '--out', out]);
    expect(r.err).toContain('2 run(s) in 2 group(s) (suponly: 1, u2pl-preset: 1)');
    expect(r.code).toBe(0);
    const { page, problems } = await openFile(browser, out);
    expect(problems).toEqual([]);
    const charts = await checkCharts(page);
    expectReadableCharts(charts);
    const miou = await page.$$eval('svg.chart[aria-label="Validation mIoU"] g.legend .legend-item', (items) => items.map((i) => i.getAttribute('data-name')));
    expect(miou).toEqual(['suponly', 'u2pl-preset']);
    // Both runs' mIoU at the end of each epoch, on the step axis: 2 points each.
    const points = await page.$$eval('svg.chart[aria-label="Validation mIoU"] g.series circle', (c) => c.length);
    expect(points).toBe(4);
    const headers = await page.$$eval('table th', (ths) => ths.map((th) => th.textContent ?? ''));
    expect(headers).toContain('final held-out test mIoU %, mean ± std');
    const rows = await page.$$eval('#per-class-table tbody tr', (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')));
    expect(rows.map((r) => r[0])).toEqual(['sky', 'building', 'pole', 'road', 'pavement', 'tree', 'signsymbol', 'fence', 'car', 'pedestrian', 'bicyclist', 'mIoU']);
    for (const row of rows) expect(row.slice(1).every((v) => /^\d+\.\d$/.test(v))).toBe(true);
    // The same on the held-out test list (val-report), with its own curve.
    const testRows = await page.$$eval('#per-class-test-table tbody tr', (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')));
    expect(testRows.map((r) => r[0])).toEqual(rows.map((r) => r[0]));
    for (const row of testRows) expect(row.slice(1).every((v) => /^\d+\.\d$/.test(v))).toBe(true);
    expect(await page.$$eval('svg.chart[aria-label="Held-out test mIoU"] g.series circle', (c) => c.length)).toBe(4);
    expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).toBe(true);
    await page.screenshot({ path: path.join(shots, 'compare.png'), fullPage: true });
    await page.close();
  });
});
