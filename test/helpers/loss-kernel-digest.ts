/**
 * Runs the CPU loss kernels that have an AVX2 and a baseline copy (entropy, fused upsample + CE,
 * InfoNCE) on fixed inputs and returns a digest of every output's bytes. Imported by the ISA test
 * and run as a child process with U2PL_DISABLE_AVX2=1 (then it prints the digest as JSON).
 */
import { createHash } from 'crypto';
import { info, losses } from '../../lib';
import { randomLabels, randomTensor } from './tensors';

function digest(x: ArrayBufferView | number): string {
  const bytes = typeof x === 'number' ? new Float64Array([x]) : x;
  return createHash('sha256').update(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)).digest('hex').slice(0, 16);
}

export async function lossKernelDigest(): Promise<{ isa: string; outputs: Record<string, string> }> {
  // Widths that are not multiples of 8 (vector tails), D = 260 (lanes plus a tail).
  const logits = randomTensor([2, 7, 11, 13], 3);
  for (let i = 0; i < logits.data.length; i++) logits.data[i] *= 3;
  const entropy = await losses.upsampledEntropy(logits, 41, 51);
  const student = randomTensor([2, 7, 11, 13], 4);
  const pseudo = randomLabels([2, 41, 51], 7, 5, 0.1);
  const u = await losses.unsupervisedLoss({ student, teacher: logits, pseudo, q: 80 });
  const classes = 4, d = 260, h = 9, H = 33;
  const probs = randomTensor([3, classes, h, h], 6);
  for (let i = 0; i < probs.data.length; i++) probs.data[i] = Math.abs(probs.data[i]);
  const c = await losses.contrastiveLoss({
    rep: randomTensor([3, d, h, h], 7), repTeacher: randomTensor([3, d, h, h], 8), probTeacher: probs,
    labels: randomLabels([1, H, H], classes, 9, 0.05), pseudo: randomLabels([2, H, H], classes, 10, 0),
    entropy: randomTensor([2, H, H], 11), alpha: 20, capacities: [200, 150, 150, 150],
    bank: [0, 1, 2, 3].map((k) => randomTensor([120, d], 12 + k)), seed: 3, numQueries: 16, numNegatives: 10,
    lowRank: 1, highRank: 3,
  });
  return {
    isa: info().lossKernelIsa,
    outputs: {
      entropy: digest(entropy.data), unsupLoss: digest(u.loss), unsupGrad: digest(u.gradStudent!.data),
      contraLoss: digest(c.loss), contraGrad: digest(c.gradRep!.data),
    },
  };
}

if (require.main === module) {
  lossKernelDigest().then((r) => process.stdout.write(JSON.stringify(r)));
}
