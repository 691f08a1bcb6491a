import { cast, DType, Tensor, TypedArray } from '../../lib';

const samples: Record<DType, () => TypedArray> = {
  float32: () => new Float32Array([0, -1.5, 3.25, 1e-7, -65504, 2 ** 20]),
  float64: () => new Float64Array([0, -1.5, Math.PI, 1e-300, -1e300, 2 ** 52]),
  uint8: () => new Uint8Array([0, 1, 127, 128, 254, 255]),
  int8: () => new Int8Array([-128, -1, 0, 1, 64, 127]),
  int16: () => new Int16Array([-32768, -1, 0, 1, 1000, 32767]),
  int32: () => new Int32Array([-(2 ** 31), -7, 0, 7, 123456789, 2 ** 31 - 1]),
  int64: () => new BigInt64Array([-(2n ** 63n), -7n, 0n, 7n, 2n ** 40n, 2n ** 63n - 1n]),
};

const ctorOf: Record<DType, new (n: number) => TypedArray> = {
  float32: Float32Array, float64: Float64Array, uint8: Uint8Array, int8: Int8Array,
  int16: Int16Array, int32: Int32Array, int64: BigInt64Array,
};

describe('typed array <-> tensor round trips', () => {
  for (const dtype of Object.keys(samples) as DType[]) {
    test.each([[[6]], [[2, 3]], [[3, 1, 2]], [[1, 1, 1, 6]]])(`${dtype} keeps values and shape %j`, (shape) => {
      const data = samples[dtype]();
      const out = cast({ data, shape }, dtype);
      expect(out.dtype).toBe(dtype);
      expect(out.shape).toEqual(shape);
      expect(Object.prototype.toString.call(out.data)).toBe(`[object ${ctorOf[dtype].name}]`); // arrays come from the main realm, not jest's
      expect(Array.from(out.data as ArrayLike<number | bigint>)).toEqual(Array.from(data as ArrayLike<number | bigint>));
      // The result does not alias the input: JS may free or change the input afterwards.
      (data as { fill(v: number | bigint): void }).fill(dtype === 'int64' ? 1n : 1);
      expect(out.data[0]).not.toEqual(data[0]);
    });
  }

  test('empty and scalar tensors', () => {
    const empty = cast({ data: new Float32Array(0), shape: [0, 4] }, 'float32');
    expect(empty.shape).toEqual([0, 4]);
    expect(empty.data.length).toBe(0);
    const scalar = cast({ data: new Int32Array([42]), shape: [] }, 'int64');
    expect(scalar.shape).toEqual([]);
    expect(scalar.data[0]).toBe(42n);
  });

  test('a view into a larger buffer reads only its own elements', () => {
    const buffer = new Float32Array([9, 9, 1, 2, 3, 4, 9, 9]);
    const view = buffer.subarray(2, 6);
    const out = cast({ data: view, shape: [2, 2] }, 'float64');
    expect(Array.from(out.data as Float64Array)).toEqual([1, 2, 3, 4]);
  });

  test('conversions between dtypes follow LibTorch (truncation toward zero, wrap-around)', () => {
    const out = cast({ data: new Float32Array([1.9, -1.9, 300]), shape: [3] }, 'int32');
    expect(Array.from(out.data as Int32Array)).toEqual([1, -1, 300]);
    const bytes = cast({ data: new Int32Array([256 + 7, -1]), shape: [2] }, 'uint8');
    expect(Array.from(bytes.data as Uint8Array)).toEqual([7, 255]);
  });

  test('shape and data disagreeing is an error naming both', () => {
    expect(() => cast({ data: new Float32Array(5), shape: [2, 3] }, 'float32')).toThrow(
      'tensor.shape [2, 3] holds 6 elements but tensor.data has 5',
    );
    expect(() => cast({ data: new Float32Array(6), shape: [2, -3] }, 'float32')).toThrow('tensor.shape[1] must be a non-negative integer');
    expect(() => cast({ data: [1, 2] as unknown as Float32Array, shape: [2] } as Tensor, 'float32')).toThrow('tensor.data must be a typed array');
    expect(() => cast({ data: new Float32Array(1), shape: [1] }, 'complex64' as DType)).toThrow("unknown dtype 'complex64'");
  });
});
