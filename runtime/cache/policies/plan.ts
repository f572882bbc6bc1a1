// Small helpers shared by the policies: building per-layer assign arrays and the stable
// "lowest score first" order that decides which entries go.

import type { LayerAssign } from '../types.js';

/** Slots for a keep mask: kept entries get 0..n-1 in order, the rest -1 (evicted, not merged). */
export function assignFromKeep(keep: Uint8Array): LayerAssign {
  const assign = new Int32Array(keep.length);
  let slot = 0;
  for (let j = 0; j < keep.length; j++) assign[j] = keep[j] ? slot++ : -1;
  return assign;
}

/** Evict `count` consecutive entries starting at `start`; everything after shifts down by `count`. */
export function evictRangeAssign(len: number, start: number, count: number): LayerAssign {
  if (start < 0 || count < 0 || start + count > len) {
    throw new RangeError(`cannot evict [${start}, ${start + count}) from a cache of ${len}`);
  }
  const assign = new Int32Array(len);
  for (let j = 0; j < len; j++) assign[j] = j < start ? j : j < start + count ? -1 : j - count;
  return assign;
}

/**
 * Positions from..to-1 ordered by ascending score, ties by ascending position (a stable argsort):
 * the first F of this order are the ones dropped. NaN scores count as -Infinity (dropped first),
 * so a broken score never silently protects an entry.
 */
export function lowestFirst(scores: ArrayLike<number>, from: number, to: number): Int32Array {
  const order = new Int32Array(Math.max(0, to - from));
  for (let i = 0; i < order.length; i++) order[i] = from + i;
  const key = (j: number) => {
    const v = scores[j];
    return Number.isNaN(v) ? -Infinity : v;
  };
  order.sort((a, b) => {
    const d = key(a) - key(b);
    return d < 0 ? -1 : d > 0 ? 1 : a - b; // d can be NaN only for -Inf - -Inf, which we treat as a tie
  });
  return order;
}

/** Layers in the plan: the context's count, else the score arrays', else what we learned before. */
export function resolveLayers(
  policy: string,
  ctx: { numLayers?: number; scores: Float32Array[] | null },
  known: number,
): number {
  const n = ctx.numLayers ?? ctx.scores?.length ?? known;
  if (!(Number.isInteger(n) && n > 0)) {
    throw new Error(`${policy}: unknown number of layers; pass ctx.numLayers (or scores) so the plan covers every layer`);
  }
  return n;
}

/** One assign shared by every layer (score-free evictions). Plans are read-only for consumers. */
export function sameForAllLayers(assign: LayerAssign, layers: number): LayerAssign[] {
  return new Array<LayerAssign>(layers).fill(assign);
}

/** Checks that a score array covers the cache; a mismatch means the store and the policy disagree. */
export function checkScores(policy: string, scores: Float32Array[], cacheLength: number, layers?: number): void {
  if (layers !== undefined && scores.length !== layers) {
    throw new Error(`${policy}: scores cover ${scores.length} layers, expected ${layers}`);
  }
  scores.forEach((s, l) => {
    if (s.length !== cacheLength) {
      throw new Error(`${policy}: layer ${l} scores have length ${s.length}, cache length is ${cacheLength}`);
    }
  });
}
