import { types } from 'util';
import { matmul } from '../../lib';

describe('native errors', () => {
  test("a LibTorch error arrives as a JS Error with LibTorch's message", async () => {
    const a = { data: new Float32Array(6), shape: [2, 3] };
    const b = { data: new Float32Array(20), shape: [4, 5] };
    const error = await matmul(a, b).then(() => undefined, (e: unknown) => e);
    expect(types.isNativeError(error)).toBe(true);
    expect((error as Error).message).toContain('mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)');
    // No C++ backtrace in the message.
    expect((error as Error).message).not.toMatch(/frame #\d/);
  });

  test('bad arguments reject with the argument named', async () => {
    await expect(matmul({ data: new Float32Array(4), shape: [5] }, { data: new Float32Array(4), shape: [4] })).rejects.toThrow(
      'a.shape [5] holds 5 elements but a.data has 4',
    );
  });
});
