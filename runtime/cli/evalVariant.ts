// Elastic's variant on the eval command line: the knobs (`--kernel`, `--similar`, ...) checked with a clear message,
// the cache options of one cell, and the short label tables and merge keys use.
import { BadInputError } from '../errors.js';
import { parseIntOption } from './options.js';
import { ELASTIC_VARIANTS, FOLLOW_UPS, IMPORTANCES, isOneOf, type CacheOptions, type ElasticKnobs, type ElasticVariant, type FollowUps, type Importance, type PolicyName } from '../protocol.js';

export interface Variant extends ElasticKnobs {
  positions: 'absolute' | 'compressed';
  /** Elastic's method: 'answers' (default), 'paper', 'released'. */
  variant?: ElasticVariant;
  importance?: Importance;
  merge?: boolean;
  distance?: number;
  /** How a follow-up uses the cache (every policy; multi-turn cells). */
  followUps?: FollowUps;
}

/** A short name for Elastic's options in tables and in the merge key ('' for the default method). */
export function variantLabel(v: Variant): string {
  const parts: string[] = [];
  const m = v.variant ?? (v.importance !== undefined || v.merge !== undefined ? 'paper' : 'answers');
  if (m !== 'answers') parts.push(m);
  if (v.importance) parts.push(`importance ${v.importance}`);
  if (v.merge === false) parts.push('no merge');
  if (v.window !== undefined) parts.push(`window ${v.window}`);
  if (v.kernel !== undefined) parts.push(`kernel ${v.kernel}`);
  if (v.distance !== undefined) parts.push(`distance ${v.distance}`);
  if (v.similar !== undefined) parts.push(v.similar ? 'similarity merge' : 'adjacent merge');
  if (v.mergeRadius !== undefined) parts.push(`merge radius ${v.mergeRadius}`);
  if (v.mass !== undefined) parts.push(v.mass ? 'mass kept' : 'no mass');
  if (v.protectQuestion === false) parts.push('question unprotected');
  if (v.protectGlobal !== undefined) parts.push(v.protectGlobal ? 'global image kept' : 'global image not kept');
  if (v.blend !== undefined) parts.push(`blend ${v.blend}`);
  if (v.keepProtected !== undefined) parts.push(v.keepProtected ? 'protected kept in decode' : 'protected re-ranked in decode');
  if (v.rerank !== undefined) parts.push(v.rerank ? `decode re-rank, ${v.rerank} recent` : 'fixed-index decode eviction');
  if (v.perHead !== undefined) parts.push(v.perHead ? 'per-KV-head selection' : 'per-layer selection');
  return parts.join(', ');
}

/** A cell's label: Elastic's variant, and the follow-up mode when it is not the default (any policy). */
export function cellLabel(policy: PolicyName, v: Variant): string {
  return [policy === 'elastic' ? variantLabel(v) : '', v.followUps === 'reuse' ? 'follow-ups reuse the cache' : ''].filter(Boolean).join(', ');
}

/** The cache options of one cell: Elastic's variant options only for elastic. */
export function cellCache(policy: PolicyName, keep: number, v: Variant): CacheOptions {
  const base: CacheOptions = { policy, keep, positions: v.positions, ...(v.followUps ? { followUps: v.followUps } : {}) };
  if (policy !== 'elastic') return base;
  const variant = v.variant ?? (v.importance !== undefined || v.merge !== undefined ? 'paper' : undefined);
  return {
    ...base, variant, importance: v.importance, merge: v.merge,
    window: v.window, kernel: v.kernel, distance: v.distance, mergeRadius: v.mergeRadius, protectQuestion: v.protectQuestion,
    protectGlobal: v.protectGlobal, blend: v.blend, rerank: v.rerank, keepProtected: v.keepProtected,
    ...(v.perHead !== undefined ? { perHead: v.perHead } : {}),
    ...(v.similar !== undefined ? { similar: v.similar } : {}),
    ...(v.mass !== undefined ? { mass: v.mass } : {}),
  };
}

/** The command-line options variantOptions reads (node:util parseArgs specs). */
export const VARIANT_OPTIONS = Object.fromEntries(['positions', 'variant', 'importance', 'merge', 'window', 'kernel', 'distance',
  'merge-radius', 'protect-question', 'protect-global', 'blend', 'rerank', 'keep-protected', 'per-head', 'similar', 'mass', 'follow-up']
  .map((k) => [k, { type: 'string' as const }]));

export type Values = Record<string, string | string[] | boolean | undefined>;

/** Elastic's variant and exploration knobs from the command line, each checked with a clear message. */
export function variantOptions(values: Values): Variant {
  const str = (k: string) => values[k] as string | undefined;
  const positions = (str('positions') ?? 'absolute') as 'absolute' | 'compressed';
  if (positions !== 'absolute' && positions !== 'compressed') throw new BadInputError('--positions must be absolute or compressed');
  const elasticVariant = str('variant') as ElasticVariant | undefined;
  if (elasticVariant !== undefined && !ELASTIC_VARIANTS.includes(elasticVariant)) {
    throw new BadInputError(`unknown --variant ${JSON.stringify(str('variant'))} (expected ${ELASTIC_VARIANTS.join(', ')})`);
  }
  const importance = str('importance');
  if (importance !== undefined && !isOneOf(IMPORTANCES, importance)) throw new BadInputError(`--importance must be ${IMPORTANCES.join(' or ')}`);
  if (str('merge') !== undefined && str('merge') !== 'on' && str('merge') !== 'off') throw new BadInputError('--merge must be on or off');
  const pq = str('protect-question');
  if (pq !== undefined && pq !== 'on' && pq !== 'off') throw new BadInputError('--protect-question must be on or off');
  const intOpt = (name: string, v: string | undefined, min: number, max: number) => (v === undefined ? undefined : parseIntOption(name, v, 0, min, max));
  const variant: Variant = {
    positions, variant: elasticVariant, importance, merge: str('merge') === undefined ? undefined : str('merge') === 'on',
    window: intOpt('window', str('window'), 1, 64), kernel: intOpt('kernel', str('kernel'), 1, 63), distance: intOpt('distance', str('distance'), -1e6, 1e6),
    mergeRadius: intOpt('merge-radius', str('merge-radius'), 0, 64), rerank: intOpt('rerank', str('rerank'), 0, 1e6), protectQuestion: pq === undefined ? undefined : pq === 'on',
  };
  if (variant.kernel !== undefined && variant.kernel % 2 === 0) throw new BadInputError('--kernel must be odd');
  const kp = str('keep-protected');
  if (kp !== undefined && kp !== 'on' && kp !== 'off') throw new BadInputError('--keep-protected must be on or off');
  if (kp !== undefined) variant.keepProtected = kp === 'on';
  for (const [flag, key] of [['similar', 'similar'], ['mass', 'mass']] as const) {
    const o = str(flag);
    if (o !== undefined && o !== 'on' && o !== 'off') throw new BadInputError(`--${flag} must be on or off`);
    if (o !== undefined) variant[key] = o === 'on';
  }
  const ph = str('per-head');
  if (ph !== undefined && ph !== 'on' && ph !== 'off') throw new BadInputError('--per-head must be on or off');
  if (ph !== undefined) variant.perHead = ph === 'on';
  const fu = str('follow-up');
  if (fu !== undefined && !FOLLOW_UPS.includes(fu as FollowUps)) throw new BadInputError(`--follow-up must be ${FOLLOW_UPS.join(' or ')}`);
  if (fu !== undefined) variant.followUps = fu as FollowUps;
  const pg = str('protect-global');
  if (pg !== undefined && pg !== 'on' && pg !== 'off') throw new BadInputError('--protect-global must be on or off');
  if (pg !== undefined) variant.protectGlobal = pg === 'on';
  if (str('blend') !== undefined) {
    const b = Number(str('blend'));
    if (!(b >= 0 && b <= 1)) throw new BadInputError(`--blend must be a number in [0, 1], got ${JSON.stringify(str('blend'))}`);
    variant.blend = b;
  }
  if (variant.perHead && variant.blend !== undefined && variant.blend > 0) throw new BadInputError('--per-head on cannot be combined with --blend (its column sums are per layer)');
  return variant;
}

