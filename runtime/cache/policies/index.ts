// Policy factory: the one place the CLI, the worker and the evaluation build a policy by name.

import type { CachePolicy, PolicyOptions } from '../types.js';
import { ElasticPolicy } from './elastic.js';
import { FullPolicy } from './full.js';
import { H2OPolicy } from './h2o.js';
import { StreamingPolicy } from './streaming.js';

export { budgetFor, checkKeepRatio } from './budget.js';
export { ElasticPolicy, elasticMergeAssign, literalMergeAssign } from './elastic.js';
export { FullPolicy } from './full.js';
export { H2OPolicy } from './h2o.js';
export { StreamingPolicy } from './streaming.js';

export const POLICY_NAMES = ['full', 'elastic', 'h2o', 'streaming'] as const;
export type PolicyName = (typeof POLICY_NAMES)[number];

export function isPolicyName(name: string): name is PolicyName {
  return (POLICY_NAMES as readonly string[]).includes(name);
}

/** A fresh policy (policies hold per-conversation state: make one per conversation). */
export function createPolicy(name: PolicyName, opts: PolicyOptions): CachePolicy {
  switch (name) {
    case 'full':
      return new FullPolicy();
    case 'elastic':
      return new ElasticPolicy(opts);
    case 'h2o':
      return new H2OPolicy(opts);
    case 'streaming':
      return new StreamingPolicy(opts);
    default:
      throw new Error(`unknown cache policy "${String(name)}" (expected one of ${POLICY_NAMES.join(', ')})`);
  }
}
