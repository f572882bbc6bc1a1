// Execution providers: `auto` tries the platform's GPU providers in order, races the first that loads against the
// CPU on a fixed decode workload (runtime/model/probe.ts; the answer cached by runtime/model/probeCache.ts) and
// keeps the faster; it falls back to the CPU with a logged reason (onnxruntime-node has no fallback of its own).
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { BadInputError } from '../errors.js';
import { describeProbe, type Device, type DeviceProbe, type Provider } from '../protocol.js';
import type { InferenceSession } from 'onnxruntime-node';
import { ort } from './ort.js';
import { alternate, pickFaster, type DecodeRun, type Workload } from './probe.js';

export type { Provider };

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
  if (provider === 'webgpu') {
    // Dawn's validation of every dispatch is a debugging aid: off, the 256M look-alike's fp16 decode ran 88 -> 98
    // tok/s on an H200 (single runs, docs/real-size.md run 6). ELASTIC_VLM_WEBGPU overrides.
    o.extra = { ep: { webgpuexecutionprovider: { validationMode: 'disabled', ...webgpuSettings() } } };
  }
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

/**
 * ELASTIC_VLM_WEBGPU="key=value,...": onnxruntime's WebGPU provider settings (validationMode, maxNumPendingDispatches,
 * ...), passed as its session config entries; for measuring them (docs/gpu.md), not a user setting.
 */
export function webgpuSettings(env = process.env.ELASTIC_VLM_WEBGPU ?? ''): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of env.split(',').map((x) => x.trim()).filter(Boolean)) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new BadInputError(`ELASTIC_VLM_WEBGPU: "${part}" is not key=value`);
    out[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return out;
}

export interface ProviderChoice {
  provider: Provider;
  fallbackReason?: string;
  /** `auto`'s measured race of a GPU provider against the CPU (fresh or from the cache). */
  probe?: DeviceProbe;
}

/** Two median decode steps, ms (and when they were measured, for a cached answer). */
export type StepTimes = { gpuStepMs: number; cpuStepMs: number; measuredAt?: string };

/** `auto`'s race of a GPU provider that loaded against the CPU; runtime/vlm.ts wires it to the model and the cache. */
export interface AutoRace<T> {
  /** The cached answer for this GPU provider, or null (the race runs). */
  lookup(gpu: Provider): Promise<StepTimes | null>;
  /** Starts the fixed decode workload (its prefill) on one provider's sessions. */
  start(value: T, p: Provider): Promise<DecodeRun>;
  /** The workload's steps (default PROBE_WORKLOAD). */
  workload?: Workload;
  release(value: T): Promise<void>;
  save(gpu: Provider, m: StepTimes): Promise<void>;
}

export interface ChooseOptions<T> {
  /** Builds the sessions for one provider; under `auto` its failure moves on to the next candidate. */
  build: (p: Provider) => Promise<T>;
  log: (s: string) => void;
  /** Why `auto` must not use a provider (null: it may). */
  skipForAuto?: (p: Provider) => string | null;
  /** Without it `auto` takes the first GPU provider that loads. */
  race?: AutoRace<T>;
  /** The GPU providers `auto` tries, fastest first (default: gpuCandidates()). */
  candidates?: Provider[];
}

type Chosen<T> = { choice: ProviderChoice; value: T };
const firstLine = (e: unknown) => (e as Error).message.split('\n')[0];

/**
 * Picks the provider: a named one must work (its error is the user's) and is never probed. `auto` goes through the
 * GPU candidates: one that is not skipped and loads races the CPU (or a cached race decides), and the faster by
 * DEVICE_PROBE_MARGIN keeps its sessions; with no GPU left, the CPU.
 */
export async function chooseProvider<T>(device: Device, o: ChooseOptions<T>): Promise<Chosen<T>> {
  if (device !== 'auto') {
    try {
      return { choice: { provider: device }, value: await o.build(device) };
    } catch (e) {
      if (e instanceof BadInputError) throw e;
      throw new BadInputError(`device ${device} is not available here: ${firstLine(e)}`);
    }
  }
  const reasons: string[] = [];
  for (const p of o.candidates ?? gpuCandidates()) {
    const skip = o.skipForAuto?.(p);
    if (skip) {
      reasons.push(`${p}: ${skip}`);
      o.log(`execution provider ${p} skipped: ${skip}`);
      continue;
    }
    const got = await tryGpu(p, o, reasons);
    if (got) return got;
  }
  const fallbackReason = reasons.length ? reasons.join('; ') : `no GPU provider for ${process.platform}-${process.arch}`;
  o.log(`using the CPU (${fallbackReason})`);
  return { choice: { provider: 'cpu', fallbackReason }, value: await o.build('cpu') };
}

/** One GPU candidate under `auto`: the cached answer, or load it and race it against the CPU; null moves on. */
async function tryGpu<T>(p: Provider, o: ChooseOptions<T>, reasons: string[]): Promise<Chosen<T> | null> {
  let cached = o.race ? await o.race.lookup(p).catch(() => null) : null;
  if (cached && pickFaster({ gpu: p, ...cached }) === 'cpu') {
    const probe: DeviceProbe = { gpu: p, ...cached, cached: true, probeMs: 0 };
    try {
      const value = await o.build('cpu');
      o.log(`${describeProbe('cpu', probe)}: ${p} not loaded`);
      return { choice: { provider: 'cpu', probe }, value };
    } catch (e) {
      o.log(`the cached choice, the CPU, could not load the model (${firstLine(e)}); trying ${p}`);
      cached = null;
    }
  }
  let value: T;
  try {
    value = await o.build(p);
  } catch (e) {
    if (e instanceof BadInputError) throw e;
    const why = `${p}: ${firstLine(e)}`;
    reasons.push(why);
    o.log(`execution provider ${why}; trying the next one`);
    return null;
  }
  if (cached) {
    const probe: DeviceProbe = { gpu: p, ...cached, cached: true, probeMs: 0 };
    o.log(describeProbe(p, probe));
    return { choice: { provider: p, probe }, value };
  }
  return o.race ? raceCpu(p, value, o, reasons) : { choice: { provider: p }, value };
}

/**
 * Starts the workload on the GPU's sessions, loads the CPU's and starts it there, then steps both in turn; the
 * loser's sessions are released and a race with two step times is cached. Null: the GPU could not run it.
 */
async function raceCpu<T>(p: Provider, gpuValue: T, o: ChooseOptions<T>, reasons: string[]): Promise<Chosen<T> | null> {
  const race = o.race!;
  const t0 = performance.now();
  const gpuOut = (why: string) => {
    reasons.push(`${p}: the probe's decode failed (${why})`);
    o.log(`execution provider ${p}: the probe's decode failed (${why}); trying the next one`);
  };
  let gpuRun: DecodeRun;
  try {
    gpuRun = await race.start(gpuValue, p);
  } catch (e) {
    await race.release(gpuValue).catch(() => {});
    if (e instanceof BadInputError) throw e;
    gpuOut(firstLine(e));
    return null;
  }
  let cpuValue: T | null = null;
  let cpuRun: DecodeRun | null = null;
  let cpuError: string | undefined;
  try {
    cpuValue = await o.build('cpu');
    cpuRun = await race.start(cpuValue, 'cpu');
  } catch (e) {
    cpuError = firstLine(e);
    if (cpuValue !== null) await race.release(cpuValue).catch(() => {});
    cpuValue = null;
  }
  const [g, c] = await alternate(cpuRun ? [gpuRun, cpuRun] : [gpuRun], race.workload);
  cpuError ??= c?.error;
  if (g.error) {
    // The GPU loaded but could not step: the CPU, when it loaded and stepped, else the next candidate.
    await race.release(gpuValue).catch(() => {});
    gpuOut(g.error);
    if (cpuValue === null || cpuError) {
      if (cpuValue !== null) await race.release(cpuValue).catch(() => {});
      return null;
    }
    return { choice: { provider: 'cpu', fallbackReason: reasons.join('; ') }, value: cpuValue };
  }
  const times: StepTimes = { gpuStepMs: g.stepMs, cpuStepMs: cpuError ? NaN : c.stepMs };
  const winner = cpuValue === null || cpuError ? p : pickFaster({ gpu: p, ...times });
  const loser = winner === 'cpu' ? gpuValue : cpuValue;
  if (loser !== null) await race.release(loser).catch(() => {});
  const probe: DeviceProbe = { gpu: p, ...times, cached: false, probeMs: performance.now() - t0, measuredAt: new Date().toISOString(), ...(cpuError ? { cpuError } : {}) };
  if (!cpuError) await race.save(p, times).catch(() => {});
  o.log(`${describeProbe(winner, probe)}; the probe took ${probe.probeMs.toFixed(0)} ms`);
  return { choice: { provider: winner, probe }, value: winner === 'cpu' ? cpuValue! : gpuValue };
}
