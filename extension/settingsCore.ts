// The settings of Elastic VLM and their validation. No `vscode` import: unit tests run this in plain Node.
// An invalid value (out of range, unknown enum member, wrong type) is rejected with a message and the previous valid
// value (or the default, the first time) is used instead.
import {
  DEFAULT_KEEP, DEVICES, ELASTIC_VARIANTS, type ElasticVariant, FOLLOW_UPS, type FollowUps, IMAGE_DETAILS, IMPORTANCES, isOneOf, KEEP_MAX, KEEP_MIN, POLICIES, type CacheOptions, type Device, type ImageDetail,
  type Importance, type PolicyName,
} from '../runtime/protocol.js';

export interface Settings {
  /** Fraction of the KV cache kept (the paper's compression ratio r is 1 - cacheKeep). */
  cacheKeep: number;
  cachePolicy: PolicyName;
  modelPath: string;
  device: Device;
  maxNewTokens: number;
  hubEndpoint: string;
  /** Elastic's method: the product's (answers), the paper's, or the paper's with the released code's selection. */
  elasticVariant: ElasticVariant;
  /** The paper's Elastic, stage-1 importance: column sums ('sum') or per seeing query ('mean'). */
  elasticImportance: Importance;
  /** Elastic's stage 1 merges dropped entries into anchors (the paper) or evicts them. */
  elasticMerge: boolean;
  /** How finely images are tiled for the vision encoder (fewer tiles: a faster first answer, less detail). */
  imageDetail: ImageDetail;
  /** A follow-up on a compressed cache: re-expand it from the conversation's inputs, or reuse what the last turn kept. */
  followUps: FollowUps;
}

export const SECTION = 'elasticVlm';
/** The setting's name before 0.2 (it held the same kept fraction); read when cacheKeep is not set. */
export const LEGACY_KEEP_KEY = 'cacheRatio';
export const MAX_NEW_TOKENS_MIN = 1;
export const MAX_NEW_TOKENS_MAX = 4096;

export const DEFAULT_SETTINGS: Readonly<Settings> = Object.freeze({
  // DEFAULT_KEEP (runtime/protocol.ts): the lowest budget at which the product's Elastic stayed within 1 point of the
  // full cache (docs/evaluation.md). package.json's default must say the same (test/unit/structure.test.ts).
  cacheKeep: DEFAULT_KEEP,
  cachePolicy: 'elastic',
  modelPath: '',
  device: 'auto',
  maxNewTokens: 256,
  hubEndpoint: 'https://huggingface.co',
  elasticVariant: 'answers',
  elasticImportance: 'mean',
  elasticMerge: false,
  imageDetail: 'full',
  followUps: 'reexpand',
});

export const SETTING_KEYS = Object.keys(DEFAULT_SETTINGS) as (keyof Settings)[];

type Check = (v: unknown) => string | null;

const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** Why an endpoint is refused, or null: HTTPS anywhere, plain HTTP only to the loopback address (tests). */
export function checkEndpoint(v: unknown): string | null {
  if (typeof v !== 'string' || v.trim() === '') return 'must be a non-empty URL';
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    return `${JSON.stringify(v)} is not a URL`;
  }
  if (u.username || u.password) return 'must not contain credentials';
  if (u.search || u.hash) return 'must not contain a query or fragment';
  if (u.protocol === 'https:') return null;
  if (u.protocol === 'http:' && (u.hostname === '127.0.0.1' || u.hostname === '[::1]')) return null;
  return 'must use https:// (plain http is allowed only for 127.0.0.1)';
}

const CHECKS: Record<keyof Settings, Check> = {
  cacheKeep: (v) =>
    isNum(v) && v >= KEEP_MIN && v <= KEEP_MAX ? null : `must be a number from ${KEEP_MIN} to ${KEEP_MAX}`,
  cachePolicy: (v) => (isOneOf(POLICIES, v) ? null : `must be one of ${POLICIES.join(', ')}`),
  modelPath: (v) =>
    typeof v === 'string' && !v.includes('\0') && v.length <= 4096 ? null : 'must be a folder path (empty = the embedded model)',
  device: (v) => (isOneOf(DEVICES, v) ? null : `must be one of ${DEVICES.join(', ')}`),
  maxNewTokens: (v) =>
    isNum(v) && Number.isInteger(v) && v >= MAX_NEW_TOKENS_MIN && v <= MAX_NEW_TOKENS_MAX
      ? null
      : `must be an integer from ${MAX_NEW_TOKENS_MIN} to ${MAX_NEW_TOKENS_MAX}`,
  hubEndpoint: checkEndpoint,
  elasticVariant: (v) => (isOneOf(ELASTIC_VARIANTS, v) ? null : `must be one of ${ELASTIC_VARIANTS.join(', ')}`),
  elasticImportance: (v) => (isOneOf(IMPORTANCES, v) ? null : `must be one of ${IMPORTANCES.join(', ')}`),
  elasticMerge: (v) => (typeof v === 'boolean' ? null : 'must be true or false'),
  imageDetail: (v) => (isOneOf(IMAGE_DETAILS, v) ? null : `must be one of ${IMAGE_DETAILS.join(', ')}`),
  followUps: (v) => (isOneOf(FOLLOW_UPS, v) ? null : `must be one of ${FOLLOW_UPS.join(', ')}`),
};

export interface SettingProblem {
  key: keyof Settings;
  value: unknown;
  reason: string;
  /** The value used instead. */
  used: unknown;
}

export function describeProblem(p: SettingProblem): string {
  const shown = typeof p.value === 'string' ? JSON.stringify(p.value) : String(p.value);
  return `Setting ${SECTION}.${p.key} = ${shown} ${p.reason}; using ${JSON.stringify(p.used)}.`;
}

/**
 * Validates raw setting values (as read from the configuration; `undefined` = not set -> default).
 * Each invalid one is replaced by its value in `previous` (the last valid settings) or the default.
 */
export function validateSettings(
  raw: Partial<Record<keyof Settings, unknown>>,
  previous: Settings = DEFAULT_SETTINGS,
): { settings: Settings; problems: SettingProblem[] } {
  const settings = { ...previous } as Settings;
  const problems: SettingProblem[] = [];
  for (const key of SETTING_KEYS) {
    const value = raw[key] === undefined ? DEFAULT_SETTINGS[key] : raw[key];
    const reason = CHECKS[key](value);
    if (reason) {
      problems.push({ key, value, reason, used: previous[key] });
    } else {
      (settings as unknown as Record<string, unknown>)[key] =
        key === 'hubEndpoint' ? String(value).replace(/\/+$/, '') : value;
    }
  }
  return { settings, problems };
}

/** The cache options a new conversation takes from the settings (panel, chat and tool alike). */
export function cacheOptions(s: Settings): CacheOptions {
  // importance and merge are the paper variant's options: sent only with it.
  const paper = s.elasticVariant !== 'answers' ? { importance: s.elasticImportance, merge: s.elasticMerge } : {};
  return { policy: s.cachePolicy, keep: s.cacheKeep, variant: s.elasticVariant, followUps: s.followUps, ...paper };
}
