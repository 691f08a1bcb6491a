/**
 * npm run bench [-- --quick] [-- --only NAME] [-- --json FILE] [-- --precision fp32,fp32+cl,bf16+cl]
 *               [-- --device cpu|cuda] [-- --recipe voc-321,voc-513,camvid-small,smoke]
 * Prints one JSON line per measurement and a table at the end; see BENCHMARKS.md.
 * --device cuda runs the step case (our step and the reference's PyTorch step) on the GPU.
 */
import fs from 'fs';
import { info } from '../lib';
import { BenchContext, printTable } from './harness';
import { benchDistributed } from './cases/distributed';
import { benchEvaluation } from './cases/evaluation';
import { benchLoader } from './cases/loader';
import { benchLosses } from './cases/losses';
import { benchModel } from './cases/model';
import { benchCamvid, benchStep, PRECISIONS, RECIPES } from './cases/step';
import { benchUtilisation } from './cases/utilisation';

const cases: Record<string, (ctx: BenchContext) => Promise<void>> = {
  losses: benchLosses,
  model: benchModel,
  step: benchStep,
  camvid: benchCamvid,
  distributed: benchDistributed,
  evaluation: benchEvaluation,
  loader: benchLoader,
  utilisation: benchUtilisation,
};

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const quick = argv.includes('--quick');
  const only = argv.includes('--only') ? argv[argv.indexOf('--only') + 1].split(',') : Object.keys(cases);
  const jsonFile = argv.includes('--json') ? argv[argv.indexOf('--json') + 1] : undefined;
  for (const name of only) if (!cases[name]) throw new Error(`unknown bench case '${name}' (have: ${Object.keys(cases).join(', ')})`);
  const precisions = argv.includes('--precision') ? argv[argv.indexOf('--precision') + 1].split(',') : undefined;
  const known: string[] = PRECISIONS.map(([name]) => name);
  for (const p of precisions ?? []) if (!known.includes(p)) throw new Error(`unknown --precision '${p}' (have: ${known.join(', ')})`);
  const device = argv.includes('--device') ? argv[argv.indexOf('--device') + 1] : 'cpu';
  if (device !== 'cpu' && device !== 'cuda') throw new Error(`unknown --device '${device}' (have: cpu, cuda)`);
  const recipes = argv.includes('--recipe') ? argv[argv.indexOf('--recipe') + 1].split(',') : undefined;
  for (const r of recipes ?? []) if (!RECIPES.includes(r)) throw new Error(`unknown --recipe '${r}' (have: ${RECIPES.join(', ')})`);
  const i = info();
  if (device === 'cuda') {
    const other = only.filter((name) => name !== 'step');
    if (other.length) throw new Error(`--device cuda runs the step case only (--only step), not ${other.join(', ')}`);
    if (!i.cudaKernels || !i.cudaAvailable) throw new Error(`--device cuda: this addon ${i.cudaKernels ? 'sees no GPU' : 'was built without CUDA (a CUDA LibTorch and nvcc at build time)'}`);
  }
  const ctx: BenchContext = { quick, threads: i.threads, results: [], precisions, device, recipes };
  process.stdout.write(`# u2pl ${i.addonVersion}, LibTorch ${i.libtorchVersion}, ${i.threads} threads, ${i.lossKernelIsa} loss kernels${device === 'cuda' ? ', CUDA' : ''}${quick ? ', quick' : ''}\n`);
  for (const name of only) await cases[name](ctx);
  printTable(ctx.results);
  if (jsonFile) fs.writeFileSync(jsonFile, `${JSON.stringify(ctx.results, null, 2)}\n`);
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
