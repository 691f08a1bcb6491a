/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * Headless Chromium (Debian's `chromium` package, installed by .ci/run) driven by playwright-core,
 * for the tests that check what a reader of report.html sees. Never a downloaded browser.
 */
import fs from 'fs';
import type { Browser, Page } from 'playwright-core';

export const CHROMIUM = process.env.U2PL_CHROMIUM ?? '/usr/bin/chromium';

/**
 * describe() that needs Chromium: required in CI (a missing browser fails loudly there), skipped
 * elsewhere with the reason printed.
 */
export function describeWithChromium(name: string, fn: () => void): void {
  if (fs.existsSync(CHROMIUM) || process.env.CI) {
    describe(name, fn);
  } else {
    // eslint-disable-next-line no-console
    console.log(`skipped '${name}': no Chromium at ${CHROMIUM} (apt-get install chromium; CI installs it)`);
    describe.skip(`${name} (no ${CHROMIUM})`, fn);
  }
}

export async function launchChromium(): Promise<Browser> {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install chromium (.ci/run installs it)`);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { chromium } = require('playwright-core') as typeof import('playwright-core');
  // Playwright gives each launch a new empty profile; the flags keep Chromium off the network
  // (component updates, sync, QUIC probes) on machines that have none.
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

export interface LoadedPage {
  page: Page;
  /** console errors, page errors and any request that is not the file itself or a data: URI. */
  problems: string[];
  loadMs: number;
}

/** Opens a local HTML file at a laptop's width and waits until every image has decoded. */
export async function openFile(browser: Browser, file: string, width = 1366): Promise<LoadedPage> {
  const page = await browser.newPage({ viewport: { width, height: 900 } });
  const problems: string[] = [];
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('request', (r) => { if (!r.url().startsWith('data:') && r.url() !== `file://${file}`) problems.push(`request: ${r.url()}`); });
  const t0 = Date.now();
  await page.goto(`file://${file}`, { waitUntil: 'load' });
  const loadMs = Date.now() - t0;
  const undecodable = await page.evaluate(async () => {
    const bad: string[] = [];
    await Promise.all([...document.images].map((img) => img.decode().catch(() => { bad.push(img.alt); })));
    for (const img of document.images) if (!img.complete || img.naturalWidth === 0) bad.push(img.alt);
    return bad;
  });
  for (const alt of undecodable) problems.push(`image does not decode: ${alt}`);
  return { page, problems, loadMs };
}

export interface ChartCheck {
  kind: string;
  title: string;
  series: number;
  /** Series with something drawn (a path with points, bars, cells, markers or a band). */
  drawn: number;
  xTicks: number;
  yTicks: number;
  axisTitles: number;
  legendItems: number;
  visible: boolean;
  /** Whether the drawing fits the chart: no NaN, nothing far outside the view box. */
  inside: boolean;
}

/** What every chart of the page draws, read from the rendered DOM. */
export async function checkCharts(page: Page): Promise<ChartCheck[]> {
  return page.evaluate(() => [...document.querySelectorAll('svg.chart')].map((svg) => {
    const s = svg as SVGSVGElement;
    const vb = s.viewBox.baseVal;
    const series = [...s.querySelectorAll('g.series')];
    const drawn = series.filter((g) => [...g.querySelectorAll('path')].some((p) => (p.getAttribute('d') ?? '').length > 2) ||
      g.querySelector('rect, circle, polygon') !== null).length;
    const numbers = [...s.querySelectorAll('g.series path, g.series polygon')].flatMap((p) => (p.getAttribute('d') ?? p.getAttribute('points') ?? '').split(/[^0-9.eE+-]+/).filter(Boolean).map(Number));
    const inside = numbers.every((v) => Number.isFinite(v) && v >= -1 && v <= Math.max(vb.width, vb.height) + 1);
    const box = s.getBoundingClientRect();
    return {
      kind: s.dataset.kind ?? '', title: s.getAttribute('aria-label') ?? '', series: series.length, drawn,
      xTicks: s.querySelectorAll('g.axis.x text.tick').length, yTicks: s.querySelectorAll('g.axis.y text.tick').length,
      axisTitles: s.querySelectorAll('text.axis-title').length, legendItems: s.querySelectorAll('g.legend .legend-item, g.legend.colour-bar').length,
      visible: box.width > 0 && box.height > 0, inside,
    };
  }));
}

/** The expectations every chart must meet: each series drawn, axes with ticks, a legend. */
export function expectReadableCharts(charts: ChartCheck[]): void {
  expect(charts.length).toBeGreaterThan(0);
  for (const c of charts) {
    const label = `${c.kind} chart '${c.title}'`;
    expect({ label, drawnAll: c.drawn === c.series && c.series > 0 }).toEqual({ label, drawnAll: true });
    expect({ label, inside: c.inside }).toEqual({ label, inside: true });
    expect({ label, ticks: c.yTicks >= 2 && (c.kind === 'bars' || c.kind === 'heatmap' ? c.xTicks >= 1 : c.xTicks >= 2) }).toEqual({ label, ticks: true });
    expect({ label, legend: c.legendItems >= 1, axisTitles: c.kind === 'heatmap' ? c.axisTitles >= 1 : c.axisTitles >= (c.kind === 'bars' ? 1 : 2) })
      .toEqual({ label, legend: true, axisTitles: true });
  }
}
