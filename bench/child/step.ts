/**
 * The u2pl side of the step benches, in a process of its own (so that its peak RSS is the step's):
 * the recipe's trainer from the shared initial weights and banks, steps on the shared batches,
 * seconds and phase times per step kind; a step kind and its floor alternate on one trainer.
 *   node dist-bench/bench/child/step.js '{"semi": {...}, "supervised": {...}, "init": ..., "batches": ..., ...}'
 */
import { readCheckpoint } from '../../lib/checkpoint';
import { AddonStepInputs, AddonStepResult, AddonTrainerOptions, native, StepPhases, Tensor } from '../../lib/native';

interface Args {
  /** The trainer options of the U2PL / warm-up kinds and of the supervised-only kinds (rep head off). */
  semi: AddonTrainerOptions;
  supervised: AddonTrainerOptions;
  init: string;
  batches: string;
  warmup: number;
  runs: number;
  kinds: string[];
  threads: number;
  /** Schedules of the step: drop percentile and alpha (epoch 1 of the recipe). */
  dropPercentile: number;
  alpha: number;
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
  const cuda = args.semi.device === 'cuda';
  const steps = ((await readCheckpoint(args.batches)) as { steps: Step[] }).steps;
  const out: Record<string, { seconds: number[]; phases: Partial<StepPhases> }> = {};
  // Kinds of one trainer (a step and its floor) run interleaved on it, step by step, so that the
  // machine's drift weighs on both alike and their ratio holds.
  const semi = args.kinds.filter((k) => KINDS[k].semi);
  const supervised = args.kinds.filter((k) => !KINDS[k].semi);
  for (const kinds of [semi, supervised].filter((g) => g.length > 0)) {
    const trainer = new (native().AddonTrainer)(KINDS[kinds[0]].semi ? args.semi : args.supervised);
    if (KINDS[kinds[0]].semi) await trainer.load(args.init);  // weights, optimizer-free state and full banks
    else await trainer.student().load(args.init, { key: 'model_state' });
    for (const kind of kinds) out[kind] = { seconds: [], phases: {} };
    for (let i = 0; i < args.warmup + args.runs; i++) {
      for (const kind of kinds) {
        const s = steps[i % steps.length];
        const t0 = process.hrtime.bigint();
        const r: AddonStepResult = await trainer.step({
          phase: KINDS[kind].phase, labeledImages: s.labeled_images, labels: s.labels, unlabeledImages: s.unlabeled_images,
          lrBackbone: 0.01, lrHead: 0.1, emaDecay: 0.99, dropPercentile: args.dropPercentile, alpha: args.alpha,
        });
        if (i < args.warmup) continue;
        const { seconds, phases } = out[kind];
        seconds.push(Number(process.hrtime.bigint() - t0) / 1e9);
        for (const [name, v] of Object.entries(r.phases) as [keyof StepPhases, number][]) phases[name] = (phases[name] ?? 0) + v / args.runs;
        // The host's own share: the call's wall time beyond the native step.
        phases.other = (phases.other ?? 0) + (seconds[seconds.length - 1] - r.seconds) / args.runs;
      }
    }
    trainer.dispose();
  }
  // On CUDA, the caching allocator's peak (what torch.cuda.max_memory_allocated gives the Python side).
  const gpu = cuda ? native().cudaMemory() : null;
  process.stdout.write(`${JSON.stringify({ steps: out, peak_rss_mb: process.resourceUsage().maxRSS / 1024, ...(gpu ? { peak_gpu_mb: gpu.peakAllocatedBytes / 2 ** 20 } : {}) })}\n`);
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
