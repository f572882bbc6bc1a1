// WebGPU test plumbing: is there an adapter, upload host data to gpu-buffer tensors, read gpu-buffer tensors back
// (through an Identity session whose outputs stay on the CPU: getData() on a gpu tensor aborts onnxruntime-node 1.30).
import type { InferenceSession, Tensor } from 'onnxruntime-node';
import { ort, float16Tensor } from '../../runtime/model/ort.js';
import { F16, F32, GraphBuilder, encodeModel } from '../helpers/onnx-build.js';
import { halfBits } from '../helpers/kv-model.js';

import { after, before } from 'node:test';
import { releaseCompactionSessions } from '../../runtime/cache/gpuStore.js';

export const REQUIRE_WEBGPU = process.env.ELASTIC_VLM_REQUIRE_WEBGPU === '1';

function identityModel(elem: number): Uint8Array {
  const g = new GraphBuilder('identity');
  g.input('x', elem, null as never);
  g.node('Identity', ['x'], { outputs: ['y'] });
  g.output('y', elem);
  return encodeModel(g.model({ opset: 17, producer: 'elastic-vlm-tests' }));
}

/** Why WebGPU is unusable here, or null when a session runs on it. */
export async function webgpuUnavailable(): Promise<string | null> {
  try {
    const s = await ort.InferenceSession.create(identityModel(F32), { executionProviders: ['webgpu'], logSeverityLevel: 3 });
    const r = await s.run({ x: new ort.Tensor('float32', Float32Array.of(1, 2), [2]) });
    const ok = (r.y.data as Float32Array)[1] === 2;
    await s.release();
    return ok ? null : 'a WebGPU Identity session returned wrong data';
  } catch (e) {
    const msg = (e as Error).message.split('\n')[0];
    return msg.match(/Failed to get a WebGPU adapter.*/)?.[0] ?? msg;
  }
}

const cache = new Map<string, Promise<InferenceSession>>();
function identity(dtype: 'float32' | 'float16', where: 'gpu-buffer' | 'cpu'): Promise<InferenceSession> {
  const key = `${dtype}:${where}`;
  if (!cache.has(key)) {
    cache.set(key, ort.InferenceSession.create(identityModel(dtype === 'float16' ? F16 : F32), {
      executionProviders: ['webgpu'],
      preferredOutputLocation: where,
      logSeverityLevel: 3,
    }));
  }
  return cache.get(key)!;
}

/** Host data -> a gpu-buffer tensor (the caller owns it: dispose it). float16 data are bit patterns. */
export async function upload(data: Float32Array | Uint16Array, dims: number[]): Promise<Tensor> {
  const half = data instanceof Uint16Array;
  const t = half ? float16Tensor(data, dims) : new ort.Tensor('float32', data, dims);
  const out = (await (await identity(half ? 'float16' : 'float32', 'gpu-buffer')).run({ x: t })).y;
  if (out.location !== 'gpu-buffer') throw new Error(`upload gave a ${out.location} tensor`);
  return out;
}

/** A gpu-buffer (or host) tensor -> host data: Float32Array, or float16 bit patterns as a Uint16Array. */
export async function download(t: Tensor): Promise<Float32Array | Uint16Array> {
  const half = t.type === 'float16';
  const out = (await (await identity(half ? 'float16' : 'float32', 'cpu')).run({ x: t })).y;
  return half ? halfBits(out.data).slice() : (out.data as Float32Array).slice();
}

export async function releaseDeviceHelpers(): Promise<void> {
  const all = [...cache.values()];
  cache.clear();
  await Promise.all(all.map(async (s) => (await s).release()));
}

export function rssMiB(): number {
  return process.memoryUsage.rss() / 2 ** 20;
}

/**
 * Registers the suite's hooks (adapter probe before, device sessions released after) and returns the per-test gate:
 * it skips the test with the reason when there is no WebGPU adapter, or fails it under ELASTIC_VLM_REQUIRE_WEBGPU=1.
 * The probe starts at load time and is awaited in `before` (no top-level await in this CommonJS package).
 */
export function webgpuGate(): (t: { skip: (m: string) => void }) => boolean {
  const state = { reason: null as string | null, ready: webgpuUnavailable() };
  state.ready.then((why) => (state.reason = why));
  before(async () => {
    await state.ready;
    if (state.reason) console.log(`# WebGPU unavailable: ${state.reason}${REQUIRE_WEBGPU ? ' (required: tests fail)' : ' (tests skipped)'}`);
  });
  after(async () => {
    await releaseCompactionSessions();
    await releaseDeviceHelpers();
  });
  return (t) => {
    if (!state.reason) return true;
    const msg = `no WebGPU adapter (${state.reason}); install Mesa 25 lavapipe (scripts/setup.sh) and source scripts/webgpu-env.sh`;
    if (REQUIRE_WEBGPU) throw new Error(`ELASTIC_VLM_REQUIRE_WEBGPU=1 but ${msg}`);
    t.skip(msg);
    return false;
  };
}
