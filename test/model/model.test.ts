import path from 'path';
import { InferenceOptions, Model, writeCheckpoint } from '../../lib';
import { bitEqual, maxAbs, maxAbsDiff, randomTensor } from '../helpers/tensors';
import { describeWithPython, runPython } from '../helpers/python';
import { tempDir } from '../helpers/temp';

// Spatial size after the stem (conv stride 2 then 3x3/2 max-pool) and after a stride-2 3x3 conv.
const half = (n: number) => Math.floor((n - 1) / 2) + 1;
const stemOut = (n: number, deep: boolean) => (deep ? Math.ceil((half(n) - 1) / 2) + 1 : Math.floor((half(n) - 1) / 2) + 1);

describe('output shapes', () => {
  const size = 65;
  for (const depth of [18, 34, 50, 101] as const) {
    for (const os of [8, 16]) {
      test(`ResNet-${depth} OS${os}: pred and rep at stride 4, aux at the encoder's stride`, async () => {
        const model = new Model({
          depth, numClasses: 5, aux: true, repHead: true, seed: 1,
          replaceStrideWithDilation: os === 8 ? [false, true, true] : [false, false, true],
          multiGrid: depth >= 50,
        });
        const out = await model.forward(randomTensor([2, 3, size, size]), { train: true });
        const x1 = stemOut(size, true);
        const x3 = os === 8 ? half(x1) : half(half(x1));
        expect(out.pred.shape).toEqual([2, 5, x1, x1]);
        expect(out.rep!.shape).toEqual([2, 256, x1, x1]);
        expect(out.aux!.shape).toEqual([2, 5, x3, x3]);
      });
    }
  }

  test('the torchvision stem gives the same strides and torchvision names', async () => {
    const model = new Model({ depth: 18, deepStem: false, numClasses: 3, repHead: false, seed: 1 });
    const out = await model.forward(randomTensor([1, 3, 64, 64]));
    expect(out.pred.shape).toEqual([1, 3, 16, 16]);
    expect(out.rep).toBeUndefined();
    const names = Object.keys(model.stateDict());
    expect(names).toContain('encoder.conv1.weight');
    expect(names).toContain('encoder.bn1.running_var');
    expect(names.some((n) => n.startsWith('encoder.conv1.0'))).toBe(false);
  });

  test('513x513 gives the sizes of the spec table (x1 129, x4 65): pred 129x129', async () => {
    const model = new Model({ depth: 50, numClasses: 21, aux: true, multiGrid: true, seed: 1 });
    const out = await model.forward(randomTensor([1, 3, 513, 513]));
    expect(out.pred.shape).toEqual([1, 21, 129, 129]);
    expect(out.aux!.shape).toEqual([1, 21, 65, 65]);
  });
});

describe('parameters', () => {
  test('R101 deep-stem DeepLabv3+ with representation head, 21 classes: 64,459,989 parameters', () => {
    // Encoder 42,623,936 (of which the deep stem with its 128-ch BN is 112,832), ASPP 15,206,912,
    // head 2,949,632, low_conv 66,304, classifier 1,776,405, representation 1,836,800 (§4), as counted
    // on the independent torch.nn construction in bench/python/reference_net.py.
    const model = new Model({ depth: 101, numClasses: 21, repHead: true, multiGrid: true });
    expect(model.parameterCount()).toBe(64459989);
  });

  test('parameter groups: backbone = encoder.*, heads = decoder.* and auxor.*', () => {
    const model = new Model({ depth: 18, numClasses: 4, aux: true });
    const groups = model.parameterGroups();
    expect(groups.backbone.length).toBeGreaterThan(0);
    expect(groups.backbone.every((n) => n.startsWith('encoder.'))).toBe(true);
    expect(groups.head.every((n) => n.startsWith('decoder.') || n.startsWith('auxor.'))).toBe(true);
    expect(groups.head).toContain('auxor.aux.4.bias');
    expect(groups.head).toContain('decoder.classifier.8.weight');
    const state = model.stateDict();
    const total = [...groups.backbone, ...groups.head].reduce((s, n) => s + state[n].data.length, 0);
    expect(total).toBe(model.parameterCount());
  });
});

describe('train and eval modes', () => {
  test('eval is deterministic and leaves BN statistics alone; train updates them and applies dropout', async () => {
    const model = new Model({ depth: 18, numClasses: 3, seed: 3 });
    const x = randomTensor([2, 3, 48, 48], 7);
    const before = model.stateDict();
    const e1 = await model.forward(x);
    const e2 = await model.forward(x);
    expect(bitEqual(e1.pred, e2.pred)).toBe(true);
    expect(bitEqual(model.stateDict()['encoder.bn1.running_mean'], before['encoder.bn1.running_mean'])).toBe(true);

    const t1 = await model.forward(x, { train: true });
    const after = model.stateDict();
    expect(bitEqual(after['encoder.bn1.running_mean'], before['encoder.bn1.running_mean'])).toBe(false);
    expect(after['encoder.bn1.num_batches_tracked'].data[0]).toBe(1n);
    const t2 = await model.forward(x, { train: true });
    expect(model.stateDict()['encoder.bn1.num_batches_tracked'].data[0]).toBe(2n);
    // Same input and batch statistics: any difference comes from Dropout2d.
    expect(maxAbsDiff(t1.pred.data, t2.pred.data)).toBeGreaterThan(0);
    // Dropout2d zeroes whole channels of the representation head's input per sample; eval never does.
    expect(maxAbsDiff(e1.pred.data, t1.pred.data)).toBeGreaterThan(0);
  });

  test('lossAndGradients returns a finite cross-entropy', async () => {
    const model = new Model({ depth: 18, numClasses: 3, seed: 3 });
    const labels = { data: new BigInt64Array(2 * 32 * 32).map((_, i) => BigInt(i % 4 === 3 ? 255 : i % 3)), shape: [2, 32, 32] };
    const { loss } = await model.lossAndGradients(randomTensor([2, 3, 32, 32]), labels);
    expect(Number.isFinite(loss)).toBe(true);
    expect(loss).toBeGreaterThan(0.5); // ~ln 3 for an untrained 3-class head
  });
});

describe('weights', () => {
  test('save -> load round trip is bit-exact', async () => {
    const dir = tempDir('model');
    const a = new Model({ depth: 18, numClasses: 4, aux: true, seed: 1 });
    await a.forward(randomTensor([2, 3, 32, 32]), { train: true }); // non-trivial BN buffers
    const b = new Model({ depth: 18, numClasses: 4, aux: true, seed: 2 });
    const file = path.join(dir, 'a.pth');
    await a.save(file);
    const report = await b.load(file);
    expect(report).toEqual({ key: 'model_state', loaded: Object.keys(a.stateDict()).length, missing: [], unexpected: [] });
    const sa = a.stateDict();
    const sb = b.stateDict();
    for (const name of Object.keys(sa)) expect([name, bitEqual(sa[name], sb[name])]).toEqual([name, true]);
    const x = randomTensor([1, 3, 40, 40], 5);
    expect(bitEqual((await a.forward(x)).pred, (await b.forward(x)).pred)).toBe(true);
  });

  test('missing and unexpected names are reported; a shape mismatch names the key and both shapes', async () => {
    const dir = tempDir('model');
    const model = new Model({ depth: 18, numClasses: 4, seed: 1 });
    const state: Record<string, unknown> = { ...model.stateDict() };
    delete state['decoder.classifier.8.bias'];
    state['decoder.extra.weight'] = { data: new Float32Array(3), shape: [3] };
    await writeCheckpoint(path.join(dir, 'partial.pth'), { model_state: state });
    const report = await model.load(path.join(dir, 'partial.pth'));
    expect(report.missing).toEqual(['decoder.classifier.8.bias']);
    expect(report.unexpected).toEqual(['decoder.extra.weight']);

    state['decoder.classifier.8.bias'] = { data: new Float32Array(7), shape: [7] };
    await writeCheckpoint(path.join(dir, 'bad.pth'), { model_state: state });
    await expect(model.load(path.join(dir, 'bad.pth'))).rejects.toThrow(
      "shape mismatch for 'decoder.classifier.8.bias': checkpoint has [7], model has [4]",
    );
    await expect(model.load(path.join(dir, 'partial.pth'), { key: 'teacher_state' })).rejects.toThrow(
      "no key 'teacher_state' (keys: model_state)",
    );
    await expect(model.load(path.join(dir, 'nothing.pth'))).rejects.toThrow('nothing.pth: cannot open');
  });

  test('the "module." prefix is stripped and teacher_state is preferred', async () => {
    const dir = tempDir('model');
    const teacher = new Model({ depth: 18, numClasses: 2, seed: 11 });
    const student = new Model({ depth: 18, numClasses: 2, seed: 12 });
    const prefixed = (m: Model) => Object.fromEntries(Object.entries(m.stateDict()).map(([k, v]) => [`module.${k}`, v]));
    await writeCheckpoint(path.join(dir, 'ckpt.pth'), { epoch: 3, model_state: prefixed(student), teacher_state: prefixed(teacher) });
    const fresh = new Model({ depth: 18, numClasses: 2, seed: 13 });
    const report = await fresh.load(path.join(dir, 'ckpt.pth'));
    expect(report.key).toBe('teacher_state');
    expect(report.missing).toEqual([]);
    expect(bitEqual(fresh.stateDict()['decoder.head.0.weight'], teacher.stateDict()['decoder.head.0.weight'])).toBe(true);
    await fresh.load(path.join(dir, 'ckpt.pth'), { key: 'model_state' });
    expect(bitEqual(fresh.stateDict()['decoder.head.0.weight'], student.stateDict()['decoder.head.0.weight'])).toBe(true);
  });

  test('copyFrom copies everything; emaFrom averages parameters only', async () => {
    const teacher = new Model({ depth: 18, numClasses: 2, seed: 1 });
    const student = new Model({ depth: 18, numClasses: 2, seed: 2 });
    await student.forward(randomTensor([2, 3, 32, 32]), { train: true });
    const t0 = teacher.stateDict();
    const s0 = student.stateDict();
    teacher.emaFrom(student, 0.99);
    const t1 = teacher.stateDict();
    const w = 'decoder.classifier.8.weight';
    const expected = Array.from(t0[w].data as Float32Array, (t, i) => 0.99 * t + 0.01 * (s0[w].data as Float32Array)[i]);
    expect(maxAbsDiff(t1[w].data as Float32Array, expected)).toBeLessThan(1e-6);
    // BN buffers stay the teacher's own.
    expect(bitEqual(t1['encoder.bn1.running_mean'], t0['encoder.bn1.running_mean'])).toBe(true);
    expect(() => teacher.emaFrom(student, 1.5)).toThrow('EMA decay must be in [0, 1]');

    teacher.copyFrom(student);
    const t2 = teacher.stateDict();
    for (const name of Object.keys(s0)) expect([name, bitEqual(t2[name], s0[name])]).toEqual([name, true]);
    const other = new Model({ depth: 34, numClasses: 2 });
    expect(() => other.copyFrom(student)).toThrow('different architectures');
  });

  test('channels-last gives the same result; bf16 autocast stays close to fp32', async () => {
    const model = new Model({ depth: 18, numClasses: 3, seed: 4 });
    const x = randomTensor([1, 3, 64, 64], 9);
    const ref = await model.forward(x);
    model.setChannelsLast(true);
    const cl = await model.forward(x);
    expect(maxAbsDiff(ref.pred.data, cl.pred.data)).toBeLessThan(1e-4 * Math.max(1, maxAbs(ref.pred.data)));
    model.setAutocast('bfloat16');
    const bf = await model.forward(x);
    expect(bf.pred.dtype).toBe('float32');
    expect(maxAbsDiff(ref.pred.data, bf.pred.data)).toBeLessThan(0.1 * maxAbs(ref.pred.data));
    expect(maxAbsDiff(ref.pred.data, bf.pred.data)).toBeGreaterThan(0); // it really ran in bf16
    model.setAutocast(null);
    model.setChannelsLast(false);
    expect(bitEqual((await model.forward(x)).pred, ref.pred)).toBe(true);
    expect(() => model.setAutocast('float16')).toThrow('float16 autocast needs a CUDA device');
  });

  test('an ImageNet backbone checkpoint loads into the encoder; fc.* is reported unexpected', async () => {
    const dir = tempDir('model');
    const donor = new Model({ depth: 18, numClasses: 2, seed: 21 });
    const backbone: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(donor.stateDict())) if (k.startsWith('encoder.')) backbone[k.slice(8)] = v;
    backbone['fc.weight'] = { data: new Float32Array(1000 * 512), shape: [1000, 512] };
    backbone['fc.bias'] = { data: new Float32Array(1000), shape: [1000] };
    await writeCheckpoint(path.join(dir, 'resnet18.pth'), { state_dict: backbone });
    const model = new Model({ depth: 18, numClasses: 2, seed: 22 });
    const report = await model.load(path.join(dir, 'resnet18.pth'), { into: 'encoder' });
    expect(report.missing).toEqual([]);
    expect(report.unexpected).toEqual(['fc.weight', 'fc.bias']);
    expect(bitEqual(model.stateDict()['encoder.layer4.1.conv2.weight'], donor.stateDict()['encoder.layer4.1.conv2.weight'])).toBe(true);
    expect(bitEqual(model.stateDict()['decoder.head.0.weight'], donor.stateDict()['decoder.head.0.weight'])).toBe(false);
  });
});

describeWithPython('compatibility with Python torch', () => {
  test('state-dict names and shapes equal the torch.nn construction of the reference, for every variant', () => {
    for (const [depth, aux, rep, deepStem] of [[101, false, true, true], [50, true, false, true], [18, true, true, true], [34, false, false, false]] as const) {
      const ours = new Model({ depth, aux, repHead: rep, deepStem, numClasses: 19, multiGrid: true });
      const out = JSON.parse(runPython(
        'import json,sys; from reference_net import Model; m=Model(**json.loads(sys.argv[1]));' +
        'print(json.dumps({"n": sum(p.numel() for p in m.parameters()), "s": [[k, list(v.shape)] for k, v in m.state_dict().items()]}))',
        [JSON.stringify({ depth, aux, rep_head: rep, deep_stem: deepStem, num_classes: 19, multi_grid: true })],
      )) as { n: number; s: [string, number[]][] };
      const state = ours.stateDict();
      expect(Object.entries(state).map(([k, v]) => [k, v.shape])).toEqual(out.s);
      expect(ours.parameterCount()).toBe(out.n);
    }
  });

  test('a checkpoint written by torch.save loads and gives the same predictions as Python', async () => {
    const dir = tempDir('pycompat');
    runPython(`
import sys, torch
from reference_net import Model
torch.manual_seed(0)
m = Model(depth=50, num_classes=7, rep_head=True, aux=True, multi_grid=True)
m.train()
with torch.no_grad():
    for _ in range(2): m(torch.randn(2, 3, 33, 33))  # non-trivial BN statistics
m.eval()
x = torch.randn(2, 3, 41, 41)
with torch.no_grad():
    out = m(x)
state = {"module." + k: v for k, v in m.state_dict().items()}
import collections
torch.save({"epoch": 5, "best_miou": 0.5, "model_state": collections.OrderedDict(state), "optimizer_state": {"state": {}, "param_groups": [{"lr": 0.01, "params": [0, 1]}]}}, sys.argv[1] + "/ckpt.pth")
torch.save({"x": x, "pred": out["pred"], "rep": out["rep"], "aux": out["aux"]}, sys.argv[1] + "/io.pth")
`, [dir]);
    const model = new Model({ depth: 50, numClasses: 7, repHead: true, aux: true, multiGrid: true, seed: 99 });
    const report = await model.load(path.join(dir, 'ckpt.pth'));
    expect(report.key).toBe('model_state');
    expect(report.missing).toEqual([]);
    expect(report.unexpected).toEqual([]);
    const { readCheckpoint } = await import('../../lib');
    const io = (await readCheckpoint(path.join(dir, 'io.pth'))) as Record<string, { data: Float32Array; shape: number[] }>;
    const out = await model.forward(io.x);
    for (const key of ['pred', 'rep', 'aux'] as const) {
      expect(out[key]!.shape).toEqual(io[key].shape);
      expect(maxAbsDiff(out[key]!.data, io[key].data)).toBeLessThan(1e-4 * Math.max(1, maxAbs(io[key].data)));
    }
  });

  test.each<[string, InferenceOptions, string]>([
    ['whole image, scales 0.75 and 1.3 (sizes rounded), flip', { mode: 'whole', scales: [0.75, 1.3], flip: true }, 'whole(m, x, scales=(0.75, 1.3), flip=True)'],
    ['sliding windows of 24 x 32 (crop_h x crop_w), scales 1 and 0.8', { mode: 'slide', crop: [24, 32], scales: [1, 0.8] }, 'slide(m, x, 24, 32, scales=(1.0, 0.8))'],
  ])('predict(): %s, as the reference evaluates (bench/python/reference_eval.py)', async (_, options, call) => {
    const dir = tempDir('pyeval');
    const model = new Model({ depth: 18, numClasses: 4, repHead: false, seed: 12, replaceStrideWithDilation: [false, false, true] });
    await model.forward(randomTensor([2, 3, 33, 33], 4), { train: true });
    await model.save(path.join(dir, 'ours.pth'), 'model_state');
    const x = randomTensor([1, 3, 30, 41], 9);
    const { writeCheckpoint: write, readCheckpoint } = await import('../../lib');
    await write(path.join(dir, 'x.pth'), { x });
    runPython(`
import sys, torch
from reference_net import Model
from reference_eval import whole, slide
m = Model(depth=18, num_classes=4, rep_head=False, replace_stride_with_dilation=[False, False, True])
m.load_state_dict(torch.load(sys.argv[1] + "/ours.pth")["model_state"], strict=True)
m.eval()
x = torch.load(sys.argv[1] + "/x.pth")["x"]
conf, pred = torch.softmax(${call}, 1).max(1)
torch.save({"pred": pred[0].to(torch.int32), "conf": conf[0]}, sys.argv[1] + "/out.pth")
`, [dir]);
    const py = (await readCheckpoint(path.join(dir, 'out.pth'))) as { pred: { data: Int32Array }; conf: { data: Float32Array } };
    const ours = await model.predict(x, options);
    expect(maxAbsDiff(ours.confidence.data, py.conf.data)).toBeLessThan(1e-4);
    expect(Array.from(ours.prediction.data)).toEqual(Array.from(py.pred.data));
  });

  test('Python torch.load reads our checkpoint into the reference model and predicts the same', async () => {
    const dir = tempDir('pycompat');
    const model = new Model({ depth: 18, numClasses: 5, repHead: true, aux: true, seed: 5 });
    await model.forward(randomTensor([2, 3, 33, 33], 3), { train: true });
    await model.save(path.join(dir, 'ours.pth'), 'teacher_state');
    const x = randomTensor([1, 3, 37, 37], 8);
    const { writeCheckpoint: write, readCheckpoint } = await import('../../lib');
    await write(path.join(dir, 'x.pth'), { x });
    runPython(`
import sys, torch, collections
from reference_net import Model
ckpt = torch.load(sys.argv[1] + "/ours.pth")
assert isinstance(ckpt["teacher_state"], collections.OrderedDict)
m = Model(depth=18, num_classes=5, rep_head=True, aux=True)
m.load_state_dict(ckpt["teacher_state"], strict=True)
m.eval()
x = torch.load(sys.argv[1] + "/x.pth")["x"]
with torch.no_grad():
    torch.save({"pred": m(x)["pred"]}, sys.argv[1] + "/pred.pth")
`, [dir]);
    const py = (await readCheckpoint(path.join(dir, 'pred.pth'))) as { pred: { data: Float32Array } };
    const ours = await model.forward(x);
    expect(maxAbsDiff(ours.pred.data, py.pred.data)).toBeLessThan(1e-4 * Math.max(1, maxAbs(py.pred.data)));
  });
});
