// Execution providers: `auto` tries the platform's GPU providers in order and falls back to the CPU with a
// logged reason (onnxruntime-node has no automatic fallback of its own).
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { BadInputError } from '../errors.js';
import type { Device } from '../protocol.js';
import type { InferenceSession } from 'onnxruntime-node';
import { ort } from './ort.js';

export type Provider = Exclude<Device, 'auto'>;

/** GPU providers worth trying on this platform, fastest first. */
export function gpuCandidates(platform = process.platform, arch = process.arch): Provider[] {
  if (platform === 'linux' && arch === 'x64') {
    const list: Provider[] = cudaLibsPresent() ? ['cuda'] : [];
    if (hardwareGpuLikely()) list.push('webgpu');
    return list;
  }
  if (platform === 'win32') return ['dml', 'webgpu'];
  if (platform === 'darwin' && arch === 'arm64') return ['coreml', 'webgpu'];
  return [];
}

/**
 * `auto` must not pick a software Vulkan (lavapipe): it is correct but far slower than the CPU provider. On Linux a
 * hardware GPU shows up as a DRM render node or an NVIDIA device node, and a forced lavapipe ICD means software.
 */
export function hardwareGpuLikely(): boolean {
  if (/lvp_icd|lavapipe/i.test(`${process.env.VK_ICD_FILENAMES ?? ''}${process.env.VK_DRIVER_FILES ?? ''}`)) return false;
  try {
    if (existsSync('/dev/nvidia0')) return true;
    return readdirSync('/dev/dri').some((f) => f.startsWith('renderD'));
  } catch {
    return false;
  }
}

/** CUDA only loads when its provider library sits next to libonnxruntime (installs that skipped it lack it). */
function cudaLibsPresent(): boolean {
  try {
    const pkg = dirname(require.resolve('onnxruntime-node/package.json'));
    return existsSync(join(pkg, 'bin', 'napi-v6', 'linux', 'x64', 'libonnxruntime_providers_cuda.so'));
  } catch {
    return false;
  }
}

export interface SessionOptions {
  /** Outputs to keep on the device (WebGPU only). */
  gpuOutputs?: string[];
  threads?: number;
}

export async function createSession(path: string, provider: Provider, opts: SessionOptions = {}): Promise<InferenceSession> {
  const o: InferenceSession.SessionOptions = {
    executionProviders: [provider === 'cuda' ? { name: 'cuda', deviceId: 0 } : provider],
    graphOptimizationLevel: 'all',
    // CPU: ORT's memory pattern makes a 2,150-token decode step ~15% faster (docs/benchmarks.md) at no measured
    // RSS cost, though shapes change every step (a pattern per shape is a few offsets). WebGPU cannot use it.
    enableMemPattern: provider !== 'webgpu',
    logSeverityLevel: 3,
  };
  // ELASTIC_VLM_THREADS: one intra-op thread per process when sharded evaluations run one process per core.
  const threads = opts.threads ?? (Number(process.env.ELASTIC_VLM_THREADS) || undefined);
  if (threads) o.intraOpNumThreads = threads;
  if (provider === 'webgpu' && opts.gpuOutputs?.length) {
    o.preferredOutputLocation = Object.fromEntries(opts.gpuOutputs.map((n) => [n, 'gpu-buffer' as const]));
  }
  try {
    return await ort.InferenceSession.create(path, o);
  } catch (e) {
    const msg = (e as Error).message.split('\n')[0];
    // An op this onnxruntime does not know (an unknown attention kernel, a newer contrib op) is the model's problem.
    if (/not a registered function\/op|Could not find an implementation|Unrecognized attribute|unknown op/i.test(msg)) {
      throw new BadInputError(`${path} uses an operator this onnxruntime cannot run: ${msg}`);
    }
    if (/protobuf|parsing|Load model|INVALID_PROTOBUF|invalid model|No graph/i.test(msg)) {
      throw new BadInputError(`${path} is not a valid ONNX model (truncated or corrupt): ${msg}`);
    }
    throw e;
  }
}

export interface ProviderChoice {
  provider: Provider;
  fallbackReason?: string;
}

/**
 * Picks the provider: a named one must work (its error is the user's), `auto` tries GPUs and then the CPU.
 * `probe` builds the sessions for one provider; its failure moves on to the next candidate.
 */
export async function chooseProvider<T>(device: Device, probe: (p: Provider) => Promise<T>, log: (s: string) => void,
  skipForAuto: (p: Provider) => string | null = () => null): Promise<{ choice: ProviderChoice; value: T }> {
  if (device !== 'auto') {
    try {
      return { choice: { provider: device }, value: await probe(device) };
    } catch (e) {
      if (e instanceof BadInputError) throw e;
      throw new BadInputError(`device ${device} is not available here: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  const reasons: string[] = [];
  for (const p of gpuCandidates()) {
    const skip = skipForAuto(p);
    if (skip) {
      reasons.push(`${p}: ${skip}`);
      log(`execution provider ${p} skipped: ${skip}`);
      continue;
    }
    try {
      return { choice: { provider: p }, value: await probe(p) };
    } catch (e) {
      if (e instanceof BadInputError) throw e;
      const why = `${p}: ${(e as Error).message.split('\n')[0]}`;
      reasons.push(why);
      log(`execution provider ${why}; trying the next one`);
    }
  }
  const fallbackReason = reasons.length ? reasons.join('; ') : `no GPU provider for ${process.platform}-${process.arch}`;
  log(`using the CPU (${fallbackReason})`);
  return { choice: { provider: 'cpu', fallbackReason }, value: await probe('cpu') };
}
