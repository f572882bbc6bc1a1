// The KV-cache policy interface. A policy is a small unit with one job, like a kvpress "press":
// look at scores, then plan which cache slots survive and which are merged. Applying the plan
// (on the CPU or on the GPU) is the cache store's job, not the policy's.
import type { ElasticKnobs, ElasticVariant, Importance } from '../protocol.js';

/**
 * The plan for one layer: `assign[j]` is the new slot of old cache entry j, or -1 to evict it.
 * New slots are 0..max(assign), in order (assign is non-decreasing over the kept entries).
 * Several old entries with the same slot are merged by the plain mean of their keys and of
 * their values (fp32 accumulation). A slot with exactly one source is a plain gather.
 */
export type LayerAssign = Int32Array;

/*
 * Per-KV-head plans (`perHead`, measured for issue 15): a layer's assign may instead hold kvHeads x oldLen entries,
 * row h (entries [h * oldLen, (h + 1) * oldLen)) being KV head h's assign as above. Every head must end at the same
 * length (the cache keeps one length and the decoder's one attention_mask). The store tells the two apart by length
 * (oldLen: one assign for every head; kvHeads x oldLen: one per head); with one KV head they are the same thing.
 * Only the CPU store applies per-head plans (gpuStore.ts refuses them).
 */

/** A plan for every layer, or null when the cache stays as it is. All layers end at one length. */
export type CachePlan = LayerAssign[] | null;


export interface PolicyOptions extends ElasticKnobs {
  /** Elastic: which method (default 'answers'); importance, merge and releasedSelection apply to 'paper' and 'released'. */
  variant?: ElasticVariant;
  /** Fraction of the KV cache that is KEPT, 0 < keep <= 1 (the paper's compression ratio r is 1 - keep). */
  keep: number;
  /** Always-kept prefix (attention sinks / instruction start). */
  startSize?: number;
  /** Elastic decode stage: eviction index P = kept prompt length + distance. */
  distance?: number;
  /** Sink tokens for streaming. */
  sinkSize?: number;
  /** H2O: share of the budget given to heavy hitters (the rest is the recent window). */
  heavyShare?: number;
  /** Elastic: reproduce the released code's selection bug (ranks used as indices, missing start offset). */
  releasedSelection?: boolean;
  /**
   * Elastic stage-1 importance: 'sum' (the paper: un-normalised column sums) or 'mean' (each column sum divided by
   * the number of prompt queries that can see the key). Causal attention lets early keys collect mass from more
   * queries, so 'sum' ranks the last prompt tokens (the question) lowest; 'mean' removes that positional bias.
   */
  importance?: Importance;
  /** Elastic stage 1: merge dropped entries into their nearest anchor (the paper, default) or just drop them. */
  merge?: boolean;
  /** Decode steps per eviction (budget.ts stepEvictions): 1 evicts every step; the GPU store asks for more. */
  evictBatch?: number;
}

/**
 * One layer's per-head attention of the last queries of a run (the observation window): `data` is
 * [heads, queries, len] row-major, float32 probabilities. Prefill: the last min(64, newEntries) queries; a decode step:
 * its one query. Only decoders whose importance rewrite added the `attn_window.*` outputs give it.
 */
export interface WindowAttention {
  data: Float32Array;
  heads: number;
  queries: number;
  len: number;
}

export interface PrefillContext {
  /** Cache length per layer right now (all equal), after this prefill's entries were appended. */
  cacheLength: number;
  /** Entries this prefill appended at the end of the cache (the whole prompt on the first turn). */
  newEntries: number;
  /** Tokens seen so far, prompt tokens of every turn plus generated tokens, uncompressed. */
  tokensSeen: number;
  /**
   * Per layer, the head-averaged attention mass of this prefill's queries over every cache entry
   * (column sums), length cacheLength; null when the decoder gives no scores.
   */
  scores: Float32Array[] | null;
  /**
   * Decoder layers, i.e. how many LayerAssign a plan holds. Needed by score-free policies (streaming),
   * which cannot learn it from `scores`; optional where scores are given.
   */
  numLayers?: number;
  /** Per layer, the per-head attention of this prefill's last queries (see WindowAttention); absent without it. */
  window?: WindowAttention[] | null;
  /** Per new entry, 1 where it is an image token, 0 for text; absent when unknown. */
  imageMask?: Uint8Array;
  /** KV heads per layer (the cache's); needed by per-KV-head plans (Elastic's `perHead`). */
  kvHeads?: number;
  /**
   * Layer l's keys as float32 [kvHeads, cacheLength, headDim], where the store can read them (the CPU store); absent
   * on the GPU. Elastic's similarity merge reads them.
   */
  keys?: (layer: number) => Float32Array;
  /** Head dimension of the keys (with `keys`). */
  headDim?: number;
  /**
   * The current question: how many of the new entries, at their end, this turn's prompt is. Absent: all of them.
   * A re-expanded follow-up prefills the whole conversation; only its last prompt is the question being asked.
   */
  questionLength?: number;
}

export interface StepContext {
  /** Cache length per layer after this step's entry was appended. */
  cacheLength: number;
  tokensSeen: number;
  /** Per layer, this step's head-averaged attention row over every cache entry; null without scores. */
  scores: Float32Array[] | null;
  /** Decoder layers (see PrefillContext.numLayers). */
  numLayers?: number;
  /** Per layer, this step's attention row per query head (queries = 1); absent without it. */
  window?: WindowAttention[] | null;
  /** KV heads per layer (see PrefillContext.kvHeads). */
  kvHeads?: number;
}

export interface CachePolicy {
  readonly name: string;
  /** Whether this policy needs the decoder's attention-importance outputs. */
  readonly needsScores: boolean;
  /** Entries this policy may hold after `tokensSeen` tokens (budget.ts's rule, with this policy's minimum). */
  budget(tokensSeen: number): number;
  /**
   * Whether its merges keep the attention mass of what they merge: the store then weighs merges by the entries each
   * stands for and feeds the decoder log(count) as an attention bias (store.ts CpuStoreOptions.mass).
   */
  readonly mass?: boolean;
  /** Whether it reads the per-head window attention (PrefillContext.window / StepContext.window). */
  readonly needsWindow?: boolean;
  /**
   * Whether afterStep reads the scores or the window (default: needsScores). Where scores cost a run of their own
   * (WebGPU's scoring graph, model/scorer.ts), a policy that ranks only after the prefill spares every step that run.
   */
  readonly stepScores?: boolean;
  /** After a prompt (first turn or follow-up) was prefilled. */
  afterPrefill(ctx: PrefillContext): CachePlan;
  /**
   * The same plan where part of the planning runs better off the JS thread (Elastic's key search runs in
   * onnxruntime); the conversation calls it when a policy has it.
   */
  afterPrefillAsync?(ctx: PrefillContext): Promise<CachePlan>;
  /** After one decode step appended one entry. */
  afterStep(ctx: StepContext): CachePlan;
}
