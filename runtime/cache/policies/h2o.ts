// H2O baseline (heavy hitters + recent window), per layer: accumulated attention per cache entry
// (prefill column sums, then every step's row), evicting the lowest accumulated non-recent entries
// whenever the cache exceeds the shared budget.

import type { CachePlan, CachePolicy, LayerAssign, PolicyOptions, PrefillContext, StepContext } from '../types.js';
import { budgetFor, checkKeep, stepEvictions } from './budget.js';
import { checkScores, lowestFirst, resolveLayers } from './plan.js';

export const H2O_DEFAULT_HEAVY_SHARE = 0.5;

export class H2OPolicy implements CachePolicy {
  readonly name = 'h2o';
  readonly needsScores = true;
  readonly keep: number;
  readonly heavyShare: number;
  /** Per layer, accumulated attention of each current cache entry (fp64 so long runs don't drift). */
  private acc: Float64Array[] = [];
  private readonly evictBatch: number;

  constructor(opts: PolicyOptions) {
    checkKeep(opts.keep);
    this.keep = opts.keep;
    this.evictBatch = opts.evictBatch ?? 1;
    this.heavyShare = opts.heavyShare ?? H2O_DEFAULT_HEAVY_SHARE;
    if (!(this.heavyShare >= 0 && this.heavyShare <= 1)) throw new RangeError('h2o: heavyShare must be in [0, 1]');
  }

  budget(tokensSeen: number): number {
    return budgetFor(this.keep, tokensSeen, 1);
  }

  /** Budget split: heavy = floor(B x heavyShare), recent = the rest, and always >= 1 (the newest entry). */
  split(budget: number): { heavy: number; recent: number } {
    const heavy = Math.min(Math.floor(budget * this.heavyShare), budget - 1);
    return { heavy, recent: budget - heavy };
  }

  /** A copy of one layer's accumulator (tests, debugging). */
  accumulated(layer: number): Float64Array {
    return Float64Array.from(this.acc[layer] ?? []);
  }

  afterPrefill(ctx: PrefillContext): CachePlan {
    this.accumulate('prefill', ctx.scores, ctx.cacheLength, ctx.numLayers);
    return this.compress(ctx.cacheLength, ctx.tokensSeen, 1);
  }

  afterStep(ctx: StepContext): CachePlan {
    this.accumulate('step', ctx.scores, ctx.cacheLength, ctx.numLayers);
    return this.compress(ctx.cacheLength, ctx.tokensSeen, this.evictBatch);
  }

  /** Extend each layer's accumulator with zeros for the new entries, then add the scores. */
  private accumulate(when: string, scores: Float32Array[] | null, len: number, numLayers?: number): void {
    if (!scores) throw new Error(`h2o: needs attention scores at every ${when}, but the decoder gave none`);
    const layers = resolveLayers(this.name, { numLayers, scores }, this.acc.length);
    checkScores(this.name, scores, len, layers);
    for (let l = 0; l < layers; l++) {
      const old = this.acc[l] ?? new Float64Array(0);
      if (old.length > len) throw new Error(`h2o: layer ${l} tracks ${old.length} entries but the cache has ${len}`);
      const a = new Float64Array(len);
      a.set(old);
      const s = scores[l];
      for (let j = 0; j < len; j++) a[j] += s[j];
      this.acc[l] = a;
    }
  }

  /**
   * Over budget: keep the `recent` newest entries; among the older ones evict the lowest accumulated (ties: earlier
   * position first), as many as budget.ts stepEvictions says for `batch`. The accumulator follows the plan.
   */
  private compress(len: number, tokensSeen: number, batch: number): CachePlan {
    const budget = this.budget(tokensSeen);
    const { recent } = this.split(budget);
    const candidates = len - recent; // = heavy + the excess
    const over = stepEvictions(len, budget, batch, candidates);
    if (over <= 0) return null;
    const plan: LayerAssign[] = this.acc.map((a, l) => {
      const evict = new Uint8Array(len);
      if (over === 1) {
        // linear argmin, the common per-step case; NaN counts as -Infinity as in lowestFirst
        const key = (j: number) => (Number.isNaN(a[j]) ? -Infinity : a[j]);
        let min = 0;
        for (let j = 1; j < candidates; j++) if (key(j) < key(min)) min = j;
        evict[min] = 1;
      } else {
        const order = lowestFirst(a, 0, candidates);
        for (let i = 0; i < over; i++) evict[order[i]] = 1;
      }
      const assign = new Int32Array(len);
      const kept = new Float64Array(len - over);
      let slot = 0;
      for (let j = 0; j < len; j++) {
        if (evict[j]) assign[j] = -1;
        else {
          kept[slot] = a[j];
          assign[j] = slot++;
        }
      }
      this.acc[l] = kept;
      return assign;
    });
    return plan;
  }
}
