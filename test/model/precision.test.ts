import { loadConfig } from '../../lib/config/config';
import { choosePrecision, Machine, RuntimeSettings } from '../../lib/model/precision';
import { native } from '../../lib/native';
import { train, trainerOptions } from '../../lib/train/train';
import { tinyConfig, writeExperiment } from '../helpers/experiment';

const cpu = (features: Partial<Machine['cpu']>): Machine => ({
  cpu: { model: 'Test CPU', avx2: true, avx512f: false, avx512Bf16: false, amxBf16: false, amxFp16: false, onednnIsa: 'avx2', ...features },
  cudaDevices: [],
});
const gpu = (major: number, minor: number): Machine => ({
  ...cpu({}),
  cudaDevices: [{ name: 'GPU0', capability: [8, 0], memoryGiB: 80 }, { name: `GPU cc${major}.${minor}`, capability: [major, minor], memoryGiB: 16 }],
});
const auto: RuntimeSettings = { device: 'cpu', autocast: 'auto', channelsLast: 'auto' };

describe('runtime.autocast / channels_last: auto', () => {
  test('CPU: bf16 only with AVX512-BF16 or AMX-BF16; channels-last for bf16 and for fp32 on AVX-512, contiguous fp32 on AVX2', () => {
    const avx2 = choosePrecision(auto, cpu({}));
    expect(avx2).toMatchObject({ autocast: null, channelsLast: false, lossScaling: false, warnings: [] });
    expect(avx2.summary).toContain('precision fp32 (auto: Test CPU has no AVX512-BF16 or AMX-BF16');
    expect(avx2.summary).toContain('contiguous layout (auto: fp32 on an AVX2 CPU');
    expect(choosePrecision(auto, cpu({ avx512f: true }))).toMatchObject({ autocast: null, channelsLast: true });
    expect(choosePrecision(auto, cpu({ avx512f: true, avx512Bf16: true }))).toMatchObject({ autocast: 'bfloat16', channelsLast: true });
    expect(choosePrecision(auto, cpu({ avx512f: true, amxBf16: true })).summary).toContain('has AMX-BF16');
  });

  test('CPU: an explicit bfloat16 without the instructions is kept but warned about by key, with the slowdown', () => {
    const p = choosePrecision({ ...auto, autocast: 'bfloat16' }, cpu({}));
    expect(p.autocast).toBe('bfloat16');
    expect(p.channelsLast).toBe(true);
    expect(p.warnings).toHaveLength(1);
    expect(p.warnings[0]).toMatch(/^runtime\.autocast: bfloat16 on Test CPU, which has no AVX512-BF16 or AMX-BF16 instructions: bf16 is emulated there, about 20x slower than fp32/);
    expect(choosePrecision({ ...auto, autocast: 'bfloat16' }, cpu({ avx512f: true, avx512Bf16: true })).warnings).toEqual([]);
    expect(choosePrecision({ ...auto, autocast: null }, cpu({ avx512f: true, avx512Bf16: true })).autocast).toBeNull();
  });

  test('CUDA: bf16 from compute capability 8.0, fp16 with loss scaling on 7.x, fp32 below or when unknown; the rank\'s own GPU decides', () => {
    expect(choosePrecision({ ...auto, device: 'cuda:1' }, gpu(9, 0))).toMatchObject({ autocast: 'bfloat16', channelsLast: true, lossScaling: false });
    const t4 = choosePrecision({ ...auto, device: 'cuda:1' }, gpu(7, 5));
    expect(t4).toMatchObject({ autocast: 'float16', channelsLast: true, lossScaling: true });
    expect(t4.summary).toContain('float16 with dynamic loss scaling (auto: GPU cc7.5 (compute capability 7.5) has fp16 tensor cores but no bf16)');
    expect(choosePrecision({ ...auto, device: 'cuda:1' }, gpu(6, 1))).toMatchObject({ autocast: null, channelsLast: false });
    expect(choosePrecision({ ...auto, device: 'cuda' }, gpu(6, 1)).autocast).toBe('bfloat16');  // cuda = cuda:0
    expect(choosePrecision({ ...auto, device: 'cuda' }, cpu({})).summary).toContain('cannot read the GPU\'s compute capability');
    expect(choosePrecision({ ...auto, device: 'cuda:1', autocast: 'bfloat16' }, gpu(7, 0)).warnings[0]).toContain('runtime.autocast: bfloat16 on GPU cc7.0');
    expect(choosePrecision({ device: 'cuda:1', autocast: 'float16', channelsLast: false }, gpu(9, 0))).toMatchObject({ autocast: 'float16', channelsLast: false, lossScaling: true });
  });

  test('this machine: info() reports the CPU features and auto follows them', () => {
    const info = native().info();
    expect(typeof info.cpu.model).toBe('string');
    expect(typeof info.cpu.onednnIsa).toBe('string');
    expect(info.cpu.avx2).toBe(info.lossKernelIsa === 'avx2');  // the loss kernels' own check agrees (U2PL_DISABLE_AVX2 unset)
    if (info.cpu.avx512Bf16) expect(info.cpu.avx512f).toBe(true);
    const p = choosePrecision(auto, info);
    expect(p.autocast).toBe(info.cpu.avx512Bf16 || info.cpu.amxBf16 ? 'bfloat16' : null);
    expect(p.channelsLast).toBe(p.autocast !== null || info.cpu.avx512f);
    expect(info.cudaDevices.length).toBeLessThanOrEqual(info.cudaDeviceCount);
  });

  test('a run logs the choice once and trains with it; an explicit bfloat16 on this CPU is warned about by key', async () => {
    const info = native().info();
    const logs: string[] = [];
    const c = loadConfig(writeExperiment(tinyConfig(false)));
    await train(c, { maxSteps: 1, onLog: (m) => logs.push(m) });
    const expected = choosePrecision(auto, info);
    expect(logs.filter((m) => m.startsWith('precision '))).toEqual([expected.summary]);
    expect(trainerOptions(c)).toMatchObject({ autocast: expected.autocast, channelsLast: expected.channelsLast, lossScaling: null });
    const bf16 = loadConfig(writeExperiment(tinyConfig(false, { runtime: { autocast: 'bfloat16' } })));
    const warned: string[] = [];
    await train(bf16, { maxSteps: 1, onLog: (m) => warned.push(m) });
    const warning = warned.filter((m) => m.startsWith('warning: runtime.autocast: bfloat16'));
    expect(warning).toHaveLength(info.cpu.avx512Bf16 || info.cpu.amxBf16 ? 0 : 1);
  }, 180000);
});
