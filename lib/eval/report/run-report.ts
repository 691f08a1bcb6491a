/**
 * report.html of one run: whether U2PL is helping at a glance, readable curves (smoothed losses,
 * the schedules, validation mIoU and per-class IoU over epochs), the U2PL signals per epoch, the
 * method on a few unlabeled images (teacher prediction, entropy, unreliable pixels) and sample
 * predictions spread over the validation list with their own mIoU.
 */
import { colourBar, envelope, esc, figure, fmt, groupedBars, heatMap, lineChart, LineSeries, PALETTE } from './charts';
import { emaSmooth, EpochRecord, smoothingWeight, StepRecord } from './metrics';
import { page, pct, table } from './page';

export interface ReportImage {
  /** Index in the validation list, and the image's name. */
  index: number;
  id: string;
  /** Data URIs. */
  image: string;
  groundTruth: string;
  prediction: string;
  /** mIoU of this image alone: over the classes in its label or its prediction. */
  miou: number;
  pixelAccuracy: number;
}

export interface MethodImage {
  /** Index in the unlabeled list, and the image's name. */
  index: number;
  id: string;
  image: string;
  prediction: string;
  entropy: string;
  unreliable: string;
  /** The entropy at the image's q-th percentile (nats): pixels at or above it are unreliable. */
  threshold: number;
  unreliableShare: number;
  meanEntropy: number;
}

export interface MethodSection {
  epoch: number;
  phase: string;
  /** q: the percentile of the entropy above which pixels are unreliable (§9; AEL: its negatives' fixed percentile). */
  percentile: number;
  /** ln C: the largest possible entropy. */
  maxEntropy: number;
  images: MethodImage[];
}

export interface ReportData {
  title: string;
  summary: Record<string, string | number>;
  classNames: string[];
  /** Class colours (as in the predictions), for the legend. */
  palette?: [number, number, number][];
  steps: StepRecord[];
  epochs: EpochRecord[];
  /** The config's epochs (so that a report mid-run says how far it is). */
  epochsTotal?: number;
  method?: MethodSection;
  /** Spread over the validation list, in list order. */
  samples: ReportImage[];
  /** The lowest-scoring of the `scored` images (spread over the list) the report predicted. */
  worst?: ReportImage[];
  scored?: number;
}

const LOSSES = [
  { key: 'loss', name: 'total', colour: '#222222' },
  { key: 'supervised', name: 'supervised', colour: PALETTE[0] },
  { key: 'unsupervised', name: 'unsupervised', colour: PALETTE[1] },
  { key: 'contrastive', name: 'contrastive', colour: PALETTE[2] },
] as const;

const isU2plPhase = (p?: string) => p === 'semi' || p === 'ael';

/** Points [global step, value] of one numeric field of the step records. */
export function stepSeries(steps: StepRecord[], key: keyof StepRecord, factor = 1): [number, number][] {
  const out: [number, number][] = [];
  for (const s of steps) {
    const v = s[key];
    if (typeof v === 'number' && Number.isFinite(v)) out.push([s.global_step, v * factor]);
  }
  return out;
}

/**
 * A raw series drawn faint with its smoothed version (EMA) on top, as TensorBoard shows them; a
 * series too long to draw point by point is drawn as its min–max envelope instead of a line.
 */
export function smoothedSeries(name: string, colour: string, points: [number, number][], weight = smoothingWeight(points.length)): LineSeries[] {
  if (points.length === 0) return [];
  const raw: LineSeries = points.length <= 1600
    ? { name: `${name} (raw)`, colour, points, faint: true }
    : { name: `${name} (raw)`, colour, points: [], band: envelope(points, 400), faint: true };
  return [raw, { name, colour, points: emaSmooth(points, weight) }];
}

function lossChart(steps: StepRecord[]): string {
  // The unsupervised and contrastive losses exist from the first U2PL step on (0 before: not drawn).
  const u2plSteps = steps.filter((s) => isU2plPhase(s.phase));
  const series = LOSSES.map((l) => ({ ...l, points: stepSeries(l.key === 'loss' || l.key === 'supervised' ? steps : u2plSteps, l.key) }))
    .filter((l) => l.points.length > 0 && l.points.some((p) => p[1] !== 0));
  const n = Math.max(0, ...series.map((s) => s.points.length));
  const w = smoothingWeight(n);
  const chart = lineChart(series.flatMap((s) => smoothedSeries(s.name, s.colour, s.points, w)), { title: 'Training losses', xLabel: 'training step', yLabel: 'loss (per step)', yMin: 0, integerX: true });
  return figure('Training losses', chart, `Bold: exponential moving average (TensorBoard's smoothing, weight ${w.toFixed(3)} over ${n} logged steps); faint: the raw values${n > 1600 ? ' (their min–max per bucket)' : ''}.`);
}

function scheduleCharts(steps: StepRecord[]): string {
  const xMax = steps.length ? steps[steps.length - 1].global_step : 1;
  const small = { integerX: true, xMin: 0, xMax, width: 420, height: 200 };
  const lr = stepSeries(steps, 'lr');
  const ema = stepSeries(steps, 'ema_decay');
  const drop = stepSeries(steps, 'drop_percentile');
  const u2pl = steps.some((s) => isU2plPhase(s.phase));
  const missing = (what: string) => `<p class="empty">${what}: not in this run's metrics.jsonl (written by an older u2pl).</p>`;
  const parts = [
    figure('Learning rate', lineChart([{ name: 'backbone lr', colour: PALETTE[4], points: lr }], { title: 'Learning rate', xLabel: 'training step', yLabel: 'learning rate', yMin: 0, ...small })),
  ];
  const emaChart = (title: string, note?: string) => figure(title, lineChart([{ name: 'EMA decay', colour: PALETTE[5], points: ema }], { title, xLabel: 'training step', yLabel: 'decay', ...small }), note);
  if (!u2pl && ema.length) {
    // A supervised-only run with trainer.ema_model: the decay of the EMA model it is validated with.
    parts.push(emaChart('EMA model decay', 'The run is validated and saved with an EMA model of its student (trainer.ema_model), as U2PL is with its teacher.'));
  }
  if (u2pl) {
    parts.push(ema.length ? emaChart('Teacher EMA decay') : missing('Teacher EMA decay'));
    parts.push(drop.length ? figure('Unreliable-pixel percentile', lineChart([{ name: 'q (percentile)', colour: PALETTE[6], points: drop }], { title: 'Unreliable-pixel percentile', xLabel: 'training step', yLabel: 'entropy percentile q', yMax: 100, ...small }),
      'Pixels whose teacher entropy is above the q-th percentile are unreliable: left out of the unsupervised loss, used as negatives.') : (steps.some((s) => s.phase === 'semi') ? missing('Unreliable-pixel percentile') : ''));
  }
  return `<div class="grid small">${parts.join('\n')}</div>`;
}

function validationCharts(r: ReportData): string {
  const validated = r.epochs.filter((e) => e.miou !== null);
  const tested = r.epochs.filter((e) => e.test_miou !== undefined);
  const miou = lineChart([
    { name: 'val mIoU', colour: PALETTE[3], points: validated.map((e) => [e.epoch + 1, (e.miou as number) * 100]), markers: true },
    ...(tested.length ? [{ name: 'test mIoU (held out)', colour: PALETTE[4], points: tested.map((e) => [e.epoch + 1, (e.test_miou as number) * 100] as [number, number]), markers: true }] : []),
  ], { title: 'Validation mIoU', xLabel: 'epoch', yLabel: 'mIoU (%)', integerX: true, xMin: 1, xMax: Math.max(r.epochsTotal ?? 1, ...validated.map((e) => e.epoch + 1)) });
  // A run scored on a test list only (no val) shows that list's classes.
  const [scored, iouOf] = validated.length ? [validated, (e: EpochRecord) => e.iou] : [tested, (e: EpochRecord) => e.test_iou];
  const heat = heatMap({
    title: 'Per-class IoU', rows: r.classNames, cols: scored.map((e) => e.epoch + 1), xLabel: 'epoch',
    values: r.classNames.map((_, c) => scored.map((e) => iouOf(e)?.[c] ?? null)), min: 0, max: 1, factor: 100, unit: 'IoU %',
  });
  return `<div class="grid">${figure('Validation mIoU', miou)}${figure(validated.length ? 'Per-class IoU over epochs' : 'Per-class IoU over epochs (test list)', heat)}</div>`;
}

function iouTable(r: ReportData): string {
  const validated = r.epochs.filter((e) => e.miou !== null);
  const last = validated[validated.length - 1];
  if (!last) return '';
  const best = validated.reduce((a, b) => ((b.miou as number) > (a.miou as number) ? b : a));
  const first = validated[0];
  const header = ['class', `IoU % (epoch ${last.epoch + 1}, last)`, ...(best !== last ? [`epoch ${best.epoch + 1} (best)`] : []), ...(first !== last ? [`epoch ${first.epoch + 1} (first)`] : [])];
  const rows = r.classNames.map((n, c) => [esc(n), pct(last.iou?.[c]), ...(best !== last ? [pct(best.iou?.[c])] : []), ...(first !== last ? [pct(first.iou?.[c])] : [])]);
  rows.push(['<b>mIoU</b>', `<b>${pct(last.miou)}</b>`, ...(best !== last ? [pct(best.miou)] : []), ...(first !== last ? [pct(first.miou)] : [])]);
  return `<h3>Per-class IoU, last epoch</h3>${table(header, rows, header.map((_, i) => i > 0))}`;
}

/** The lines that say whether U2PL is helping, from the last U2PL epoch (empty for supervised-only runs). */
function glance(r: ReportData): string {
  const validated = r.epochs.filter((e) => e.miou !== null);
  const items: string[] = [];
  const last = validated[validated.length - 1];
  if (last) {
    const best = validated.reduce((a, b) => ((b.miou as number) > (a.miou as number) ? b : a));
    items.push(`Validation mIoU <b>${pct(last.miou)}</b> after epoch ${last.epoch + 1}${r.epochsTotal ? ` of ${r.epochsTotal}` : ''}; best ${pct(best.miou)} (epoch ${best.epoch + 1}).` +
      (last.test_miou !== undefined ? ` Held-out test mIoU <b>${pct(last.test_miou)}</b> (dataset.test: images no choice was made on).` : ''));
  } else {
    const tested = r.epochs.filter((e) => e.test_miou !== undefined).pop();
    if (tested) items.push(`Held-out test mIoU <b>${pct(tested.test_miou)}</b> after epoch ${tested.epoch + 1}${r.epochsTotal ? ` of ${r.epochsTotal}` : ''} (dataset.test; no validation list).`);
  }
  const u2pl = r.epochs.filter((e) => isU2plPhase(e.phase));
  if (u2pl.length === 0) return items.length ? `<ul class="glance">${items.map((i) => `<li>${i}</li>`).join('')}</ul>` : '';
  const warm = validated.filter((e) => !isU2plPhase(e.phase)).pop();
  const lastU = u2pl[u2pl.length - 1];
  if (warm && last && isU2plPhase(last.phase)) {
    const d = 100 * ((last.miou as number) - (warm.miou as number));
    items.push(`Since the supervised warm-up (epoch ${warm.epoch + 1}: ${pct(warm.miou)}): <b class="${d >= 0 ? 'good' : 'bad'}">${d >= 0 ? '+' : '−'}${Math.abs(d).toFixed(1)} points</b> of mIoU.`);
  }
  if (lastU.pseudo_label_accuracy !== undefined && lastU.pseudo_label_accuracy !== null) {
    const kept = lastU.pseudo_label_accuracy_kept, dropped = lastU.pseudo_label_accuracy_dropped;
    const works = kept !== null && kept !== undefined && dropped !== null && dropped !== undefined ? kept > dropped : undefined;
    items.push(`Pseudo-labels (epoch ${lastU.epoch + 1}) right on <b>${pct(lastU.pseudo_label_accuracy)} %</b> of pixels: ${pct(kept)} % of those L<sub>u</sub> keeps, ${pct(dropped)} % of those it drops` +
      `${works === undefined ? '' : works ? ' — <span class="good">the entropy filter drops the worse ones</span>' : ' — <span class="bad">the dropped pixels are not worse than the kept ones</span>'}.`);
  }
  if (lastU.kept_share !== undefined && lastU.kept_share !== null) items.push(`L<sub>u</sub> keeps ${pct(lastU.kept_share)} % of the pseudo-labelled pixels${lastU.valid_classes !== null && lastU.valid_classes !== undefined ? `; ${fmt(lastU.valid_classes, 3)} valid contrastive classes per step` : ''}.`);
  const lab = lastU.labeled_class_share, teach = lastU.teacher_class_share;
  if (lab && teach) {
    const losing = r.classNames.filter((_, c) => (lab[c] ?? 0) >= 0.01 && (teach[c] ?? 0) < 0.5 * (lab[c] ?? 0));
    items.push(losing.length
      ? `<span class="bad">The teacher gives less than half their labelled share to: ${losing.map((n) => `<b>${esc(n)}</b>`).join(', ')}</span> — classes U2PL may be unlearning (see the class shares).`
      : '<span class="good">The teacher gives every class at least half its labelled share</span> (no class is being unlearned).');
  }
  return `<ul class="glance">${items.map((i) => `<li>${i}</li>`).join('')}</ul>`;
}

function u2plSection(r: ReportData): string {
  const u2pl = r.epochs.filter((e) => isU2plPhase(e.phase));
  if (u2pl.length === 0) return '';
  const x = (e: EpochRecord) => e.epoch + 1;
  const epochsAxis = { integerX: true, xLabel: 'epoch', xMin: Math.max(1, u2pl[0].epoch + 1 - (u2pl.length === 1 ? 1 : 0)), xMax: Math.max(r.epochsTotal ?? 0, ...u2pl.map(x)) };
  const series = (name: string, colour: string, key: keyof EpochRecord, dash?: string): LineSeries => ({
    name, colour, dash, markers: true, points: u2pl.map((e) => [x(e), typeof e[key] === 'number' ? (e[key] as number) * 100 : NaN]),
  });
  const accuracy = lineChart([
    series('pseudo-labels right, all pixels', PALETTE[0], 'pseudo_label_accuracy'),
    series('right, kept pixels', PALETTE[2], 'pseudo_label_accuracy_kept'),
    series('right, dropped pixels', PALETTE[3], 'pseudo_label_accuracy_dropped'),
    series('kept share', '#555555', 'kept_share', '5 4'),
  ], { title: 'Pseudo-labels per epoch', yLabel: 'share of pixels (%)', yMin: 0, yMax: 100, ...epochsAxis });
  const contrastive = lineChart([{ name: 'valid classes per step', colour: PALETTE[4], markers: true, points: u2pl.map((e) => [x(e), e.valid_classes ?? NaN]) }],
    { title: 'Valid contrastive classes', yLabel: 'classes (mean per step)', yMin: 0, ...epochsAxis });
  const bank = u2pl.some((e) => e.bank_fill) ? heatMap({
    title: 'Memory bank fill', rows: r.classNames, cols: u2pl.map(x), xLabel: 'epoch',
    values: r.classNames.map((_, c) => u2pl.map((e) => e.bank_fill?.[c] ?? null)), min: 0, max: 1, factor: 100, unit: 'full %',
  }) : '<p class="empty">Memory bank fill: no contrastive loss in this run.</p>';
  const plIou = u2pl.some((e) => e.pseudo_label_iou) ? heatMap({
    title: 'Pseudo-label IoU per class', rows: r.classNames, cols: u2pl.map(x), xLabel: 'epoch',
    values: r.classNames.map((_, c) => u2pl.map((e) => e.pseudo_label_iou?.[c] ?? null)), min: 0, max: 1, factor: 100, unit: 'IoU %',
  }) : '';
  const perStep = r.steps.filter((s) => isU2plPhase(s.phase));
  const stepChart = lineChart([
    ...smoothedSeries('pseudo-labels right', PALETTE[0], stepSeries(perStep, 'pseudo_label_accuracy', 100)),
    ...smoothedSeries('kept share', '#555555', stepSeries(perStep, 'kept_share', 100)),
  ], { title: 'Per step', xLabel: 'training step', yLabel: 'share of pixels (%)', yMin: 0, yMax: 100, integerX: true });
  const shares = (e: EpochRecord) => groupedBars(r.classNames, [
    { name: 'labels', colour: PALETTE[0], values: e.labeled_class_share ?? [] },
    { name: 'teacher predictions', colour: PALETTE[1], values: e.teacher_class_share ?? [] },
    { name: 'pseudo-labels', colour: PALETTE[2], values: e.pseudo_label_class_share ?? [] },
  ], { title: `Class shares, epoch ${x(e)}`, yLabel: 'share of pixels (%)', factor: 100, unit: ' %' });
  const lastU = u2pl[u2pl.length - 1];
  const earlier = u2pl.slice(0, -1).reverse();
  const numeric = (v: number | null | undefined, f = 100, d = 1) => (v === null || v === undefined || !Number.isFinite(v) ? '–' : (v * f).toFixed(d));
  const rows = u2pl.map((e) => [String(x(e)), e.phase ?? '', pct(e.miou), pct(e.pseudo_label_accuracy), pct(e.pseudo_label_accuracy_kept), pct(e.pseudo_label_accuracy_dropped),
    pct(e.kept_share), pct(e.mixed_share, 0), numeric(e.valid_classes, 1, 2), e.alignment_scale ? e.alignment_scale.map((s) => fmt(s, 2)).join(' ') : '–']);
  return `<h2 id="u2pl">U2PL, per epoch</h2>
<p class="note">Pseudo-label accuracy needs <code>trainer.pseudo_label_metrics: true</code> and labels on disk for the unlabeled images (read for these numbers only).
Class shares: the labelled pixels', the teacher's predictions on the unlabeled images (a running mean) and its pseudo-labels' (over the epoch): a class whose teacher and pseudo-label bars fall far below its label bar is one U2PL is unlearning.</p>
<div class="grid">${figure('Pseudo-labels per epoch', accuracy, 'Accuracy against the unlabeled images\' own labels over all pixels, the pixels L<sub>u</sub> keeps and those it drops; dashed: the share it keeps.')}
${figure('Pseudo-labels per step', stepChart)}
${figure('Valid contrastive classes', contrastive)}
${figure('Memory bank fill per class', bank, 'Keys held in each class\'s queue as a share of its capacity, at the end of each epoch.')}
${plIou ? figure('Pseudo-label IoU per class', plIou, 'Each class\'s IoU between the pseudo-labels and the unlabeled images\' own labels, over the epoch: the classes whose pseudo-labels teach the student wrong.') : ''}</div>
<h3>Class shares of labels, teacher and pseudo-labels</h3>
<div class="grid">${figure(`Epoch ${x(lastU)}${u2pl.length > 1 ? ' (last)' : ''}`, shares(lastU))}</div>
${earlier.length ? `<details><summary>Earlier U2PL epochs (${earlier.length})</summary><div class="grid">${earlier.map((e) => figure(`Epoch ${x(e)}`, shares(e))).join('')}</div></details>` : ''}
<h3>Numbers per epoch</h3>
${table(['epoch', 'phase', 'mIoU %', 'PL right %', 'kept right %', 'dropped right %', 'kept share %', 'mixed steps %', 'valid classes', 'alignment factors'], rows, [true, false, true, true, true, true, true, true, true, false])}`;
}

function swatches(r: ReportData): string {
  if (!r.palette) return '';
  return `<div class="swatches">${r.classNames.map((n, c) => {
    const p = r.palette?.[c] ?? [255, 255, 255];
    return `<span><span class="swatch" style="background:rgb(${p[0]},${p[1]},${p[2]})"></span>${esc(n)}</span>`;
  }).join('')}</div>`;
}

function methodSection(r: ReportData): string {
  const m = r.method;
  if (!m) return '';
  const rows = m.images.map((im) => `<figure class="sample"><div class="imgs"><img src="${im.image}" alt="unlabeled image ${esc(im.id)}"><img class="mask" src="${im.prediction}" alt="teacher prediction">` +
    `<img class="mask" src="${im.entropy}" alt="entropy"><img class="mask" src="${im.unreliable}" alt="unreliable pixels"></div>` +
    `<div class="labels"><span>image</span><span>teacher prediction</span><span>entropy (mean ${fmt(im.meanEntropy, 3)} nats)</span><span>unreliable: ${pct(im.unreliableShare)} %</span></div>` +
    `<figcaption>unlabeled #${im.index}: ${esc(im.id)}; entropy ≥ ${fmt(im.threshold, 3)} nats (its ${fmt(m.percentile, 4)}th percentile) is unreliable</figcaption></figure>`).join('\n');
  const what = m.phase === 'ael'
    ? `the AEL variant's negatives: pixels above the fixed ${fmt(m.percentile, 4)}th entropy percentile (<code>unsupervised_entropy_ignore</code>)`
    : `q = ${fmt(m.percentile, 4)} this epoch (<code>drop_percent</code>'s schedule): pixels whose teacher entropy is above the q-th percentile of the image's entropies are left out of L<sub>u</sub> and used as negatives of the contrastive loss`;
  return `<h2 id="method">The method on unlabeled images (epoch ${m.epoch + 1})</h2>
<p class="note">The eval-mode teacher on ${m.images.length} unlabeled images spread over the list (the same ones every epoch; the report is rewritten after each validated epoch): its prediction, the entropy of its class probabilities and, in magenta, the pixels U2PL treats as unreliable — ${what}. The percentile is taken per image here (training takes it over each mixed batch).</p>
${swatches(r)}
<div style="display:flex;align-items:center;gap:8px;font-size:12px">entropy ${colourBar('entropy', 0, m.maxEntropy, 'nats')} (ln ${r.classNames.length} = ${m.maxEntropy.toFixed(2)}: all classes alike)</div>
<div class="samples method">${rows}</div>`;
}

function sampleFigure(s: ReportImage, worst = false): string {
  return `<figure class="sample${worst ? ' worst' : ''}" data-index="${s.index}"><div class="imgs"><img src="${s.image}" alt="image ${esc(s.id)}"><img class="mask" src="${s.groundTruth}" alt="ground truth"><img class="mask" src="${s.prediction}" alt="prediction"></div>` +
    '<div class="labels"><span>image</span><span>ground truth</span><span>prediction</span></div>' +
    `<figcaption>#${s.index} ${esc(s.id)}: <b>mIoU ${pct(s.miou)} %</b>, pixel accuracy ${pct(s.pixelAccuracy)} %</figcaption></figure>`;
}

function samplesSection(r: ReportData): string {
  if (r.samples.length === 0) return '<h2 id="samples">Sample predictions</h2><p class="empty">No validation set.</p>';
  const worst = r.worst ?? [];
  return `<h2 id="samples">Sample predictions</h2>
<p class="note">${r.samples.length} validation images spread over the list (list index #), each with its own mIoU (over the classes in its label or its prediction). ${worst.length ? `Below: the ${worst.length} lowest-scoring of ${r.scored ?? r.samples.length} images spread over the list.` : ''}</p>
${swatches(r)}
<div class="samples">${r.samples.map((s) => sampleFigure(s)).join('\n')}</div>
${worst.length ? `<h3 id="worst">Lowest-scoring images</h3><div class="samples">${worst.map((s) => sampleFigure(s, true)).join('\n')}</div>` : ''}`;
}

export function renderReport(r: ReportData): string {
  const summary = Object.entries(r.summary).map(([k, v]) => [esc(k), esc(String(v))]);
  const u2pl = r.epochs.some((e) => isU2plPhase(e.phase));
  const nav = [['validation', 'Validation'], ['curves', 'Training curves'], ...(u2pl ? [['u2pl', 'U2PL per epoch']] : []), ...(r.method ? [['method', 'The method']] : []), ['samples', 'Samples']]
    .map(([id, name]) => `<a href="#${id}">${name}</a>`).join('');
  const body = `<h1>${esc(r.title)}</h1>
<nav>${nav}</nav>
${glance(r)}
${table(['', ''], summary).replace('<thead><tr><th></th><th></th></tr></thead>', '')}
<h2 id="validation">Validation</h2>
${validationCharts(r)}
${iouTable(r)}
<h2 id="curves">Training curves</h2>
<div class="grid">${lossChart(r.steps)}</div>
${scheduleCharts(r.steps)}
${u2plSection(r)}
${methodSection(r)}
${samplesSection(r)}`;
  return page(r.title, body);
}
