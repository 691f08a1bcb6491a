/** The HTML shell shared by report.html and u2pl-report's comparison: one self-contained page, no script. */
import { esc } from './charts';

const STYLE = `
*{box-sizing:border-box}
body{font-family:system-ui,sans-serif;margin:0 auto;padding:16px 24px 48px;max-width:1320px;color:#222;line-height:1.4}
h1{font-size:22px;margin:8px 0 4px}h2{font-size:18px;margin:28px 0 6px;border-bottom:1px solid #ddd;padding-bottom:4px}h3{font-size:15px;margin:16px 0 4px}
nav{font-size:13px;margin:4px 0 12px}nav a{margin-right:14px}
table{border-collapse:collapse;font-size:13px;margin:6px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}tr.best td{font-weight:600}td.best{font-weight:700}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(460px,1fr));gap:8px 20px;align-items:start}
.grid.small{grid-template-columns:repeat(auto-fill,minmax(320px,1fr))}
figure{margin:0}figure.chart-box{min-width:0}figure.chart-box figcaption{font-weight:600;font-size:13px;margin:6px 0 2px}
svg.chart{width:100%;height:auto;max-width:100%;display:block}
p.note,.note{font-size:12px;color:#555;margin:2px 0 8px}p.empty{color:#777;font-size:13px}
.glance{background:#f6f8fa;border:1px solid #e1e4e8;border-radius:6px;padding:8px 14px;margin:10px 0;font-size:14px}
.glance li{margin:2px 0}.good{color:#1a7f37}.bad{color:#cf222e}
.samples{display:flex;flex-wrap:wrap;gap:14px}
.sample{border:1px solid #e5e5e5;border-radius:4px;padding:6px}.sample.worst{border-color:#cf222e}
.sample .imgs{display:flex;gap:3px}.sample img{width:180px;height:auto;display:block}
.sample figcaption{font-size:12px;color:#444;margin-top:4px;max-width:610px}
.sample .labels{display:flex;gap:3px;font-size:11px;color:#666}.sample .labels span{width:180px}
img.mask{image-rendering:pixelated}
.method .sample img{width:200px}.method .sample .labels span{width:200px}
.swatches{display:flex;flex-wrap:wrap;gap:4px 12px;font-size:12px;margin:6px 0}.swatch{display:inline-block;width:12px;height:12px;border:1px solid #999;vertical-align:-2px;margin-right:4px}
details{margin:6px 0}summary{cursor:pointer;font-size:13px}
@media (max-width:700px){.grid{grid-template-columns:1fr}.sample img,.method .sample img{width:30vw}}
`;

export function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title><style>${STYLE}</style></head>
<body>
${body}
</body></html>
`;
}

export function table(header: string[], rows: string[][], numeric: boolean[] = [], rowClass: (i: number) => string = () => ''): string {
  const th = header.map((h, i) => `<th${numeric[i] ? ' class="num"' : ''}>${h}</th>`).join('');
  const tr = rows.map((r, k) => `<tr${rowClass(k) ? ` class="${rowClass(k)}"` : ''}>${r.map((c, i) => `<td${numeric[i] ? ' class="num"' : ''}>${c}</td>`).join('')}</tr>`).join('\n');
  return `<table><thead><tr>${th}</tr></thead><tbody>${tr}</tbody></table>`;
}

/** A percentage with one decimal, or – for a missing value. */
export const pct = (v: number | null | undefined, digits = 1): string => (v === null || v === undefined || !Number.isFinite(v) ? '–' : (100 * v).toFixed(digits));
