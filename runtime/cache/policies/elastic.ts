// Elastic Cache (Liu et al., ECCV 2024), as docs/elastic-cache.md states it.
// Stage 1 (afterPrefill): per layer, drop the lowest-importance entries and fold each into the
// nearest kept "anchor" by position (mean merge). Stage 2 (afterStep): whenever the cache exceeds
// the budget, evict the entry at one fixed index P = kept prompt length + distance.

import type { Importance } from '../../protocol.js';
import type { CachePlan, CachePolicy, LayerAssign, PolicyOptions, PrefillContext, StepContext } from '../types.js';
import { budgetFor, checkKeep, stepEvictions } from './budget.js';
import { checkScores, evictRangeAssign, lowestFirst, resolveLayers, sameForAllLayers } from './plan.js';

/**
 * Default always-kept prefix. The reference class defaults to 4, its scripts pass 1. We use 4: it is
 * what the streaming baseline keeps as sinks (same protected prefix in every table row) and costs at
 * most 3 slots of the budget.
 */
export const ELASTIC_DEFAULT_START = 4;
export const ELASTIC_DEFAULT_DISTANCE = -25;

/**
 * Stage 1 for one layer (the intended method). Keeps `budget` of `len` entries: the prefix [0, s), the
 * last entry, and the highest-scoring positions in [s, len-1) as anchors. The F = len - budget lowest
 * scores in [s, len-1) are dropped, ties dropping the EARLIER position first (a stable ascending
 * argsort, i.e. `argsort(score)[F:]` kept). Each dropped position merges into the nearest anchor by
 * position, ties to the earlier anchor; with no anchor at all (budget = s + 1) it is simply evicted.
 */
export function elasticMergeAssign(score: ArrayLike<number>, len: number, budget: number, s: number, merge = true): LayerAssign {
  const assign = new Int32Array(len);
  const last = len - 1;
  const F = len - budget;
  if (F <= 0) {
    for (let j = 0; j < len; j++) assign[j] = j;
    return assign;
  }
  if (F > last - s) throw new RangeError(`elastic: cannot drop ${F} of ${len} entries with startSize ${s}`);
  const order = lowestFirst(score, s, last);
  const dropped = new Uint8Array(len);
  for (let i = 0; i < F; i++) dropped[order[i]] = 1;
  if (!merge) {
    let k = 0;
    for (let j = 0; j < len; j++) assign[j] = dropped[j] ? -1 : k++;
    return assign;
  }
  return mergeIntoNearest(dropped, len, s, last);
}

/**
 * Stage 1 as the released code does it (`releasedSelection: true`), kept to measure what the fix is worth:
 *  - selection `where(argsort(sub) > F) + s`: sort RANKS i whose sorted position exceeds F are used as
 *    token indices (so about F + 1 entries go and the layer keeps budget - 1);
 *  - dropped indices `where(argsort(sub) <= F)` lack the `+ s` offset: raw position t merges into the
 *    anchor nearest to t.
 * A plan maps each old entry to ONE slot, so where such a raw t is itself kept (prefix or anchor) it
 * stays only in its own slot; the released code would also average a copy of it into another anchor.
 * Entries neither selected nor named by a raw dropped index are evicted, as in the released code.
 */
export function releasedMergeAssign(score: ArrayLike<number>, len: number, budget: number, s: number): LayerAssign {
  const last = len - 1;
  const F = len - budget;
  const m = Math.max(0, last - s);
  const kept = new Uint8Array(len);
  for (let j = 0; j < Math.min(s, len); j++) kept[j] = 1;
  if (len > 0) kept[last] = 1;
  const sub = new Float64Array(m);
  for (let i = 0; i < m; i++) sub[i] = score[s + i];
  const order = lowestFirst(sub, 0, m); // argsort(sub)
  const thrown: number[] = [];
  for (let i = 0; i < m; i++) {
    if (order[i] > F) kept[s + i] = 1; // rank i used as index i (+ s)
    else thrown.push(i); // rank i used as index i, offset missing
  }
  const anchors: number[] = [];
  for (let j = s; j < last; j++) if (kept[j]) anchors.push(j);
  const slot = new Int32Array(len).fill(-1);
  let n = 0;
  for (let j = 0; j < len; j++) if (kept[j]) slot[j] = n++;
  const assign = Int32Array.from(slot);
  for (const t of thrown) {
    if (kept[t] || anchors.length === 0) continue;
    // argmin |anchor - t|, first minimum = the earlier anchor
    let best = anchors[0];
    for (const a of anchors) if (Math.abs(a - t) < Math.abs(best - t)) best = a;
    assign[t] = slot[best];
  }
  return assign;
}

/** Shared tail of stage 1: slots for kept entries, nearest-anchor slots for dropped ones. */
function mergeIntoNearest(dropped: Uint8Array, len: number, s: number, last: number): LayerAssign {
  const assign = new Int32Array(len);
  let slot = 0;
  for (let j = 0; j < len; j++) assign[j] = dropped[j] ? -1 : slot++;
  // next anchor at or after j (anchors live in [s, last)); one backward sweep
  const next = new Int32Array(len).fill(-1);
  let nx = -1;
  for (let j = last - 1; j >= s; j--) {
    if (!dropped[j]) nx = j;
    next[j] = nx;
  }
  let prev = -1;
  for (let j = s; j < last; j++) {
    if (!dropped[j]) {
      prev = j;
      continue;
    }
    const n = next[j];
    let target = -1;
    if (prev >= 0 && (n < 0 || j - prev <= n - j)) target = prev; // tie -> earlier anchor
    else if (n >= 0) target = n;
    assign[j] = target >= 0 ? assign[target] : -1;
  }
  return assign;
}

export class ElasticPolicy implements CachePolicy {
  readonly name: string;
  readonly needsScores = true;
  // Stage 2 evicts at a fixed index: no scores after the prefill.
  readonly stepScores = false;
  readonly keep: number;
  readonly startSize: number;
  readonly distance: number;
  readonly releasedSelection: boolean;
  readonly importance: Importance;
  readonly merge: boolean;
  /** Stage-2 eviction index; null until the first prefill. */
  private p: number | null = null;
  private layers = 0;
  private readonly evictBatch: number;

  constructor(opts: PolicyOptions) {
    checkKeep(opts.keep);
    this.keep = opts.keep;
    this.startSize = opts.startSize ?? ELASTIC_DEFAULT_START;
    this.evictBatch = opts.evictBatch ?? 1;
    this.distance = opts.distance ?? ELASTIC_DEFAULT_DISTANCE;
    this.releasedSelection = opts.releasedSelection ?? false;
    this.importance = opts.importance ?? 'sum';
    this.merge = opts.merge ?? true;
    if (!(Number.isInteger(this.startSize) && this.startSize >= 0)) throw new RangeError('elastic: startSize must be an integer >= 0');
    if (!Number.isInteger(this.distance)) throw new RangeError('elastic: distance must be an integer');
    this.name = this.releasedSelection ? 'elastic-released' : 'elastic';
  }

  /** Budget; the minimum is the prefix plus the last prompt token. */
  budget(tokensSeen: number): number {
    return budgetFor(this.keep, tokensSeen, this.startSize + 1);
  }

  /** Current stage-2 eviction index (before clamping to the cache), for stats and tests. */
  get evictionIndex(): number | null {
    return this.p;
  }

  /**
   * First turn and follow-ups alike: stage 1 over the WHOLE current cache down to k x tokensSeen
   * (a follow-up's scores cover every entry), then P is reset from the new kept length.
   */
  afterPrefill(ctx: PrefillContext): CachePlan {
    if (!ctx.scores) {
      throw new Error('elastic: needs attention scores at prefill (column sums per layer), but the decoder gave none');
    }
    this.layers = resolveLayers(this.name, ctx, this.layers);
    checkScores(this.name, ctx.scores, ctx.cacheLength, this.layers);
    const len = ctx.cacheLength;
    const budget = Math.min(len, this.budget(ctx.tokensSeen));
    let plan: CachePlan = null;
    let keptLength = len;
    if (budget < len) {
      const scores = this.importance === 'mean' ? ctx.scores.map((sc) => perQuery(sc, len, ctx.newEntries)) : ctx.scores;
      plan = scores.map((sc) => (this.releasedSelection ? releasedMergeAssign(sc, len, budget, this.startSize) : elasticMergeAssign(sc, len, budget, this.startSize, this.merge)));
      keptLength = maxSlot(plan[0]) + 1;
    }
    // The released code computes P from the intended kept length (N - F), not the actual one.
    const base = this.releasedSelection ? budget : keptLength;
    this.p = Math.max(this.startSize, base + this.distance);
    return plan;
  }

  /** Stage 2: evict at P (dropped, not merged) as many entries as the cache is over budget (one per step). */
  afterStep(ctx: StepContext): CachePlan {
    if (this.p === null) throw new Error('elastic: afterStep called before afterPrefill');
    this.layers = resolveLayers(this.name, ctx, this.layers);
    const len = ctx.cacheLength;
    const over = stepEvictions(len, this.budget(ctx.tokensSeen), this.evictBatch, len - 1 - this.startSize);
    if (over <= 0) return null;
    // Clamp: never into the prefix, never the newest entry (budget >= startSize + 1 keeps this valid).
    const at = Math.max(this.startSize, Math.min(this.p, len - 1 - over));
    return sameForAllLayers(evictRangeAssign(len, at, over), this.layers);
  }
}

/**
 * Column sums divided by how many of this prefill's `n` queries can see each key under the causal mask: entries
 * cached before the prefill are seen by all n, the new entry at j by len - j.
 */
export function perQuery(sc: Float32Array, len: number, n: number): Float32Array {
  const out = new Float32Array(len);
  for (let j = 0; j < len; j++) out[j] = sc[j] / Math.max(1, Math.min(n, len - j));
  return out;
}

function maxSlot(assign: LayerAssign): number {
  let m = -1;
  for (let j = 0; j < assign.length; j++) if (assign[j] > m) m = assign[j];
  return m;
}
