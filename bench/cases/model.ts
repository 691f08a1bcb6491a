/**
 * Network forward+backward: R50 deep-stem DeepLabv3+ OS8 (rep head), 321x321, batch 2, 21 classes,
 * fp32 and bf16 autocast (+ channels-last), next to the same network in plain torch.nn (Python, same
 * LibTorch) when python3-torch is present; and the effect of the thread count.
 */
import { Model, setThreads } from '../../lib';
import { BenchContext, measure, pythonWithTorch, record, runPythonBench } from '../harness';

function randomImages(n: number, size: number) {
  const data = new Float32Array(n * 3 * size * size);
  for (let i = 0; i < data.length; i++) data[i] = Math.random() * 2 - 1;
  return { data, shape: [n, 3, size, size] };
}

function randomLabels(n: number, size: number, classes: number) {
  const data = new BigInt64Array(n * size * size);
  for (let i = 0; i < data.length; i++) data[i] = BigInt(Math.floor(Math.random() * classes));
  return { data, shape: [n, size, size] };
}

export async function benchModel(ctx: BenchContext): Promise<void> {
  const size = 321;
  const batch = 2;
  const classes = 21;
  const runs = ctx.quick ? 2 : 4;
  const shape = { depth: 50, os: 8, size, batch, classes };
  const images = randomImages(batch, size);
  const labels = randomLabels(batch, size, classes);
  const model = new Model({ depth: 50, numClasses: classes, repHead: true, multiGrid: true, seed: 0 });

  const variants: { precision: string; autocast: 'bfloat16' | null; channelsLast: boolean }[] = [
    { precision: 'fp32', autocast: null, channelsLast: false },
    { precision: 'bf16', autocast: 'bfloat16', channelsLast: false },
    { precision: 'bf16+cl', autocast: 'bfloat16', channelsLast: true },
  ];
  for (const v of variants) {
    model.setAutocast(v.autocast);
    model.setChannelsLast(v.channelsLast);
    // Two warm-up runs: the first passes after a layout or precision switch still allocate.
    await measure(ctx, `model.fwd_bwd.${v.precision}`, () => model.lossAndGradients(images, labels), {
      runs, warmup: 2, fields: { ...shape, impl: 'u2pl' },
    });
  }
  model.setAutocast(null);
  model.setChannelsLast(false);

  const python = pythonWithTorch();
  if (python) {
    for (const v of variants) {
      const out = runPythonBench(python, 'forward_backward.py', {
        depth: 50, size, batch, classes, runs, threads: ctx.threads, autocast: v.autocast !== null, channels_last: v.channelsLast,
      });
      record(ctx, `model.fwd_bwd.${v.precision}`, out.seconds as number[], { ...shape, impl: `python-torch-${out.torch as string}` });
    }
  } else {
    process.stdout.write('# python3 with torch not found: the torch.nn comparison lines are skipped (apt-get install python3-torch)\n');
  }

  // Debian's LibTorch defaults to one thread; u2pl sets the available cores.
  if (ctx.threads > 1) {
    setThreads(1);
    await measure(ctx, 'model.fwd_bwd.fp32', () => model.lossAndGradients(images, labels), {
      runs: ctx.quick ? 1 : 2, fields: { ...shape, impl: 'u2pl', threads: 1, note: 'LibTorch default on Debian' },
    });
    setThreads(ctx.threads);
  }
}
