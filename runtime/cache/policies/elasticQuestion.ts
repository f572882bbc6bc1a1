// The product's Elastic Cache (variant "answers", the CLI's and the extension's default `elastic`): the paper's two
// stages and elastic budget, with the stage-1 ranking made question-aware. docs/elastic-cache.md says why each change,
// docs/evaluation.md what each is worth.
// Stage 1 (after every prefill), per layer:
//  1. importance of entry j = the attention the question gives it: the per-head attention of the prompt's text after
//     the image (the question and `Assistant:`; without an image the whole new prompt), averaged over those queries
//     and every query head of the layer (windowScore);
//  2. pooled over neighbouring entries (kernel `kernel`, 5; an image token's neighbours are the patches beside it);
//  3. always kept: the sinks [0, startSize), the question (the text after the image) and, room permitting, the global
//     image (the prompt's last run of image tokens: the thumbnail of the whole picture); the rest of the budget goes
//     to the highest pooled scores: the anchors;
//  4. a dropped image entry merges into the surviving image entry whose key is most similar (`similar`: cosine over
//     the KV heads; same modality), and the merge keeps the attention mass of what it merged (`mass`: the mean of the
//     keys and of the values weighted by the entries each stands for, and log(count) added to the entry's attention
//     logits, as token merging's proportional attention does). Text is never merged. Where the keys cannot be read
//     (the GPU store) or with `perHead`, a dropped image entry merges into an adjacent one (`mergeRadius` 1).
// Stage 2 (each decode step), default: the fixed offset is the recent window: the `rerank` (32) newest entries and the
// sinks stay, and once over budget the entry with the lowest accumulated importance (its stage-1 pooled score plus
// the attention the decode steps gave it) goes. `rerank: 0` is the paper's rule: evict at the fixed index
// P = kept prompt length + distance (-25).
// Every default was measured (docs/evaluation.md, "The product's Elastic, idea by idea").
// `perHead` (measured, off by default): every step above runs per KV head instead of per layer. A KV head's score is
// the window attention of its group of query heads (GQA), each head keeps its own entries (the same count in every
// head, so the cache keeps one length), protected entries are kept in every head, merges and stage 2's re-ranking
// (each head's own accumulated score, from its group's decode attention) are per head too. The state below is then
// held per "lane" (layer l, KV head g: lane l x kvHeads + g); per layer there is one lane, as before.

import type { CachePlan, CachePolicy, LayerAssign, PolicyOptions, PrefillContext, StepContext, WindowAttention } from '../types.js';
import { avgPool1d, kvGroup, topKeep, windowScore } from '../scores.js';
import { nearestGraph, nearestLoop, unitRows } from '../nearest.js';
import { budgetFor, checkKeep, stepEvictions } from './budget.js';
import { evictRangeAssign, resolveLayers, sameForAllLayers } from './plan.js';
import { ELASTIC_DEFAULT_START, perQuery } from './elastic.js';

export const ANSWERS_WINDOW = 64;
export const ANSWERS_KERNEL = 5;
export const ANSWERS_DISTANCE = -25;
/** Stage 2 re-ranks every entry older than the RECENT window (the fixed offset from the end) by accumulated attention. */
export const ANSWERS_RECENT = 32;
export const ANSWERS_MERGE_RADIUS = 1;

/**
 * Assign for one layer from a keep mask; a dropped entry j with `image[j]` merges into the nearest kept image entry
 * at distance <= radius (ties: the earlier), else it is evicted.
 */
export function sameModalityMergeAssign(keep: Uint8Array, image: Uint8Array, radius: number): LayerAssign {
  const len = keep.length;
  const slot = new Int32Array(len).fill(-1);
  let n = 0;
  for (let j = 0; j < len; j++) if (keep[j]) slot[j] = n++;
  const assign = Int32Array.from(slot);
  if (radius <= 0) return assign;
  for (let j = 0; j < len; j++) {
    if (keep[j] || !image[j]) continue;
    for (let d = 1; d <= radius; d++) {
      const a = j - d;
      const b = j + d;
      if (a >= 0 && keep[a] && image[a]) {
        assign[j] = slot[a];
        break;
      }
      if (b < len && keep[b] && image[b]) {
        assign[j] = slot[b];
        break;
      }
    }
  }
  return assign;
}

/**
 * What a similarity merge searches: the kept entries' slots, and the unit key vectors (all KV heads together) of the
 * dropped image entries and of the kept image entries (the anchors). `keys` is [heads, len, headDim].
 */
interface SimilarSearch {
  assign: Int32Array;
  dropped: number[];
  anchors: number[];
  from: Float32Array;
  to: Float32Array;
  width: number;
}

function similarSearch(keep: Uint8Array, image: Uint8Array, keys: Float32Array, heads: number, headDim: number): SimilarSearch {
  const len = keep.length;
  if (keys.length !== heads * len * headDim) throw new RangeError(`keys have ${keys.length} values, expected ${heads}x${len}x${headDim}`);
  const assign = new Int32Array(len).fill(-1);
  const anchors: number[] = [];
  const dropped: number[] = [];
  let n = 0;
  for (let j = 0; j < len; j++) {
    if (keep[j]) {
      if (image[j]) anchors.push(j);
      assign[j] = n++;
    } else if (image[j]) dropped.push(j);
  }
  const width = heads * headDim;
  const rows = (js: number[]) => {
    const x = new Float32Array(js.length * width);
    js.forEach((j, r) => {
      for (let h = 0; h < heads; h++) x.set(keys.subarray((h * len + j) * headDim, (h * len + j + 1) * headDim), r * width + h * headDim);
    });
    return unitRows(x, width);
  };
  return { assign, dropped, anchors, from: rows(anchors.length ? dropped : []), to: rows(anchors), width };
}

function similarAssign(s: SimilarSearch, best: Int32Array): LayerAssign {
  if (s.anchors.length) s.dropped.forEach((j, r) => (s.assign[j] = s.assign[s.anchors[best[r]]]));
  return s.assign;
}

/**
 * Assign for one layer from a keep mask: a dropped image entry merges into the kept image entry whose key is most
 * similar to its own (cosine of the keys of all KV heads together; ties: the earlier), text is evicted. `keys` is
 * [heads, len, headDim]. Slots follow the kept entries in order; the merges come from anywhere (an unordered plan,
 * compact.ts). The reference loop; similarMergeAssignFast gives the same through onnxruntime.
 */
export function similarMergeAssign(keep: Uint8Array, image: Uint8Array, keys: Float32Array, heads: number, headDim: number): LayerAssign {
  const s = similarSearch(keep, image, keys, heads, headDim);
  return similarAssign(s, nearestLoop(s.from, s.to, s.width));
}

/** similarMergeAssign with the search run as a matrix product by onnxruntime (cache/nearest.ts). */
export async function similarMergeAssignFast(keep: Uint8Array, image: Uint8Array, keys: Float32Array, heads: number, headDim: number): Promise<LayerAssign> {
  const s = similarSearch(keep, image, keys, heads, headDim);
  return similarAssign(s, await nearestGraph(s.from, s.to, s.width));
}

/** Per-entry flags after a plan: one per new slot, set when any entry that lands in it is flagged. */
export function remapFlags(flags: Uint8Array, assign: LayerAssign): Uint8Array {
  let n = 0;
  for (let j = 0; j < assign.length; j++) if (assign[j] + 1 > n) n = assign[j] + 1;
  const out = new Uint8Array(n);
  for (let j = 0; j < assign.length; j++) if (assign[j] >= 0 && flags[j]) out[assign[j]] = 1;
  return out;
}

/** One layer's assign from its lanes: the lane's own with one lane, else the per-KV-head rows stacked (types.ts). */
export function stackHeads(rows: LayerAssign[]): LayerAssign {
  if (rows.length === 1) return rows[0];
  const len = rows[0].length;
  const out = new Int32Array(rows.length * len);
  rows.forEach((r, h) => out.set(r, h * len));
  return out;
}

/** The query-agnostic share (`blend`): `score` mixed in place with the column sums per seeing query (ObservedAttention),
 * scaled to the window score's mean. */
function blendScores(score: Float32Array, agnostic: Float32Array, blend: number): void {
  let a = 0;
  let b = 0;
  for (let j = 0; j < score.length; j++) {
    a += score[j];
    b += agnostic[j];
  }
  const f = b > 0 ? a / b : 0;
  for (let j = 0; j < score.length; j++) score[j] = (1 - blend) * score[j] + blend * f * agnostic[j];
}

/** `flags` grown to `len` entries, the new ones set to `value`. */
function grow(flags: Uint8Array | undefined, len: number, value: Uint8Array | number = 0): Uint8Array {
  const old = flags ?? new Uint8Array(0);
  const a = new Uint8Array(len);
  const keepOld = Math.min(old.length, len);
  a.set(old.subarray(0, keepOld));
  if (typeof value === 'number') a.fill(value, keepOld);
  else a.set(value, len - value.length);
  return a;
}

export class QuestionElasticPolicy implements CachePolicy {
  readonly name = 'elastic';
  readonly needsScores = true;
  readonly needsWindow = true;
  /** The re-ranking stage 2 reads each step's attention; the paper's fixed index does not. */
  get stepScores(): boolean {
    return this.rerank > 0;
  }
  readonly keep: number;
  readonly startSize: number;
  readonly distance: number;
  readonly window: number;
  readonly kernel: number;
  readonly mergeRadius: number;
  readonly similar: boolean;
  readonly mass: boolean;
  readonly protectQuestion: boolean;
  readonly protectGlobal: boolean;
  readonly blend: number;
  readonly rerank: number;
  /** Per lane, with `rerank`: each entry's score (stage-1 pooled score + decode attention). */
  private acc: Float64Array[] = [];
  /** Per lane, 1 where the entry was protected at stage 1 (sinks, question, global image). */
  private kept: Uint8Array[] = [];
  readonly keepProtected: boolean;
  readonly perHead: boolean;
  private readonly windowSet: boolean;
  private p: number | null = null;
  private layers = 0;
  private readonly evictBatch: number;
  /** Lanes per layer: 1, or the KV heads with `perHead`. */
  private groups = 0;
  /** Per lane, 1 where the cache entry is an image token (follows every plan). */
  private image: Uint8Array[] = [];

  constructor(opts: PolicyOptions) {
    checkKeep(opts.keep);
    this.keep = opts.keep;
    this.startSize = opts.startSize ?? ELASTIC_DEFAULT_START;
    this.evictBatch = opts.evictBatch ?? 1;
    this.distance = opts.distance ?? ANSWERS_DISTANCE;
    this.windowSet = opts.window !== undefined;
    this.window = opts.window ?? ANSWERS_WINDOW;
    this.kernel = opts.kernel ?? ANSWERS_KERNEL;
    this.mergeRadius = opts.mergeRadius ?? ANSWERS_MERGE_RADIUS;
    this.similar = opts.similar ?? true;
    this.mass = opts.mass ?? true;
    this.protectQuestion = opts.protectQuestion ?? true;
    this.protectGlobal = opts.protectGlobal ?? true;
    this.blend = opts.blend ?? 0;
    this.rerank = opts.rerank ?? ANSWERS_RECENT;
    this.keepProtected = opts.keepProtected ?? false;
    this.perHead = opts.perHead ?? false;
    // The query-agnostic share reads the head-averaged column sums, one per layer slot: not a per-head score.
    if (this.perHead && this.blend > 0) throw new RangeError('elastic: blend cannot be combined with perHead (its column sums are per layer)');
    if (!(this.blend >= 0 && this.blend <= 1)) throw new RangeError('elastic: blend must be in [0, 1]');
    if (!(Number.isInteger(this.startSize) && this.startSize >= 0)) throw new RangeError('elastic: startSize must be an integer >= 0');
    if (!Number.isInteger(this.distance)) throw new RangeError('elastic: distance must be an integer');
  }

  budget(tokensSeen: number): number {
    return budgetFor(this.keep, tokensSeen, this.startSize + 1);
  }

  get evictionIndex(): number | null {
    return this.p;
  }

  /** Lanes per layer: 1, or with `perHead` the cache's KV heads (fixed at the first prefill). */
  private resolveGroups(kvHeads: number | undefined): number {
    if (this.groups) return this.groups;
    if (!this.perHead) return (this.groups = 1);
    if (!(kvHeads !== undefined && Number.isInteger(kvHeads) && kvHeads >= 1)) {
      throw new Error('elastic: perHead needs the cache\'s KV heads (ctx.kvHeads)');
    }
    return (this.groups = kvHeads);
  }

  /** Lane k's score over the cache from layer l's window attention (its KV head's query-head group with perHead). */
  private laneWindow(ctx: { window?: WindowAttention[] | null }, l: number, g: number, queries?: number): Float32Array {
    const att = ctx.window![l];
    return this.groups > 1 ? windowScore(att, queries, ...kvGroup(att.heads, this.groups, g)) : windowScore(att, queries);
  }

  /** One plan from per-lane assigns (lane-major within a layer). */
  private stack(lanes: LayerAssign[]): LayerAssign[] {
    const G = this.groups;
    return Array.from({ length: this.layers }, (_, l) => stackHeads(lanes.slice(l * G, (l + 1) * G)));
  }

  /**
   * `rerank` > 0 (measured, off by default): stage 2 re-ranks instead of evicting at P. Every entry's score is its
   * stage-1 pooled score plus the decode steps' attention it received (head-averaged rows, H2O's accumulation); over
   * budget, the lowest-scoring entry outside the sinks and the `rerank` most recent entries goes.
   */
  private rerankStep(ctx: StepContext): CachePlan {
    if (!ctx.scores) throw new Error('elastic: decode re-ranking needs attention scores at every step');
    const G = this.groups;
    if (G > 1 && !ctx.window) throw new Error('elastic: per-head decode re-ranking needs the per-head attention (attn_window.*) at every step');
    const len = ctx.cacheLength;
    for (let l = 0; l < this.layers; l++) {
      for (let g = 0; g < G; g++) {
        const k = l * G + g;
        const a = new Float64Array(len);
        a.set((this.acc[k] ?? new Float64Array(0)).subarray(0, len - 1));
        // per layer: the head-averaged row; per KV head: the mean row of its query heads
        const row = G > 1 ? this.laneWindow(ctx, l, g, 1) : ctx.scores[l];
        for (let j = 0; j < len; j++) a[j] += row[j];
        this.acc[k] = a;
      }
    }
    const over = stepEvictions(len, this.budget(ctx.tokensSeen), this.evictBatch, len - 1 - this.startSize);
    if (over <= 0) return null;
    const end = Math.max(this.startSize + over, len - this.rerank);
    const lanes = this.acc.map((a, l) => {
      const drop = new Uint8Array(len);
      const prot = this.kept[l];
      // keepProtected: the question and the global image stay too, while enough other candidates remain
      const key = (x: number) => (this.keepProtected && prot[x] ? Infinity : a[x]);
      const order = Array.from({ length: end - this.startSize }, (_, i) => this.startSize + i).sort((x, y) => key(x) - key(y) || a[x] - a[y] || x - y);
      for (let i = 0; i < over; i++) drop[order[i]] = 1;
      const assign = new Int32Array(len);
      let k = 0;
      const kept = new Float64Array(len - over);
      for (let j = 0; j < len; j++) {
        if (drop[j]) assign[j] = -1;
        else {
          kept[k] = a[j];
          assign[j] = k++;
        }
      }
      this.acc[l] = kept;
      this.image[l] = remapFlags(this.image[l], assign);
      this.kept[l] = remapFlags(prot, assign);
      return assign;
    });
    return this.stack(lanes);
  }

  /** Whether lane merges search the keys (per layer, where the store gives them; else the adjacent rule). */
  private searchesKeys(ctx: PrefillContext): boolean {
    return this.similar && this.groups === 1 && !!ctx.keys && !!ctx.headDim;
  }

  /** Lane l's (layer l's) assign from its keep mask by the reference loop, or by adjacency (the GPU store, per-KV-head lanes). */
  private mergeAssign(ctx: PrefillContext, mask: Uint8Array, l: number): LayerAssign {
    return this.searchesKeys(ctx)
      ? similarMergeAssign(mask, this.image[l], ctx.keys!(l), ctx.kvHeads ?? 1, ctx.headDim!)
      : sameModalityMergeAssign(mask, this.image[l], this.mergeRadius);
  }

  afterPrefill(ctx: PrefillContext): CachePlan {
    const sel = this.select(ctx);
    return this.commit(ctx, sel, sel.masks.map((m, l) => this.mergeAssign(ctx, m, l)));
  }

  /** afterPrefill with the key search run by onnxruntime (cache/nearest.ts): the same plan, sooner at real size. */
  async afterPrefillAsync(ctx: PrefillContext): Promise<CachePlan> {
    const sel = this.select(ctx);
    if (!this.searchesKeys(ctx)) return this.commit(ctx, sel, sel.masks.map((m, l) => this.mergeAssign(ctx, m, l)));
    const assigns = await Promise.all(sel.masks.map((m, l) => similarMergeAssignFast(m, this.image[l], ctx.keys!(l), ctx.kvHeads ?? 1, ctx.headDim!)));
    return this.commit(ctx, sel, assigns);
  }

  /**
   * Stage 1's selection: per lane the keep mask, its protected entries and pooled scores (no lanes when everything
   * fits). Records the layers, lanes, image flags of the new entries and the eviction index.
   */
  private select(ctx: PrefillContext): { masks: Uint8Array[]; protect: Uint8Array[]; pooled: Float32Array[]; q: number } {
    if (!ctx.window) {
      throw new Error('elastic: needs the per-head attention of the question at prefill (attn_window.*), but the decoder gave none');
    }
    this.layers = resolveLayers(this.name, ctx, this.layers);
    const G = this.resolveGroups(ctx.kvHeads);
    const lanes = this.layers * G;
    const len = ctx.cacheLength;
    const n = ctx.newEntries;
    const newImage = ctx.imageMask ?? new Uint8Array(n);
    for (let l = 0; l < lanes; l++) this.image[l] = grow(this.image[l]?.subarray(0, len - n), len, newImage);
    // The question: this prefill's entries after its last image token (all of them when it has no image).
    const lastImage = newImage.lastIndexOf(1);
    const question = Math.max(1, n - 1 - lastImage);
    // The observation window: the question's queries (a re-expanded follow-up: only the new question's), or (an
    // explicit `window`) the last `window` queries.
    const asked = Math.min(question, ctx.questionLength ?? question);
    const q = Math.min(this.windowSet ? this.window : asked, n, ctx.window[0].queries);
    const keep = Math.min(len, this.budget(ctx.tokensSeen));
    this.p = Math.max(this.startSize, keep + this.distance);
    if (keep >= len) return { masks: [], protect: [], pooled: [], q };
    const protect = new Uint8Array(len);
    for (let j = 0; j < Math.min(this.startSize, len); j++) protect[j] = 1;
    const tail = this.protectQuestion ? question : 1;
    for (let j = Math.max(0, len - tail); j < len; j++) protect[j] = 1;
    // The global image (the thumbnail of the whole picture, the prompt's last run of image tokens): always kept
    // with `protectGlobal`, if the budget has room after the question (topKeep keeps the latest protected first).
    if (this.protectGlobal && lastImage >= 0) {
      for (let j = lastImage; j >= 0 && newImage[j]; j--) protect[len - n + j] = 1;
    }
    const out = { masks: [] as Uint8Array[], protect: [] as Uint8Array[], pooled: [] as Float32Array[], q };
    for (let l = 0; l < lanes; l++) {
      // lane l: layer L's KV head g (per layer: lane = layer, every query head)
      const L = Math.floor(l / G);
      const score = G > 1 ? this.laneWindow(ctx, L, l % G, q) : windowScore(ctx.window[L], q);
      if (this.blend > 0 && ctx.scores) blendScores(score, perQuery(ctx.scores[L], len, n), this.blend);
      const pooled = avgPool1d(score, this.kernel, this.startSize, len - tail);
      // keepProtected: what an earlier turn protected (its question, the global image) stays protected
      let pl = protect;
      if (this.keepProtected && this.kept[l]) {
        pl = Uint8Array.from(protect);
        const prev = this.kept[l];
        for (let j = 0; j < Math.min(prev.length, len - n); j++) pl[j] |= prev[j];
      }
      out.masks.push(topKeep(pooled, keep, pl));
      out.protect.push(pl);
      out.pooled.push(pooled);
    }
    return out;
  }

  /** The plan from the lanes' assigns (none: everything fits), and the state stage 2 and later turns read. */
  private commit(ctx: PrefillContext, sel: ReturnType<QuestionElasticPolicy['select']>, assigns: LayerAssign[]): CachePlan {
    const G = this.groups;
    const lanes = this.layers * G;
    const len = ctx.cacheLength;
    const n = ctx.newEntries;
    if (assigns.length) {
      assigns.forEach((assign, l) => {
        if (this.rerank > 0) this.acc[l] = Float64Array.from(sel.pooled[l].filter((_, j) => sel.masks[l][j] === 1));
        this.image[l] = remapFlags(this.image[l], assign);
        this.kept[l] = remapFlags(sel.protect[l], assign);
      });
      return this.stack(assigns);
    }
    for (let l = 0; l < lanes; l++) this.kept[l] = grow(this.kept[l]?.subarray(0, len - n), len, 0);
    if (this.rerank > 0) {
      // nothing dropped: the accumulator still needs this prefill's entries (window score of the question)
      for (let l = 0; l < lanes; l++) {
        const a = new Float64Array(len);
        a.set((this.acc[l] ?? new Float64Array(0)).subarray(0, len - n));
        const w = G > 1 ? this.laneWindow(ctx, Math.floor(l / G), l % G, sel.q) : windowScore(ctx.window![l], sel.q);
        for (let j = len - n; j < len; j++) a[j] = w[j];
        this.acc[l] = a;
      }
    }
    return null;
  }

  afterStep(ctx: StepContext): CachePlan {
    if (this.p === null) throw new Error('elastic: afterStep called before afterPrefill');
    this.layers = resolveLayers(this.name, ctx, this.layers);
    const lanes = this.layers * this.groups;
    const len = ctx.cacheLength;
    for (let l = 0; l < lanes; l++) {
      this.image[l] = grow(this.image[l]?.subarray(0, len - 1), len, 0);
      this.kept[l] = grow(this.kept[l]?.subarray(0, len - 1), len, 0);
    }
    if (this.rerank > 0) return this.rerankStep(ctx);
    const over = stepEvictions(len, this.budget(ctx.tokensSeen), this.evictBatch, len - 1 - this.startSize);
    if (over <= 0) return null;
    const at = Math.max(this.startSize, Math.min(this.p, len - 1 - over));
    // The paper's fixed-index rule is positional: the same slots go in every head (one per-layer assign).
    const assign = evictRangeAssign(len, at, over);
    for (let l = 0; l < lanes; l++) {
      this.image[l] = remapFlags(this.image[l], assign);
      this.kept[l] = remapFlags(this.kept[l], assign);
    }
    return sameForAllLayers(assign, this.layers);
  }
}
