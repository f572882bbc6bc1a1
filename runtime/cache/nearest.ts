// The nearest kept entry by key, for Elastic's similarity merge (policies/elasticQuestion.ts): for each of n unit
// vectors (the dropped entries' keys over all KV heads) the index of the most similar of m unit vectors (the kept
// image entries'), ties to the earlier. Two implementations of one rule: a plain loop (the reference, and what the
// tests hand-check), and a small ONNX graph (MatMul + ArgMax) run by onnxruntime on the CPU, which multiplies through
// MLAS: at SmolVLM-256M size (30 layers, ~900 x ~230 x 192 per layer) the loop took 1.7-3.1 s a prefill on 2 cores,
// the graph a few tens of ms (docs/elastic-cache.md).
import type { InferenceSession } from 'onnxruntime-node';
import { ort } from '../model/ort.js';
import { F32, GraphBuilder, encodeModel } from '../onnx/build.js';

/** Rows of `x` ([rows, width]) scaled to unit length in place (a zero row stays zero). Returns x. */
export function unitRows(x: Float32Array, width: number): Float32Array {
  for (let o = 0; o < x.length; o += width) {
    let s = 0;
    for (let i = 0; i < width; i++) s += x[o + i] * x[o + i];
    const r = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let i = 0; i < width; i++) x[o + i] *= r;
  }
  return x;
}

/** For each row of `from` ([n, width]), the index of the row of `to` ([m, width]) with the largest dot product. */
export function nearestLoop(from: Float32Array, to: Float32Array, width: number): Int32Array {
  const n = from.length / width;
  const m = to.length / width;
  const best = new Int32Array(n);
  for (let j = 0; j < n; j++) {
    let top = -Infinity;
    for (let a = 0; a < m; a++) {
      let dot = 0;
      for (let i = 0; i < width; i++) dot += from[j * width + i] * to[a * width + i];
      if (dot > top) {
        top = dot;
        best[j] = a;
      }
    }
  }
  return best;
}

/** from [n, W] x to [m, W] -> ArgMax over m (the first of equal maxima). */
export function buildNearestModel(): Uint8Array {
  const g = new GraphBuilder('nearest');
  g.input('from', F32, ['n', 'w']);
  g.input('to', F32, ['m', 'w']);
  const toT = g.node('Transpose', ['to'], { attrs: { perm: [1, 0] } });
  const sims = g.node('MatMul', ['from', toT]);
  g.node('ArgMax', [sims], { attrs: { axis: 1, keepdims: 0 }, outputs: ['best'] });
  g.output('best', 7 /* INT64 */, ['n']);
  return encodeModel(g.model({ opset: 17 }));
}

let session: Promise<InferenceSession> | null = null;

/** nearestLoop's answer from the ONNX graph (one CPU session for the process). */
export async function nearestGraph(from: Float32Array, to: Float32Array, width: number): Promise<Int32Array> {
  const n = from.length / width;
  const m = to.length / width;
  if (n === 0 || m === 0) return new Int32Array(n);
  if (!session) {
    session = ort.InferenceSession.create(buildNearestModel(), { executionProviders: ['cpu'], logSeverityLevel: 3 });
    session.catch(() => (session = null)); // a failed create is retried next time
  }
  const s = await session;
  const out = await s.run({ from: new ort.Tensor('float32', from, [n, width]), to: new ort.Tensor('float32', to, [m, width]) });
  return Int32Array.from(out.best.data as BigInt64Array, Number);
}
