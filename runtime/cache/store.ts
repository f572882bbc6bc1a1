// Where the KV cache lives between decoder runs. The CPU store holds the decoder's present.* outputs as they
// come back (fresh host buffers) and compacts them in place of the old ones; the GPU store (gpuStore.ts)
// keeps them on the device. Both hand the next run its past_key_values.* feeds.
import type { Tensor } from 'onnxruntime-node';
import { ort, float16Tensor } from '../model/ort.js';
import type { LayerAssign } from './types.js';
import { applyAssign, applyAssignHalf } from './compact.js';

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

export class CpuKvStore implements KvStore {
  readonly location = 'cpu' as const;
  private keys: Tensor[] = [];
  private values: Tensor[] = [];
  private len = 0;

  constructor(readonly shape: KvShape) {
    for (let i = 0; i < shape.layers; i++) {
      this.keys.push(this.tensor(new (shape.dtype === 'float16' ? Uint16Array : Float32Array)(0), 0));
      this.values.push(this.tensor(new (shape.dtype === 'float16' ? Uint16Array : Float32Array)(0), 0));
    }
  }

  get length(): number {
    return this.len;
  }

  private tensor(data: Float32Array | Uint16Array, len: number): Tensor {
    const dims = [1, this.shape.kvHeads, len, this.shape.headDim];
    return data instanceof Uint16Array ? float16Tensor(data, dims) : new ort.Tensor('float32', data, dims);
  }

  feeds(): Record<string, Tensor> {
    return pastFeeds(this.keys, this.values);
  }

  adopt(outputs: Record<string, Tensor>): void {
    for (let i = 0; i < this.shape.layers; i++) {
      // Re-wrap so float16 data is labelled the way feeds need on every Node version.
      const k = outputs[presentName(i, 'key')];
      const v = outputs[presentName(i, 'value')];
      this.keys[i] = this.tensor(kvBits(k), k.dims[2]);
      this.values[i] = this.tensor(kvBits(v), v.dims[2]);
    }
    this.len = this.keys[0].dims[2];
  }

  async apply(plan: LayerAssign[]): Promise<void> {
    const { kvHeads, headDim } = this.shape;
    let newLen = -1;
    for (let i = 0; i < this.shape.layers; i++) {
      for (const side of [this.keys, this.values]) {
        const data = side[i].data as Float32Array | Uint16Array;
        // In place: the buffers are the decoder's outputs, owned by this store; no copy of the whole cache per step.
        const r = data instanceof Uint16Array
          ? applyAssignHalf(data, kvHeads, this.len, headDim, plan[i], { inPlace: true })
          : applyAssign(data, kvHeads, this.len, headDim, plan[i], { inPlace: true });
        side[i] = this.tensor(r.data, r.newLen);
        newLen = r.newLen;
      }
    }
    this.len = newLen;
  }

  bytes(): number {
    return this.len * entryBytes(this.shape);
  }

  dispose(): void {
    this.keys = [];
    this.values = [];
    this.len = 0;
  }
}
