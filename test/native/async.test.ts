import { matmul } from '../../lib';

function randomMatrix(n: number): Float32Array {
  const data = new Float32Array(n * n);
  for (let i = 0; i < data.length; i++) data[i] = Math.random() - 0.5;
  return data;
}

describe('async native work', () => {
  test('matmul computes the product', async () => {
    const a = { data: new Float32Array([1, 2, 3, 4, 5, 6]), shape: [2, 3] };
    const b = { data: new Float32Array([1, 0, 0, 1, 1, 1]), shape: [3, 2] };
    const out = await matmul(a, b);
    expect(out.shape).toEqual([2, 2]);
    expect(Array.from(out.data as Float32Array)).toEqual([4, 5, 10, 11]);
  });

  test('runs off the main thread: timers fire while it works', async () => {
    const n = 512;
    const a = { data: randomMatrix(n), shape: [n, n] };
    let ticks = 0;
    const timer = setInterval(() => { ticks++; }, 5);
    const started = process.hrtime.bigint();
    const result = matmul(a, a, 30);
    // The call returned before the work finished: the promise is still pending here.
    let settled = false;
    result.then(() => { settled = true; }, () => { settled = true; });
    await new Promise((resolve) => setImmediate(resolve));
    expect(settled).toBe(false);
    await result;
    clearInterval(timer);
    const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
    // With the main thread free the 5 ms timer runs about elapsed/5 times; a blocked loop gives <= 1.
    expect(ticks).toBeGreaterThanOrEqual(Math.min(3, Math.floor(elapsedMs / 20)));
    expect(ticks).toBeGreaterThanOrEqual(2);
  });
});
