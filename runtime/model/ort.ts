// The one place onnxruntime-node is loaded: telemetry is switched off before the module initialises.
process.env.ORT_DISABLE_TELEMETRY = '1';
// eslint-disable-next-line @typescript-eslint/no-require-imports
export const ort: typeof import('onnxruntime-node') = require('onnxruntime-node');
export type Tensor = import('onnxruntime-node').Tensor;
export type InferenceSession = import('onnxruntime-node').InferenceSession;

/** Node >= 23 mis-sizes float16 inputs built from a Float16Array-aware path: build as uint16, relabel as float16. */
export function float16Tensor(data: Uint16Array, dims: readonly number[]): Tensor {
  const t = new ort.Tensor('uint16', data, dims);
  Object.defineProperty(t, 'type', { value: 'float16', writable: false, configurable: true });
  return t;
}
