/**
 * report.html: a self-contained page (inline SVG charts, inline PNGs) with the loss and mIoU
 * curves of a run and sample predictions beside the ground truth.
 */
import fs from 'fs';

export interface ReportSample {
  id: string;
  image: string;       // data URIs
  groundTruth: string;
  prediction: string;
}

export interface ReportData {
  title: string;
  steps: { global_step: number; loss: number; supervised?: number; unsupervised?: number; contrastive?: number }[];
  epochs: { epoch: number; miou: number; iou: number[] }[];
  classNames: string[];
  samples: ReportSample[];
  summary: Record<string, string | number>;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

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

// Min and max by a loop: spreading ~10^5 values into Math.min/max overflows the argument limit.
function range(values: number[]): [number, number] {
  let lo = Infinity, hi = -Infinity;
  for (const v of values) {
    if (!Number.isFinite(v)) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return [lo, hi];
}

function chart(series: { name: string; colour: string; points: [number, number][] }[], xLabel: string, yLabel: string): string {
  if (series.every((s) => s.points.length === 0)) return '<p>No data yet.</p>';
  const W = 640, H = 260, L = 56, B = 36, T = 14, R = 14;
  const [xMin, xMax] = range(series.flatMap((s) => [s.points[0]?.[0], s.points[s.points.length - 1]?.[0]]).filter((x) => x !== undefined));
  series = series.map((s) => ({ ...s, points: downsample(s.points, 800) }));
  const [yMin, yMax] = range(series.flatMap((s) => s.points.map((p) => p[1])));
  const x0 = xMin, x1 = Math.max(xMax, x0 + 1);
  const y0 = Math.min(0, yMin), y1 = Math.max(yMax, y0 + 1e-6);
  const sx = (x: number) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
  const sy = (y: number) => H - B - ((y - y0) / (y1 - y0)) * (H - B - T);
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => y0 + f * (y1 - y0));
  const paths = series.map((s) => {
    const d = s.points.map((p, i) => `${i ? 'L' : 'M'}${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join('');
    return `<path d="${d}" fill="none" stroke="${s.colour}" stroke-width="1.5"/>`;
  });
  const legend = series.map((s, i) => `<text x="${L + 8 + i * 130}" y="${T + 10}" fill="${s.colour}" font-size="12">■ ${esc(s.name)}</text>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif">
<rect x="${L}" y="${T}" width="${W - L - R}" height="${H - B - T}" fill="#fafafa" stroke="#ccc"/>
${ticks.map((t) => `<text x="${L - 6}" y="${sy(t) + 4}" font-size="11" text-anchor="end">${t.toPrecision(3)}</text><line x1="${L}" x2="${W - R}" y1="${sy(t)}" y2="${sy(t)}" stroke="#eee"/>`).join('')}
<text x="${(L + W - R) / 2}" y="${H - 6}" font-size="12" text-anchor="middle">${esc(xLabel)}</text>
<text x="14" y="${(T + H - B) / 2}" font-size="12" text-anchor="middle" transform="rotate(-90 14 ${(T + H - B) / 2})">${esc(yLabel)}</text>
<text x="${L}" y="${H - B + 14}" font-size="11">${x0}</text><text x="${W - R}" y="${H - B + 14}" font-size="11" text-anchor="end">${x1}</text>
${paths.join('\n')}
${legend.join('\n')}
</svg>`;
}

export function renderReport(r: ReportData): string {
  const lossSeries = [
    { name: 'total', colour: '#222', key: 'loss' as const },
    { name: 'supervised', colour: '#1f77b4', key: 'supervised' as const },
    { name: 'unsupervised', colour: '#ff7f0e', key: 'unsupervised' as const },
    { name: 'contrastive', colour: '#2ca02c', key: 'contrastive' as const },
  ].map((s) => ({ name: s.name, colour: s.colour, points: r.steps.filter((p) => p[s.key] !== undefined).map((p) => [p.global_step, p[s.key] as number] as [number, number]) }))
    .filter((s) => s.points.length > 0 && s.points.some((p) => p[1] !== 0));
  const miou = [{ name: 'mIoU', colour: '#d62728', points: r.epochs.map((e) => [e.epoch + 1, e.miou * 100] as [number, number]) }];
  const last = r.epochs[r.epochs.length - 1];
  const iouRows = last ? r.classNames.map((n, i) => `<tr><td>${esc(n)}</td><td>${(100 * (last.iou[i] ?? 0)).toFixed(2)}</td></tr>`).join('') : '';
  const samples = r.samples.map((s) => `<figure><img src="${s.image}" alt="image"><img src="${s.groundTruth}" alt="ground truth"><img src="${s.prediction}" alt="prediction"><figcaption>${esc(s.id)}: image, ground truth, prediction</figcaption></figure>`).join('\n');
  const summary = Object.entries(r.summary).map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(String(v))}</td></tr>`).join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(r.title)}</title>
<style>body{font-family:sans-serif;margin:24px;color:#222}table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}
figure{display:inline-block;margin:8px}figure img{width:160px;image-rendering:pixelated;margin-right:2px}figcaption{font-size:12px;color:#555}</style></head>
<body><h1>${esc(r.title)}</h1>
<table>${summary}</table>
<h2>Losses</h2>${chart(lossSeries, 'step', 'loss')}
<h2>Validation mIoU</h2>${chart(miou, 'epoch', 'mIoU (%)')}
${last ? `<h2>Per-class IoU (epoch ${last.epoch + 1})</h2><table><tr><th>class</th><th>IoU %</th></tr>${iouRows}</table>` : ''}
<h2>Sample predictions</h2>${samples || '<p>No validation set.</p>'}
</body></html>
`;
}

export function writeReport(file: string, r: ReportData): void {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, renderReport(r));
  fs.renameSync(tmp, file);
}
