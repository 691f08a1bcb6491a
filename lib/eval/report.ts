/**
 * report.html: a self-contained page (inline SVG charts, inline images, no script) written into
 * the run folder after each validated epoch; see lib/eval/report/ for its parts, and
 * lib/cli/report.ts (u2pl-report) for the comparison of several runs.
 */
import fs from 'fs';
import path from 'path';
import { renderReport, ReportData } from './report/run-report';
import { RUN_INFO, RunInfo } from './report/metrics';

export { downsample } from './report/charts';
export { renderReport } from './report/run-report';
export type { MethodImage, MethodSection, ReportData, ReportImage } from './report/run-report';
export type { RunInfo } from './report/metrics';

function writeAtomic(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}

export function writeReport(file: string, r: ReportData): void {
  writeAtomic(file, renderReport(r));
}

/** run.json beside metrics.jsonl: what u2pl-report needs that the records do not say (class names, the schedule). */
export function writeRunInfo(dir: string, info: RunInfo): void {
  writeAtomic(path.join(dir, RUN_INFO), `${JSON.stringify(info, null, 1)}\n`);
}
