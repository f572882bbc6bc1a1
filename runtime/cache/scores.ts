// Scoring rules shared by the question-aware policies (SnapKV, the product's Elastic): the observation-window score,
// average pooling over neighbouring entries, and the top-k keep mask with protected entries. Pure functions over
// typed arrays, pinned by hand-computed cases in test/unit/scores.test.ts.

import type { WindowAttention } from './types.js';

/**
 * The observation-window score of every cache entry: the attention of the last `queries` queries of the window
 * (capped at the window's own count), averaged over those queries and over the query heads. With grouped KV heads
 * every query head of the layer is averaged, so all KV heads share one score per position (per-layer plans).
 * Query heads [fromHead, toHead) only: one KV head's group (per-KV-head plans; kvGroup below).
 */
export function windowScore(w: WindowAttention, queries = w.queries, fromHead = 0, toHead = w.heads): Float32Array {
  const q = Math.max(1, Math.min(queries, w.queries));
  const { heads, len, data } = w;
  if (data.length !== heads * w.queries * len) {
    throw new RangeError(`window attention has ${data.length} values, expected ${heads}x${w.queries}x${len}`);
  }
  if (!(Number.isInteger(fromHead) && Number.isInteger(toHead) && fromHead >= 0 && fromHead < toHead && toHead <= heads)) {
    throw new RangeError(`query heads [${fromHead}, ${toHead}) are not within the window's ${heads}`);
  }
  const acc = new Float64Array(len);
  for (let h = fromHead; h < toHead; h++) {
    for (let i = w.queries - q; i < w.queries; i++) {
      const row = (h * w.queries + i) * len;
      for (let j = 0; j < len; j++) acc[j] += data[row + j];
    }
  }
  const out = new Float32Array(len);
  const n = (toHead - fromHead) * q;
  for (let j = 0; j < len; j++) out[j] = acc[j] / n;
  return out;
}

/**
 * The query heads [from, to) that share KV head `kvHead` under grouped-query attention: query head h reads KV head
 * floor(h / (queryHeads / kvHeads)) (repeat_kv in transformers, GroupQueryAttention in ONNX Runtime).
 */
export function kvGroup(queryHeads: number, kvHeads: number, kvHead: number): [number, number] {
  if (!(Number.isInteger(kvHeads) && kvHeads >= 1 && queryHeads % kvHeads === 0)) {
    throw new RangeError(`${queryHeads} query heads cannot be grouped over ${kvHeads} KV heads`);
  }
  const g = queryHeads / kvHeads;
  return [kvHead * g, (kvHead + 1) * g];
}

/**
 * 1-D average pooling with a centred kernel of odd size `kernel`, zero padding counted in the divisor
 * (torch's avg_pool1d(kernel, stride 1, padding kernel // 2), as SnapKV pools). kernel 1 returns a copy.
 * Only [from, to) is pooled and read; entries outside count as zero padding.
 */
export function avgPool1d(score: ArrayLike<number>, kernel: number, from = 0, to = score.length): Float32Array {
  if (!(Number.isInteger(kernel) && kernel >= 1 && kernel % 2 === 1)) throw new RangeError(`pooling kernel must be an odd integer >= 1, got ${kernel}`);
  const out = new Float32Array(score.length);
  for (let j = 0; j < score.length; j++) out[j] = score[j];
  const r = (kernel - 1) / 2;
  for (let j = from; j < to; j++) {
    let s = 0;
    for (let d = -r; d <= r; d++) {
      const i = j + d;
      if (i >= from && i < to) s += score[i];
    }
    out[j] = s / kernel;
  }
  return out;
}

/**
 * Keep mask: every `protect`ed entry, then the highest scores among the rest until `keep` entries are kept
 * (equal scores keep the LATER position: the earlier goes first, as in the Elastic stage 1). When the protected
 * entries alone exceed `keep`, the latest protected ones are kept (the end of the prompt is the question).
 */
export function topKeep(score: ArrayLike<number>, keep: number, protect: Uint8Array): Uint8Array {
  const len = score.length;
  const mask = new Uint8Array(len);
  let kept = 0;
  for (let j = len - 1; j >= 0; j--) {
    if (protect[j] && kept < keep) {
      mask[j] = 1;
      kept++;
    }
  }
  if (kept >= keep) return mask;
  const free: number[] = [];
  for (let j = 0; j < len; j++) if (!protect[j]) free.push(j);
  const key = (j: number) => (Number.isNaN(score[j]) ? -Infinity : score[j]);
  free.sort((a, b) => key(b) - key(a) || b - a);
  for (let i = 0; i < free.length && kept < keep; i++, kept++) mask[free[i]] = 1;
  return mask;
}
