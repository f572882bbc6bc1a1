// The one message protocol between the inference worker and its clients (the extension, the CLI).
// Both sides import this module; the worker validates every request with `parseRequest`.
import type { CacheStats, ElasticVariant } from './cache/types.js';
import { ELASTIC_VARIANTS } from './cache/types.js';
export { ELASTIC_VARIANTS, type ElasticVariant } from './cache/types.js';
export { DEFAULT_KEEP, SAFE_KEEP_MIN, isBelowSafeRange } from './cache/keepDefaults.js';

export type Device = 'auto' | 'cpu' | 'webgpu' | 'cuda' | 'dml' | 'coreml';
export type PolicyName = 'full' | 'elastic' | 'h2o' | 'streaming' | 'snapkv';
export const DEVICES: readonly Device[] = ['auto', 'cpu', 'webgpu', 'cuda', 'dml', 'coreml'];
export const POLICIES: readonly PolicyName[] = ['full', 'elastic', 'h2o', 'streaming', 'snapkv'];

export interface LoadOptions {
  /** Model folder in the SmolVLM ONNX layout. */
  modelDir: string;
  device: Device;
  /** onnx/ file variant: '' (fp32), 'fp16', 'q4', 'int8', ... */
  dtype?: string;
}

export interface CacheOptions {
  policy: PolicyName;
  /** Fraction of the KV cache kept, 0 < keep <= 1. */
  keep: number;
  positions?: 'absolute' | 'compressed';
  startSize?: number;
  distance?: number;
  /** Elastic's method: 'answers' (the product's, default), 'paper', 'released' (the released code's selection). */
  variant?: ElasticVariant;
  /** Elastic's stage-1 importance: 'sum' (the paper) or 'mean' (per seeing query; see PolicyOptions). */
  importance?: 'sum' | 'mean';
  /** Elastic's stage-1 merging of dropped entries into anchors (the paper: true). */
  merge?: boolean;
  /** Elastic: the released code's selection (sort ranks used as indices), to measure what the fix is worth. */
  literal?: boolean;
  /** The product's Elastic (measurement knobs, see PolicyOptions): window queries, pooling kernel, merge radius, question kept. */
  window?: number;
  kernel?: number;
  mergeRadius?: number;
  protectQuestion?: boolean;
  protectGlobal?: boolean;
  blend?: number;
  rerank?: number;
  keepProtected?: boolean;
}

export interface GenerateOptions {
  maxNewTokens: number;
  /** 0 or absent: greedy. */
  temperature?: number;
  topP?: number;
  seed?: number;
  /** Ignore the end tokens (benchmarks force a fixed decode length). */
  ignoreEos?: boolean;
  /** Send cache-stats at most every N tokens (default 4). */
  statsEvery?: number;
}

export type Request =
  | { type: 'load'; id: number; options: LoadOptions }
  | { type: 'ask'; id: number; image: string; question: string; cache: CacheOptions; generate: GenerateOptions }
  | { type: 'followUp'; id: number; question: string; cache?: CacheOptions; generate: GenerateOptions }
  | { type: 'cancel'; id: number; target: number }
  | { type: 'dispose'; id: number };

export interface Timings {
  loadMs: number;
  visionMs: number;
  prefillMs: number;
  firstTokenMs: number;
  decodeTokensPerSecond: number;
}

export interface AskResult {
  answer: string;
  promptTokens: number;
  imageTokens: number;
  generatedTokens: number;
  executionProvider: string;
  stopReason: 'eos' | 'length' | 'cancelled';
  timings: Timings;
  cache: CacheStats;
}

export interface ModelInfo {
  modelDir: string;
  executionProvider: string;
  /** Why a faster provider was not used, when `auto` fell back. */
  fallbackReason?: string;
  layers: number;
  scores: boolean;
  loadMs: number;
}

/** Prefill importance of the image tokens, for the heat map: one value per image token, with its tile geometry. */
export interface ImportanceMap {
  /** Tiles in prompt order (row-major, then the global image); each has gridSide x gridSide token cells. */
  tiles: { row: number; col: number; global: boolean; gridSide: number; values: number[] }[];
  rows: number;
  cols: number;
}

export type WorkerEvent =
  | { type: 'ready'; id: number; info: ModelInfo }
  | { type: 'progress'; id: number; stage: string; detail?: string }
  | { type: 'token'; id: number; text: string; index: number }
  | { type: 'cacheStats'; id: number; stats: CacheStats }
  | { type: 'importance'; id: number; map: ImportanceMap }
  | { type: 'done'; id: number; result: AskResult }
  | { type: 'disposed'; id: number }
  | { type: 'error'; id: number; message: string; code: 'bad-input' | 'internal' | 'cancelled' | 'worker-exit' };

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isStr = (v: unknown): v is string => typeof v === 'string';

function checkCache(c: unknown): string | null {
  if (!isObj(c)) return 'cache options must be an object';
  if (!POLICIES.includes(c.policy as PolicyName)) return `unknown cache policy ${JSON.stringify(c.policy)}`;
  if (!isNum(c.keep) || c.keep <= 0 || c.keep > 1) return `cache keep ratio must be in (0, 1], got ${JSON.stringify(c.keep)}`;
  if (c.positions !== undefined && c.positions !== 'absolute' && c.positions !== 'compressed') return 'positions must be absolute or compressed';
  if (c.importance !== undefined && c.importance !== 'sum' && c.importance !== 'mean') return 'importance must be sum or mean';
  if (c.merge !== undefined && typeof c.merge !== 'boolean') return 'merge must be true or false';
  if (c.variant !== undefined && !ELASTIC_VARIANTS.includes(c.variant as ElasticVariant)) return `unknown elastic variant ${JSON.stringify(c.variant)}`;
  return null;
}

function checkGenerate(g: unknown): string | null {
  if (!isObj(g)) return 'generate options must be an object';
  if (!isNum(g.maxNewTokens) || !Number.isInteger(g.maxNewTokens) || g.maxNewTokens < 1 || g.maxNewTokens > 8192)
    return 'maxNewTokens must be an integer in [1, 8192]';
  if (g.temperature !== undefined && (!isNum(g.temperature) || g.temperature < 0)) return 'temperature must be >= 0';
  if (g.topP !== undefined && (!isNum(g.topP) || g.topP <= 0 || g.topP > 1)) return 'topP must be in (0, 1]';
  return null;
}

/** Validate an incoming message; returns the typed request or an error message. */
export function parseRequest(m: unknown): { ok: true; request: Request } | { ok: false; id: number; error: string } {
  const id = isObj(m) && isNum(m.id) ? m.id : -1;
  const bad = (error: string) => ({ ok: false as const, id, error });
  if (!isObj(m)) return bad('message must be an object');
  if (!isNum(m.id)) return bad('message needs a numeric id');
  switch (m.type) {
    case 'load': {
      const o = m.options;
      if (!isObj(o) || !isStr(o.modelDir) || !DEVICES.includes(o.device as Device)) return bad('load needs options {modelDir, device}');
      if (o.dtype !== undefined && !isStr(o.dtype)) return bad('dtype must be a string');
      break;
    }
    case 'ask': {
      if (!isStr(m.image) || !isStr(m.question)) return bad('ask needs image and question strings');
      const e = checkCache(m.cache) ?? checkGenerate(m.generate);
      if (e) return bad(e);
      break;
    }
    case 'followUp': {
      if (!isStr(m.question)) return bad('followUp needs a question string');
      const e = (m.cache === undefined ? null : checkCache(m.cache)) ?? checkGenerate(m.generate);
      if (e) return bad(e);
      break;
    }
    case 'cancel':
      if (!isNum(m.target)) return bad('cancel needs a target id');
      break;
    case 'dispose':
      break;
    default:
      return bad(`unknown request type ${JSON.stringify(m.type)}`);
  }
  return { ok: true, request: m as unknown as Request };
}
