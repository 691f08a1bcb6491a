/** The per-step schedules of U2PL (u2pl-method.md §5.3, §7, §9, §10.2), computed in TypeScript. */

/** Poly: base * (1 - k/K)^power for 0-based step k of K (first step: base; last: base * (1/K)^power). */
export function polyLr(base: number, step: number, total: number, power = 0.9): number {
  return base * Math.pow(1 - step / total, power);
}

/** Cosine from base down to target over K steps. */
export function cosineLr(base: number, target: number, step: number, total: number): number {
  return target + ((base - target) * (1 + Math.cos((Math.PI * step) / total))) / 2;
}

/** EMA decay after step k (epochs e >= e_w): min(1 - 1/(k - L*e_w + 1), d_max). */
export function emaDecay(step: number, stepsPerEpoch: number, warmupEpochs: number, maxDecay: number): number {
  return Math.min(1 - 1 / (step - stepsPerEpoch * warmupEpochs + 1), maxDecay);
}

/** q_e of §9: the entropy percentile above which pixels are dropped, 100 - (100 - p_d)(1 - e/E). */
export function dropPercentile(epoch: number, epochs: number, dropPercent: number): number {
  return 100 - (100 - dropPercent) * (1 - epoch / epochs);
}

/** alpha_e of §10.2: alpha_0 (1 - e/E), in percent. */
export function anchorPercentile(epoch: number, epochs: number, alpha0: number): number {
  return alpha0 * (1 - epoch / epochs);
}
