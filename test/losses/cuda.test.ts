/**
 * The CUDA kernels against the CPU kernels on the same inputs. They run only where the addon was
 * built against a CUDA LibTorch and a device is present (CI has neither: these are skipped there,
 * and the device-option error is what is checked).
 */
import { losses } from '../../lib';
import { native } from '../../lib/native';
import { expectClose, randomLabels, randomTensor } from '../helpers/tensors';

const info = native().info();
const onCuda = info.cudaKernels && info.cudaAvailable ? test : test.skip;

describe('CUDA kernels = CPU kernels', () => {
  onCuda('entropy and unsupervised loss (value, gradient, threshold)', async () => {
    const student = randomTensor([2, 21, 21, 21], 1);
    const teacher = randomTensor([2, 21, 21, 21], 2);
    for (let i = 0; i < teacher.data.length; i++) teacher.data[i] *= 3;
    const pseudo = randomLabels([2, 81, 81], 21, 3, 0.1);
    const cpu = await losses.unsupervisedLoss({ student, teacher, pseudo, q: 80 });
    const gpu = await losses.unsupervisedLoss({ student, teacher, pseudo, q: 80, device: 'cuda' });
    expectClose(gpu.entropy.data, cpu.entropy.data, 1e-5);
    expect(gpu.threshold).toBeCloseTo(cpu.threshold, 5);
    expect(gpu.kept).toBe(cpu.kept);
    expectClose([gpu.loss], [cpu.loss], 1e-5);
    expectClose(gpu.gradStudent!.data, cpu.gradStudent!.data, 1e-5);
  });

  onCuda('contrastive loss (value, gradient, banks), reference and paper rules', async () => {
    const n = 4, c = 6, d = 32, h = 11, H = 41;
    const logits = randomTensor([n, c, h, h], 5);
    const prob = new Float32Array(logits.data.length);
    for (let b = 0; b < n; b++) {
      for (let i = 0; i < h * h; i++) {
        let s = 0;
        for (let k = 0; k < c; k++) s += Math.exp(3 * logits.data[(b * c + k) * h * h + i]);
        for (let k = 0; k < c; k++) prob[(b * c + k) * h * h + i] = Math.exp(3 * logits.data[(b * c + k) * h * h + i]) / s;
      }
    }
    const entropy = randomTensor([2, H, H], 6);
    const base = {
      rep: randomTensor([n, d, h, h], 7), repTeacher: randomTensor([n, d, h, h], 8), probTeacher: { data: prob, shape: [n, c, h, h] },
      labels: randomLabels([2, H, H], c, 9, 0.05), pseudo: randomLabels([2, H, H], c, 10, 0), entropy, alpha: 20,
      capacities: Array(c).fill(500), bank: Array.from({ length: c }, (_, k) => randomTensor([300, d], 11 + k)), seed: 3,
      numQueries: 32, numNegatives: 12, lowRank: 1, highRank: 4,
    };
    for (const extra of [{}, { negatives: 'paper' as const, referenceIndexing: false }]) {
      const cpu = await losses.contrastiveLoss({ ...base, ...extra });
      const gpu = await losses.contrastiveLoss({ ...base, ...extra, device: 'cuda' });
      expect(gpu.enqueued).toEqual(cpu.enqueued);
      expect(gpu.processedClasses).toBe(cpu.processedClasses);
      expectClose([gpu.loss], [cpu.loss], 1e-5);
      expectClose(gpu.gradRep!.data, cpu.gradRep!.data, 1e-5);
      gpu.bank.forEach((t, k) => expectClose(t.data, cpu.bank[k].data, 0));
    }
  });
});

describe('device option', () => {
  test("'cuda' without CUDA kernels or device is a clear error; an unknown device is a TypeError", async () => {
    const student = randomTensor([1, 3, 4, 4], 1);
    const pseudo = randomLabels([1, 8, 8], 3, 2, 0);
    const x = { student, teacher: student, pseudo, q: 80 };
    if (!info.cudaAvailable) {
      await expect(losses.unsupervisedLoss({ ...x, device: 'cuda' })).rejects.toThrow(/'device' is 'cuda', but this LibTorch or machine has no CUDA device/);
    }
    await expect(losses.unsupervisedLoss({ ...x, device: 'tpu' as never })).rejects.toThrow(/option 'device' must be 'cpu' or 'cuda', got 'tpu'/);
  });
});
