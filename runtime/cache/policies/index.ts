// Policy factory: the one place the CLI, the worker and the evaluation build a policy by name.

import { POLICIES, type PolicyName } from '../../protocol.js';
import type { CachePolicy, PolicyOptions } from '../types.js';
import { ElasticPolicy } from './elastic.js';
import { FullPolicy } from './full.js';
import { H2OPolicy } from './h2o.js';
import { StreamingPolicy } from './streaming.js';
import { SnapKVPolicy } from './snapkv.js';
import { QuestionElasticPolicy } from './elasticQuestion.js';

/** A fresh policy (policies hold per-conversation state: make one per conversation). */
export function createPolicy(name: PolicyName, opts: PolicyOptions): CachePolicy {
  switch (name) {
    case 'full':
      return new FullPolicy();
    case 'elastic':
      // 'answers' (the default) is the product's method; 'paper' and 'released' the paper's (importance, merge and
      // releasedSelection are the paper variant's options), kept one option away so the tables show what each change is worth.
      if ((opts.variant ?? 'answers') === 'answers') return new QuestionElasticPolicy(opts);
      return new ElasticPolicy({ ...opts, releasedSelection: opts.variant === 'released' || opts.releasedSelection });
    case 'h2o':
      return new H2OPolicy(opts);
    case 'streaming':
      return new StreamingPolicy(opts);
    case 'snapkv':
      return new SnapKVPolicy(opts);
    default:
      throw new Error(`unknown cache policy "${String(name)}" (expected one of ${POLICIES.join(', ')})`);
  }
}
