/**
 * Presets: named sets of defaults for the keys where the reference code and what works best from
 * few labels part ways (u2pl-method.md §17 and experiments/camvid-small/README.md). A config picks
 * one with the top-level `preset` key; every key it sets itself wins over the preset's.
 *   reference (default): the reference code's behaviour, so that its configs reproduce its numbers.
 *   u2pl: for training from scratch or from few labels: the teacher starts as a full copy of the
 *     student (the camvid-small study: 23.5 vs 9.7 val mIoU after the first U2PL epoch), crop
 *     padding is ignored rather than labelled class 0 (Sky on CamVid, road on Cityscapes), and the
 *     pseudo-labels' class shares are aligned to the labels' (hard alignment, lib/train/alignment.ts),
 *     so that the classes a young teacher under-predicts are not unlearnt (camvid-small, 3 seeds:
 *     24.6 ± 2.1 against supervised-only's 23.3 ± 0.7, 23.7 ± 1.2 over 6 seeds; soft alignment 23.5,
 *     selection 22.7); and
 *     for U2PL configs that say nothing of their criterion, OHEM cross-entropy on the labeled images
 *     with median-frequency class weights (PRESET_CRITERION; camvid-small: OHEM alone 26.1 ± 2.6 over
 *     6 seeds; with the class weights, round 9 of experiments/camvid-small/README.md). Supervised-
 *     only configs keep plain cross-entropy: OHEM alone cost the baseline there (19.0 against 23.7),
 *     and the class weights alone move it far less than they move U2PL (round 9).
 */
import { ConfigError } from './errors';

export type PresetName = 'reference' | 'u2pl';

/** A preset's defaults: dotted key -> value, set only where the key's section exists and the key is absent. */
export const PRESETS: Record<PresetName, Record<string, unknown>> = {
  reference: {},
  u2pl: {
    'dataset.crop_label_pad': 'ignore',
    'trainer.teacher_init': 'copy',
    'trainer.unsupervised.distribution_alignment': 'hard',
  },
};

/**
 * The criterion a preset picks for a semi-supervised config (one with trainer.unsupervised) that
 * says nothing of its criterion (no type, no kwargs). It is set as a whole, not key by key, so that
 * it never mixes with a criterion the config chose. u2pl: OHEM keeping every pixel whose true-class probability is at
 * most 0.7 and at least 8.5 % of a labeled batch (the reference's Cityscapes share, 100,000 of
 * 2×769², on any crop: criterion.kwargs.min_kept_ratio), each kept pixel weighted by its class's
 * median-frequency weight from the labeled split (criterion.kwargs.class_weight), so that the
 * classes few labels show are learnt by the teacher that makes the pseudo-labels.
 */
export const PRESET_CRITERION: Record<PresetName, Record<string, unknown> | undefined> = {
  reference: undefined,
  u2pl: { type: 'ohem', kwargs: { thresh: 0.7, min_kept_ratio: 0.085, class_weight: 'median_frequency' } },
};

/** The raw config with its preset's defaults filled in, and the preset's name. */
export function applyPreset(raw: Record<string, unknown>): { raw: Record<string, unknown>; preset: PresetName } {
  const name = raw.preset ?? 'reference';
  if (typeof name !== 'string' || !(name in PRESETS)) {
    throw new ConfigError('preset', `expected one of ${Object.keys(PRESETS).join(', ')}, got ${JSON.stringify(name)}`);
  }
  const out = structuredClone(raw);
  for (const [key, value] of Object.entries(PRESETS[name as PresetName])) {
    const parts = key.split('.');
    let section: unknown = out;
    for (const p of parts.slice(0, -1)) section = section && typeof section === 'object' ? (section as Record<string, unknown>)[p] : undefined;
    if (!isMapping(section)) continue;  // no such section: the preset adds none
    const last = parts[parts.length - 1];
    if ((section as Record<string, unknown>)[last] === undefined) (section as Record<string, unknown>)[last] = value;
  }
  const criterion = PRESET_CRITERION[name as PresetName];
  const semi = isMapping(out.trainer) && out.trainer.unsupervised !== undefined;
  const current = out.criterion;
  // Only where the config says nothing of its loss; a criterion that is not a mapping is left to the parser to reject.
  if (criterion && semi && (current === undefined || (isMapping(current) && current.type === undefined && current.kwargs === undefined))) {
    out.criterion = { ...(current ?? {}), ...structuredClone(criterion) };
  }
  return { raw: out, preset: name as PresetName };
}

function isMapping(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === 'object' && !Array.isArray(v);
}
