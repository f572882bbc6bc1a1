// SnapKV (Li et al., 2024, arXiv 2404.14469) as kvpress's SnapKVPress scores it: the attention of the last
// `window` prompt queries (64), averaged over those queries and the query heads, average-pooled with kernel 5, the
// window itself always kept; the highest scores fill the rest of the budget. One-shot: only the prompt's prefill is
// scored. Differences from kvpress, on purpose (docs/elastic-cache.md, "SnapKV"):
//  - kvpress keeps the top-k per KV head; a plan here is per layer (every KV head keeps the same entries), so the
//    score is averaged over all query heads of the layer (kvpress averages the heads of each GQA group);
//  - kvpress never evicts while decoding (the cache grows past the budget). Every policy here holds k x tokens seen
//    after every step, so once over budget SnapKV evicts the OLDEST GENERATED entry (first in, first out after the
//    compressed prompt): the prompt's selection stays as the prefill chose it, the answer keeps its recent tokens.
//    With no generated entry left to evict (a budget below the compressed prompt), the oldest non-sink prompt
//    entry goes.
// Follow-ups: the new prompt's window scores the whole cache, as a fresh prefill would.

import type { CachePlan, CachePolicy, PolicyOptions, PrefillContext, StepContext } from '../types.js';
import { avgPool1d, topKeep, windowScore } from '../scores.js';
import { budgetFor, checkKeep, stepEvictions } from './budget.js';
import { assignFromKeep, evictRangeAssign, resolveLayers, sameForAllLayers } from './plan.js';

export const SNAPKV_WINDOW = 64;
export const SNAPKV_KERNEL = 5;

export class SnapKVPolicy implements CachePolicy {
  readonly name = 'snapkv';
  readonly needsScores = true;
  readonly needsWindow = true;
  // One-shot: decode evicts the oldest generated entries without scores.
  readonly stepScores = false;
  readonly keep: number;
  readonly window: number;
  readonly kernel: number;
  private layers = 0;
  private readonly evictBatch: number;
  /** Cache length right after the last prefill's compression: entries from here on are generated. */
  private promptKept = 0;

  constructor(opts: PolicyOptions) {
    checkKeep(opts.keep);
    this.keep = opts.keep;
    this.window = opts.window ?? SNAPKV_WINDOW;
    this.kernel = opts.kernel ?? SNAPKV_KERNEL;
    this.evictBatch = opts.evictBatch ?? 1;
    if (!(Number.isInteger(this.window) && this.window >= 1)) throw new RangeError('snapkv: window must be an integer >= 1');
  }

  budget(tokensSeen: number): number {
    return budgetFor(this.keep, tokensSeen, 1);
  }

  afterPrefill(ctx: PrefillContext): CachePlan {
    if (!ctx.window) throw new Error('snapkv: needs the per-head window attention at prefill (attn_window.*), but the decoder gave none');
    this.layers = resolveLayers(this.name, ctx, this.layers);
    const len = ctx.cacheLength;
    const keep = Math.min(len, this.budget(ctx.tokensSeen));
    this.promptKept = keep;
    if (keep >= len) return null;
    const w = Math.min(this.window, ctx.newEntries, ctx.window[0].queries);
    const protect = new Uint8Array(len);
    for (let j = len - w; j < len; j++) protect[j] = 1;
    return ctx.window.map((att) => {
      const pooled = avgPool1d(windowScore(att, w), this.kernel, 0, len - w);
      return assignFromKeep(topKeep(pooled, keep, protect));
    });
  }

  afterStep(ctx: StepContext): CachePlan {
    this.layers = resolveLayers(this.name, ctx, this.layers);
    const len = ctx.cacheLength;
    const over = stepEvictions(len, this.budget(ctx.tokensSeen), this.evictBatch, len - 1 - 4);
    if (over <= 0) return null;
    // The oldest generated entries, or (none left) the oldest prompt entries after 4 sinks; never the newest.
    const at = Math.max(0, Math.min(this.promptKept < len - over ? this.promptKept : 4, len - 1 - over));
    if (at < this.promptKept) this.promptKept = Math.max(at, this.promptKept - over);
    return sameForAllLayers(evictRangeAssign(len, at, over), this.layers);
  }
}
