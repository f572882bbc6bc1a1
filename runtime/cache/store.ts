// Where the KV cache lives between decoder runs. The CPU store holds the decoder's present.* outputs as they
// come back (fresh host buffers) and compacts them in place of the old ones; the GPU store (gpuStore.ts)
// keeps them on the device. Both hand the next run its past_key_values.* feeds.
import type { Tensor } from 'onnxruntime-node';
import { ort, float16Tensor } from '../model/ort.js';
import { f16Table } from '../util/half.js';
import type { LayerAssign } from './types.js';
import { applyAssign, applyAssignHalf, isPerHead, slotWeights } from './compact.js';
import { newEntriesName } from '../onnx/newEntries.js';
import { massBiasName } from '../onnx/massBias.js';

export type KvDtype = 'float32' | 'float16';

export interface KvShape {
  layers: number;
  kvHeads: number;
  headDim: number;
  dtype: KvDtype;
}

export interface KvStore {
  readonly location: 'cpu' | 'gpu';
  readonly shape: KvShape;
  /** Entries per layer (all layers hold the same number). */
  readonly length: number;
  /** past_key_values.{i}.key|value feeds for the next decoder run. */
  feeds(): Record<string, Tensor>;
  /** Adopts the decoder's present.{i}.key|value outputs as the cache. */
  adopt(outputs: Record<string, Tensor>): void;
  /** Applies a policy's plan: per layer, the new slot of every entry or -1. */
  apply(plan: LayerAssign[]): Promise<void>;
  /** Bytes held by the kept keys and values. */
  bytes(): number;
  dispose(): void;
}

export const presentName = (i: number, kv: 'key' | 'value') => `present.${i}.${kv}`;
export const pastName = (i: number, kv: 'key' | 'value') => `past_key_values.${i}.${kv}`;

/** past_key_values.{i}.key|value feeds from per-layer key and value tensors. */
export function pastFeeds(keys: Tensor[], values: Tensor[]): Record<string, Tensor> {
  const f: Record<string, Tensor> = {};
  keys.forEach((k, i) => {
    f[pastName(i, 'key')] = k;
    f[pastName(i, 'value')] = values[i];
  });
  return f;
}

/** float32 data, or float16 as its raw bits (Node >= 23 hands float16 outputs back as a Float16Array). */
export function kvBits(t: Tensor): Float32Array | Uint16Array {
  if (t.type !== 'float16') return t.data as Float32Array;
  const d = t.data as unknown as ArrayBufferView;
  return new Uint16Array(d.buffer, d.byteOffset, d.byteLength / 2);
}

export function entryBytes(s: KvShape): number {
  return s.layers * 2 * s.kvHeads * s.headDim * (s.dtype === 'float16' ? 2 : 4);
}

export interface CpuStoreOptions {
  /**
   * Mass merging (Elastic's default): every entry counts the original entries it stands for, a merge is their
   * count-weighted mean, and `massFeeds` hands the decoder log(count) as an attention bias, so a merged entry draws
   * the attention its sources would have drawn together (docs/elastic-cache.md).
   */
  mass?: boolean;
}

/**
 * Per layer, how many original entries each cache entry stands for, and its log (the attention bias), both kept as
 * the cache changes: appended entries count 1 (log 0) in buffers with room, so a decode step neither reallocates nor
 * recomputes a logarithm; only a plan (store.apply) makes new ones.
 */
class EntryCounts {
  private counts: Float32Array = new Float32Array(0);
  private logs: Float32Array = new Float32Array(0);
  private len = 0;

  /** The first `len` counts (entries beyond the previous length count 1). */
  grow(len: number): void {
    if (len > this.counts.length) {
      const room = len + Math.max(64, len >> 2);
      const c = new Float32Array(room);
      const g = new Float32Array(room);
      c.set(this.counts.subarray(0, this.len));
      g.set(this.logs.subarray(0, this.len));
      this.counts = c;
      this.logs = g;
    }
    if (len > this.len) {
      this.counts.fill(1, this.len, len);
      this.logs.fill(0, this.len, len);
    }
    this.len = len;
  }

  /** After a plan: `counts` are the new entries' (slotWeights). */
  set(counts: Float32Array): void {
    this.counts = counts;
    this.logs = Float32Array.from(counts, Math.log);
    this.len = counts.length;
  }

  get values(): Float32Array {
    return this.counts.subarray(0, this.len);
  }

  get logValues(): Float32Array {
    return this.logs.subarray(0, this.len);
  }
}

export class CpuKvStore implements KvStore {
  readonly location = 'cpu' as const;
  // Per layer, the cache as [heads, len, head_dim] at the start of a buffer that may hold more (room to append).
  private keys: (Float32Array | Uint16Array)[] = [];
  private values: (Float32Array | Uint16Array)[] = [];
  /** With mass merging: per layer, how many original entries each entry stands for. */
  private counts: EntryCounts[] | null;
  private len = 0;

  constructor(readonly shape: KvShape, opts: CpuStoreOptions = {}) {
    for (let i = 0; i < shape.layers; i++) {
      this.keys.push(this.empty(0));
      this.values.push(this.empty(0));
    }
    this.counts = opts.mass ? Array.from({ length: shape.layers }, () => new EntryCounts()) : null;
  }

  /** Layer i's keys as float32 [kvHeads, length, headDim] (a view where they are float32 already). */
  keysOf(i: number): Float32Array {
    const { kvHeads: H, headDim: D } = this.shape;
    const k = this.keys[i].subarray(0, H * this.len * D);
    if (k instanceof Float32Array) return k;
    const table = f16Table();
    return Float32Array.from(k, (b) => table[b]);
  }

  /** Per layer, the entries each cache entry stands for (1 unless mass merging merged it); null without mass. */
  countsOf(i: number): Float32Array | null {
    return this.counts ? this.counts[i].values : null;
  }

  /**
   * `attn_bias.{i}` feeds for a run that appends `n` entries: log(count) per cache entry, 0 for the new ones.
   * Without mass merging every bias is 0.
   */
  massFeeds(n: number): Record<string, Tensor> {
    const f: Record<string, Tensor> = {};
    for (let i = 0; i < this.shape.layers; i++) {
      const b = new Float32Array(this.len + n);
      if (this.counts) b.set(this.counts[i].logValues);
      f[massBiasName(i)] = new ort.Tensor('float32', b, [1, this.len + n]);
    }
    return f;
  }

  /** Counts grown to the cache's new length, the new entries counting 1. */
  private growCounts(): void {
    for (const c of this.counts ?? []) c.grow(this.len);
  }

  get length(): number {
    return this.len;
  }

  private empty(elements: number): Float32Array | Uint16Array {
    return new (this.shape.dtype === 'float16' ? Uint16Array : Float32Array)(elements);
  }

  private tensor(buf: Float32Array | Uint16Array, len: number): Tensor {
    const dims = [1, this.shape.kvHeads, len, this.shape.headDim];
    const data = buf.subarray(0, this.shape.kvHeads * len * this.shape.headDim);
    return data instanceof Uint16Array ? float16Tensor(data, dims) : new ort.Tensor('float32', data, dims);
  }

  feeds(): Record<string, Tensor> {
    return pastFeeds(this.keys.map((k) => this.tensor(k, this.len)), this.values.map((v) => this.tensor(v, this.len)));
  }

  /** The decoder's present.* outputs become the cache; or, where it gave only new.* entries, they are appended. */
  adopt(outputs: Record<string, Tensor>): void {
    if (!outputs[presentName(0, 'key')]) {
      this.append(outputs);
      return;
    }
    for (let i = 0; i < this.shape.layers; i++) {
      this.keys[i] = kvBits(outputs[presentName(i, 'key')]);
      this.values[i] = kvBits(outputs[presentName(i, 'value')]);
    }
    this.len = outputs[presentName(0, 'key')].dims[2];
    this.growCounts();
  }

  /**
   * Appends the run's new.{i}.key|value entries [1, heads, n, head_dim]. Within the buffer's room the heads move up
   * in place, the last first (memmove, no allocation); otherwise a buffer with a quarter more room is made.
   */
  private append(outputs: Record<string, Tensor>): void {
    const { kvHeads: H, headDim: D } = this.shape;
    const n = outputs[newEntriesName(0, 'key')].dims[2];
    const len = this.len;
    const newLen = len + n;
    for (let i = 0; i < this.shape.layers; i++) {
      for (const [side, kv] of [[this.keys, 'key'], [this.values, 'value']] as const) {
        const fresh = kvBits(outputs[newEntriesName(i, kv)]);
        let buf = side[i];
        if (buf.length < H * newLen * D) {
          const grown = this.empty(H * (newLen + Math.max(64, newLen >> 2)) * D);
          for (let h = 0; h < H; h++) grown.set(buf.subarray(h * len * D, (h + 1) * len * D), h * newLen * D);
          buf = side[i] = grown;
        } else {
          for (let h = H - 1; h > 0; h--) buf.copyWithin(h * newLen * D, h * len * D, (h + 1) * len * D);
        }
        for (let h = 0; h < H; h++) buf.set(fresh.subarray(h * n * D, (h + 1) * n * D), (h * newLen + len) * D);
      }
    }
    this.len = newLen;
    this.growCounts();
  }

  async apply(plan: LayerAssign[]): Promise<void> {
    const { kvHeads, headDim } = this.shape;
    let newLen = -1;
    for (let i = 0; i < this.shape.layers; i++) {
      // Mass merging weighs a merge by counts; a per-KV-head plan cannot (one count per layer entry): plain means,
      // and its entries count 1 again.
      const perHead = isPerHead(plan[i], kvHeads, this.len);
      const weights = this.counts && !perHead ? this.counts[i].values : undefined;
      for (const side of [this.keys, this.values]) {
        // In place, at the start of the buffer this store owns: no copy of the whole cache per step.
        const data = side[i].subarray(0, kvHeads * this.len * headDim);
        const r = data instanceof Uint16Array
          ? applyAssignHalf(data, kvHeads, this.len, headDim, plan[i], { inPlace: true, weights })
          : applyAssign(data, kvHeads, this.len, headDim, plan[i], { inPlace: true, weights });
        // Compacted in place, the buffer keeps its room; a plan that grows the cache gets a new one.
        if (r.data.buffer !== side[i].buffer || r.data.byteOffset !== side[i].byteOffset) side[i] = r.data;
        newLen = r.newLen;
      }
      this.counts?.[i].set(weights ? slotWeights(plan[i], weights) : new Float32Array(newLen).fill(1));
    }
    this.len = newLen;
  }

  bytes(): number {
    return this.len * entryBytes(this.shape);
  }

  dispose(): void {
    this.keys = [];
    this.values = [];
    if (this.counts) this.counts = this.counts.map(() => new EntryCounts());
    this.len = 0;
  }
}
