/**
 * A small hand-written SVG charting module for report.html and u2pl-report: line charts (with faint
 * raw series, bands and markers), heat maps and grouped bars, each with axes whose ticks fall on
 * round values, axis titles with units and a legend. Everything is inline SVG text: the pages stay
 * self-contained (no script, no network) and render the same in any browser.
 *
 * The DOM is regular so that a test (or a reader's devtools) can check it: each chart is an
 * `<svg class="chart" data-kind=...>` with `<g class="axis x">`, `<g class="axis y">` (their
 * `<text class="tick">` labels), one `<g class="series" data-name=...>` per series and a
 * `<g class="legend">` with one `.legend-item` per named series.
 */

export const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** Colours of Tableau 10 (TensorBoard's and matplotlib's defaults), distinguishable on white. */
export const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

/** At most `buckets` points: consecutive points averaged in equal-count buckets (metrics.jsonl keeps them all). */
export function downsample(points: [number, number][], buckets: number): [number, number][] {
  const finite = points.filter((p) => Number.isFinite(p[1]));
  if (finite.length <= buckets) return finite;
  const out: [number, number][] = [];
  for (let b = 0; b < buckets; b++) {
    const from = Math.floor((b * finite.length) / buckets), to = Math.floor(((b + 1) * finite.length) / buckets);
    let x = 0, y = 0;
    for (let i = from; i < to; i++) {
      x += finite[i][0];
      y += finite[i][1];
    }
    out.push([x / (to - from), y / (to - from)]);
  }
  return out;
}

/** Per bucket of consecutive points: [mean x, min y, max y]; the envelope of a series too dense to draw point by point. */
export function envelope(points: [number, number][], buckets: number): [number, number, number][] {
  const finite = points.filter((p) => Number.isFinite(p[1]));
  const n = Math.min(buckets, finite.length);
  const out: [number, number, number][] = [];
  for (let b = 0; b < n; b++) {
    const from = Math.floor((b * finite.length) / n), to = Math.floor(((b + 1) * finite.length) / n);
    let x = 0, lo = Infinity, hi = -Infinity;
    for (let i = from; i < to; i++) {
      x += finite[i][0];
      lo = Math.min(lo, finite[i][1]);
      hi = Math.max(hi, finite[i][1]);
    }
    out.push([x / (to - from), lo, hi]);
  }
  return out;
}

// Min and max by a loop: spreading ~10^5 values into Math.min/max overflows the argument limit.
export function extent(values: Iterable<number>): [number, number] {
  let lo = Infinity, hi = -Infinity;
  for (const v of values) {
    if (!Number.isFinite(v)) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return [lo, hi];
}

/** A round tick spacing (1, 2, 2.5 or 5 times a power of ten) giving about `count` intervals over `span`. */
export function niceStep(span: number, count: number, integer = false): number {
  if (!(span > 0)) return 1;
  const raw = span / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const f = raw / mag;
  const steps = integer && mag < 10 ? [1, 2, 5, 10] : [1, 2, 2.5, 5, 10];
  const step = (steps.find((s) => f <= s * 1.0000001) ?? 10) * mag;
  return integer ? Math.max(1, Math.round(step)) : step;
}

export interface Scale {
  lo: number;
  hi: number;
  step: number;
  ticks: number[];
}

/** Domain [lo, hi] widened to multiples of a round step, and its ticks. */
export function niceScale(min: number, max: number, count = 5, integer = false): Scale {
  if (!Number.isFinite(min) || !Number.isFinite(max)) [min, max] = [0, 1];
  if (max - min < 1e-12) {
    // One value: a unit-sized window around it (or [0, v] when it is positive).
    const pad = Math.abs(max) > 0 ? Math.abs(max) * 0.1 : 1;
    [min, max] = min >= 0 && Math.abs(max) > 0 ? [0, max + pad] : [min - pad, max + pad];
  }
  const step = niceStep(max - min, count, integer);
  const lo = Math.floor(min / step + 1e-9) * step;
  const hi = Math.ceil(max / step - 1e-9) * step;
  const ticks: number[] = [];
  for (let k = 0; lo + k * step <= hi + step * 1e-9; k++) ticks.push(Number((lo + k * step).toPrecision(12)));
  return { lo, hi, step, ticks };
}

/** A tick label: as many decimals as the step needs (no 0.30000000000000004), 50k for 50,000, 2e−4 for tiny steps. */
export function formatTick(v: number, step: number): string {
  if (Math.abs(v) < Math.abs(step) * 1e-9) return '0';
  if (Math.abs(step) < 1e-3) {
    const digits = Math.max(0, Math.floor(Math.log10(Math.abs(v)) + 1e-9) - Math.floor(Math.log10(step) + 1e-9) + 1);
    return Number(v.toPrecision(digits)).toExponential().replace('e-', 'e\u2212').replace('e+', 'e');
  }
  if (Math.abs(v) >= 10000 && step >= 1000) return `${Number((v / 1000).toPrecision(6))}k`;
  let decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  while (decimals < 8 && Math.abs(Math.round(step * 10 ** decimals) - step * 10 ** decimals) > 1e-6) decimals++;
  return v.toFixed(decimals).replace('-', '\u2212');
}

/** A value for tooltips and tables: 4 significant digits. */
export const fmt = (v: number | null | undefined, digits = 4): string => (v === null || v === undefined || !Number.isFinite(v) ? '–' : Number(v.toPrecision(digits)).toString());

export interface LineSeries {
  name: string;
  colour: string;
  points: [number, number][];
  /** Drawn faint and thin, without a legend entry of its own (the raw series behind a smoothed one). */
  faint?: boolean;
  /** A shaded band [x, lo, hi] behind the line (spread over seeds, a dense series' min–max envelope). */
  band?: [number, number, number][];
  dash?: string;
  /** Circles at the points, with the value as a tooltip (few points: epochs). */
  markers?: boolean;
  /** Leave it out of the legend. */
  legend?: boolean;
  width?: number;
}

export interface LineChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  /** Fixed y domain (e.g. 0–100 for percentages); otherwise from the data. */
  yMin?: number;
  yMax?: number;
  xMin?: number;
  xMax?: number;
  /** Ticks at integers only (epochs, steps). */
  integerX?: boolean;
  width?: number;
  height?: number;
  /** Points drawn per series at most: longer series are averaged in buckets. */
  maxPoints?: number;
}

interface Frame {
  W: number; H: number; L: number; R: number; T: number; B: number;
}

function legend(items: { name: string; colour: string; dash?: string; box?: boolean }[], f: Frame): { svg: string; rows: number } {
  // Laid out left to right, wrapping: about 7 px per character at 12 px.
  let x = f.L, row = 0;
  const parts: string[] = [];
  for (const it of items) {
    const w = 26 + Math.min(40, it.name.length) * 6.6 + 14;
    if (x + w > f.W - f.R && x > f.L) {
      row++;
      x = f.L;
    }
    const y = 14 + row * 16;
    const mark = it.box
      ? `<rect x="${x + 4}" y="${y - 9}" width="10" height="10" fill="${it.colour}"/>`
      : `<line x1="${x}" x2="${x + 18}" y1="${y - 3}" y2="${y - 3}" stroke="${it.colour}" stroke-width="2.5"${it.dash ? ` stroke-dasharray="${it.dash}"` : ''}/>`;
    parts.push(`<g class="legend-item" data-name="${esc(it.name)}">${mark}<text x="${x + 24}" y="${y}" font-size="12">${esc(it.name.length > 40 ? `${it.name.slice(0, 39)}…` : it.name)}</text></g>`);
    x += w;
  }
  return { svg: `<g class="legend">${parts.join('')}</g>`, rows: row + 1 };
}

function axes(f: Frame, xs: Scale, ys: Scale, sx: (x: number) => number, sy: (y: number) => number, xLabel: string, yLabel: string, xFormat = formatTick): string {
  const xTicks = xs.ticks.map((t) => `<line x1="${sx(t).toFixed(1)}" x2="${sx(t).toFixed(1)}" y1="${f.H - f.B}" y2="${f.H - f.B + 4}" stroke="#666"/>` +
    `<line x1="${sx(t).toFixed(1)}" x2="${sx(t).toFixed(1)}" y1="${f.T}" y2="${f.H - f.B}" stroke="#eee"/>` +
    `<text class="tick" x="${sx(t).toFixed(1)}" y="${f.H - f.B + 16}" font-size="11" text-anchor="middle">${xFormat(t, xs.step)}</text>`).join('');
  const yTicks = ys.ticks.map((t) => `<line x1="${f.L - 4}" x2="${f.L}" y1="${sy(t).toFixed(1)}" y2="${sy(t).toFixed(1)}" stroke="#666"/>` +
    `<line x1="${f.L}" x2="${f.W - f.R}" y1="${sy(t).toFixed(1)}" y2="${sy(t).toFixed(1)}" stroke="#eee"/>` +
    `<text class="tick" x="${f.L - 7}" y="${(sy(t) + 4).toFixed(1)}" font-size="11" text-anchor="end">${formatTick(t, ys.step)}</text>`).join('');
  const midY = (f.T + f.H - f.B) / 2;
  return `<g class="axis x">${xTicks}<line x1="${f.L}" x2="${f.W - f.R}" y1="${f.H - f.B}" y2="${f.H - f.B}" stroke="#666"/>` +
    `<text class="axis-title" x="${(f.L + f.W - f.R) / 2}" y="${f.H - 6}" font-size="12" text-anchor="middle">${esc(xLabel)}</text></g>` +
    `<g class="axis y">${yTicks}<line x1="${f.L}" x2="${f.L}" y1="${f.T}" y2="${f.H - f.B}" stroke="#666"/>` +
    `<text class="axis-title" x="14" y="${midY}" font-size="12" text-anchor="middle" transform="rotate(-90 14 ${midY})">${esc(yLabel)}</text></g>`;
}

function svgOpen(kind: string, title: string, f: Frame, extra = ''): string {
  return `<svg class="chart" data-kind="${kind}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${f.W} ${f.H}" width="${f.W}" height="${f.H}" style="max-width:${f.W}px" role="img" aria-label="${esc(title)}" font-family="system-ui, sans-serif"${extra}>`;
}

/** A wrapper with a heading; `note` says how to read it. */
export function figure(title: string, svg: string, note = ''): string {
  return `<figure class="chart-box"><figcaption>${esc(title)}</figcaption>${svg}${note ? `<p class="note">${note}</p>` : ''}</figure>`;
}

/** Line chart with round ticks, axis titles, a legend; gaps (NaN) break the line. Empty series give a note instead of a chart. */
export function lineChart(series: LineSeries[], o: LineChartOptions): string {
  series = series.filter((s) => s.points.some((p) => Number.isFinite(p[1])) || (s.band?.length ?? 0) > 0);
  if (series.length === 0) return `<p class="empty">${esc(o.title)}: no data yet.</p>`;
  const named = series.filter((s) => s.legend !== false && !s.faint);
  const f: Frame = { W: o.width ?? 640, H: o.height ?? 280, L: 62, R: 18, T: 0, B: 42 };
  const lg = legend(named.map((s) => ({ name: s.name, colour: s.colour, dash: s.dash })), f);
  f.T = 12 + lg.rows * 16;
  f.H += (lg.rows - 1) * 16;
  const maxPoints = o.maxPoints ?? 800;
  const drawn = series.map((s) => ({ ...s, points: downsample(s.points, maxPoints), band: s.band && s.band.length > maxPoints ? s.band.filter((_, i) => i % Math.ceil(s.band!.length / maxPoints) === 0) : s.band }));
  const xsAll: number[] = [], ysAll: number[] = [];
  for (const s of drawn) {
    for (const p of s.points) {
      xsAll.push(p[0]);
      ysAll.push(p[1]);
    }
    for (const b of s.band ?? []) {
      xsAll.push(b[0]);
      ysAll.push(b[1], b[2]);
    }
  }
  // The x range from the series' own ends: a downsampled series' bucket means do not reach them.
  for (const s of series) {
    const fin = s.points.filter((p) => Number.isFinite(p[1]));
    if (fin.length) xsAll.push(fin[0][0], fin[fin.length - 1][0]);
  }
  const [x0, x1] = extent(xsAll);
  const [y0, y1] = extent(ysAll);
  const xs = niceScale(o.xMin ?? x0, o.xMax ?? x1, 6, o.integerX);
  const ys = niceScale(o.yMin ?? y0, o.yMax ?? y1, 5);
  const sx = (x: number) => f.L + ((x - xs.lo) / (xs.hi - xs.lo)) * (f.W - f.L - f.R);
  const sy = (y: number) => f.H - f.B - ((y - ys.lo) / (ys.hi - ys.lo)) * (f.H - f.B - f.T);
  const body = drawn.map((s) => {
    const parts: string[] = [];
    if (s.band && s.band.length) {
      const upper = s.band.map((b) => `${sx(b[0]).toFixed(1)},${sy(b[2]).toFixed(1)}`);
      const lower = s.band.slice().reverse().map((b) => `${sx(b[0]).toFixed(1)},${sy(b[1]).toFixed(1)}`);
      parts.push(`<polygon class="band" points="${[...upper, ...lower].join(' ')}" fill="${s.colour}" fill-opacity="${s.faint ? 0.15 : 0.2}" stroke="none"/>`);
    }
    let d = '', pen = false;
    for (const p of s.points) {
      if (!Number.isFinite(p[1])) {
        pen = false;
        continue;
      }
      d += `${pen ? 'L' : 'M'}${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`;
      pen = true;
    }
    if (d) {
      parts.push(`<path class="line" d="${d}" fill="none" stroke="${s.colour}" stroke-width="${s.width ?? (s.faint ? 1 : 2)}"` +
        `${s.faint ? ' stroke-opacity="0.3"' : ''}${s.dash ? ` stroke-dasharray="${s.dash}"` : ''} stroke-linejoin="round"/>`);
    }
    if (s.markers) {
      for (const p of s.points) {
        if (Number.isFinite(p[1])) parts.push(`<circle cx="${sx(p[0]).toFixed(1)}" cy="${sy(p[1]).toFixed(1)}" r="3" fill="${s.colour}"><title>${esc(s.name)}: ${fmt(p[1])} at ${o.xLabel.replace(/ \(.*\)$/, '')} ${fmt(p[0], 6)}</title></circle>`);
      }
    }
    return `<g class="series${s.faint ? ' faint' : ''}" data-name="${esc(s.name)}">${parts.join('')}</g>`;
  });
  return `${svgOpen('line', o.title, f)}<title>${esc(o.title)}</title>
<rect x="${f.L}" y="${f.T}" width="${f.W - f.L - f.R}" height="${f.H - f.B - f.T}" fill="#fcfcfc"/>
${axes(f, xs, ys, sx, sy, o.xLabel, o.yLabel)}
<g class="plot">${body.join('\n')}</g>
${lg.svg}</svg>`;
}

/** Sequential colour map (viridis, 9 anchors) for t in [0, 1]. */
const VIRIDIS: [number, number, number][] = [
  [68, 1, 84], [72, 40, 120], [62, 74, 137], [49, 104, 142], [38, 130, 142], [31, 158, 137], [53, 183, 121], [109, 205, 89], [180, 222, 44], [253, 231, 37],
];

export function viridis(t: number): [number, number, number] {
  const x = Math.max(0, Math.min(1, Number.isFinite(t) ? t : 0)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(x)), f = x - i;
  return [0, 1, 2].map((c) => Math.round(VIRIDIS[i][c] + f * (VIRIDIS[i + 1][c] - VIRIDIS[i][c]))) as [number, number, number];
}

const rgb = (c: [number, number, number]) => `rgb(${c[0]},${c[1]},${c[2]})`;

export interface HeatMapOptions {
  title: string;
  rows: string[];
  /** Column keys (epochs), shown as labels along the x axis. */
  cols: number[];
  xLabel: string;
  /** rows x cols values in [min, max]; null: none (not validated, not yet U2PL). */
  values: (number | null)[][];
  min: number;
  max: number;
  /** Shown value = v * factor, with this unit (e.g. 100 and '%'). */
  factor?: number;
  unit: string;
}

/** Heat map: one row per class, one column per epoch, a colour bar with round ticks. */
export function heatMap(o: HeatMapOptions): string {
  if (o.cols.length === 0 || o.rows.length === 0) return `<p class="empty">${esc(o.title)}: no data yet.</p>`;
  const factor = o.factor ?? 1;
  const labelWidth = Math.min(140, 12 + Math.max(...o.rows.map((r) => r.length)) * 6.6);
  const cell = { w: Math.max(4, Math.min(44, (560 - labelWidth) / o.cols.length)), h: 18 };
  const f: Frame = { W: 0, H: 0, L: labelWidth, R: 90, T: 10, B: 42 };
  f.W = f.L + cell.w * o.cols.length + f.R;
  f.H = f.T + cell.h * o.rows.length + f.B;
  const showText = cell.w >= 26;
  const cells: string[] = [];
  o.rows.forEach((r, i) => {
    o.cols.forEach((c, j) => {
      const v = o.values[i]?.[j];
      const x = f.L + j * cell.w, y = f.T + i * cell.h;
      if (v === null || v === undefined || !Number.isFinite(v)) {
        cells.push(`<rect class="cell missing" x="${x.toFixed(1)}" y="${y}" width="${cell.w.toFixed(1)}" height="${cell.h}" fill="#f3f3f3" stroke="#fff"><title>${esc(r)}, ${esc(o.xLabel)} ${c}: none</title></rect>`);
        return;
      }
      const t = (v - o.min) / (o.max - o.min || 1);
      const colour = viridis(t);
      const light = 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2] > 140;
      const shown = v * factor;
      cells.push(`<rect class="cell" x="${x.toFixed(1)}" y="${y}" width="${cell.w.toFixed(1)}" height="${cell.h}" fill="${rgb(colour)}" stroke="#fff" stroke-width="0.5"><title>${esc(r)}, ${esc(o.xLabel)} ${c}: ${fmt(shown, 3)}${esc(o.unit)}</title></rect>` +
        (showText ? `<text x="${(x + cell.w / 2).toFixed(1)}" y="${y + 13}" font-size="10" text-anchor="middle" fill="${light ? '#000' : '#fff'}" pointer-events="none">${Math.round(shown)}</text>` : ''));
    });
  });
  const rowLabels = o.rows.map((r, i) => `<text class="tick" x="${f.L - 6}" y="${f.T + i * cell.h + 13}" font-size="11" text-anchor="end">${esc(r)}</text>`).join('');
  // Every column labelled when there are few; otherwise the first and those at round values (10, 20, ...).
  const every = o.cols.length <= 16 ? 1 : niceStep(o.cols[o.cols.length - 1] - o.cols[0], 8, true);
  const colLabels = o.cols.map((c, j) => (every === 1 || j === 0 || c % every === 0
    ? `<text class="tick" x="${(f.L + (j + 0.5) * cell.w).toFixed(1)}" y="${f.H - f.B + 14}" font-size="11" text-anchor="middle">${c}</text>` : '')).join('');
  // The colour bar: min..max with round ticks, in display units.
  const barX = f.W - f.R + 24, barH = Math.max(60, cell.h * o.rows.length), barY = f.T;
  const stops = Array.from({ length: 10 }, (_, k) => `<stop offset="${k / 9}" stop-color="${rgb(viridis(1 - k / 9))}"/>`).join('');
  const id = `g${Math.abs(hash(o.title))}`;
  const scale = niceScale(o.min * factor, o.max * factor, 4);
  const barTicks = scale.ticks.filter((t) => t >= o.min * factor - 1e-9 && t <= o.max * factor + 1e-9).map((t) => {
    const y = barY + barH * (1 - (t - o.min * factor) / ((o.max - o.min) * factor || 1));
    return `<line x1="${barX + 12}" x2="${barX + 16}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}" stroke="#666"/><text class="tick" x="${barX + 19}" y="${(y + 4).toFixed(1)}" font-size="10">${formatTick(t, scale.step)}</text>`;
  }).join('');
  return `${svgOpen('heatmap', o.title, f, ` data-rows="${o.rows.length}" data-cols="${o.cols.length}"`)}<title>${esc(o.title)}</title>
<defs><linearGradient id="${id}" x1="0" x2="0" y1="0" y2="1">${stops}</linearGradient></defs>
<g class="axis y">${rowLabels}</g>
<g class="axis x">${colLabels}<text class="axis-title" x="${(f.L + f.W - f.R) / 2}" y="${f.H - 8}" font-size="12" text-anchor="middle">${esc(o.xLabel)}</text></g>
<g class="series" data-name="${esc(o.title)}">${cells.join('')}</g>
<g class="legend colour-bar"><rect x="${barX}" y="${barY}" width="12" height="${barH}" fill="url(#${id})"/>${barTicks}<text x="${barX - 4}" y="${barY + barH + 16}" font-size="10">${esc(o.unit)}</text></g></svg>`;
}

function hash(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (h * 31 + s.charCodeAt(i)) | 0;
  return h;
}

export interface BarSeries {
  name: string;
  colour: string;
  /** One value per category; null: none. */
  values: (number | null)[];
}

/** Grouped bars: per category (class) one bar per series, side by side; y from 0 with round ticks. */
export function groupedBars(categories: string[], series: BarSeries[], o: { title: string; yLabel: string; factor?: number; unit?: string; width?: number }): string {
  series = series.filter((s) => s.values.some((v) => v !== null && Number.isFinite(v)));
  if (series.length === 0 || categories.length === 0) return `<p class="empty">${esc(o.title)}: no data yet.</p>`;
  const factor = o.factor ?? 1;
  const longest = Math.max(...categories.map((c) => c.length));
  const f: Frame = { W: o.width ?? 640, H: 250 + Math.min(60, longest * 4.5), L: 62, R: 18, T: 0, B: 30 + Math.min(60, longest * 4.5) };
  const lg = legend(series.map((s) => ({ name: s.name, colour: s.colour, box: true })), f);
  f.T = 12 + lg.rows * 16;
  const [, top] = extent(series.flatMap((s) => s.values.map((v) => (v ?? NaN) * factor)));
  const ys = niceScale(0, top, 5);
  const sy = (y: number) => f.H - f.B - ((y - ys.lo) / (ys.hi - ys.lo)) * (f.H - f.B - f.T);
  const group = (f.W - f.L - f.R) / categories.length;
  const bar = Math.min(16, (group * 0.8) / series.length);
  const sxCat = (i: number) => f.L + group * (i + 0.5);
  const yTicks = ys.ticks.map((t) => `<line x1="${f.L - 4}" x2="${f.W - f.R}" y1="${sy(t).toFixed(1)}" y2="${sy(t).toFixed(1)}" stroke="#eee"/>` +
    `<text class="tick" x="${f.L - 7}" y="${(sy(t) + 4).toFixed(1)}" font-size="11" text-anchor="end">${formatTick(t, ys.step)}</text>`).join('');
  const xTicks = categories.map((c, i) => `<text class="tick" x="${sxCat(i).toFixed(1)}" y="${f.H - f.B + 12}" font-size="11" text-anchor="end" transform="rotate(-35 ${sxCat(i).toFixed(1)} ${f.H - f.B + 12})">${esc(c)}</text>`).join('');
  const bars = series.map((s, k) => {
    const rects = s.values.map((v, i) => {
      if (v === null || !Number.isFinite(v)) return '';
      const x = sxCat(i) - (bar * series.length) / 2 + k * bar;
      const y = sy(v * factor);
      return `<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${(bar - 1).toFixed(1)}" height="${Math.max(0.5, f.H - f.B - y).toFixed(1)}" fill="${s.colour}"><title>${esc(categories[i])}, ${esc(s.name)}: ${fmt(v * factor, 3)}${esc(o.unit ?? '')}</title></rect>`;
    }).join('');
    return `<g class="series" data-name="${esc(s.name)}">${rects}</g>`;
  });
  const midY = (f.T + f.H - f.B) / 2;
  return `${svgOpen('bars', o.title, f)}<title>${esc(o.title)}</title>
<g class="axis y">${yTicks}<line x1="${f.L}" x2="${f.L}" y1="${f.T}" y2="${f.H - f.B}" stroke="#666"/><text class="axis-title" x="14" y="${midY}" font-size="12" text-anchor="middle" transform="rotate(-90 14 ${midY})">${esc(o.yLabel)}</text></g>
<g class="axis x">${xTicks}<line x1="${f.L}" x2="${f.W - f.R}" y1="${f.H - f.B}" y2="${f.H - f.B}" stroke="#666"/></g>
<g class="plot">${bars.join('')}</g>
${lg.svg}</svg>`;
}

/** A horizontal colour bar (for image maps such as entropy), min..max with round ticks and a unit. */
export function colourBar(title: string, min: number, max: number, unit: string, colour: (t: number) => [number, number, number] = viridis): string {
  const f: Frame = { W: 320, H: 48, L: 12, R: 40, T: 8, B: 24 };
  const id = `cb${Math.abs(hash(title))}`;
  const stops = Array.from({ length: 10 }, (_, k) => `<stop offset="${k / 9}" stop-color="${rgb(colour(k / 9))}"/>`).join('');
  const s = niceScale(min, max, 4);
  const w = f.W - f.L - f.R;
  const ticks = s.ticks.filter((t) => t >= min - 1e-9 && t <= max + 1e-9).map((t) => {
    const x = f.L + ((t - min) / (max - min || 1)) * w;
    return `<line x1="${x.toFixed(1)}" x2="${x.toFixed(1)}" y1="${f.T + 12}" y2="${f.T + 16}" stroke="#666"/><text class="tick" x="${x.toFixed(1)}" y="${f.T + 28}" font-size="10" text-anchor="middle">${formatTick(t, s.step)}</text>`;
  }).join('');
  return `<svg class="colour-bar" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${f.W} ${f.H}" width="${f.W}" height="${f.H}" role="img" aria-label="${esc(title)}" font-family="system-ui, sans-serif">
<defs><linearGradient id="${id}">${stops}</linearGradient></defs><rect x="${f.L}" y="${f.T}" width="${w}" height="12" fill="url(#${id})"/>${ticks}<text x="${f.W - f.R + 4}" y="${f.T + 10}" font-size="10">${esc(unit)}</text></svg>`;
}
