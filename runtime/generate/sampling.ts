// Next-token choice: greedy by default; temperature and top-p (nucleus) sampling with a seeded generator so
// a run can be reproduced.

/** mulberry32: small, fast, good enough for sampling; the same seed gives the same sequence everywhere. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function argmax(logits: ArrayLike<number>): number {
  let best = 0;
  let bestV = -Infinity;
  for (let i = 0; i < logits.length; i++) {
    if (logits[i] > bestV) {
      bestV = logits[i];
      best = i;
    }
  }
  return best;
}

/** log-softmax of one entry, stable. */
export function logProb(logits: ArrayLike<number>, index: number): number {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  return logits[index] - max - Math.log(sum);
}

export interface SamplerOptions {
  temperature?: number;
  topP?: number;
  seed?: number;
}

export function makeSampler(opts: SamplerOptions): (logits: Float32Array) => number {
  const temperature = opts.temperature ?? 0;
  if (temperature <= 0) return argmax;
  const topP = opts.topP ?? 1;
  const rand = seededRandom(opts.seed ?? 0);
  return (logits) => {
    const n = logits.length;
    let max = -Infinity;
    for (let i = 0; i < n; i++) if (logits[i] > max) max = logits[i];
    const probs = new Float64Array(n);
    let sum = 0;
    for (let i = 0; i < n; i++) sum += probs[i] = Math.exp((logits[i] - max) / temperature);
    const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => probs[b] - probs[a]);
    // Keep the smallest prefix of the sorted distribution whose mass reaches topP.
    let kept = 0;
    let mass = 0;
    while (kept < n && mass < topP * sum) mass += probs[order[kept++]];
    let r = rand() * mass;
    for (let k = 0; k < kept; k++) {
      r -= probs[order[k]];
      if (r <= 0) return order[k];
    }
    return order[kept - 1];
  };
}
