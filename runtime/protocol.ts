// The one door between the inference worker and its clients (the extension, its webview, the CLI): the wire
// types and the lists every side validates against, each defined here once. The worker validates every request
// with `parseRequest`. This module imports nothing but the model-folder layout, so the webview can bundle it.
export { MODEL_GRAPHS, REQUIRED_ROOT_FILES, OPTIONAL_ROOT_FILES, FAMILIARITY_FILE, onnxFileName } from './model/layout.js';

/** Execution providers a user can ask for; `auto` picks one (runtime/model/sessions.ts). */
export const DEVICES = ['auto', 'cpu', 'webgpu', 'cuda', 'dml', 'coreml'] as const;
export type Device = (typeof DEVICES)[number];
/** A device `auto` resolves to: an execution provider. */
export type Provider = Exclude<Device, 'auto'>;

/** Cache policies, in the order settings and the panel offer them (the first is the default). */
export const POLICIES = ['elastic', 'h2o', 'streaming', 'snapkv', 'full'] as const;
export type PolicyName = (typeof POLICIES)[number];

/** Elastic's methods: the product's (answers, the default), the paper's, the paper's with the released code's selection. */
export const ELASTIC_VARIANTS = ['answers', 'paper', 'released'] as const;
export type ElasticVariant = (typeof ELASTIC_VARIANTS)[number];

/** How the paper's Elastic ranks the prompt's entries: column sums, or each sum per seeing query. */
export const IMPORTANCES = ['sum', 'mean'] as const;
export type Importance = (typeof IMPORTANCES)[number];

/** How finely an image is tiled: the global image alone, at most 2 or 3 tiles on its long side, or the model's own. */
export const IMAGE_DETAILS = ['global', 'low', 'medium', 'full'] as const;
export type ImageDetail = (typeof IMAGE_DETAILS)[number];

/** The smallest fraction of the cache a user may keep (below it a budget holds a handful of entries). */
export const KEEP_MIN = 0.05;
export const KEEP_MAX = 1;

// Measured on the whole held-out set (300 samples) with the product's Elastic (mass-keeping merges) and the embedded
// model on the CPU, 2026-12-08 (docs/evaluation.md, "Mass-keeping merges").
/**
 * The extension's default kept fraction: the lowest measured budget at which the product's Elastic stays within 1
 * point of the full cache's accuracy (0.3: 0.971 against 0.975, ROUGE-L 0.954; 0.2 is 0.958, 1.7 points under).
 */
export const DEFAULT_KEEP = 0.3;

/**
 * Below this kept fraction the panel and the chat warn that answers may lose detail: the lowest measured budget
 * whose accuracy interval still holds the full cache's accuracy and whose descriptions keep ROUGE-L >= 0.90 (0.2:
 * 0.958 [0.933, 0.983] against 0.975, ROUGE-L 0.916; 0.1: 0.929 [0.896, 0.958], ROUGE-L 0.695). Measured where the
 * merges keep their mass (the CPU store and a decoder with attn_bias.*); on WebGPU the merges are plainer and lose
 * more at the same budget (docs/elastic-cache.md).
 */
export const SAFE_KEEP_MIN = 0.2;

/** True when `keep` is below the measured safe range (only the product's Elastic was measured for it). */
export function isBelowSafeRange(keep: number): boolean {
  return keep < SAFE_KEEP_MIN - 1e-9;
}

export interface LoadOptions {
  /** Model folder in the SmolVLM ONNX layout. */
  modelDir: string;
  device: Device;
  /** onnx/ file variant: '' (fp32), 'fp16', 'q4', 'int8', ... */
  dtype?: string;
}

/** The product's Elastic's measurement knobs (SnapKV reads window and kernel); docs/evaluation.md measures each. */
export interface ElasticKnobs {
  /** Observation-window queries (at most 64, the decoder's window output). */
  window?: number;
  /** Average-pooling kernel over neighbouring entries (odd, 1 = none). */
  kernel?: number;
  /**
   * Which kept image entry a dropped image entry merges into: the one whose key is most similar (cosine over the KV
   * heads; default, where the store can read the keys) or, false, an adjacent one (at most `mergeRadius` away).
   */
  similar?: boolean;
  /** A dropped image entry merges into a kept image entry at most this far (0: never); the adjacent rule only. */
  mergeRadius?: number;
  /**
   * Merged entries keep their attention mass (default true): a merge is the count-weighted mean and the decoder adds
   * log(count) to the entry's attention logits (decoders with `attn_bias.*`, onnx/massBias.ts).
   */
  mass?: boolean;
  /** Always keep the text after the image (the question). Default true. */
  protectQuestion?: boolean;
  /** Always keep the global image (the prompt's last run of image tokens). */
  protectGlobal?: boolean;
  /** Share of the query-agnostic score (column sums per seeing query) in the ranking, 0..1. */
  blend?: number;
  /** Re-rank in stage 2 with decode attention, protecting this many recent entries (0: off). */
  rerank?: number;
  /** With rerank: stage 2 never evicts what stage 1 protected (question, global image). */
  keepProtected?: boolean;
  /**
   * Per-KV-head selection (measured, off by default): each KV head keeps its own entries, scored by the window
   * attention of its group of query heads; every head keeps the same count. CPU store only.
   */
  perHead?: boolean;
}

export interface CacheOptions extends ElasticKnobs {
  policy: PolicyName;
  /** Fraction of the KV cache kept, 0 < keep <= 1 (the paper's compression ratio r is 1 - keep). */
  keep: number;
  positions?: 'absolute' | 'compressed';
  startSize?: number;
  distance?: number;
  /** Elastic's method: 'answers' (the product's, default), 'paper', 'released' (the released code's selection). */
  variant?: ElasticVariant;
  /** The paper's Elastic, stage-1 importance: 'sum' (the paper) or 'mean' (per seeing query; see PolicyOptions). */
  importance?: Importance;
  /** Elastic's stage-1 merging of dropped entries into anchors (the paper: true). */
  merge?: boolean;
  /**
   * A follow-up question on a compressed cache: 'reexpand' (default) prefills the whole conversation again from its
   * kept inputs (image features and token ids, not the K/V) and compresses for the new question; 'reuse' extends the
   * cache the last turn left, so what that turn dropped is gone for good.
   */
  followUps?: FollowUps;
}

export const FOLLOW_UPS = ['reexpand', 'reuse'] as const;
export type FollowUps = (typeof FOLLOW_UPS)[number];

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
  | { type: 'ask'; id: number; image: string; question: string; cache: CacheOptions; generate: GenerateOptions; detail?: ImageDetail }
  // A follow-up keeps the first turn's cache options: another policy cannot take over a cache this one shaped.
  | { type: 'followUp'; id: number; question: string; generate: GenerateOptions }
  | { type: 'cancel'; id: number; target: number }
  | { type: 'dispose'; id: number };

export interface Timings {
  loadMs: number;
  visionMs: number;
  prefillMs: number;
  firstTokenMs: number;
  decodeTokensPerSecond: number;
}

/** What the cache did, reported after every few steps (the panel's live view, CLI --json). */
export interface CacheStats {
  policy: string;
  /** The fraction kept that was asked for. */
  keep: number;
  tokensSeen: number;
  /** Entries the policy may hold now: keep x tokensSeen, rounded as the policy rounds it, never below its minimum. */
  budget: number;
  perLayerLength: number[];
  /** Bytes held by the kept keys and values. */
  bytes: number;
  /** Bytes a full cache would hold for the same tokens. */
  fullBytes: number;
  merged: number;
  evicted: number;
  /** Follow-ups that re-expanded the cache from the conversation's inputs (CacheOptions.followUps). */
  reexpanded?: number;
  location: 'cpu' | 'gpu';
}

/**
 * Why an answer, though it came, may not deserve trust. `unfamiliar-image`: the image's vision features lie far
 * from those of the model's in-domain calibration images (the model folder's familiarity.json, made by
 * `npm run familiarity`; docs/familiarity.md): a photo, a document page or a code screenshot shown to a model that
 * knows only diagrams answers wrongly and confidently. A model folder without that file gets no such check.
 */
export const WARNING_CODES = ['unfamiliar-image'] as const;
export type WarningCode = (typeof WARNING_CODES)[number];

export interface AskWarning {
  code: WarningCode;
  /** One line for people. */
  message: string;
  /** unfamiliar-image: the image's score and the threshold it passed (higher is less familiar). */
  score?: number;
  threshold?: number;
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
  /** Warnings about this answer (every turn about an image carries that image's); empty when none. */
  warnings: AskWarning[];
}

/**
 * What `auto`'s measured probe found (runtime/model/probe.ts): the median decode step of one fixed workload on a GPU
 * provider and on the CPU, with this model's own decoder. The chosen provider is the faster by a margin.
 */
export interface DeviceProbe {
  /** The GPU provider raced against the CPU. */
  gpu: Provider;
  gpuStepMs: number;
  cpuStepMs: number;
  /** True when the numbers came from the probe cache (nothing was timed at this load). */
  cached: boolean;
  /** What the probe cost at this load (the CPU sessions and the timed runs), ms; 0 when cached. */
  probeMs: number;
  /** When the numbers were measured (ISO time). */
  measuredAt?: string;
  /** Why the CPU could not be timed (it could not load or run the model); the GPU is kept and nothing is cached. */
  cpuError?: string;
}

/** A GPU provider wins `auto`'s probe only when its decode step is at least this much shorter than the CPU's. */
export const DEVICE_PROBE_MARGIN = 0.1;

const DEVICE_WORDS: Record<string, string> = { cpu: 'the CPU', webgpu: 'WebGPU', cuda: 'CUDA', dml: 'DirectML', coreml: 'Core ML' };
/** A provider in words ('the CPU', 'WebGPU'). */
export const deviceWords = (p: string): string => DEVICE_WORDS[p] ?? p;

/** The probe's decision in one line: "auto chose the CPU: 2.1 ms a step against 9.8 ms on WebGPU (measured, cached)". */
export function describeProbe(provider: string, probe: DeviceProbe): string {
  const ms = (v: number) => (Number.isFinite(v) ? `${v < 1 ? v.toFixed(2) : v.toFixed(1)} ms` : 'no time');
  if (probe.cpuError) return `auto chose ${deviceWords(provider)}: ${ms(probe.gpuStepMs)} a step; the CPU could not run the model (${probe.cpuError})`;
  const onCpu = provider === 'cpu';
  const [mine, theirs] = onCpu ? [probe.cpuStepMs, probe.gpuStepMs] : [probe.gpuStepMs, probe.cpuStepMs];
  const close = onCpu && probe.gpuStepMs < probe.cpuStepMs ? `, not ${Math.round(DEVICE_PROBE_MARGIN * 100)} % faster` : '';
  return `auto chose ${deviceWords(provider)}: ${ms(mine)} a step against ${ms(theirs)} on ${deviceWords(onCpu ? probe.gpu : 'cpu')}${close} ` +
    `(measured${probe.cached ? ', cached' : ''})`;
}

export interface ModelInfo {
  modelDir: string;
  executionProvider: string;
  /** Why a faster provider was not used, when `auto` fell back. */
  fallbackReason?: string;
  /** `auto`'s measured race of a GPU provider against the CPU (absent when a device was named or no GPU loaded). */
  probe?: DeviceProbe;
  layers: number;
  scores: boolean;
  loadMs: number;
  /** Whether answers are checked for unfamiliar images (the folder has a valid familiarity.json for its vision encoder). */
  familiarity: boolean;
}

/** Prefill importance of the image tokens, for the heat map: one value per image token, with its tile geometry. */
export interface ImportanceMap {
  /** Tiles in prompt order (row-major, then the global image); each has gridSide x gridSide token cells. */
  tiles: { row: number; col: number; global: boolean; gridSide: number; values: number[] }[];
  rows: number;
  cols: number;
}

/**
 * Which token positions each layer's cache still holds (an optional part of cacheStats, for the panel's cache view).
 * Position p is the p-th token the conversation has seen (prompt tokens of every turn and fed-back answer tokens).
 */
export interface KeptPositions {
  /** One character per position: 'i' image token, 't' prompt text, 'g' an answer token fed back. */
  kinds: string;
  /** Per layer, one character per position: 'k' kept as is, 'm' kept merged with others into one entry, '-' evicted. */
  layers: string[];
  /** Prompt tokens of the first turn (the prefill that ranked the image tokens). */
  firstPrompt: number;
}

export type WorkerEvent =
  | { type: 'ready'; id: number; info: ModelInfo }
  | { type: 'progress'; id: number; stage: string; detail?: string }
  | { type: 'token'; id: number; text: string; index: number }
  | { type: 'cacheStats'; id: number; stats: CacheStats; kept?: KeptPositions }
  | { type: 'importance'; id: number; map: ImportanceMap }
  | { type: 'done'; id: number; result: AskResult }
  | { type: 'disposed'; id: number }
  | { type: 'error'; id: number; message: string; code: WorkerErrorCode };

/**
 * Why the worker failed a request: the user's input, or the worker itself. A cancel is no error: the request ends
 * with `done` and stopReason 'cancelled', queued or in flight. (The client adds 'worker-exit' when the process dies.)
 */
export type WorkerErrorCode = 'bad-input' | 'internal';

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isStr = (v: unknown): v is string => typeof v === 'string';
/** Whether `v` is a member of one of the lists above (narrows to the list's type). */
export const isOneOf = <T extends string>(list: readonly T[], v: unknown): v is T => list.includes(v as T);

function checkCache(c: unknown): string | null {
  if (!isObj(c)) return 'cache options must be an object';
  if (!isOneOf(POLICIES, c.policy)) return `unknown cache policy ${JSON.stringify(c.policy)}`;
  if (!isNum(c.keep) || c.keep <= 0 || c.keep > 1) return `cache keep must be in (0, 1], got ${JSON.stringify(c.keep)}`;
  if (c.positions !== undefined && c.positions !== 'absolute' && c.positions !== 'compressed') return 'positions must be absolute or compressed';
  if (c.importance !== undefined && !isOneOf(IMPORTANCES, c.importance)) return `importance must be ${IMPORTANCES.join(' or ')}`;
  if (c.merge !== undefined && typeof c.merge !== 'boolean') return 'merge must be true or false';
  if (c.variant !== undefined && !isOneOf(ELASTIC_VARIANTS, c.variant)) return `unknown elastic variant ${JSON.stringify(c.variant)}`;
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
      if (!isObj(o) || !isStr(o.modelDir) || !isOneOf(DEVICES, o.device)) return bad('load needs options {modelDir, device}');
      if (o.dtype !== undefined && !isStr(o.dtype)) return bad('dtype must be a string');
      break;
    }
    case 'ask': {
      if (!isStr(m.image) || !isStr(m.question)) return bad('ask needs image and question strings');
      if (m.detail !== undefined && !isOneOf(IMAGE_DETAILS, m.detail)) return bad(`detail must be one of ${IMAGE_DETAILS.join(', ')}`);
      const e = checkCache(m.cache) ?? checkGenerate(m.generate);
      if (e) return bad(e);
      break;
    }
    case 'followUp': {
      if (!isStr(m.question)) return bad('followUp needs a question string');
      if (m.cache !== undefined) return bad('followUp takes no cache options: the first turn\'s stay for the conversation');
      const e = checkGenerate(m.generate);
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
