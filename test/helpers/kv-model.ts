// Toy KV decoders in the SmolVLM tensor naming, plans, and a generation loop over a KvStore, shared by the
// float16 unit test (test/unit/kv-fp16.test.ts), its Node >= 23 child (test/gpu/kv-run.ts) and the WebGPU suite.
//   inputs:  inputs_embeds [1, S, hidden] f32, attention_mask [1, T] i64, position_ids [1, S] i64,
//            past_key_values.{i}.key|value [1, kvHeads, past, headDim] (kvDtype)
//   outputs: logits [1, S, vocab] f32, present.{i}.key|value [1, kvHeads, T, headDim] (kvDtype)
// One attention layer per KV layer (causal + padding mask, softmax, residual), computed in fp32; the cache is
// stored as kvDtype (Cast in/out for float16), so the logits depend on every kept and merged cache entry.
import { BOOL, F16, F32, GraphBuilder, I64, encodeModel } from './onnx-build.js';
import { rng, randn } from './onnx-build.js';
import type { Tensor } from 'onnxruntime-node';
import { ort } from '../../runtime/model/ort.js';
import type { KvDtype, KvShape, KvStore } from '../../runtime/cache/store.js';
import type { LayerAssign } from '../../runtime/cache/types.js';

export interface ToyDims {
  layers: number;
  kvHeads: number;
  headDim: number;
  hidden: number;
  vocab: number;
  dtype: KvDtype;
}

export const kvShapeOf = (d: ToyDims): KvShape => ({ layers: d.layers, kvHeads: d.kvHeads, headDim: d.headDim, dtype: d.dtype });

export function buildToyDecoder(d: ToyDims, seed = 1): Uint8Array {
  const r = rng(seed);
  const g = new GraphBuilder('toy_decoder');
  const KV = d.dtype === 'float16' ? F16 : F32;
  const HD = d.kvHeads * d.headDim;
  g.input('inputs_embeds', F32, [1, 'sequence_length', d.hidden]);
  g.input('attention_mask', I64, [1, 'total_sequence_length']);
  g.input('position_ids', I64, [1, 'sequence_length']);
  for (let l = 0; l < d.layers; l++) {
    for (const kv of ['key', 'value']) g.input(`past_key_values.${l}.${kv}`, KV, [1, d.kvHeads, 'past_sequence_length', d.headDim]);
  }
  const pos = g.node('Unsqueeze', [g.node('Cast', ['position_ids'], { attrs: { to: F32 } }), g.const(I64, [1], [2])]);
  let x = g.node('Add', ['inputs_embeds', g.node('Mul', [pos, g.const(F32, [d.hidden], randn(r, d.hidden, 0.01))])]);

  // mask[0, 0, s, t] = 0 where key t is visible to query s (causal and attention_mask = 1), else -1e9
  const one = g.const(I64, [], [1]);
  const T = g.node('Gather', [g.node('Shape', ['attention_mask']), one], { attrs: { axis: 0 } });
  const S = g.node('Gather', [g.node('Shape', ['inputs_embeds']), one], { attrs: { axis: 0 } });
  const qpos = g.node('Range', [g.node('Sub', [T, S]), T, one]);
  const kpos = g.node('Range', [g.const(I64, [], [0]), T, one]);
  const causal = g.node('LessOrEqual', [g.node('Unsqueeze', [kpos, g.const(I64, [1], [0])]), g.node('Unsqueeze', [qpos, g.const(I64, [1], [1])])]);
  const pad = g.node('Unsqueeze', [g.node('Cast', ['attention_mask'], { attrs: { to: BOOL } }), g.const(I64, [2], [1, 2])]);
  const mask = g.node('Where', [g.node('And', [causal, pad]), g.const(F32, [], [0]), g.const(F32, [], [-1e9])]);

  const heads = g.const(I64, [4], [1, -1, d.kvHeads, d.headDim]);
  const flat = g.const(I64, [3], [1, -1, HD]);
  const split = (t: string) => g.node('Transpose', [g.node('Reshape', [t, heads])], { attrs: { perm: [0, 2, 1, 3] } });
  for (let l = 0; l < d.layers; l++) {
    const proj = () => g.node('MatMul', [x, g.const(F32, [d.hidden, HD], randn(r, d.hidden * HD, 1 / Math.sqrt(d.hidden)))]);
    const q = split(proj());
    const cache = (kv: 'key' | 'value') => {
      let nw = split(proj());
      if (KV === F16) nw = g.node('Cast', [nw], { attrs: { to: F16 } });
      const present = g.node('Concat', [`past_key_values.${l}.${kv}`, nw], { attrs: { axis: 2 }, outputs: [`present.${l}.${kv}`] });
      g.output(present, KV, [1, d.kvHeads, 'total_sequence_length', d.headDim]);
      return KV === F16 ? g.node('Cast', [present], { attrs: { to: F32 } }) : present;
    };
    const k = cache('key');
    const v = cache('value');
    const kt = g.node('Transpose', [k], { attrs: { perm: [0, 1, 3, 2] } });
    const scores = g.node('Add', [g.node('Mul', [g.node('MatMul', [q, kt]), g.const(F32, [], [1 / Math.sqrt(d.headDim)])]), mask]);
    const p = g.node('Softmax', [scores], { attrs: { axis: -1 } });
    const o = g.node('Reshape', [g.node('Transpose', [g.node('MatMul', [p, v])], { attrs: { perm: [0, 2, 1, 3] } }), flat]);
    x = g.node('Add', [x, g.node('MatMul', [o, g.const(F32, [HD, d.hidden], randn(r, HD * d.hidden, 1 / Math.sqrt(HD)))])]);
  }
  g.node('MatMul', [x, g.const(F32, [d.hidden, d.vocab], randn(r, d.hidden * d.vocab, 1))], { outputs: ['logits'] });
  g.output('logits', F32, [1, 'sequence_length', d.vocab]);
  return encodeModel(g.model({ opset: 17, producer: 'elastic-vlm-tests' }));
}

/**
 * A deterministic plan for step `step` over a cache of `len` entries: once the cache exceeds `budget`, each
 * layer evicts one entry of its own choice (never the 4 sink entries or the newest), and with `mergeEvery` > 0
 * every such step also merges a run of 2-4 entries (crossing an evicted one at times) in some layers.
 */
export function stepPlan(step: number, len: number, layers: number, budget: number, mergeEvery = 0): LayerAssign[] | null {
  if (len <= budget) return null;
  const r = rng(1000 + step);
  const plan: LayerAssign[] = [];
  const excess = len - budget;
  const merge = mergeEvery > 0 && step % mergeEvery === 0;
  // every layer must end at the same length: each drops `excess` entries (evicted or folded into a neighbour)
  for (let l = 0; l < layers; l++) {
    const drop = new Set<number>();
    const fold = new Set<number>(); // entries folded into the previous kept entry's slot
    let toDrop = excess;
    if (merge && l % 2 === 0 && toDrop > 0 && len > 12) {
      const size = 2 + Math.floor(r() * 3);
      const at = 5 + Math.floor(r() * (len - 6 - size));
      for (let k = 1; k < size && toDrop > 0; k++) {
        fold.add(at + k);
        toDrop--;
      }
      if (size > 2 && r() < 0.5) {
        fold.delete(at + 1); // an evicted entry inside the group: [s, -1, s, ...]
        drop.add(at + 1);
      }
    }
    while (toDrop > 0) {
      const j = 4 + Math.floor(r() * (len - 5));
      if (drop.has(j) || fold.has(j)) continue;
      drop.add(j);
      toDrop--;
    }
    const a = new Int32Array(len);
    let slot = -1;
    for (let j = 0; j < len; j++) {
      if (drop.has(j)) a[j] = -1;
      else if (fold.has(j) && slot >= 0) a[j] = slot;
      else a[j] = ++slot;
    }
    plan.push(a);
  }
  return plan;
}

export interface RunOptions {
  steps: number;
  prefill: number;
  budget: number;
  mergeEvery?: number;
  /** Called after every step with the step index (leak probes). */
  onStep?: (step: number) => void;
}

/**
 * Prefill then `steps` single-token steps with fixed pseudo-random embeddings (no feedback from the logits, so
 * two runs see the same inputs), the plan applied after every step. Returns the last-row logits of every run.
 */
export async function generate(
  session: import('onnxruntime-node').InferenceSession,
  store: KvStore,
  d: ToyDims,
  o: RunOptions,
): Promise<Float32Array[]> {
  const r = rng(77);
  const logits: Float32Array[] = [];
  let seen = 0;
  const run = async (n: number) => {
    const feeds: Record<string, Tensor> = {
      inputs_embeds: new ort.Tensor('float32', randn(r, n * d.hidden, 1), [1, n, d.hidden]),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(store.length + n).fill(1n), [1, store.length + n]),
      position_ids: new ort.Tensor('int64', BigInt64Array.from({ length: n }, (_, i) => BigInt(seen + i)), [1, n]),
      ...store.feeds(),
    };
    const out = await session.run(feeds);
    store.adopt(out);
    seen += n;
    const L = out.logits;
    logits.push((L.data as Float32Array).slice((L.dims[1] - 1) * d.vocab));
  };
  await run(o.prefill);
  for (let step = 0; step < o.steps; step++) {
    await run(1);
    const plan = stepPlan(step, store.length, d.layers, o.budget, o.mergeEvery ?? 0);
    if (plan) await store.apply(plan);
    o.onStep?.(step);
  }
  return logits;
}

/** The decoder's outputs to keep on the device: present.* only (logits stay on the host). */
export const presentNames = (layers: number) =>
  Array.from({ length: layers }, (_, i) => [`present.${i}.key`, `present.${i}.value`]).flat();

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const x = Math.abs(a[i] - b[i]);
    if (!(x <= m)) m = Number.isNaN(x) ? Infinity : x;
  }
  return m;
}

/** float16 tensor data as bit patterns, whatever the Node version hands back (Uint16Array or Float16Array). */
export function halfBits(data: unknown): Uint16Array {
  const v = data as ArrayBufferView & { length: number };
  return new Uint16Array(v.buffer, v.byteOffset, v.length);
}
