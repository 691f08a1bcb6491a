/**
 * The settings of a parsed config that decide what training computes, flattened to dotted keys
 * (presets expanded, defaults filled). A checkpoint keeps them, and a resumed run compares its own
 * with them: after an upgrade that changes what a preset expands to, or an edit of the config, a
 * run that resumes would otherwise switch its method mid-run without a word.
 *
 * Left out: what does not change the numbers trained — the run folder and how it is saved, where
 * the data lives (a run moves between machines), validation, held-out tests and logging, threads, prefetching,
 * caches, the memory layout and the device (same maths), and the data-parallel backend.
 */
import { U2plConfig } from './config';

const IGNORED: RegExp[] = [
  /^(file|dir|raw|warnings|preset)$/,
  /^saver\./,
  /^runtime\.(threads|prefetch|distTimeoutS|distBackend|channelsLast|device)$/,
  /^dataset\.(cacheMb|skipUnreadable|imageDir|labelDir|labelExt|palette|classNames)(\.|$)/,
  /^dataset\.train\.(dataRoot|dataList)$/,
  /^dataset\.(val|test)(\.|$)/,
  /^trainer\.(logEvery|evalEvery|evalOn|pseudoLabelMetrics)$/,
  /^net\.pretrained$/,
  /^net\.model\.device$/,
];

function flatten(value: unknown, prefix: string, out: Record<string, unknown>): void {
  if (value === undefined || (prefix && IGNORED.some((r) => r.test(prefix)))) return;
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
    return;
  }
  out[prefix] = value;
}

export function trainingSettings(c: U2plConfig): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  flatten(c, '', out);
  return out;
}

/** The keys whose values differ, with both values, e.g. "trainer.unsupervised.dropPercent: 80 -> 50". */
export function changedSettings(saved: Record<string, unknown>, now: Record<string, unknown>): string[] {
  const show = (v: unknown) => (v === undefined ? '(unset)' : JSON.stringify(v));
  return [...new Set([...Object.keys(saved), ...Object.keys(now)])].sort()
    .filter((k) => JSON.stringify(saved[k]) !== JSON.stringify(now[k]))
    .map((k) => `${k}: ${show(saved[k])} -> ${show(now[k])}`);
}
