// Tensor plumbing for the generation loop: feeds built from ids and counts, and outputs read back as float32.
import type { Tensor } from 'onnxruntime-node';
import { ort, float16Tensor } from '../model/ort.js';
import { kvBits } from '../cache/store.js';
import { halfArrayToFloat } from '../util/half.js';

/** An all-ones attention mask [1, n] (the cache holds no padding). */
export function ones(n: number): Tensor {
  return new ort.Tensor('int64', new BigInt64Array(n).fill(1n), [1, n]);
}

/** position_ids [1, n] = start, start + 1, ... */
export function positionIds(start: number, n: number): Tensor {
  return new ort.Tensor('int64', BigInt64Array.from({ length: n }, (_, i) => BigInt(start + i)), [1, n]);
}

/** Token ids [1, n] as int64. */
export function tokenIds(ids: number[]): Tensor {
  return new ort.Tensor('int64', BigInt64Array.from(ids, (v) => BigInt(v)), [1, ids.length]);
}

/** A float32 or float16 output as float32 values. */
export function toFloat(t: Tensor): Float32Array {
  return t.type === 'float16' ? halfArrayToFloat(kvBits(t) as Uint16Array) : (t.data as Float32Array);
}

/** The last row of [1, S, V] logits as float32. */
export function lastLogits(t: Tensor): Float32Array {
  const V = t.dims[2];
  const S = t.dims[1];
  const all = t.type === 'float16' ? kvBits(t) : (t.data as Float32Array);
  const row = all.subarray((S - 1) * V, S * V);
  return row instanceof Uint16Array ? halfArrayToFloat(row) : row;
}

/** A float16 output fed back as an input must carry uint16 bits relabelled (Node >= 23 bug, see ort.ts). */
export function feedable(t: Tensor): Tensor {
  return t.type === 'float16' ? float16Tensor(kvBits(t) as Uint16Array, t.dims) : t;
}

/** The data of same-typed tensors back to back, as a tensor of `dims` (float16 stays float16). */
function joinData(parts: Tensor[], dims: number[]): Tensor {
  const half = parts[0].type === 'float16';
  const datas = parts.map((t) => (half ? kvBits(t) : (t.data as Float32Array)));
  const total = datas.reduce((n, d) => n + d.length, 0);
  const out = half ? new Uint16Array(total) : new Float32Array(total);
  let at = 0;
  for (const d of datas) {
    out.set(d as never, at);
    at += d.length;
  }
  return half ? float16Tensor(out as Uint16Array, dims) : new ort.Tensor('float32', out as Float32Array, dims);
}

/** Tensors [n_i, ...rest] joined along the first axis (the vision encoder's features of each tile batch). */
export function concatRows(parts: Tensor[]): Tensor {
  return joinData(parts, [parts.reduce((n, t) => n + t.dims[0], 0), ...parts[0].dims.slice(1)]);
}

/** Embeddings [1, a, H] and [1, b, H] joined along the sequence axis (a re-expanded conversation's inputs). */
export function concatEmbeds(a: Tensor, b: Tensor): Tensor {
  return joinData([a, b], [1, a.dims[1] + b.dims[1], a.dims[2]]);
}
