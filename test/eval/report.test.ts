/**
 * report.html and u2pl-report without a browser or a network: the charts' ticks and smoothing, a
 * 200,000-step run, metrics.jsonl of older runs, the comparison's groups and its bad input.
 * (test/eval/report-browser.test.ts opens real reports in Chromium.)
 */
import fs from 'fs';
import path from 'path';
import { downsample, renderReport, ReportData } from '../../lib/eval/report';
import { formatTick, niceScale } from '../../lib/eval/report/charts';
import { compareRuns, groupKey, meanCurve } from '../../lib/eval/report/compare';
import { emaSmooth, parseMetrics } from '../../lib/eval/report/metrics';
import { imageScores, percentileOf, spread, upsampledArgmaxEntropy } from '../../lib/eval/report/collect';
import { percentile, upsampledEntropy } from '../../lib/losses';
import { randomTensor } from '../helpers/tensors';
import { reportMain } from '../../lib/cli/report';
import { expectOneLineInputError, runTool } from '../helpers/cli';
import { tempDir } from '../helpers/temp';

function run(steps: number): ReportData {
  return {
    title: 'long run',
    steps: Array.from({ length: steps }, (_, k) => ({
      type: 'step' as const, epoch: Math.floor(k / 2500), step: k % 2500, global_step: k, phase: k < 10000 ? 'warmup' : 'semi',
      loss: 2 / (1 + k / 1000) + (k % 7) / 10, supervised: 1, unsupervised: 0.5, contrastive: 0.25, lr: 0.01 * (1 - k / steps) ** 0.9,
      ...(k >= 10000 ? { ema_decay: Math.min(0.99, 1 - 1 / (k - 9999)), drop_percentile: 80 + (20 * Math.floor(k / 2500)) / 80 } : {}),
    })),
    epochs: Array.from({ length: 80 }, (_, e) => ({
      type: 'epoch' as const, epoch: e, phase: e < 4 ? 'warmup' : 'semi', miou: 0.5 + e / 1000, iou: [0.5, 0.6],
      ...(e >= 4 ? { kept_share: 0.8, pseudo_label_accuracy: 0.7, pseudo_label_accuracy_kept: 0.75, pseudo_label_accuracy_dropped: 0.4, valid_classes: 2, bank_fill: [0.5, 1], labeled_class_share: [0.6, 0.4], teacher_class_share: [0.8, 0.15], pseudo_label_class_share: [0.7, 0.3], pseudo_label_iou: [0.61, null] } : {}),
    })),
    epochsTotal: 80,
    classNames: ['a', 'b'],
    samples: [],
    summary: { steps },
  };
}

/** The points of every line drawn in a chart of the page (by its title). */
function chartPaths(html: string, title: string): string[] {
  const svg = html.split('<svg class="chart"').find((s) => s.includes(`aria-label="${title}"`)) ?? '';
  return [...svg.matchAll(/<path class="line" d="([^"]*)"/g)].map((m) => m[1]);
}

function writeRun(dir: string, lines: unknown[], info?: Record<string, unknown>): string {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'metrics.jsonl'), lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n') + '\n');
  if (info) fs.writeFileSync(path.join(dir, 'run.json'), JSON.stringify(info));
  return dir;
}

/** A finished run's records: `epochs` of `perEpoch` steps, mIoU rising by `gain` per epoch. */
function records(epochs: number, perEpoch: number, start: number, gain: number, semiFrom = Infinity): unknown[] {
  const out: unknown[] = [];
  for (let e = 0; e < epochs; e++) {
    const phase = e >= semiFrom ? 'semi' : semiFrom < Infinity ? 'warmup' : 'supervised';
    for (let s = 0; s < perEpoch; s++) out.push({ type: 'step', epoch: e, step: s, global_step: e * perEpoch + s, phase, loss: 1 / (1 + e), supervised: 1 / (1 + e), lr: 0.01 });
    out.push({ type: 'epoch', epoch: e, phase, miou: start + gain * e, iou: [start + gain * e, start], ...(phase === 'semi' ? { pseudo_label_accuracy: 0.7, kept_share: 0.8 } : {}) });
  }
  return out;
}

describe('report.html', () => {
  test('a full-length run (200,000 logged steps) renders fast, each curve downsampled, the axis spanning the run', () => {
    const t0 = Date.now();
    const html = renderReport(run(200000));
    expect(Date.now() - t0).toBeLessThan(20000);  // ~0.5 s on a quiet machine; the bound catches a quadratic slip, not noise
    expect(html.length).toBeLessThan(2_000_000);
    const losses = chartPaths(html, 'Training losses');
    expect(losses).toHaveLength(4);  // the 4 smoothed losses; the raw ones are min–max bands at this length
    for (const d of losses) {
      const points = d.split(/[ML]/).filter(Boolean);
      expect(points.length).toBeGreaterThan(100);
      expect(points.length).toBeLessThanOrEqual(800);
    }
    // Ticks at round values, in thousands: 0, 50k, ..., 200k.
    expect(html).toMatch(/>200k<\/text>/);
    expect(html).toMatch(/>50k<\/text>/);
    expect(chartPaths(html, 'Teacher EMA decay')).toHaveLength(1);
    expect(chartPaths(html, 'Unreliable-pixel percentile')).toHaveLength(1);
    expect(html).not.toMatch(/\bNaN\b|undefined/);
    expect(html).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org\/2000\/svg)/);  // self-contained: no script, no network
  });

  test('a run of an older u2pl (no ema_decay or drop_percentile in its steps) still renders, saying what is missing', () => {
    const r = run(300);
    r.steps = r.steps.map(({ ema_decay: _e, drop_percentile: _d, ...s }) => ({ ...s, phase: 'semi' }));
    const html = renderReport(r);
    expect(html).toContain("Teacher EMA decay: not in this run's metrics.jsonl");
    expect(html).toContain('aria-label="Learning rate"');
  });

  test('a supervised-only run with an EMA model draws its decay; one without draws none', () => {
    const r = run(300);
    r.steps = r.steps.map((s) => ({ ...s, phase: 'supervised', ema_decay: Math.min(0.99, 1 - 1 / (s.global_step + 1)) }));
    r.epochs = r.epochs.map(({ epoch, miou, iou }) => ({ type: 'epoch' as const, epoch, phase: 'supervised', miou, iou }));
    expect(chartPaths(renderReport(r), 'EMA model decay')).toHaveLength(1);
    expect(renderReport(r)).not.toContain('Teacher EMA decay');
    r.steps = r.steps.map(({ ema_decay: _e, ...s }) => s);
    expect(renderReport(r)).not.toContain('EMA model decay');
  });

  test('at a glance: the classes the teacher gives less than half their labelled share', () => {
    const html = renderReport(run(100));
    expect(html).toMatch(/less than half their labelled share to: <b>b<\/b>/);
    expect(html).toContain('the entropy filter drops the worse ones');
    // Each class's pseudo-label IoU per epoch; a class neither truth nor pseudo-labels had is shown as none.
    expect(html).toMatch(/<title>a, epoch 5: 61(\.0+)?IoU %<\/title>/);
    expect(html).toContain('Pseudo-label IoU per class');
  });

  test('a held-out test list: a second mIoU curve and its figure at a glance; a run with no val list shows the test list\'s classes', () => {
    const r = run(100);
    r.epochs = r.epochs.map((e) => ({ ...e, test_miou: 0.4 + e.epoch / 1000, test_iou: [0.3, 0.5] }));
    const html = renderReport(r);
    expect(chartPaths(html, 'Validation mIoU')).toHaveLength(2);
    expect(html).toContain('data-name="test mIoU (held out)"');
    expect(html).toContain('Held-out test mIoU <b>47.9</b> (dataset.test: images no choice was made on)');
    const testOnly = renderReport({ ...r, epochs: r.epochs.map((e) => ({ ...e, miou: null, iou: null })) });
    expect(chartPaths(testOnly, 'Validation mIoU')).toHaveLength(1);
    expect(testOnly).toContain('Held-out test mIoU <b>47.9</b> after epoch 80 of 80 (dataset.test; no validation list)');
    expect(testOnly).toContain('Per-class IoU over epochs (test list)');
    expect(testOnly).not.toMatch(/\bNaN\b|undefined/);
  });

  test('downsampling keeps short series whole and averages long ones per bucket', () => {
    const short: [number, number][] = [[0, 1], [1, 2], [2, 3]];
    expect(downsample(short, 10)).toEqual(short);
    const long: [number, number][] = Array.from({ length: 1000 }, (_, i) => [i, i % 2]);
    const d = downsample(long, 100);
    expect(d).toHaveLength(100);
    for (const [, y] of d) expect(y).toBeCloseTo(0.5, 6);
    expect(d[0][0]).toBeCloseTo(4.5, 6);
  });

  test('ticks fall on round values and print without float noise', () => {
    expect(niceScale(0, 0.73).ticks).toEqual([0, 0.2, 0.4, 0.6, 0.8]);
    expect(niceScale(3, 197, 6, true).ticks).toEqual([0, 50, 100, 150, 200]);
    expect(niceScale(22.4, 29.7).ticks).toEqual([22, 24, 26, 28, 30]);
    expect(niceScale(1, 3, 6, true).ticks).toEqual([1, 2, 3]);
    expect(formatTick(0.30000000000000004, 0.1)).toBe('0.3');
    expect(formatTick(0.0025, 0.0025)).toBe('0.0025');
    expect(formatTick(150000, 50000)).toBe('150k');
    expect(formatTick(0.00004, 0.00002)).toBe('4e\u22125');
  });

  test('smoothing is TensorBoard\'s debiased EMA: a constant stays constant from the first point', () => {
    const flat = emaSmooth([[0, 2], [1, 2], [2, 2]], 0.9);
    for (const [, y] of flat) expect(y).toBeCloseTo(2, 12);
    const step = emaSmooth([[0, 0], [1, 1]], 0.5);
    expect(step[1][1]).toBeCloseTo(2 / 3, 12);  // (0.5 * 0.5 + 0.5) / (1 - 0.25)
  });

  test('samples are spread over a list, and an image\'s mIoU counts the classes in its label or prediction', () => {
    expect(spread(101, 4)).toEqual([12, 37, 63, 88]);
    expect(spread(3, 8)).toEqual([0, 1, 2]);
    const label = new Uint8Array([0, 0, 1, 1, 255]);
    const prediction = new Uint8Array([0, 1, 1, 1, 2]);
    const s = imageScores(prediction, label, 3, 255);
    expect(s.miou).toBeCloseTo((1 / 2 + 2 / 3) / 2, 12);  // class 2 only where the label is ignored: not counted
    expect(s.pixelAccuracy).toBeCloseTo(3 / 4, 12);
  });
});

describe('the method\'s maps', () => {
  test('entropy, argmax and percentile in TypeScript equal the native ones the U2PL step uses', async () => {
    const logits = randomTensor([1, 5, 7, 9], 11);
    for (let i = 0; i < logits.data.length; i++) logits.data[i] *= 4;
    const { prediction, entropy } = upsampledArgmaxEntropy(logits.data, 5, 7, 9, 29, 37);
    const native = await upsampledEntropy(logits, 29, 37);
    let worst = 0;
    for (let i = 0; i < entropy.length; i++) worst = Math.max(worst, Math.abs(entropy[i] - native.data[i]));
    expect(worst).toBeLessThan(1e-4);
    expect(new Set(prediction).size).toBeGreaterThan(1);
    for (const q of [0, 37.5, 80, 100]) expect(percentileOf(entropy, q)).toBeCloseTo(await percentile({ data: entropy, shape: [entropy.length] }, q), 5);
  });
});

describe('metrics.jsonl', () => {
  test('a damaged line is an error naming the file and line; a half-written last line is left out', () => {
    const ok = JSON.stringify({ type: 'step', epoch: 0, global_step: 0, loss: 1 });
    expect(() => parseMetrics(`${ok}\n{"type": "step", "epo\n${ok}\n`, 'run/metrics.jsonl')).toThrow(/^run\/metrics\.jsonl:2: damaged line, not a JSON record/);
    expect(() => parseMetrics(`${ok}\n{"type":"epoch","epoch":"two"}\n`, 'm.jsonl')).toThrow("m.jsonl:2: an epoch record without a numeric 'epoch'");
    expect(parseMetrics(`${ok}\n{"type": "ep`, 'm.jsonl').steps).toHaveLength(1);
    expect(parseMetrics(`${ok}\n${ok}`, 'm.jsonl').steps).toHaveLength(2);
  });
});

describe('u2pl-report', () => {
  test('groups seeds, overlays runs of other schedules on the step axis, and gives the final per-class IoU with mean and spread', async () => {
    const root = tempDir('compare');
    const names = { classNames: ['road', 'car'] };
    // Supervised-only: 10 epochs of 3 steps; U2PL: 3 epochs of 10 steps, seed 2 unfinished (2 epochs).
    writeRun(path.join(root, 'suponly/checkpoints/seed-0'), records(10, 3, 0.2, 0.01), { ...names, epochs: 10, stepsPerEpoch: 3 });
    writeRun(path.join(root, 'suponly/checkpoints/seed-1'), records(10, 3, 0.22, 0.01), { ...names, epochs: 10, stepsPerEpoch: 3 });
    writeRun(path.join(root, 'u2pl/checkpoints/seed-0'), records(3, 10, 0.25, 0.05, 1), { ...names, epochs: 3, stepsPerEpoch: 10 });
    writeRun(path.join(root, 'u2pl/checkpoints/seed-1'), records(3, 10, 0.27, 0.05, 1), { ...names, epochs: 3, stepsPerEpoch: 10 });
    writeRun(path.join(root, 'u2pl/checkpoints/seed-2'), records(2, 10, 0.26, 0.05, 1));  // an older run: no run.json
    const out = path.join(root, 'compare.html');
    const r = await runTool('u2pl-report', reportMain, [path.join(root, 'suponly'), path.join(root, 'u2pl'), '--out', out]);
    expect(r.code).toBe(0);
    expect(r.err).toContain('5 run(s) in 2 group(s) (suponly: 2, u2pl: 3)');
    const html = fs.readFileSync(out, 'utf8');
    // Final mIoU: suponly 0.29 and 0.31 (30.0 ± 1.4); u2pl 0.35, 0.37 and the unfinished 0.31.
    expect(html).toContain('<td class="num">30.0 ± 1.4</td>');
    expect(html).toContain('<td class="num">34.3 ± 3.1</td>');
    expect(html).toContain('<td class="num">+4.3</td>');
    expect(html).toContain('(unfinished)');
    // Per-class rows by the run.json names; the mIoU points at the end of each epoch on the step axis.
    expect(html).toMatch(/<td>road<\/td><td class="num">30\.0 ± 1\.4<\/td><td class="num"><b>34\.3 ± 3\.1<\/b><\/td>/);
    const miou = html.split('<svg class="chart"').find((s) => s.includes('aria-label="Validation mIoU"')) as string;
    expect(miou).toContain('data-name="suponly (mean of 2)"');
    expect(miou).toContain('data-name="u2pl (mean of 3)"');
    expect(miou).toMatch(/at training step 30<\/title>/);  // the last epoch of both schedules ends at step 30
    expect(html).toContain('aria-label="Pseudo-label accuracy"');
    expect(html).not.toContain('held-out test mIoU');  // no run has a test list
  });

  test('runs with a held-out test list: its final mIoU per group beside val\'s, its curve and its per-class table', async () => {
    const root = tempDir('compare-test');
    const withTest = (lines: unknown[], offset: number) => lines.map((l) => {
      const e = l as { type: string; miou: number; iou: number[] };
      return e.type === 'epoch' ? { ...e, test_miou: e.miou - offset, test_iou: e.iou.map((v) => v - offset) } : l;
    });
    writeRun(path.join(root, 'a/checkpoints/seed-0'), withTest(records(2, 3, 0.2, 0.01), 0.05));
    writeRun(path.join(root, 'a/checkpoints/seed-1'), withTest(records(2, 3, 0.22, 0.01), 0.03));
    // A run with a test list and no validation list: its epochs have no val mIoU.
    const testOnly = withTest(records(2, 3, 0.3, 0.01), 0).map((l) => ((l as { type: string }).type === 'epoch' ? { ...(l as object), miou: null, iou: null } : l));
    writeRun(path.join(root, 'b/checkpoints/seed-0'), testOnly);
    const out = path.join(root, 'compare.html');
    expect((await runTool('u2pl-report', reportMain, [path.join(root, 'a'), path.join(root, 'b'), '--out', out])).code).toBe(0);
    const html = fs.readFileSync(out, 'utf8');
    expect(html).toContain('>final held-out test mIoU %, mean ± std</th>');
    expect(html).toContain('<td class="num">31.0</td>');  // b's final test mIoU, without any validation
    expect(html).toContain('<td class="num">18.0 ± 2.8</td>');  // final test mIoU 0.21 - 0.05 and 0.23 - 0.03
    const curve = html.split('<svg class="chart"').find((c) => c.includes('aria-label="Held-out test mIoU"')) as string;
    expect(curve).toContain('data-name="a (mean of 2)"');
    expect(curve).toContain('data-name="b"');
    const perClassTest = html.split('id="per-class-test-table"')[1].split('</table>')[0];
    const perClassVal = html.split('id="per-class-table"')[1].split('</table>')[0];
    expect(perClassTest).toContain('<td class="num"><b>18.0 ± 2.8</b></td><td class="num"><b>31.0</b></td>');  // the test mIoU row, b's too
    expect(perClassVal).toContain('<td class="num"><b>22.0 ± 1.4</b></td>');  // the val mIoU row: 0.21 and 0.23
    expect(perClassTest).not.toEqual(perClassVal);
  });

  test('means over runs where they have values: missing epochs shrink n instead of adding zeros', () => {
    const { mean, band } = meanCurve([[[1, 10], [2, 20]], [[1, 12]]]);
    expect(mean).toEqual([[1, 11], [2, 20]]);
    expect(band).toHaveLength(1);
    expect(groupKey('/x/u2pl/checkpoints/seed-3')).toEqual({ key: '/x/u2pl', seed: '3' });
    expect(groupKey('/x/u2pl/run-a')).toEqual({ key: '/x/u2pl/run-a', seed: undefined });
  });

  test('bad input: a folder without runs, a damaged line, a missing argument, an --out folder (exit 2, one line)', async () => {
    const root = tempDir('compare-bad');
    fs.mkdirSync(path.join(root, 'empty'));
    expectOneLineInputError(await runTool('u2pl-report', reportMain, [path.join(root, 'empty')]), /empty: no metrics\.jsonl here or in its sub-folders/);
    expectOneLineInputError(await runTool('u2pl-report', reportMain, [path.join(root, 'nothing-here')]), /nothing-here: no such file or folder/);
    const bad = writeRun(path.join(root, 'bad'), [...records(1, 2, 0.2, 0), '{"type": "epoch", "epoch": 1, "miou": 0.3, "iou": [0.1', ...records(1, 2, 0.2, 0)]);
    expectOneLineInputError(await runTool('u2pl-report', reportMain, [bad, '--out', path.join(root, 'c.html')]), /bad\/metrics\.jsonl:4: damaged line, not a JSON record/);
    expectOneLineInputError(await runTool('u2pl-report', reportMain, []), /Not enough non-option arguments: got 0, need at least 1/);
    const good = writeRun(path.join(root, 'good'), records(1, 2, 0.2, 0));
    expectOneLineInputError(await runTool('u2pl-report', reportMain, [good, '--out', root]), /--out: is a folder/);
    expect(fs.existsSync(path.join(root, 'c.html'))).toBe(false);
    expect(compareRuns([good]).groups[0].runs[0].label).toBe('good');
  });
});
