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

/** Tensors [n_i, ...rest] joined along the first axis (the vision encoder's features of each tile batch). */
export function concatRows(parts: Tensor[]): Tensor {
  const rest = parts[0].dims.slice(1);
  const rows = parts.reduce((n, t) => n + t.dims[0], 0);
  const half = parts[0].type === 'float16';
  const out = half ? new Uint16Array(rows * rest.reduce((a, b) => a * b, 1)) : new Float32Array(rows * rest.reduce((a, b) => a * b, 1));
  let at = 0;
  for (const t of parts) {
    const data = half ? kvBits(t) : (t.data as Float32Array);
    out.set(data as never, at);
    at += data.length;
  }
  return half ? float16Tensor(out as Uint16Array, [rows, ...rest]) : new ort.Tensor('float32', out as Float32Array, [rows, ...rest]);
}

/** Embeddings [1, a, H] and [1, b, H] joined along the sequence axis (a re-expanded conversation's inputs). */
export function concatEmbeds(a: Tensor, b: Tensor): Tensor {
  const half = a.type === 'float16';
  const x = half ? kvBits(a) : (a.data as Float32Array);
  const y = half ? kvBits(b) : (b.data as Float32Array);
  const out = half ? new Uint16Array(x.length + y.length) : new Float32Array(x.length + y.length);
  out.set(x as never, 0);
  out.set(y as never, x.length);
  const dims = [1, a.dims[1] + b.dims[1], a.dims[2]];
  return half ? float16Tensor(out as Uint16Array, dims) : new ort.Tensor('float32', out as Float32Array, dims);
}
