// Test helpers for building ONNX models: the builder itself lives in runtime/onnx/build.ts (the runtime builds
// its WebGPU compaction graphs with it); this module re-exports it and adds the tests' deterministic random data.
// Usage:
//   const g = new GraphBuilder('g');
//   g.input('x', F32, ['batch', 4]); g.init('w', F32, [4, 2], new Float32Array(8));
//   const y = g.node('MatMul', ['x', 'w']);
//   g.output(y, F32, ['batch', 2]);
//   const bytes = encodeModel(g.model({ opset: 17 }));
export {
  F32, F16, I32, I64, BOOL,
  tensor, valueInfo, attr, GraphBuilder, encodeModel, decodeModel,
} from '../../runtime/onnx/build.js';
export type { Dim, AttrValue, NodeOptions } from '../../runtime/onnx/build.js';

/** A deterministic pseudo-random generator (the runtime's seeded sampler's mulberry32) for test weights and inputs. */
export { seededRandom as rng } from '../../runtime/generate/sampling.js';

/** n values uniform in [-scale, scale). */
export function randn(r: () => number, n: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (r() * 2 - 1) * scale;
  return out;
}
