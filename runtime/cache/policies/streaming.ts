// StreamingLLM baseline: `sinkSize` attention-sink entries + the most recent ones; when over budget
// the oldest non-sink entries go. Needs no scores.

import type { CachePlan, CachePolicy, PolicyOptions, PrefillContext, StepContext } from '../types.js';
import { budgetFor, checkKeep, stepEvictions } from './budget.js';
import { evictRangeAssign, resolveLayers, sameForAllLayers } from './plan.js';

export const STREAMING_DEFAULT_SINKS = 4;

export class StreamingPolicy implements CachePolicy {
  readonly name = 'streaming';
  readonly needsScores = false;
  readonly keep: number;
  readonly sinkSize: number;
  private readonly evictBatch: number;
  private layers = 0;

  constructor(opts: PolicyOptions) {
    checkKeep(opts.keep);
    this.keep = opts.keep;
    this.sinkSize = opts.sinkSize ?? STREAMING_DEFAULT_SINKS;
    this.evictBatch = opts.evictBatch ?? 1;
    if (!(Number.isInteger(this.sinkSize) && this.sinkSize >= 0)) throw new RangeError('streaming: sinkSize must be an integer >= 0');
  }

  /** Budget; the minimum is the sinks plus the newest entry. */
  budget(tokensSeen: number): number {
    return budgetFor(this.keep, tokensSeen, this.sinkSize + 1);
  }

  afterPrefill(ctx: PrefillContext): CachePlan {
    return this.compress(ctx, 1);
  }

  afterStep(ctx: StepContext): CachePlan {
    return this.compress(ctx, this.evictBatch);
  }

  private compress(ctx: PrefillContext | StepContext, batch: number): CachePlan {
    this.layers = resolveLayers(this.name, ctx, this.layers);
    const len = ctx.cacheLength;
    const over = stepEvictions(len, this.budget(ctx.tokensSeen), batch, len - 1 - this.sinkSize);
    if (over <= 0) return null;
    return sameForAllLayers(evictRangeAssign(ctx.cacheLength, this.sinkSize, over), this.layers);
  }
}
