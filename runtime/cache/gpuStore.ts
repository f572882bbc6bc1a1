// The KV cache kept on the device (WebGPU). The decoder's present.{i}.key|value come back as gpu-buffer tensors
// (the decoder session sets preferredOutputLocation 'gpu-buffer' for exactly those names) and go straight back in
// as past_key_values.{i}.key|value; a policy's plan is applied on the device by small ONNX graphs built here, so
// the cache never crosses to the host. Only the plan's small index tensors travel up.
//
// onnxruntime-node 1.30 rules this file obeys (measured here; docs/gpu.md):
//   - getData() on a gpu-buffer tensor aborts the process: never called here (tests read back through a
//     WebGPU Identity session whose outputs stay on the CPU);
//   - gpu-buffer tensors leak unless dispose()d: every device tensor this store drops is disposed, and the
//     live ones are counted (GpuKvStore.liveTensors, process-wide; store.liveTensors, this store's);
//   - a gpu-buffer tensor fed to a CPU session gives garbage: these tensors only go to WebGPU sessions.
//
// Compaction graphs (one session per (layers, heads, headDim, dtype, kind), created on first use, shared by all
// stores of the process, outputs on gpu-buffer). Inputs `key.{i}`, `value.{i}` [1, H, old, D] and per layer:
//   kind 'gather' (no layer merges anything): `idx.{i}` int64 [new] -> Gather(axis 2). Copies are bitwise.
//   kind 'merge': the M merged slots of layer i (groups of up to G sources, padded):
//     `src.{i}` int64 [M, G] (old entries, padding repeats a real one), `mask.{i}` bool [M, G, 1] (false = padding),
//     `count.{i}` float [M, 1];  means = ReduceSum(Where(mask, Gather(x, src), 0), axis 3) / count  -> [1, H, M, D]
//     (fp32 accumulation, also for float16 caches, as compact.ts does), then
//     out = Gather(Concat(x, means, axis 2), `idx.{i}`) where idx points at old entries for single-source slots
//     and at old + m for merged slot m. A layer without merges gets one dummy group that idx never selects.
//   Why not a MatMul with a [new, old] weight matrix: it costs new*old*H*D multiply-adds per tensor (a 2048-entry
//   cache halved: ~1000x the work of a gather), turns exact copies into sums with zeros (0 * Inf = NaN), and a
//   float16 MatMul may accumulate in fp16. The padded gather costs (new + M*G)*H*D plus a linear Concat copy.
import type { InferenceSession, Tensor } from 'onnxruntime-node';
import { ort, float16Tensor } from '../model/ort.js';
import { BadInputError } from '../errors.js';
import { BOOL, F16, F32, GraphBuilder, I64, encodeModel } from '../onnx/build.js';
import type { LayerAssign } from './types.js';
import { isPerHead, validatePlan } from './compact.js';
import { entryBytes, pastFeeds, presentName, type KvShape, type KvStore } from './store.js';

type Kind = 'gather' | 'merge';

/**
 * Decode steps per eviction on the device. Each compaction is a session run of its own: evicting every step, as the
 * CPU does in place, cost about half of a step on an H200 (StreamingLLM 0.2 at 53 tok/s against 105 for the full
 * cache, docs/real-size.md run 7). Past the budget the policies then evict this many more at once
 * (budget.ts stepEvictions), so the cache still never holds more than its budget.
 */
export const GPU_EVICT_BATCH = 16;

/** GPU_EVICT_BATCH, or ELASTIC_VLM_GPU_EVICT_BATCH (an integer >= 1, for measuring it). */
export function gpuEvictBatch(env = process.env.ELASTIC_VLM_GPU_EVICT_BATCH): number {
  if (env === undefined || env === '') return GPU_EVICT_BATCH;
  const n = Number(env);
  if (!Number.isInteger(n) || n < 1) throw new BadInputError(`ELASTIC_VLM_GPU_EVICT_BATCH must be an integer >= 1, got ${JSON.stringify(env)}`);
  return n;
}

const sessions = new Map<string, Promise<InferenceSession>>();
let live = 0;

/** Builds the compaction graph for one kind (exported for tests and inspection). */
export function buildCompactionModel(shape: KvShape, kind: Kind): Uint8Array {
  const { layers, kvHeads: H, headDim: D } = shape;
  const T = shape.dtype === 'float16' ? F16 : F32;
  const g = new GraphBuilder(`kv_${kind}`);
  const axis3 = kind === 'merge' ? g.const(I64, [1], [3], 'axis3') : '';
  const zero = kind === 'merge' ? g.const(F32, [], [0], 'zero') : '';
  for (let i = 0; i < layers; i++) {
    g.input(`idx.${i}`, I64, [`new_${i}`]);
    if (kind === 'merge') {
      g.input(`src.${i}`, I64, [`m_${i}`, `g_${i}`]);
      g.input(`mask.${i}`, BOOL, [`m_${i}`, `g_${i}`, 1]);
      g.input(`count.${i}`, F32, [`m_${i}`, 1]);
    }
    for (const side of ['key', 'value'] as const) {
      const x = g.input(`${side}.${i}`, T, [1, H, 'old', D]);
      let table = x;
      if (kind === 'merge') {
        let picked = g.node('Gather', [x, `src.${i}`], { attrs: { axis: 2 } }); // [1, H, M, G, D]
        if (T === F16) picked = g.node('Cast', [picked], { attrs: { to: F32 } });
        const masked = g.node('Where', [`mask.${i}`, picked, zero]);
        const sum = g.node('ReduceSum', [masked, axis3], { attrs: { keepdims: 0 } }); // [1, H, M, D]
        let mean = g.node('Div', [sum, `count.${i}`]);
        if (T === F16) mean = g.node('Cast', [mean], { attrs: { to: F16 } });
        table = g.node('Concat', [x, mean], { attrs: { axis: 2 } });
      }
      g.node('Gather', [table, `idx.${i}`], { attrs: { axis: 2 }, outputs: [`out_${side}.${i}`] });
      g.output(`out_${side}.${i}`, T, [1, H, `new_${i}`, D]);
    }
  }
  return encodeModel(g.model({ opset: 17 }));
}

function session(shape: KvShape, kind: Kind): Promise<InferenceSession> {
  const key = `${shape.layers}x${shape.kvHeads}x${shape.headDim}:${shape.dtype}:${kind}`;
  let s = sessions.get(key);
  if (!s) {
    s = ort.InferenceSession.create(buildCompactionModel(shape, kind), {
      executionProviders: ['webgpu'],
      preferredOutputLocation: 'gpu-buffer',
      graphOptimizationLevel: 'all',
      logSeverityLevel: 3,
    });
    s.catch(() => sessions.delete(key)); // a failed create is retried next time
    sessions.set(key, s);
  }
  return s;
}

/** Releases the shared compaction sessions (tests, worker shutdown). Stores keep working: sessions are rebuilt. */
export async function releaseCompactionSessions(): Promise<void> {
  const all = [...sessions.values()];
  sessions.clear();
  await Promise.all(all.map(async (p) => (await p.catch(() => null))?.release()));
}

const isDevice = (t: Tensor) => t.location !== 'cpu' && t.location !== 'cpu-pinned' && t.location !== 'none';

/** The per-layer inputs of a compaction run for one layer's assign. */
function layerInputs(assign: LayerAssign, i: number, kind: Kind, feeds: Record<string, Tensor>): number {
  const oldLen = assign.length;
  let newLen = 0;
  for (let j = 0; j < oldLen; j++) if (assign[j] + 1 > newLen) newLen = assign[j] + 1;
  const perSlot = new Int32Array(newLen);
  for (let j = 0; j < oldLen; j++) if (assign[j] >= 0) perSlot[assign[j]]++;
  const first = new Int32Array(newLen).fill(-1);
  for (let j = 0; j < oldLen; j++) if (assign[j] >= 0 && first[assign[j]] < 0) first[assign[j]] = j;
  const idx = new BigInt64Array(newLen);
  if (kind === 'gather') {
    for (let s = 0; s < newLen; s++) idx[s] = BigInt(first[s]);
  } else {
    let G = 1;
    let M = 0;
    const mergedOf = new Int32Array(newLen).fill(-1);
    for (let s = 0; s < newLen; s++) {
      if (perSlot[s] > 1) {
        mergedOf[s] = M++;
        if (perSlot[s] > G) G = perSlot[s];
      }
    }
    const rows = Math.max(M, 1); // a layer without merges gets one dummy group (entry 0 alone), never selected
    const src = new BigInt64Array(rows * G);
    const mask = new Uint8Array(rows * G);
    const count = new Float32Array(rows).fill(1);
    if (M === 0) mask[0] = 1;
    const fill = new Int32Array(newLen);
    for (let j = 0; j < oldLen; j++) {
      const s = assign[j];
      if (s < 0 || mergedOf[s] < 0) continue;
      const m = mergedOf[s];
      const k = fill[s]++;
      src[m * G + k] = BigInt(j);
      mask[m * G + k] = 1;
    }
    for (let s = 0; s < newLen; s++) {
      const m = mergedOf[s];
      if (m < 0) {
        idx[s] = BigInt(first[s]);
        continue;
      }
      idx[s] = BigInt(oldLen + m);
      count[m] = perSlot[s];
      for (let k = perSlot[s]; k < G; k++) src[m * G + k] = BigInt(first[s]); // padding: a real entry, masked out
    }
    feeds[`src.${i}`] = new ort.Tensor('int64', src, [rows, G]);
    feeds[`mask.${i}`] = new ort.Tensor('bool', mask, [rows, G, 1]);
    feeds[`count.${i}`] = new ort.Tensor('float32', count, [rows, 1]);
  }
  feeds[`idx.${i}`] = new ort.Tensor('int64', idx, [newLen]);
  return newLen;
}

export class GpuKvStore implements KvStore {
  readonly location = 'gpu' as const;
  /** Device tensors held by all GpuKvStores of this process (a debug counter: flat over a generation = no leak). */
  static get liveTensors(): number {
    return live;
  }

  private keys: Tensor[] = [];
  private values: Tensor[] = [];
  private len = 0;
  private owned = new Set<Tensor>();
  /** Compaction runs done (debug). */
  compactions = 0;

  constructor(readonly shape: KvShape) {
    this.resetEmpty();
  }

  /** Device tensors held by this store. */
  get liveTensors(): number {
    return this.owned.size;
  }

  get length(): number {
    return this.len;
  }

  /** The empty past: zero-length CPU tensors (they carry no data; WebGPU sessions accept them). */
  private resetEmpty(): void {
    const dims = [1, this.shape.kvHeads, 0, this.shape.headDim];
    const empty = () => (this.shape.dtype === 'float16' ? float16Tensor(new Uint16Array(0), dims) : new ort.Tensor('float32', new Float32Array(0), dims));
    this.keys = Array.from({ length: this.shape.layers }, empty);
    this.values = Array.from({ length: this.shape.layers }, empty);
    this.len = 0;
  }

  feeds(): Record<string, Tensor> {
    if (this.keys.length === 0) throw new Error('GpuKvStore used after dispose()');
    return pastFeeds(this.keys, this.values);
  }

  adopt(outputs: Record<string, Tensor>): void {
    const keys: Tensor[] = [];
    const values: Tensor[] = [];
    for (let i = 0; i < this.shape.layers; i++) {
      for (const [side, into] of [['key', keys], ['value', values]] as const) {
        const t = outputs[presentName(i, side)];
        if (!t) throw new Error(`decoder output ${presentName(i, side)} is missing`);
        if (!isDevice(t)) {
          // The decoder session must keep present.* on the device (createSession gpuOutputs); a host tensor here
          // means the wiring is wrong and the cache would make a round trip every step. The device outputs of
          // this run are dropped here, so they are disposed here.
          for (const o of Object.values(outputs)) if (isDevice(o) && !this.owned.has(o)) o.dispose();
          throw new Error(`${presentName(i, side)} came back on the ${t.location}, not on the GPU: create the decoder with gpuOutputs = present.*`);
        }
        into.push(t);
      }
    }
    this.replace(keys, values);
  }

  async apply(plan: LayerAssign[]): Promise<void> {
    const { layers, kvHeads } = this.shape;
    if (plan.some((a) => isPerHead(a, kvHeads, this.len))) {
      throw new Error('the GPU KV store applies one plan per layer; per-KV-head plans (Elastic perHead, --per-head on) run on the CPU store only (--device cpu)');
    }
    validatePlan(plan, this.len, layers); // throws on a malformed plan, before anything runs
    let identity = true;
    let merges = false;
    for (const assign of plan) {
      let prev = -1; // slots are non-decreasing over kept entries: a repeat of the last kept slot is a merge
      for (let j = 0; j < assign.length; j++) {
        const s = assign[j];
        if (s !== j) identity = false;
        if (s < 0) continue;
        if (s === prev) merges = true;
        prev = s;
      }
    }
    if (identity || this.len === 0) return;
    const kind: Kind = merges ? 'merge' : 'gather';
    const feeds: Record<string, Tensor> = {};
    let newLen = -1;
    for (let i = 0; i < layers; i++) {
      const n = layerInputs(plan[i], i, kind, feeds);
      if (newLen >= 0 && n !== newLen) throw new Error(`layer ${i} ends at length ${n}, layer 0 at ${newLen}`);
      newLen = n;
      feeds[`key.${i}`] = this.keys[i];
      feeds[`value.${i}`] = this.values[i];
    }
    const sess = await session(this.shape, kind);
    const out = await sess.run(feeds);
    const keys: Tensor[] = [];
    const values: Tensor[] = [];
    for (let i = 0; i < layers; i++) {
      keys.push(out[`out_key.${i}`]);
      values.push(out[`out_value.${i}`]);
    }
    this.compactions++;
    this.replace(keys, values);
  }

  /** Takes ownership of the new tensors and disposes every held device tensor not among them. */
  private replace(keys: Tensor[], values: Tensor[]): void {
    const next = new Set<Tensor>();
    for (const t of [...keys, ...values]) if (isDevice(t)) next.add(t);
    for (const t of this.owned) {
      if (!next.has(t)) {
        t.dispose();
        live--;
      }
    }
    for (const t of next) if (!this.owned.has(t)) live++;
    this.owned = next;
    this.keys = keys;
    this.values = values;
    this.len = keys[0]?.dims[2] ?? 0;
  }

  bytes(): number {
    return this.len * entryBytes(this.shape);
  }

  dispose(): void {
    for (const t of this.owned) {
      t.dispose();
      live--;
    }
    this.owned.clear();
    this.keys = [];
    this.values = [];
    this.len = 0;
  }
}
