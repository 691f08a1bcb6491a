import { Tensor } from '../../lib';

/** Deterministic pseudo-random floats in [-1, 1) (xorshift), so tests need no fixtures on disk. */
export function randomTensor(shape: number[], seed = 1): Tensor<Float32Array> {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    data[i] = (s / 4294967296) * 2 - 1;
  }
  return { data, shape };
}

// Plain comparisons, not Math.max/Math.abs: in jest's sandbox each Math call costs about 0.5 us,
// 6 s per pass over a ResNet's weights. NaN anywhere gives NaN, as Math.max would.
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - b[i];
    if (d !== d) return NaN;
    if (d > m) m = d;
    else if (-d > m) m = -d;
  }
  return m;
}

/** A tensor's values as numbers, copied only when they are int64 (Array.from over millions of floats is slow). */
export function asNumbers(data: ArrayLike<number | bigint>): ArrayLike<number> {
  // Not `instanceof BigInt64Array`: the addon's typed arrays come from another realm than jest's sandbox.
  return typeof data[0] === 'bigint' ? Array.from(data, Number) : (data as ArrayLike<number>);
}

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const v = a[i];
    if (v !== v) return NaN;
    if (v > m) m = v;
    else if (-v > m) m = -v;
  }
  return m;
}

export function bitEqual(a: Tensor, b: Tensor): boolean {
  return sameBytes(a.data, b.data);
}

/** Same bytes (NaN payloads included); Buffer.compare, as jest's toEqual walks millions of elements slowly. */
export function sameBytes(a: ArrayBufferView, b: ArrayBufferView): boolean {
  return Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;
}

/** Deterministic class labels in [0, classes) with roughly `ignoreFraction` set to 255. */
export function randomLabels(shape: number[], classes: number, seed = 1, ignoreFraction = 0): Tensor<BigInt64Array> {
  const u = randomTensor(shape, seed).data;
  const data = new BigInt64Array(u.length);
  for (let i = 0; i < u.length; i++) {
    const x = (u[i] + 1) / 2;
    data[i] = x < ignoreFraction ? 255n : BigInt(Math.min(classes - 1, Math.floor(((x - ignoreFraction) / (1 - ignoreFraction || 1)) * classes)));
  }
  return { data, shape };
}

/** Relative closeness: max |a - b| <= tol * max(1, max |b|). */
export function expectClose(a: ArrayLike<number>, b: ArrayLike<number>, tol = 1e-5): void {
  const scale = Math.max(1, maxAbs(b));
  const diff = maxAbsDiff(a, b);
  if (diff > tol * scale) throw new Error(`arrays differ by ${diff} (tolerance ${tol * scale})`);
}
