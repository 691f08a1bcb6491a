import { execFileSync } from 'child_process';
import * as path from 'path';
import { info } from '../../lib';
import { lossKernelDigest } from '../helpers/loss-kernel-digest';

const tsNode = require.resolve('ts-node/dist/bin.js');
const script = path.join(__dirname, '../helpers/loss-kernel-digest.ts');

describe('CPU loss kernels: the AVX2 and the baseline copy', () => {
  test('give the same bits (entropy, fused CE, InfoNCE: values and gradients)', async () => {
    const here = await lossKernelDigest();
    const env = { ...process.env, U2PL_DISABLE_AVX2: '1' };
    const baseline = JSON.parse(execFileSync(process.execPath, [tsNode, '--transpile-only', script], { env }).toString());
    expect(baseline.isa).toBe('baseline');
    // On a CPU without AVX2 both runs use the baseline copy and this only checks repeatability.
    expect(here.isa).toBe(process.env.U2PL_DISABLE_AVX2 ? 'baseline' : info().lossKernelIsa);
    expect(baseline.outputs).toEqual(here.outputs);
  });
});
