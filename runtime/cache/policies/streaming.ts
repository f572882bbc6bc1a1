// StreamingLLM baseline: `sinkSize` attention-sink entries + the most recent ones; when over budget
// the oldest non-sink entries go. Needs no scores.

import type { CachePlan, CachePolicy, PolicyOptions, PrefillContext, StepContext } from '../types.js';
import { budgetFor, checkKeep } from './budget.js';
import { evictRangeAssign, resolveLayers, sameForAllLayers } from './plan.js';

export const STREAMING_DEFAULT_SINKS = 4;

export class StreamingPolicy implements CachePolicy {
  readonly name = 'streaming';
  readonly needsScores = false;
  readonly keep: number;
  readonly sinkSize: number;
  private layers = 0;

  constructor(opts: PolicyOptions) {
    checkKeep(opts.keep);
    this.keep = opts.keep;
    this.sinkSize = opts.sinkSize ?? STREAMING_DEFAULT_SINKS;
    if (!(Number.isInteger(this.sinkSize) && this.sinkSize >= 0)) throw new RangeError('streaming: sinkSize must be an integer >= 0');
  }

  /** Budget; the minimum is the sinks plus the newest entry. */
  budget(tokensSeen: number): number {
    return budgetFor(this.keep, tokensSeen, this.sinkSize + 1);
  }

  afterPrefill(ctx: PrefillContext): CachePlan {
    return this.compress(ctx);
  }

  afterStep(ctx: StepContext): CachePlan {
    return this.compress(ctx);
  }

  private compress(ctx: PrefillContext | StepContext): CachePlan {
    this.layers = resolveLayers(this.name, ctx, this.layers);
    const over = ctx.cacheLength - this.budget(ctx.tokensSeen);
    if (over <= 0) return null;
    return sameForAllLayers(evictRangeAssign(ctx.cacheLength, this.sinkSize, over), this.layers);
  }
}
