// The settings of Elastic VLM and their validation. No `vscode` import: unit tests run this in plain Node.
// An invalid value (out of range, unknown enum member, wrong type) is rejected with a message and the previous valid
// value (or the default, the first time) is used instead.
import type { Device, PolicyName } from '../runtime/protocol.js';
import { DEFAULT_KEEP } from '../runtime/cache/keepDefaults.js';

export interface Settings {
  cacheRatio: number;
  cachePolicy: PolicyName;
  modelPath: string;
  device: Device;
  maxNewTokens: number;
  hubEndpoint: string;
  /** Elastic's stage-1 importance: the paper's column sums ('sum') or per seeing query ('mean'). */
  elasticImportance: 'sum' | 'mean';
  /** Elastic's stage 1 merges dropped entries into anchors (the paper) or evicts them. */
  elasticMerge: boolean;
}

export const SECTION = 'elasticVlm';
export const POLICY_NAMES: readonly PolicyName[] = ['elastic', 'h2o', 'streaming', 'full'];
export const DEVICE_NAMES: readonly Device[] = ['auto', 'cpu', 'webgpu', 'cuda', 'dml', 'coreml'];
export const CACHE_RATIO_MIN = 0.05;
export const CACHE_RATIO_MAX = 1;
export const MAX_NEW_TOKENS_MIN = 1;
export const MAX_NEW_TOKENS_MAX = 4096;

export const DEFAULT_SETTINGS: Readonly<Settings> = Object.freeze({
  // DEFAULT_KEEP (runtime/cache/keepDefaults.ts): the lowest budget at which the product's Elastic stayed within
  // 1 point of the full cache (docs/evaluation.md, issue 15). package.json's default must say the same.
  cacheRatio: DEFAULT_KEEP,
  cachePolicy: 'elastic',
  modelPath: '',
  device: 'auto',
  maxNewTokens: 256,
  hubEndpoint: 'https://huggingface.co',
  elasticImportance: 'mean',
  elasticMerge: false,
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
  cacheRatio: (v) =>
    isNum(v) && v >= CACHE_RATIO_MIN && v <= CACHE_RATIO_MAX ? null : `must be a number from ${CACHE_RATIO_MIN} to ${CACHE_RATIO_MAX}`,
  cachePolicy: (v) => (POLICY_NAMES.includes(v as PolicyName) ? null : `must be one of ${POLICY_NAMES.join(', ')}`),
  modelPath: (v) =>
    typeof v === 'string' && !v.includes('\0') && v.length <= 4096 ? null : 'must be a folder path (empty = the embedded model)',
  device: (v) => (DEVICE_NAMES.includes(v as Device) ? null : `must be one of ${DEVICE_NAMES.join(', ')}`),
  maxNewTokens: (v) =>
    isNum(v) && Number.isInteger(v) && v >= MAX_NEW_TOKENS_MIN && v <= MAX_NEW_TOKENS_MAX
      ? null
      : `must be an integer from ${MAX_NEW_TOKENS_MIN} to ${MAX_NEW_TOKENS_MAX}`,
  hubEndpoint: checkEndpoint,
  elasticImportance: (v) => (v === 'sum' || v === 'mean' ? null : 'must be sum or mean'),
  elasticMerge: (v) => (typeof v === 'boolean' ? null : 'must be true or false'),
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

/** One setting's value, validated alone (e.g. a keep ratio changed from the panel). */
export function checkSetting(key: keyof Settings, value: unknown): string | null {
  return CHECKS[key](value);
}
