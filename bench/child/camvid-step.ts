/**
 * The u2pl side of the camvid-small step bench, in a process of its own (so that its peak RSS is
 * the step's): the trainer of experiments/camvid-small from the shared initial weights and banks,
 * steps on the shared batches, seconds and phase times per step kind.
 *   node dist-bench/bench/child/camvid-step.js '{"config": ..., "init": ..., "batches": ..., ...}'
 */
import { loadConfig } from '../../lib/config/config';
import { readCheckpoint } from '../../lib/checkpoint';
import { AddonStepInputs, AddonStepResult, native, StepPhases, Tensor } from '../../lib/native';
import { trainerOptions } from '../../lib/train/train';

interface Args {
  semiConfig: string;
  supervisedConfig: string;
  init: string;
  batches: string;
  autocast: boolean;
  channelsLast: boolean;
  warmup: number;
  runs: number;
  kinds: string[];
  threads: number;
}

type Step = { labeled_images: Tensor; labels: Tensor; unlabeled_images: Tensor };

const KINDS: Record<string, { phase: AddonStepInputs['phase']; semi: boolean }> = {
  u2pl: { phase: 'semi', semi: true },
  'floor.u2pl': { phase: 'floor', semi: true },
  warmup: { phase: 'warmup', semi: true },
  'floor.warmup': { phase: 'floor-warmup', semi: true },
  supervised: { phase: 'supervised', semi: false },
  'floor.supervised': { phase: 'floor-supervised', semi: false },
};

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2]) as Args;
  native().setThreads(args.threads);
  const steps = ((await readCheckpoint(args.batches)) as { steps: Step[] }).steps;
  const out: Record<string, { seconds: number[]; phases: Partial<StepPhases> }> = {};
  for (const kind of args.kinds) {
    const k = KINDS[kind];
    const config = loadConfig(k.semi ? args.semiConfig : args.supervisedConfig);
    config.runtime.autocast = args.autocast ? 'bfloat16' : null;
    config.runtime.channelsLast = args.channelsLast;
    const trainer = new (native().AddonTrainer)(trainerOptions(config));
    if (k.semi) await trainer.load(args.init);  // weights, optimizer-free state and full banks
    else await trainer.student().load(args.init, { key: 'model_state' });
    const seconds: number[] = [];
    const phases: Partial<StepPhases> = {};
    for (let i = 0; i < args.warmup + args.runs; i++) {
      const s = steps[i % steps.length];
      const t0 = process.hrtime.bigint();
      const r: AddonStepResult = await trainer.step({
        phase: k.phase, labeledImages: s.labeled_images, labels: s.labels, unlabeledImages: s.unlabeled_images,
        lrBackbone: 0.01, lrHead: 0.1, emaDecay: 0.99, dropPercentile: 100 - 20 * (1 - 1 / 6), alpha: 20 * (1 - 1 / 6),
      });
      if (i < args.warmup) continue;
      seconds.push(Number(process.hrtime.bigint() - t0) / 1e9);
      for (const [name, v] of Object.entries(r.phases) as [keyof StepPhases, number][]) phases[name] = (phases[name] ?? 0) + v / args.runs;
      // The host's own share: the call's wall time beyond the native step.
      phases.other = (phases.other ?? 0) + (seconds[seconds.length - 1] - r.seconds) / args.runs;
    }
    out[kind] = { seconds, phases };
  }
  process.stdout.write(`${JSON.stringify({ steps: out, peak_rss_mb: process.resourceUsage().maxRSS / 1024 })}\n`);
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
