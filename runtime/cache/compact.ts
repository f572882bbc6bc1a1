// CPU application of a CachePlan to one layer's key or value tensor, plus plan checks and summaries.
// Layout: [1, heads, len, headDim] row-major. Runs of single-source entries are block copies
// (a single eviction = two copies per head); only merged slots loop over elements.

import type { CachePlan, LayerAssign } from './types.js';
import { f16Table, f32ToF16 } from '../util/half.js';

export { f16ToF32, f32ToF16 } from '../util/half.js';

/**
 * A plan compiled into ops, in slot order. Op i writes slot dst[i]: a run of count[i] > 0 consecutive single-source
 * entries starting at src[i], or (count[i] = -c) the mean of the c entries sources[src[i] .. src[i] + c). Flat typed
 * arrays keep the per-head loop monomorphic. `ordered`: the slots are non-decreasing over the kept entries (every
 * merge joins neighbours among the kept), which keeps in-place compaction safe (every write lands at or before the
 * data still to be read). A merge into a slot from anywhere (Elastic's similarity merge) is not ordered: such a plan
 * is applied into a fresh buffer.
 */
export interface Compiled {
  newLen: number;
  ops: number;
  dst: Int32Array;
  src: Int32Array;
  count: Int32Array;
  sources: Int32Array;
  ordered: boolean;
}

/** Exposed for tests and for callers that want to inspect the copy plan. */
export function compileAssign(assign: LayerAssign): Compiled {
  return compile(assign, assign.length);
}

function compile(assign: LayerAssign, len: number): Compiled {
  if (assign.length !== len) throw new RangeError(`assign has ${assign.length} entries, cache has ${len}`);
  let newLen = 0;
  for (let j = 0; j < len; j++) {
    if (assign[j] < -1) throw new RangeError(`entry ${j} has invalid slot ${assign[j]}`);
    if (assign[j] + 1 > newLen) newLen = assign[j] + 1;
  }
  const perSlot = new Int32Array(newLen);
  for (let j = 0; j < len; j++) if (assign[j] >= 0) perSlot[assign[j]]++;
  if (perSlot.indexOf(0) >= 0) throw new RangeError('assign slots are not dense 0..n-1');
  let ordered = true;
  for (let j = 0, prev = -1; j < len; j++) {
    const s = assign[j];
    if (s < 0) continue;
    if (s < prev) ordered = false;
    prev = s;
  }
  // Each slot's sources in position order (a counting sort by slot).
  const first = new Int32Array(newLen + 1);
  for (let s = 0; s < newLen; s++) first[s + 1] = first[s] + perSlot[s];
  const sources = new Int32Array(first[newLen]);
  const fill = first.slice(0, newLen);
  for (let j = 0; j < len; j++) if (assign[j] >= 0) sources[fill[assign[j]]++] = j;
  const dst = new Int32Array(newLen);
  const src = new Int32Array(newLen);
  const count = new Int32Array(newLen);
  let ops = 0;
  for (let s = 0; s < newLen; s++) {
    const top = ops - 1;
    if (perSlot[s] === 1) {
      const j = sources[first[s]];
      if (top >= 0 && count[top] > 0 && src[top] + count[top] === j && dst[top] + count[top] === s) count[top]++;
      else {
        dst[ops] = s;
        src[ops] = j;
        count[ops++] = 1;
      }
    } else {
      dst[ops] = s;
      src[ops] = first[s];
      count[ops++] = -perSlot[s];
    }
  }
  return { newLen, ops, dst, src, count, sources, ordered };
}

// Policies share one assign array across layers (evictions); compile it once, not once per key/value tensor.
const compiledCache = new WeakMap<LayerAssign, { len: number; c: Compiled }>();
function compiledFor(assign: LayerAssign, len: number): Compiled {
  const hit = compiledCache.get(assign);
  if (hit && hit.len === len) return hit.c;
  const c = compile(assign, len);
  compiledCache.set(assign, { len, c });
  return c;
}

/** Whether `assign` is a per-KV-head assign (heads x len entries, types.ts) for a cache of `heads` heads and `len` entries. */
export function isPerHead(assign: LayerAssign, heads: number, len: number): boolean {
  return heads > 1 && assign.length === heads * len && assign.length !== len;
}

/** Head h's row of a per-KV-head assign. */
export function headRow(assign: LayerAssign, len: number, h: number): LayerAssign {
  return assign.subarray(h * len, (h + 1) * len);
}

// A per-head assign: one compiled plan per head, every head ending at one length.
const perHeadCache = new WeakMap<LayerAssign, { len: number; c: Compiled[] }>();
function compiledPerHead(assign: LayerAssign, heads: number, len: number): Compiled[] {
  const hit = perHeadCache.get(assign);
  if (hit && hit.len === len) return hit.c;
  const c: Compiled[] = [];
  for (let h = 0; h < heads; h++) {
    c.push(compile(headRow(assign, len, h), len));
    if (c[h].newLen !== c[0].newLen) throw new RangeError(`per-head assign: head ${h} ends at length ${c[h].newLen}, head 0 at ${c[0].newLen}`);
  }
  perHeadCache.set(assign, { len, c });
  return c;
}

interface Options {
  /**
   * Compact inside `data` and return a view of its head (no allocation); `data` is clobbered. An unordered plan
   * (Compiled.ordered) is applied into a fresh array instead, and `data` is left as it was.
   */
  inPlace?: boolean;
  /**
   * Per old entry, how many original entries it stands for (the store's counts with mass merging): a merged slot is
   * then the count-weighted mean of its sources. Absent: the plain mean.
   */
  weights?: Float32Array;
}

type Merge<T> = (out: T, at: number, data: T, base: number, c: Compiled, op: number, D: number, tmp: Float32Array, w?: Float32Array) => void;

function applyGeneric<T extends Float32Array | Uint16Array>(
  data: T,
  heads: number,
  len: number,
  headDim: number,
  assign: LayerAssign,
  alloc: (n: number) => T,
  merge: Merge<T>,
  opts: Options,
): { data: T; newLen: number } {
  if (data.length !== heads * len * headDim) {
    throw new RangeError(`data has ${data.length} elements, expected ${heads}x${len}x${headDim}`);
  }
  if (opts.weights && opts.weights.length !== len) throw new RangeError(`weights have ${opts.weights.length} entries, cache has ${len}`);
  // A per-head assign compacts each head by its own row. In place stays safe: head h writes below
  // (h + 1) x newLen x D <= (h + 1) x len x D, where head h + 1's entries start.
  const perHead = isPerHead(assign, heads, len) ? compiledPerHead(assign, heads, len) : null;
  let c = perHead ? perHead[0] : compiledFor(assign, len);
  const { newLen } = c;
  const D = headDim;
  const inPlace = !!opts.inPlace && (perHead ? perHead.every((x) => x.ordered) : c.ordered);
  const out = inPlace ? data : alloc(heads * newLen * D);
  const tmp = new Float32Array(D);
  for (let h = 0; h < heads; h++) {
    if (perHead) c = perHead[h];
    const { dst, src, count } = c;
    const sb = h * len * D;
    const db = h * newLen * D;
    for (let op = 0; op < c.ops; op++) {
      const at = db + dst[op] * D;
      if (count[op] > 0) {
        const from = sb + src[op] * D;
        const to = from + count[op] * D;
        if (!inPlace) out.set(data.subarray(from, to), at);
        else if (at !== from) out.copyWithin(at, from, to);
      } else {
        merge(out, at, data, sb, c, op, D, tmp, opts.weights);
      }
    }
  }
  const result = (inPlace ? data.subarray(0, heads * newLen * D) : out) as T;
  return { data: result, newLen };
}

/**
 * Applies a layer's assign to fp32 keys or values: gathers kept entries, averages merged ones
 * (fp32 accumulation in source order, then / count, or count-weighted with `weights`). Returns a new array unless
 * `inPlace`.
 */
export function applyAssign(
  data: Float32Array,
  heads: number,
  len: number,
  headDim: number,
  assign: LayerAssign,
  opts: Options = {},
): { data: Float32Array; newLen: number } {
  return applyGeneric(data, heads, len, headDim, assign, (n) => new Float32Array(n), mergeF32, opts);
}

/** The same for fp16 data (bit patterns in a Uint16Array): copies stay bitwise, merges go via fp32. */
export function applyAssignHalf(
  data: Uint16Array,
  heads: number,
  len: number,
  headDim: number,
  assign: LayerAssign,
  opts: Options = {},
): { data: Uint16Array; newLen: number } {
  return applyGeneric(data, heads, len, headDim, assign, (n) => new Uint16Array(n), mergeF16, opts);
}

/** Alias of applyAssignHalf. */
export const applyAssignF16 = applyAssignHalf;

/** tmp = the (weighted) sum of an op's sources; returns the divisor (their count, or their summed weights). */
function accumulate(read: (i: number) => number, c: Compiled, op: number, base: number, D: number, tmp: Float32Array, w?: Float32Array): number {
  const first = c.src[op];
  const n = -c.count[op];
  tmp.fill(0);
  let total = 0;
  for (let k = first; k < first + n; k++) {
    const j = c.sources[k];
    const s = base + j * D;
    const wj = w ? w[j] : 1;
    total += wj;
    if (wj === 1) for (let i = 0; i < D; i++) tmp[i] += read(s + i); // Float32Array: each add rounds to fp32
    else for (let i = 0; i < D; i++) tmp[i] += wj * read(s + i);
  }
  return total;
}

function mergeF32(out: Float32Array, at: number, data: Float32Array, base: number, c: Compiled, op: number, D: number, tmp: Float32Array, w?: Float32Array): void {
  const n = accumulate((i) => data[i], c, op, base, D, tmp, w);
  for (let i = 0; i < D; i++) out[at + i] = tmp[i] / n;
}

function mergeF16(out: Uint16Array, at: number, data: Uint16Array, base: number, c: Compiled, op: number, D: number, tmp: Float32Array, w?: Float32Array): void {
  const table = f16Table();
  const n = accumulate((i) => table[data[i]], c, op, base, D, tmp, w);
  for (let i = 0; i < D; i++) out[at + i] = f32ToF16(Math.fround(tmp[i] / n));
}

/** Per new slot, the summed weights (counts) of its sources: what each kept entry stands for after the plan. */
export function slotWeights(assign: LayerAssign, weights: Float32Array): Float32Array {
  let n = 0;
  for (let j = 0; j < assign.length; j++) if (assign[j] + 1 > n) n = assign[j] + 1;
  const out = new Float32Array(n);
  for (let j = 0; j < assign.length; j++) if (assign[j] >= 0) out[assign[j]] += weights[j];
  return out;
}



// ---- plan checks and summaries ----

export interface PlanSummary {
  /** Cache length per layer after the plan. */
  newLength: number;
  /** Entries folded into another entry's slot, summed over layers (a slot with c sources folds c - 1). */
  merged: number;
  /** Entries dropped outright, summed over layers. */
  evicted: number;
  perLayerMerged: number[];
  perLayerEvicted: number[];
}

/**
 * What a plan does; a null plan (no change) needs `oldLen` to report the length. Per-KV-head assigns (longer than
 * `oldLen` by a whole number of heads; pass `oldLen` for them) count their heads' mean merged and evicted entries.
 */
export function planSummary(plan: CachePlan, oldLen = 0): PlanSummary {
  if (!plan) return { newLength: oldLen, merged: 0, evicted: 0, perLayerMerged: [], perLayerEvicted: [] };
  const perLayerMerged: number[] = [];
  const perLayerEvicted: number[] = [];
  let newLength = 0;
  for (const assign of plan) {
    let evicted = 0;
    let kept = 0;
    let max = -1;
    for (let j = 0; j < assign.length; j++) {
      if (assign[j] < 0) evicted++;
      else {
        kept++;
        if (assign[j] > max) max = assign[j];
      }
    }
    newLength = max + 1;
    const heads = oldLen > 0 && assign.length > oldLen && assign.length % oldLen === 0 ? assign.length / oldLen : 1;
    if (heads === 1) {
      perLayerEvicted.push(evicted);
      perLayerMerged.push(kept - (max + 1));
    } else {
      perLayerEvicted.push(evicted / heads);
      perLayerMerged.push((kept - heads * (max + 1)) / heads);
    }
  }
  const sum = (a: number[]) => a.reduce((x, y) => x + y, 0);
  return { newLength, merged: sum(perLayerMerged), evicted: sum(perLayerEvicted), perLayerMerged, perLayerEvicted };
}

/**
 * Throws unless every layer's assign covers `oldLen` entries, uses integers >= -1, has non-decreasing
 * slots over the kept entries that are dense 0..n-1, and all layers end at the same n. Returns n.
 * With `kvHeads` > 1 a layer's assign may also be per KV head (kvHeads x oldLen, types.ts): each head's row is
 * checked the same way, and every head of every layer must end at the same n.
 */
export function validatePlan(plan: CachePlan, oldLen: number, layers?: number, kvHeads = 1): number {
  if (!plan) return oldLen;
  if (layers !== undefined && plan.length !== layers) throw new Error(`plan has ${plan.length} layers, expected ${layers}`);
  let n = -1;
  plan.forEach((assign, l) => {
    const perHead = isPerHead(assign, kvHeads, oldLen);
    if (assign.length !== oldLen && !perHead) throw new Error(`layer ${l}: assign has ${assign.length} entries, cache has ${oldLen}`);
    const rows = perHead ? kvHeads : 1;
    for (let h = 0; h < rows; h++) {
      const where = perHead ? `layer ${l} head ${h}` : `layer ${l}`;
      let next = 0; // the slot a new group must take
      for (let j = 0; j < oldLen; j++) {
        const s = assign[h * oldLen + j];
        if (s === -1) continue;
        if (s < -1) throw new Error(`${where}: entry ${j} has invalid slot ${s}`);
        if (s === next) next++;
        else if (s !== next - 1) throw new Error(`${where}: entry ${j} goes to slot ${s}, expected ${next - 1} or ${next}`);
      }
      if (n >= 0 && next !== n) throw new Error(`${where} ends at length ${next}, layer 0 at ${n}`);
      n = next;
    }
  });
  return Math.max(n, 0);
}
