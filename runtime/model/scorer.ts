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

/** The scoring graph for every layer of `shape` (exported for tests). */
export function buildScorerModel(shape: ScorerShape): Uint8Array {
  const { layers, heads, kvHeads, headDim: D } = shape;
  const T = shape.dtype === 'float16' ? F16 : F32;
  const g = new GraphBuilder('attention_scores');
  const i64 = (v: number[]) => g.const(I64, [v.length], v);
  const toF32 = (x: string) => (T === F16 ? g.node('Cast', [x], { attrs: { to: F32 } }) : x);
  const q0 = g.input(queryName(0), T, ['batch', 'queries', heads * D]);
  const k0 = g.input(presentName(0, 'key'), T, ['batch', kvHeads, 'total', D]);

  // Shared by every layer: query r sits at cache position T - S + r and sees keys 0..T - S + r.
  const S = g.node('Gather', [g.node('Shape', [q0]), i64([1])], { attrs: { axis: 0 } }); // [1]
  const total = g.node('Gather', [g.node('Shape', [k0]), i64([2])], { attrs: { axis: 0 } }); // [1]
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

  for (let i = 0; i < layers; i++) {
    const q = i === 0 ? q0 : g.input(queryName(i), T, ['batch', 'queries', heads * D]);
    const k = i === 0 ? k0 : g.input(presentName(i, 'key'), T, ['batch', kvHeads, 'total', D]);
    // [B, S, H*D] -> [B, H, S, D] -> [B, KV, g*S, D]: the g query heads of one KV head are consecutive.
    const qh = g.node('Transpose', [g.node('Reshape', [toF32(q), qShape])], { attrs: { perm: [0, 2, 1, 3] } });
    const kt = g.node('Transpose', [toF32(k)], { attrs: { perm: [0, 1, 3, 2] } }); // [B, KV, D, T]
    const logits = g.node('Mul', [g.node('MatMul', [g.node('Reshape', [qh, groupShape]), kt]), scale]);
    const perHead = g.node('Reshape', [logits, headShape]); // [B, H, S, T]
    const probs = g.node('Softmax', [g.node('Where', [hidden, masked, perHead])], { attrs: { axis: -1 } });
    const summed = g.node('MatMul', [ones, probs]); // [B, H, 1, T]
    g.node('ReduceMean', [summed], { attrs: { axes: [1, 2], keepdims: 0 }, outputs: [`${IMPORTANCE_PREFIX}${i}`] });
    g.node('Slice', [probs, winStart, winEnd, queryAxis], { outputs: [`${WINDOW_PREFIX}${i}`] });
    g.output(`${IMPORTANCE_PREFIX}${i}`, F32, ['batch', 'total']);
    g.output(`${WINDOW_PREFIX}${i}`, F32, ['batch', heads, 'window', 'total']);
  }
  return encodeModel(g.model({ opset: 17 }));
}

/** The scoring graph as a session on `provider`; its outputs come back to the host. */
export class AttentionScorer {
  private constructor(private readonly session: InferenceSession, readonly layers: number) {}

  static async create(shape: ScorerShape, provider: 'webgpu' | 'cpu'): Promise<AttentionScorer> {
    const session = await ort.InferenceSession.create(buildScorerModel(shape), {
      executionProviders: [provider],
      graphOptimizationLevel: 'all',
      logSeverityLevel: 3,
    });
    return new AttentionScorer(session, shape.layers);
  }

  /** Importance (and, with `window`, the window rows) of a decoder run's outputs: its queries and present keys. */
  async score(out: Record<string, Tensor>, window: boolean): Promise<Record<string, Tensor>> {
    const feeds: Record<string, Tensor> = {};
    const fetches: string[] = [];
    for (let i = 0; i < this.layers; i++) {
      feeds[queryName(i)] = out[queryName(i)];
      feeds[presentName(i, 'key')] = out[presentName(i, 'key')];
      fetches.push(`${IMPORTANCE_PREFIX}${i}`);
      if (window) fetches.push(`${WINDOW_PREFIX}${i}`);
    }
    return this.session.run(feeds, fetches);
  }

  release(): Promise<void> {
    return this.session.release();
  }
}
