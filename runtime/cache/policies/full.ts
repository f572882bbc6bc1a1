// Full cache: the uncompressed reference every table row is compared with.

import type { CachePlan, CachePolicy } from '../types.js';

export class FullPolicy implements CachePolicy {
  readonly name = 'full';
  readonly needsScores = false;

  /** Everything seen stays. */
  budget(tokensSeen: number): number {
    return tokensSeen;
  }

  afterPrefill(): CachePlan {
    return null;
  }

  afterStep(): CachePlan {
    return null;
  }
}
