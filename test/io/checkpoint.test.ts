import fs from 'fs';
import path from 'path';
import { readCheckpoint, writeCheckpoint } from '../../lib';
import { native } from '../../lib/native';
import { describeWithPython, runPython } from '../helpers/python';
import { tempDir } from '../helpers/temp';

type T = { data: ArrayLike<number | bigint>; shape: number[]; dtype: string };

describe('checkpoint files (PyTorch zip format)', () => {
  test('values round-trip: nested dicts, lists, numbers, strings, tensors of every dtype', async () => {
    const dir = tempDir('ckpt');
    const file = path.join(dir, 'v.pth');
    const value = {
      epoch: 3,
      best_miou: 0.625,
      big: 2 ** 40,
      name: 'u2pl',
      flags: [true, false, null],
      nested: { a: { b: [1, 2.5, 'x'] } },
      f32: { data: new Float32Array([1.5, -2]), shape: [2, 1] },
      f64: { data: new Float64Array([Math.PI]), shape: [] },
      u8: { data: new Uint8Array([0, 255]), shape: [2] },
      i32: { data: new Int32Array([-5, 6, 7, 8]), shape: [2, 2] },
      i64: { data: new BigInt64Array([-(2n ** 62n)]), shape: [1] },
      empty: { data: new Float32Array(0), shape: [0, 3] },
    };
    await writeCheckpoint(file, value);
    const back = (await readCheckpoint(file)) as Record<string, unknown>;
    expect(back.epoch).toBe(3);
    expect(back.best_miou).toBe(0.625);
    expect(back.big).toBe(2 ** 40);
    expect(back.name).toBe('u2pl');
    expect(back.flags).toEqual([true, false, null]);
    expect(back.nested).toEqual({ a: { b: [1, 2.5, 'x'] } });
    for (const key of ['f32', 'f64', 'u8', 'i32', 'i64', 'empty'] as const) {
      const t = back[key] as T;
      expect([key, t.shape, Array.from(t.data)]).toEqual([key, value[key].shape, Array.from(value[key].data as ArrayLike<number | bigint>)]);
    }
    expect(fs.readdirSync(dir)).toEqual(['v.pth']); // no temporary file left behind
  });

  test('unreadable input gives errors that name the file', async () => {
    const dir = tempDir('ckpt');
    const notZip = path.join(dir, 'legacy.pth');
    fs.writeFileSync(notZip, Buffer.from([0x80, 0x02, 0x8a, 0x0a]));
    await expect(readCheckpoint(notZip)).rejects.toThrow(`${notZip}: a PyTorch checkpoint in the legacy (pre-1.6) format`);
    const truncated = path.join(dir, 'cut.pth');
    await writeCheckpoint(path.join(dir, 'whole.pth'), { w: { data: new Float32Array(1000), shape: [1000] } });
    const whole = fs.readFileSync(path.join(dir, 'whole.pth'));
    fs.writeFileSync(truncated, whole.subarray(0, whole.length / 2));
    await expect(readCheckpoint(truncated)).rejects.toThrow(`${truncated}: truncated or damaged`);
    await expect(writeCheckpoint(path.join(dir, 'no/such/dir/x.pth'), { a: 1 })).rejects.toThrow('no/such/dir/x.pth: cannot write');
    await expect(writeCheckpoint(path.join(dir, 'f.pth'), { f: () => 1 })).rejects.toThrow('value.f cannot be stored');
  });

  test('a failed write leaves the previous file intact', async () => {
    const dir = tempDir('ckpt');
    const file = path.join(dir, 'ckpt.pth');
    await writeCheckpoint(file, { epoch: 1 });
    await expect(writeCheckpoint(file, { epoch: 2, bad: Symbol('x') })).rejects.toThrow();
    expect(await readCheckpoint(file)).toEqual({ epoch: 1 });
    // A write that fails at the last step (the target is a folder) removes its temporary file.
    const folder = path.join(dir, 'folder.pth');
    fs.mkdirSync(path.join(folder, 'inside'), { recursive: true });
    await expect(writeCheckpoint(folder, { epoch: 3 })).rejects.toThrow('cannot rename the temporary file into place');
    expect(fs.readdirSync(dir).sort()).toEqual(['ckpt.pth', 'folder.pth']);
  });
});

describeWithPython('interoperability with Python torch', () => {
  test('reads OrderedDicts, fp16/bf16/bool storages, views sharing a storage, parameters and Python scalars', async () => {
    const dir = tempDir('ckpt');
    runPython(`
import sys, torch, collections
base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
sd = collections.OrderedDict([("w", torch.nn.Parameter(torch.ones(2, 2))), ("b", torch.zeros(2))])
sd._metadata = {"": {"version": 1}}
torch.save({
  "state": sd,
  "half": torch.tensor([1.5, -2.25], dtype=torch.float16),
  "bf16": torch.tensor([1.5, -2.25], dtype=torch.bfloat16),
  "mask": torch.tensor([True, False, True]),
  "base": base, "row": base[1], "col": base[:, 2], "t": base.t(),
  "i": 7, "f": 0.25, "s": "x", "tuple": (1, 2), "none": None, "long": 2**62,
  "intkeys": {0: "a", 1: "b"},
}, sys.argv[1] + "/py.pth")
`, [dir]);
    const v = (await readCheckpoint(path.join(dir, 'py.pth'))) as Record<string, any>;
    expect(Object.keys(v.state)).toEqual(['w', 'b']);
    expect(Array.from(v.state.w.data)).toEqual([1, 1, 1, 1]);
    expect(v.half.dtype).toBe('float32');
    expect(Array.from(v.half.data)).toEqual([1.5, -2.25]);
    expect(Array.from(v.bf16.data)).toEqual([1.5, -2.25]);
    expect(Array.from(v.mask.data)).toEqual([1, 0, 1]);
    expect(Array.from(v.row.data)).toEqual([4, 5, 6, 7]);
    expect(Array.from(v.col.data)).toEqual([2, 6, 10]);
    expect(v.t.shape).toEqual([4, 3]);
    expect(Array.from(v.t.data).slice(0, 4)).toEqual([0, 4, 8, 1]);
    expect([v.i, v.f, v.s, v.tuple, v.none, v.long]).toEqual([7, 0.25, 'x', [1, 2], null, 2n ** 62n]);
    expect(v.intkeys).toEqual({ 0: 'a', 1: 'b' });
  });

  test('Python reads what we write, with the same values and dtypes', async () => {
    const dir = tempDir('ckpt');
    await writeCheckpoint(path.join(dir, 'ours.pth'), {
      epoch: 4, lr: 0.01, w: { data: new Float32Array([1, 2, 3, 4, 5, 6]), shape: [2, 3] }, ids: { data: new BigInt64Array([5n]), shape: [1] },
      nested: { list: [1, 'a'] },
    });
    const out = runPython(`
import sys, torch
c = torch.load(sys.argv[1] + "/ours.pth")
assert c["epoch"] == 4 and c["lr"] == 0.01, c
assert c["w"].dtype == torch.float32 and c["w"].shape == (2, 3) and c["w"][1, 2].item() == 6
assert c["ids"].dtype == torch.int64 and c["ids"].item() == 5
assert c["nested"] == {"list": [1, "a"]}
print("ok")
`, [dir]);
    expect(out.trim()).toBe('ok');
  });
});

describeWithPython("resuming the reference's ckpt.pth", () => {
  test('with an aux head: three optimizer groups (encoder, aux, decoder), momentum buffers land on their parameters', async () => {
    const dir = tempDir('refckpt');
    const model = { depth: 18, deepStem: false, replaceStrideWithDilation: [false, false, true] as [boolean, boolean, boolean], numClasses: 3, innerPlanes: 8, headPlanes: 8, dilations: [1, 2, 3] as [number, number, number], repHead: false, aux: true };
    const make = () => new (native().AddonTrainer)({ model, semi: false, seed: 1, supervised: { auxWeight: 0.4 } });
    const trainer = make();
    const state = trainer.student().stateDict();
    const { backbone, head } = trainer.student().parameterGroups();
    // The reference's order: encoder, then the aux head, then the decoder.
    const order = [...backbone, ...head.filter((n) => n.startsWith('auxor.')), ...head.filter((n) => n.startsWith('decoder.'))];
    expect(order).toHaveLength(backbone.length + head.length);
    await writeCheckpoint(path.join(dir, 'plain.pth'), { state, order });
    // Python writes the file as the reference's train script does: module.-prefixed OrderedDict, 3 groups,
    // momentum buffer i filled with i (so a buffer on the wrong parameter shows).
    runPython(`
import sys, torch, collections
src = torch.load(sys.argv[1] + "/plain.pth")
order, sd = src["order"], src["state"]
groups, i = [], 0
counts = [sum(1 for n in order if n.startswith(p)) for p in ("encoder.", "auxor.", "decoder.")]
for count, lr in zip(counts, (0.01, 0.01, 0.01)):
    groups.append({"lr": lr, "momentum": 0.9, "dampening": 0, "weight_decay": 0.0005, "nesterov": False, "params": list(range(i, i + count))})
    i += count
state = {k: {"momentum_buffer": torch.full(sd[n].shape, float(k))} for k, n in enumerate(order)}
torch.save({"epoch": 3, "best_miou": 0.41,
            "model_state": collections.OrderedDict(("module." + k, v) for k, v in sd.items()),
            "optimizer_state": {"state": state, "param_groups": groups}}, sys.argv[1] + "/ckpt.pth")
`, [dir]);
    const resumed = make();
    const extra = await resumed.load(path.join(dir, 'ckpt.pth'));
    expect(extra.epoch).toBe(3);
    await resumed.save(path.join(dir, 'again.pth'));
    const again = (await readCheckpoint(path.join(dir, 'again.pth'))) as Record<string, any>;
    const groups = again.optimizer_state.param_groups as { params: number[] }[];
    expect(groups.map((g) => g.params.length)).toEqual([backbone.length, order.filter((n) => n.startsWith('auxor.')).length, order.filter((n) => n.startsWith('decoder.')).length]);
    const buffers = again.optimizer_state.state as Record<string, { momentum_buffer: T }>;
    order.forEach((name, k) => {
      const b = buffers[k].momentum_buffer;
      expect([name, b.shape]).toEqual([name, state[name].shape]);
      expect(Array.from(b.data).every((v) => v === k)).toBe(true);
    });
  });
});
