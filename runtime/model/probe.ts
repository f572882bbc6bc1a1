// `auto`'s measured probe: one short, fixed decode workload timed on a GPU provider's decoder and on the CPU's,
// and the rule that picks between them. A GPU must beat the CPU by a margin, so that noise does not flip the choice.
import type { InferenceSession, Tensor } from 'onnxruntime-node';
import { zeroMassFeeds } from '../onnx/massBias.js';
import { DEVICE_PROBE_MARGIN, type Provider } from '../protocol.js';
import { CpuKvStore, type KvShape, type KvStore } from '../cache/store.js';
import { GpuKvStore } from '../cache/gpuStore.js';
import { lastLogits, ones, positionIds } from '../generate/tensors.js';
import { float16Tensor, ort } from './ort.js';
import { f32ToF16 } from '../util/half.js';
import { decoderFetches } from '../onnx/newEntries.js';

/** A GPU provider's and the CPU's median decode step (ms) on the same workload. */
export interface Measurements {
  gpu: Provider;
  gpuStepMs: number;
  cpuStepMs: number;
}

/**
 * The faster provider: the GPU only when its step is at least `margin` shorter than the CPU's (a tie or a near tie
 * keeps the CPU, where every policy has its attention scores). A GPU that could not be timed loses; a CPU that
 * could not be timed (it could not load the model) loses to a GPU that could.
 */
export function pickFaster(m: Measurements, margin = DEVICE_PROBE_MARGIN): Provider {
  const ok = (v: number) => Number.isFinite(v) && v > 0;
  if (!ok(m.gpuStepMs)) return 'cpu';
  if (!ok(m.cpuStepMs)) return m.gpu;
  return m.gpuStepMs <= m.cpuStepMs * (1 - margin) ? m.gpu : 'cpu';
}

/** The fixed workload: a prefill of `prefillTokens` dummy embeddings, `warmupSteps` untimed steps, `steps` timed ones. */
export interface Workload {
  prefillTokens: number;
  warmupSteps: number;
  steps: number;
}

export const PROBE_WORKLOAD: Workload = { prefillTokens: 32, warmupSteps: 3, steps: 9 };

/** Text tokens of a typical first prompt besides the image (the chat template and a short question). */
export const PROBE_TEXT_TOKENS = 32;

/**
 * The context the probe decodes at: a first prompt with a full-detail square image (every tile the model's longest
 * edge allows, plus the global image) and a short question. A CPU step grows with the context while a GPU step
 * barely does, so a short probe context picks the CPU where the GPU is faster at the lengths users run: on the H200
 * with the 256M fused look-alike, 32 tokens measured 10.4 ms (CPU) against 21.3 ms (WebGPU), and the real 1,176-token
 * decode 40.4 ms against 10.4 ms (docs/gpu.md).
 */
export function probeContext(image: { longestEdge: number; tileSize: number; doImageSplitting: boolean }, imageSeqLen: number): number {
  const perSide = image.doImageSplitting ? Math.max(1, Math.ceil(image.longestEdge / image.tileSize)) : 0;
  const tiles = perSide > 1 ? perSide * perSide + 1 : 1;
  return tiles * imageSeqLen + PROBE_TEXT_TOKENS;
}

/** A decode in progress on one provider: each step feeds one token and returns its wall time (ms). */
export interface DecodeRun {
  step(): Promise<number>;
  /** Releases the cache it built (device tensors on WebGPU). */
  dispose(): void;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n === 0 ? NaN : n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/** Dummy input embeddings [1, n, hidden] (small deterministic values), float16 when the decoder takes float16. */
function dummyEmbeds(n: number, hidden: number, half: boolean, offset: number): Tensor {
  const data = Float32Array.from({ length: n * hidden }, (_, i) => 0.02 * Math.sin(0.37 * (i + offset * hidden)));
  return half ? float16Tensor(Uint16Array.from(data, f32ToF16), [1, n, hidden]) : new ort.Tensor('float32', data, [1, n, hidden]);
}

/**
 * Starts the workload on a loaded decoder, the way a conversation drives it: the KV cache in the provider's store
 * (on the device for WebGPU), the logits read back every run. Runs the prefill; steps follow one call at a time.
 */
export async function startDecode(decoder: InferenceSession, provider: Provider, shape: KvShape, hiddenSize: number,
  prefillTokens = PROBE_WORKLOAD.prefillTokens): Promise<DecodeRun & { prefillMs: number }> {
  const store: KvStore = provider === 'webgpu' ? new GpuKvStore(shape) : new CpuKvStore(shape);
  const half = decoder.inputMetadata.some((m) => m.name === 'inputs_embeds' && m.isTensor && m.type === 'float16');
  const takesPositions = decoder.inputNames.includes('position_ids');
  const fetches = decoderFetches(decoder.outputNames, provider); // as Vlm.decoder fetches
  const run = async (n: number): Promise<number> => {
    const t = performance.now();
    const feeds = zeroMassFeeds(decoder.inputNames, {
      inputs_embeds: dummyEmbeds(n, hiddenSize, half, store.length),
      attention_mask: ones(store.length + n),
      ...(takesPositions ? { position_ids: positionIds(store.length, n) } : {}),
      ...store.feeds(),
    });
    const out = await (fetches ? decoder.run(feeds, fetches) : decoder.run(feeds));
    store.adopt(out);
    lastLogits(out.logits); // the host needs the logits every step: the GPU's synchronisation point
    return performance.now() - t;
  };
  try {
    return { prefillMs: await run(prefillTokens), step: () => run(1), dispose: () => store.dispose() };
  } catch (e) {
    store.dispose();
    throw e;
  }
}

/**
 * Steps the runs in turn (one step of each, then the next round), so that a burst of load on the machine falls on
 * all of them alike; the first `warmupSteps` rounds are not timed (shader compilation, allocator warm-up). Returns
 * each run's median step, or why its step failed (it stops there), and disposes every run.
 */
export async function alternate(runs: DecodeRun[], w: Workload = PROBE_WORKLOAD): Promise<{ stepMs: number; error?: string }[]> {
  const times: number[][] = runs.map(() => []);
  const errors: (string | undefined)[] = runs.map(() => undefined);
  try {
    for (let round = 0; round < w.warmupSteps + w.steps; round++) {
      for (let k = 0; k < runs.length; k++) {
        if (errors[k] !== undefined) continue;
        try {
          const ms = await runs[k].step();
          if (round >= w.warmupSteps) times[k].push(ms);
        } catch (e) {
          errors[k] = (e as Error).message.split('\n')[0];
        }
      }
    }
  } finally {
    for (const r of runs) r.dispose();
  }
  return times.map((t, k) => (errors[k] !== undefined ? { stepMs: NaN, error: errors[k] } : { stepMs: median(t) }));
}
