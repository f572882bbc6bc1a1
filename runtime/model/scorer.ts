// Attention scores from queries and keys, for decoders whose attention kernel gives none (onnxruntime 1.30's WebGPU
// GroupQueryAttention). The derived decoder outputs each layer's rotated queries (`attn_query.{i}`, onnx/queries.ts);
// this graph takes them with the present keys, still on the device, and computes the attention probabilities the
// CPU's GroupQueryAttention would (softmax(q k^T / sqrt(d)) under the causal mask, query head h on KV head h / g),
// reduced exactly as the CPU's scored decoder reduces them (onnx/importance.ts):
//   attn_importance.{i}  float32 [B, T]: summed over the run's queries, averaged over the heads;
//   attn_window.{i}      float32 [B, heads, min(W, S), T]: the last W queries' rows, per head.
// Only the reductions come back to the host.
import type { InferenceSession, Tensor } from 'onnxruntime-node';
import { ort } from './ort.js';
import { F16, F32, GraphBuilder, I64, encodeModel } from '../onnx/build.js';
import { IMPORTANCE_PREFIX, WINDOW_PREFIX, WINDOW_QUERIES } from '../onnx/importance.js';
import { queryName } from '../onnx/queries.js';
import { presentName, type KvShape } from '../cache/store.js';

export interface ScorerShape extends KvShape {
  /** Query heads (a multiple of the KV heads). */
  heads: number;
}

/** Stacked outputs of the all-layers graph: [layers, T] and [layers, heads, min(W, S), T]. */
const STACKED_IMPORTANCE = 'attn_importance';
const STACKED_WINDOW = 'attn_window';
/** The stacked graph's largest tensor (all layers' probabilities) stays under this; past it, a graph per layer. */
const STACKED_MAX_BYTES = 256 * 1024 * 1024;

/**
 * The scoring graph (exported for tests). `stacked`: all layers' queries and keys concatenated on the batch axis and
 * scored by one chain of about 20 nodes, whose outputs hold every layer (a decode step: a few dispatches instead of
 * 20 per layer; its probabilities are layers x heads x S x T, so only for small S); otherwise one chain per layer.
 */
export function buildScorerModel(shape: ScorerShape, stacked = false): Uint8Array {
  const { layers, heads, kvHeads, headDim: D } = shape;
  const T = shape.dtype === 'float16' ? F16 : F32;
  const g = new GraphBuilder('attention_scores');
  const i64 = (v: number[]) => g.const(I64, [v.length], v);
  const toF32 = (x: string) => (T === F16 ? g.node('Cast', [x], { attrs: { to: F32 } }) : x);
  const qs: string[] = [];
  const ks: string[] = [];
  for (let i = 0; i < layers; i++) {
    qs.push(g.input(queryName(i), T, ['batch', 'queries', heads * D]));
    ks.push(g.input(presentName(i, 'key'), T, ['batch', kvHeads, 'total', D]));
  }

  // Shared by every layer: query r sits at cache position T - S + r and sees keys 0..T - S + r.
  const S = g.node('Gather', [g.node('Shape', [qs[0]]), i64([1])], { attrs: { axis: 0 } }); // [1]
  const total = g.node('Gather', [g.node('Shape', [ks[0]]), i64([2])], { attrs: { axis: 0 } }); // [1]
  const scalar = (x: string) => g.node('Squeeze', [x, i64([0])]);
  const one = g.const(I64, [], [1]);
  const rows = g.node('Range', [scalar(g.node('Sub', [total, S])), scalar(total), one]); // [S]
  const cols = g.node('Range', [g.const(I64, [], [0]), scalar(total), one]); // [T]
  const hidden = g.node('Greater', [cols, g.node('Unsqueeze', [rows, i64([1])])]); // [S, T]
  const ones = g.node('Unsqueeze', [g.node('ConstantOfShape', [S], { attrs: { value: { dataType: F32, dims: [1], floatData: [1] } } }), i64([0])]); // [1, S]
  const masked = g.const(F32, [], [-1e30]);
  const scale = g.const(F32, [], [1 / Math.sqrt(D)]);
  const qShape = i64([0, 0, heads, D]);
  const groupShape = i64([0, kvHeads, -1, D]);
  const headShape = i64([0, heads, -1, 0]);
  const winStart = i64([-WINDOW_QUERIES]);
  const winEnd = i64([2 ** 53 - 1]);
  const queryAxis = i64([2]);

  /** q [N, S, H*D] and k [N, KV, T, D] -> importance [N, T] and window rows [N, H, min(W, S), T]. */
  const chain = (q: string, k: string, importance: string, window: string) => {
    // [N, S, H*D] -> [N, H, S, D] -> [N, KV, g*S, D]: the g query heads of one KV head are consecutive.
    const qh = g.node('Transpose', [g.node('Reshape', [toF32(q), qShape])], { attrs: { perm: [0, 2, 1, 3] } });
    const kt = g.node('Transpose', [toF32(k)], { attrs: { perm: [0, 1, 3, 2] } }); // [N, KV, D, T]
    const logits = g.node('Mul', [g.node('MatMul', [g.node('Reshape', [qh, groupShape]), kt]), scale]);
    const perHead = g.node('Reshape', [logits, headShape]); // [N, H, S, T]
    const probs = g.node('Softmax', [g.node('Where', [hidden, masked, perHead])], { attrs: { axis: -1 } });
    const summed = g.node('MatMul', [ones, probs]); // [N, H, 1, T]
    g.node('ReduceMean', [summed], { attrs: { axes: [1, 2], keepdims: 0 }, outputs: [importance] });
    g.node('Slice', [probs, winStart, winEnd, queryAxis], { outputs: [window] });
    g.output(importance, F32, ['n', 'total']);
    g.output(window, F32, ['n', heads, 'window', 'total']);
  };
  if (stacked) {
    chain(g.node('Concat', qs, { attrs: { axis: 0 } }), g.node('Concat', ks, { attrs: { axis: 0 } }), STACKED_IMPORTANCE, STACKED_WINDOW);
  } else {
    for (let i = 0; i < layers; i++) chain(qs[i], ks[i], `${IMPORTANCE_PREFIX}${i}`, `${WINDOW_PREFIX}${i}`);
  }
  return encodeModel(g.model({ opset: 17 }));
}

/** The scoring graphs as sessions on `provider`; their outputs come back to the host. */
export class AttentionScorer {
  private constructor(private readonly perLayer: InferenceSession, private readonly stacked: InferenceSession, readonly shape: ScorerShape) {}

  static async create(shape: ScorerShape, provider: 'webgpu' | 'cpu'): Promise<AttentionScorer> {
    const make = (stacked: boolean) => ort.InferenceSession.create(buildScorerModel(shape, stacked), {
      executionProviders: [provider],
      graphOptimizationLevel: 'all',
      logSeverityLevel: 3,
    });
    const [perLayer, stacked] = await Promise.all([make(false), make(true)]);
    return new AttentionScorer(perLayer, stacked, shape);
  }

  /**
   * Importance (and, with `window`, the window rows) of a decoder run's outputs, its queries and present keys, as
   * `attn_importance.{i}` [1, T] and `attn_window.{i}` [1, heads, min(W, S), T]. Few queries go through the stacked
   * graph, a prefill through one chain per layer.
   */
  async score(out: Record<string, Tensor>, window: boolean, stacked = this.fitsStacked(out)): Promise<Record<string, Tensor>> {
    const { layers, heads } = this.shape;
    const feeds: Record<string, Tensor> = {};
    for (let i = 0; i < layers; i++) {
      feeds[queryName(i)] = out[queryName(i)];
      feeds[presentName(i, 'key')] = out[presentName(i, 'key')];
    }
    if (!stacked) {
      const fetches: string[] = [];
      for (let i = 0; i < layers; i++) fetches.push(`${IMPORTANCE_PREFIX}${i}`, ...(window ? [`${WINDOW_PREFIX}${i}`] : []));
      return this.perLayer.run(feeds, fetches);
    }
    const r = await this.stacked.run(feeds, window ? [STACKED_IMPORTANCE, STACKED_WINDOW] : [STACKED_IMPORTANCE]);
    const split: Record<string, Tensor> = {};
    const imp = r[STACKED_IMPORTANCE];
    const T = imp.dims[1];
    for (let i = 0; i < layers; i++) split[`${IMPORTANCE_PREFIX}${i}`] = new ort.Tensor('float32', (imp.data as Float32Array).subarray(i * T, (i + 1) * T), [1, T]);
    if (window) {
      const w = r[STACKED_WINDOW];
      const rows = w.dims[2];
      const n = heads * rows * T;
      for (let i = 0; i < layers; i++) split[`${WINDOW_PREFIX}${i}`] = new ort.Tensor('float32', (w.data as Float32Array).subarray(i * n, (i + 1) * n), [1, heads, rows, T]);
    }
    return split;
  }

  /** Whether all layers' probabilities (layers x heads x S x T floats) stay under STACKED_MAX_BYTES. */
  private fitsStacked(out: Record<string, Tensor>): boolean {
    const S = out[queryName(0)].dims[1];
    const T = out[presentName(0, 'key')].dims[2];
    return this.shape.layers * this.shape.heads * S * T * 4 <= STACKED_MAX_BYTES;
  }

  release(): Promise<void> {
    return Promise.all([this.perLayer.release(), this.stacked.release()]).then(() => {});
  }
}
