/**
 * u2pl-report's comparison page: several runs' curves overlaid and their final per-class IoU in one
 * table. Runs whose folders differ only in a seed folder (checkpoints/seed-0, seed-1, ...) form one
 * group, drawn as its mean with the spread over seeds (± one standard deviation) behind it. Curves
 * share the training-step axis, so runs with other schedules (43 short epochs against 6 long ones)
 * line up by training done; missing epochs (an unfinished run, another eval_every) leave gaps and
 * smaller n rather than zeros.
 */
import fs from 'fs';
import path from 'path';
import { FileError } from '../../errors';
import { esc, figure, lineChart, LineSeries, PALETTE } from './charts';
import { emaSmooth, EpochRecord, epochEndSteps, inferStepsPerEpoch, meanStd, readMetrics, readRunInfo, RunInfo, RunMetrics, smoothingWeight } from './metrics';
import { page, pct, table } from './page';
import { smoothedSeries, stepSeries } from './run-report';

export const METRICS = 'metrics.jsonl';

export interface ComparedRun {
  dir: string;
  /** Its group (runs that differ only in the seed) and its name within it. */
  group: string;
  label: string;
  metrics: RunMetrics;
  info: RunInfo;
}

export interface RunGroup {
  name: string;
  colour: string;
  runs: ComparedRun[];
}

/**
 * The run folders a command-line target stands for: a folder with metrics.jsonl, metrics.jsonl
 * itself, or a folder whose sub-folders (up to 3 levels: experiment/checkpoints/seed-N) hold runs.
 */
export function findRunDirs(target: string): string[] {
  const abs = path.resolve(target);
  if (!fs.existsSync(abs)) throw new FileError(abs, 'no such file or folder');
  if (fs.statSync(abs).isFile()) {
    if (path.basename(abs) !== METRICS) throw new FileError(abs, `expected a run folder (with ${METRICS}) or a ${METRICS} file`);
    return [path.dirname(abs)];
  }
  if (fs.existsSync(path.join(abs, METRICS))) return [abs];
  const found: string[] = [];
  const walk = (dir: string, depth: number) => {
    if (depth > 3) return;
    for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }))) {
      if (!e.isDirectory() || e.name.startsWith('.') || e.name === 'node_modules') continue;
      const sub = path.join(dir, e.name);
      if (fs.existsSync(path.join(sub, METRICS))) found.push(sub);
      else walk(sub, depth + 1);
    }
  };
  walk(abs, 1);
  if (found.length === 0) throw new FileError(abs, `no ${METRICS} here or in its sub-folders (give a run folder: saver.snapshot_dir of a run)`);
  return found;
}

const SEED = /^seed[-_]?(\d+)$/i;

/** A run's group key: its folder without a trailing seed-N (and the checkpoints folder above it). */
export function groupKey(dir: string): { key: string; seed?: string } {
  const parts = path.resolve(dir).split(path.sep);
  let seed: string | undefined;
  const m = SEED.exec(parts[parts.length - 1]);
  if (m && parts.length > 1) {
    seed = m[1];
    parts.pop();
  }
  if (parts[parts.length - 1] === 'checkpoints' && parts.length > 1) parts.pop();
  return { key: parts.join(path.sep), seed };
}

/** Short names for group keys: the path components after the longest common prefix (at least the last one). */
export function shortNames(keys: string[]): string[] {
  const split = keys.map((k) => k.split(path.sep));
  let common = 0;
  while (split.every((p) => common < p.length - 1 && p[common] === split[0][common])) common++;
  return split.map((p) => p.slice(common).join('/') || p[p.length - 1]);
}

export function loadRun(dir: string): Omit<ComparedRun, 'group' | 'label'> {
  return { dir, metrics: readMetrics(path.join(dir, METRICS)), info: readRunInfo(dir) };
}

/** Groups runs by their folder without the seed, in the order the groups were first given. */
export function groupRuns(runs: Omit<ComparedRun, 'group' | 'label'>[]): RunGroup[] {
  const keys = runs.map((r) => groupKey(r.dir));
  const order = [...new Set(keys.map((k) => k.key))];
  const names = shortNames(order);
  return order.map((key, g) => {
    const members = runs.map((r, i) => ({ r, k: keys[i] })).filter((x) => x.k.key === key);
    return {
      name: names[g],
      colour: PALETTE[g % PALETTE.length],
      runs: members.map(({ r, k }, i) => ({
        ...r, group: names[g],
        label: k.seed !== undefined ? `seed ${k.seed}` : r.info.seed !== undefined && members.length > 1 ? `seed ${r.info.seed}` : members.length > 1 ? `run ${i + 1}` : path.basename(r.dir),
      })),
    };
  });
}

interface Final {
  epoch: EpochRecord | undefined;
  best: EpochRecord | undefined;
  epochsDone: number;
}

/** A run's last epoch scored on the held-out test list (a run may have one without a validation list). */
function finalTestOf(r: ComparedRun): EpochRecord | undefined {
  return r.metrics.epochs.filter((e) => typeof e.test_miou === 'number').pop();
}

function finalOf(r: ComparedRun): Final {
  const validated = r.metrics.epochs.filter((e) => e.miou !== null);
  return {
    epoch: validated[validated.length - 1],
    best: validated.length ? validated.reduce((a, b) => ((b.miou as number) > (a.miou as number) ? b : a)) : undefined,
    epochsDone: r.metrics.epochs.length ? Math.max(...r.metrics.epochs.map((e) => e.epoch + 1)) : 0,
  };
}

/** Mean of several runs' series at each x where any has a value, and the band mean ± std where two or more do. */
export function meanCurve(series: [number, number][][]): { mean: [number, number][]; band: [number, number, number][] } {
  const at = new Map<number, number[]>();
  for (const s of series) for (const [x, y] of s) if (Number.isFinite(y)) (at.get(x) ?? at.set(x, []).get(x) as number[]).push(y);
  const xs = [...at.keys()].sort((a, b) => a - b);
  const mean: [number, number][] = [], band: [number, number, number][] = [];
  for (const x of xs) {
    const s = meanStd(at.get(x) as number[]);
    mean.push([x, s.mean]);
    if (s.n > 1) band.push([x, s.mean - s.std, s.mean + s.std]);
  }
  return { mean, band };
}

function miouPoints(r: ComparedRun): [number, number][] {
  const ends = epochEndSteps(r.metrics, r.info.stepsPerEpoch);
  return r.metrics.epochs.filter((e) => e.miou !== null && ends.has(e.epoch)).map((e) => [ends.get(e.epoch) as number, (e.miou as number) * 100]);
}

function epochPoints(r: ComparedRun, key: keyof EpochRecord): [number, number][] {
  const ends = epochEndSteps(r.metrics, r.info.stepsPerEpoch);
  return r.metrics.epochs.filter((e) => typeof e[key] === 'number' && ends.has(e.epoch)).map((e) => [ends.get(e.epoch) as number, (e[key] as number) * 100]);
}

/** A group's mean line (markers when few points) with its ± std band, and each run faint behind it. */
function groupSeries(groups: RunGroup[], points: (r: ComparedRun) => [number, number][], markers: boolean): LineSeries[] {
  return groups.flatMap((g) => {
    const per = g.runs.map(points).filter((p) => p.length > 0);
    if (per.length === 0) return [];
    const { mean, band } = meanCurve(per);
    const name = `${g.name}${g.runs.length > 1 ? ` (mean of ${per.length})` : ''}`;
    return [
      ...(per.length > 1 ? per.map((p, i) => ({ name: `${g.name} ${i}`, colour: g.colour, points: p, faint: true })) : []),
      { name, colour: g.colour, points: mean, band: band.length ? band : undefined, markers: markers && mean.length <= 80 },
    ];
  });
}

/** A group's smoothed step curve: each run smoothed (EMA), then averaged over the group's runs. */
function smoothedGroupSeries(groups: RunGroup[], key: 'loss' | 'supervised', u2plOnly = false): LineSeries[] {
  return groups.flatMap((g) => {
    const per = g.runs.map((r) => {
      const steps = u2plOnly ? r.metrics.steps.filter((s) => s.phase === 'semi' || s.phase === 'ael') : r.metrics.steps;
      const p = stepSeries(steps, key);
      return emaSmooth(p, smoothingWeight(p.length));
    }).filter((p) => p.length > 0);
    if (per.length === 0) return [];
    if (per.length === 1 && g.runs.length === 1) return smoothedSeries(g.name, g.colour, stepSeries(g.runs[0].metrics.steps, key)).map((s) => (s.faint ? s : { ...s, name: g.name }));
    const { mean, band } = meanCurve(per);
    return [{ name: `${g.name} (mean of ${per.length})`, colour: g.colour, points: mean, band: band.length ? band : undefined }];
  });
}

function classNamesOf(groups: RunGroup[]): string[] {
  const runs = groups.flatMap((g) => g.runs);
  const named = runs.find((r) => r.info.classNames?.length)?.info.classNames;
  const classes = Math.max(0, ...runs.map((r) => finalOf(r).epoch?.iou?.length ?? 0), named?.length ?? 0);
  return Array.from({ length: classes }, (_, c) => named?.[c] ?? `class ${c}`);
}

const meanText = (values: number[]) => {
  const s = meanStd(values);
  if (s.n === 0) return '–';
  return s.n > 1 ? `${(100 * s.mean).toFixed(1)} ± ${(100 * s.std).toFixed(1)}` : (100 * s.mean).toFixed(1);
};

function runsTable(groups: RunGroup[]): string {
  const rows = groups.flatMap((g) => g.runs.map((r) => {
    const f = finalOf(r);
    // A run without run.json (an older u2pl) is measured against its group's schedule.
    const total = r.info.epochs ?? Math.max(0, ...g.runs.map((o) => o.info.epochs ?? finalOf(o).epochsDone)) ?? undefined;
    const steps = r.metrics.steps.length ? r.metrics.steps[r.metrics.steps.length - 1].global_step + 1 : 0;
    const perEpoch = r.info.stepsPerEpoch ?? inferStepsPerEpoch(r.metrics);
    const done = total && f.epochsDone < total ? ` <span class="bad">(unfinished)</span>` : '';
    const lastU = r.metrics.epochs.filter((e) => e.pseudo_label_accuracy !== undefined && e.pseudo_label_accuracy !== null).pop();
    return [`<span class="swatch" style="background:${g.colour}"></span>${esc(g.name)}`, esc(r.label), `<code>${esc(r.dir)}</code>`,
      `${f.epochsDone}${total ? ` of ${total}` : ''}${done}`, `${steps}${perEpoch ? ` (${perEpoch}/epoch)` : ''}`,
      pct(f.epoch?.miou), f.best ? `${pct(f.best.miou)} (epoch ${f.best.epoch + 1})` : '–', lastU ? pct(lastU.pseudo_label_accuracy) : '–'];
  }));
  return table(['group', 'run', 'folder', 'epochs', 'steps', 'final mIoU %', 'best mIoU %', 'final PL right %'], rows, [false, false, false, true, true, true, true, true]);
}

function summaryTable(groups: RunGroup[]): string {
  const base = groups[0];
  const baseMean = meanStd(base.runs.map((r) => finalOf(r).epoch?.miou ?? NaN)).mean;
  const tested = groups.some((g) => g.runs.some((r) => finalTestOf(r)));
  const rows = groups.map((g, i) => {
    const finals = g.runs.map((r) => finalOf(r).epoch?.miou ?? NaN);
    const bests = g.runs.map((r) => finalOf(r).best?.miou ?? NaN);
    const m = meanStd(finals).mean;
    const delta = i === 0 || !Number.isFinite(m) || !Number.isFinite(baseMean) ? '–' : `${m >= baseMean ? '+' : '−'}${(100 * Math.abs(m - baseMean)).toFixed(1)}`;
    const tests = tested ? [meanText(g.runs.map((r) => finalTestOf(r)?.test_miou ?? NaN))] : [];
    return [`<span class="swatch" style="background:${g.colour}"></span>${esc(g.name)}`, String(meanStd(finals).n), meanText(finals), delta, meanText(bests), ...tests,
      finals.map((v) => (Number.isFinite(v) ? (100 * v).toFixed(1) : '–')).join(', ')];
  });
  const testHeader = tested ? ['final held-out test mIoU %, mean ± std'] : [];
  return table(['group', 'runs', 'final mIoU %, mean ± std', `Δ vs ${esc(base.name)}`, 'best mIoU %, mean ± std', ...testHeader, 'final, per run'], rows,
    [false, true, true, true, true, ...testHeader.map(() => true), false]);
}

/** Per-class IoU at each run's last validated epoch: on the validation list, or on the held-out test list. */
function perClassTable(groups: RunGroup[], classNames: string[], list: 'val' | 'test'): string {
  const [iouKey, miouKey] = list === 'val' ? (['iou', 'miou'] as const) : (['test_iou', 'test_miou'] as const);
  const last = (r: ComparedRun) => (list === 'val' ? finalOf(r).epoch : finalTestOf(r));
  const values = (g: RunGroup, c: number) => g.runs.map((r) => last(r)?.[iouKey]?.[c] ?? NaN);
  const rows = classNames.map((n, c) => {
    const means = groups.map((g) => meanStd(values(g, c)).mean);
    const top = Math.max(...means.filter(Number.isFinite));
    // Bold marks a class's one best group (ties, e.g. classes no run learns, mark none).
    const unique = means.filter((m) => m === top).length === 1;
    return [esc(n), ...groups.map((g, i) => (unique && means[i] === top && groups.length > 1 ? `<b>${meanText(values(g, c))}</b>` : meanText(values(g, c))))];
  });
  rows.push(['<b>mIoU</b>', ...groups.map((g) => `<b>${meanText(g.runs.map((r) => last(r)?.[miouKey] ?? NaN))}</b>`)]);
  const counted = (g: RunGroup) => g.runs.filter((r) => typeof last(r)?.[miouKey] === 'number').length;
  const header = ['class', ...groups.map((g) => `<span class="swatch" style="background:${g.colour}"></span>${esc(g.name)} (n = ${counted(g)})`)];
  return table(header, rows, header.map((_, i) => i > 0));
}

export function renderComparison(groups: RunGroup[], title = 'u2pl-report: comparison'): string {
  const classNames = classNamesOf(groups);
  const anyU2pl = groups.some((g) => g.runs.some((r) => r.metrics.epochs.some((e) => e.phase === 'semi' || e.phase === 'ael')));
  const axis = { xLabel: 'training step', integerX: true, xMin: 0 };
  const miou = lineChart(groupSeries(groups, miouPoints, true), { title: 'Validation mIoU', yLabel: 'mIoU (%)', ...axis });
  // Runs with a held-out test list (dataset.test): its curve and per-class table beside validation's.
  const tested = groups.some((g) => g.runs.some((r) => finalTestOf(r)));
  const testMiou = tested ? figure('Held-out test mIoU', lineChart(groupSeries(groups, (r) => epochPoints(r, 'test_miou'), true), { title: 'Held-out test mIoU', yLabel: 'mIoU (%)', ...axis })) : '';
  const loss = lineChart(smoothedGroupSeries(groups, 'supervised'), { title: 'Supervised loss', yLabel: 'loss (smoothed)', yMin: 0, ...axis });
  const total = lineChart(smoothedGroupSeries(groups, 'loss'), { title: 'Total loss', yLabel: 'loss (smoothed)', yMin: 0, ...axis });
  const u2plCharts = anyU2pl ? `<div class="grid">${figure('Pseudo-labels right (all pixels), per epoch', lineChart(groupSeries(groups, (r) => epochPoints(r, 'pseudo_label_accuracy'), true), { title: 'Pseudo-label accuracy', yLabel: 'pixels right (%)', yMax: 100, ...axis }))}
${figure('Share of pseudo-labelled pixels L_u keeps, per epoch', lineChart(groupSeries(groups, (r) => epochPoints(r, 'kept_share'), true), { title: 'Kept share', yLabel: 'kept (%)', yMax: 100, ...axis }))}</div>` : '';
  const runs = groups.reduce((n, g) => n + g.runs.length, 0);
  const body = `<h1>${esc(title)}</h1>
<p class="note">${runs} run${runs === 1 ? '' : 's'} in ${groups.length} group${groups.length === 1 ? '' : 's'} (runs whose folders differ only in <code>seed-N</code> form a group: its mean, with ± one standard deviation shaded and each run faint). Curves are drawn against the training step, so schedules of other lengths line up by training done; the mIoU points are the ends of validated epochs. Final = each run's last validated epoch.</p>
<h2 id="summary">Final validation mIoU</h2>
${summaryTable(groups)}
<div class="grid">${figure('Validation mIoU', miou)}${figure('Supervised loss (smoothed)', loss, 'Each run smoothed as TensorBoard does (exponential moving average), then averaged over its group.')}</div>
<div class="grid">${testMiou}${figure('Total loss (smoothed)', total)}</div>
${u2plCharts}
<h2 id="per-class">Final per-class IoU (%)</h2>
<p class="note">Mean ± standard deviation over each group's runs at their last validated epoch; the best group of each class in bold.</p>
<div id="per-class-table">${perClassTable(groups, classNames, 'val')}</div>
${tested ? `<h2 id="per-class-test">Final per-class IoU on the held-out test list (%)</h2>
<p class="note">The same, scored on <code>dataset.test</code>, which no checkpoint or decision was chosen on.</p>
<div id="per-class-test-table">${perClassTable(groups, classNames, 'test')}</div>` : ''}
<h2 id="runs">Runs</h2>
${runsTable(groups)}`;
  return page(title, body);
}

/** Loads, groups and renders the runs that the targets stand for. */
export function compareRuns(targets: string[], title?: string): { html: string; groups: RunGroup[] } {
  const dirs = [...new Set(targets.flatMap(findRunDirs))];
  const groups = groupRuns(dirs.map(loadRun));
  return { html: renderComparison(groups, title ?? `u2pl-report: ${groups.map((g) => g.name).join(' vs ')}`), groups };
}

