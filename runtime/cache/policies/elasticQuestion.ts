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
//  4. a dropped image entry merges into an adjacent surviving image entry (`mergeRadius` 1: same modality, the next
//     patch; plain mean); text is never merged.
// Stage 2 (each decode step), default: the fixed offset is the recent window: the `rerank` (32) newest entries and the
// sinks stay, and once over budget the entry with the lowest accumulated importance (its stage-1 pooled score plus
// the attention the decode steps gave it) goes. `rerank: 0` is the paper's rule: evict at the fixed index
// P = kept prompt length + distance (-25).
// Every default was measured (docs/evaluation.md, "The product's Elastic, idea by idea").

import type { CachePlan, CachePolicy, LayerAssign, PolicyOptions, PrefillContext, StepContext } from '../types.js';
import { avgPool1d, topKeep, windowScore } from '../scores.js';
import { budgetFor, checkKeepRatio } from './budget.js';
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

export class QuestionElasticPolicy implements CachePolicy {
  readonly name = 'elastic';
  readonly needsScores = true;
  readonly needsWindow = true;
  readonly keepRatio: number;
  readonly startSize: number;
  readonly distance: number;
  readonly window: number;
  readonly kernel: number;
  readonly mergeRadius: number;
  readonly protectQuestion: boolean;
  readonly protectGlobal: boolean;
  readonly blend: number;
  readonly rerank: number;
  /** Per layer, with `rerank`: each entry's score (stage-1 pooled score + decode attention). */
  private acc: Float64Array[] = [];
  private readonly windowSet: boolean;
  private p: number | null = null;
  private layers = 0;
  /** Per layer, 1 where the cache entry is an image token (follows every plan). */
  private image: Uint8Array[] = [];

  constructor(opts: PolicyOptions) {
    checkKeepRatio(opts.keepRatio);
    this.keepRatio = opts.keepRatio;
    this.startSize = opts.startSize ?? ELASTIC_DEFAULT_START;
    this.distance = opts.distance ?? ANSWERS_DISTANCE;
    this.windowSet = opts.window !== undefined;
    this.window = opts.window ?? ANSWERS_WINDOW;
    this.kernel = opts.kernel ?? ANSWERS_KERNEL;
    this.mergeRadius = opts.mergeRadius ?? ANSWERS_MERGE_RADIUS;
    this.protectQuestion = opts.protectQuestion ?? true;
    this.protectGlobal = opts.protectGlobal ?? true;
    this.blend = opts.blend ?? 0;
    this.rerank = opts.rerank ?? ANSWERS_RECENT;
    if (!(this.blend >= 0 && this.blend <= 1)) throw new RangeError('elastic: blend must be in [0, 1]');
    if (!(Number.isInteger(this.startSize) && this.startSize >= 0)) throw new RangeError('elastic: startSize must be an integer >= 0');
    if (!Number.isInteger(this.distance)) throw new RangeError('elastic: distance must be an integer');
  }

  budget(tokensSeen: number): number {
    return budgetFor(this.keepRatio, tokensSeen, this.startSize + 1);
  }

  get evictionIndex(): number | null {
    return this.p;
  }

  /**
   * `rerank` > 0 (measured, off by default): stage 2 re-ranks instead of evicting at P. Every entry's score is its
   * stage-1 pooled score plus the decode steps' attention it received (head-averaged rows, H2O's accumulation); over
   * budget, the lowest-scoring entry outside the sinks and the `rerank` most recent entries goes.
   */
  private rerankStep(ctx: StepContext): CachePlan {
    if (!ctx.scores) throw new Error('elastic: decode re-ranking needs attention scores at every step');
    const len = ctx.cacheLength;
    for (let l = 0; l < this.layers; l++) {
      const a = new Float64Array(len);
      a.set((this.acc[l] ?? new Float64Array(0)).subarray(0, len - 1));
      const row = ctx.scores[l];
      for (let j = 0; j < len; j++) a[j] += row[j];
      this.acc[l] = a;
    }
    const over = len - this.budget(ctx.tokensSeen);
    if (over <= 0) return null;
    const end = Math.max(this.startSize + over, len - this.rerank);
    return this.acc.map((a, l) => {
      const drop = new Uint8Array(len);
      const order = Array.from({ length: end - this.startSize }, (_, i) => this.startSize + i).sort((x, y) => a[x] - a[y] || x - y);
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
      return assign;
    });
  }

  afterPrefill(ctx: PrefillContext): CachePlan {
    if (!ctx.window) {
      throw new Error('elastic: needs the per-head attention of the question at prefill (attn_window.*), but the decoder gave none');
    }
    this.layers = resolveLayers(this.name, ctx, this.layers);
    const len = ctx.cacheLength;
    const n = ctx.newEntries;
    const newImage = ctx.imageMask ?? new Uint8Array(n);
    for (let l = 0; l < this.layers; l++) {
      const old = this.image[l] ?? new Uint8Array(0);
      const a = new Uint8Array(len);
      a.set(old.subarray(0, len - n));
      a.set(newImage, len - n);
      this.image[l] = a;
    }
    // The question: this prefill's entries after its last image token (all of them when it has no image).
    const lastImage = newImage.lastIndexOf(1);
    const question = Math.max(1, n - 1 - lastImage);
    // The observation window: the question's queries, or (an explicit `window`) the last `window` queries.
    const q = Math.min(this.windowSet ? this.window : question, n, ctx.window[0].queries);
    const keep = Math.min(len, this.budget(ctx.tokensSeen));
    let plan: CachePlan = null;
    if (keep < len) {
      const protect = new Uint8Array(len);
      for (let j = 0; j < Math.min(this.startSize, len); j++) protect[j] = 1;
      const tail = this.protectQuestion ? question : 1;
      for (let j = Math.max(0, len - tail); j < len; j++) protect[j] = 1;
      // The global image (the thumbnail of the whole picture, the prompt's last run of image tokens): always kept
      // with `protectGlobal`, if the budget has room after the question (topKeep keeps the latest protected first).
      if (this.protectGlobal && lastImage >= 0) {
        for (let j = lastImage; j >= 0 && newImage[j]; j--) protect[len - n + j] = 1;
      }
      plan = ctx.window.map((att, l) => {
        let score = windowScore(att, q);
        if (this.blend > 0 && ctx.scores) {
          // Query-agnostic part: the column sums per seeing query (ObservedAttention), scaled to the window's mean.
          const agn = perQuery(ctx.scores[l], len, n);
          let a = 0;
          let b = 0;
          for (let j = 0; j < len; j++) {
            a += score[j];
            b += agn[j];
          }
          const f = b > 0 ? a / b : 0;
          for (let j = 0; j < len; j++) score[j] = (1 - this.blend) * score[j] + this.blend * f * agn[j];
        }
        const pooled = avgPool1d(score, this.kernel, this.startSize, len - tail);
        const mask = topKeep(pooled, keep, protect);
        if (this.rerank > 0) this.acc[l] = Float64Array.from(pooled.filter((_, j) => mask[j] === 1));
        const assign = sameModalityMergeAssign(mask, this.image[l], this.mergeRadius);
        this.image[l] = this.image[l].filter((_, j) => mask[j] === 1);
        return assign;
      });
    }
    if (this.rerank > 0 && !plan) {
      // nothing dropped: the accumulator still needs this prefill's entries (window score of the question)
      for (let l = 0; l < this.layers; l++) {
        const a = new Float64Array(len);
        a.set((this.acc[l] ?? new Float64Array(0)).subarray(0, len - n));
        const w = windowScore(ctx.window[l], q);
        for (let j = len - n; j < len; j++) a[j] = w[j];
        this.acc[l] = a;
      }
    }
    this.p = Math.max(this.startSize, Math.min(len, keep) + this.distance);
    return plan;
  }

  afterStep(ctx: StepContext): CachePlan {
    if (this.p === null) throw new Error('elastic: afterStep called before afterPrefill');
    this.layers = resolveLayers(this.name, ctx, this.layers);
    const len = ctx.cacheLength;
    if (this.rerank > 0) return this.rerankStep(ctx);
    for (let l = 0; l < this.layers; l++) {
      const a = new Uint8Array(len);
      a.set((this.image[l] ?? new Uint8Array(0)).subarray(0, len - 1));
      this.image[l] = a;
    }
    const over = len - this.budget(ctx.tokensSeen);
    if (over <= 0) return null;
    const at = Math.max(this.startSize, Math.min(this.p, len - 1 - over));
    for (let l = 0; l < this.layers; l++) {
      const a = this.image[l];
      this.image[l] = Uint8Array.from([...a.subarray(0, at), ...a.subarray(at + over)]);
    }
    return sameForAllLayers(evictRangeAssign(len, at, over), this.layers);
  }
}
