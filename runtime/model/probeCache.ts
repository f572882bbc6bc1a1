// `auto`'s probe answers on disk, so a model is timed once per machine: one JSON file (PROBE_FILE) in the
// derived-decoder cache folder, one entry per (decoder file, GPU provider, onnxruntime-node version, machine).
// A missing, unreadable or corrupt file is a miss, never an error; delete the file (or set ELASTIC_VLM_REPROBE=1)
// to measure again.
import { randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import { cpus } from 'node:os';
import { basename, join } from 'node:path';
import type { Provider } from '../protocol.js';

export const PROBE_FILE = 'device-probe.json';
// 2: the probe decodes at a full-detail prompt's length (probe.ts probeContext), not 32 tokens: older answers are void.
export const PROBE_CACHE_VERSION = 2;
const VERSION = PROBE_CACHE_VERSION;

/** What a probe's answer depends on; any change is a miss. */
export interface ProbeKey {
  /** The decoder that runs: the source's content hash for a derived decoder, else its name, size and mtime. */
  decoder: string;
  gpu: Provider;
  ort: string;
  /** CPU model, core count, platform (and the thread or Vulkan driver override, when set). */
  machine: string;
}

export interface CachedProbe {
  gpuStepMs: number;
  cpuStepMs: number;
  /** ISO time of the measurement. */
  measuredAt: string;
}

interface ProbeFile {
  version: number;
  entries: Record<string, CachedProbe & { key: ProbeKey }>;
}

export function machineId(env: NodeJS.ProcessEnv = process.env): string {
  const list = cpus();
  const parts = [`${list[0]?.model.trim() || 'unknown CPU'} x ${list.length}`, `${process.platform}-${process.arch}`];
  if (env.ELASTIC_VLM_THREADS) parts.push(`threads ${env.ELASTIC_VLM_THREADS}`);
  const vk = env.VK_ICD_FILENAMES || env.VK_DRIVER_FILES;
  if (vk) parts.push(`vulkan ${vk}`);
  return parts.join(', ');
}

/**
 * The decoder's identity: a derived decoder is named by its source's sha256 (the derived-decoder cache's own key)
 * and the rewrite version; a decoder run as it is, by its file name, size and mtime (no hash of a large file).
 */
export async function decoderIdentity(file: string, derived?: { sourceSha256: string; version: number }): Promise<string> {
  if (derived) return `scored r${derived.version} of sha256 ${derived.sourceSha256.slice(0, 16)}`;
  const st = await fsp.stat(file);
  return `${basename(file)}, ${st.size} bytes, mtime ${Math.round(st.mtimeMs)}`;
}

export const keyString = (k: ProbeKey): string => [k.gpu, k.decoder, `onnxruntime-node ${k.ort}`, k.machine].join(' | ');

const goodMs = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v > 0;

/** The whole file's entries; {} when it is missing, unreadable, not JSON or of another version. */
async function readAll(dir: string): Promise<ProbeFile['entries']> {
  try {
    const f = JSON.parse(await fsp.readFile(join(dir, PROBE_FILE), 'utf8')) as ProbeFile;
    if (!f || f.version !== VERSION || typeof f.entries !== 'object' || f.entries === null || Array.isArray(f.entries)) return {};
    return f.entries;
  } catch {
    return {};
  }
}

/** The cached answer for `key`, or null (a miss, or an entry that is not two positive step times). */
export async function readProbe(dir: string, key: ProbeKey): Promise<CachedProbe | null> {
  const e = (await readAll(dir))[keyString(key)];
  if (!e || typeof e !== 'object' || !goodMs(e.gpuStepMs) || !goodMs(e.cpuStepMs)) return null;
  return { gpuStepMs: e.gpuStepMs, cpuStepMs: e.cpuStepMs, measuredAt: typeof e.measuredAt === 'string' ? e.measuredAt : '' };
}

/**
 * Records an answer (atomically: a temporary file renamed over the old one; a corrupt file is replaced). Returns
 * the error's message when it could not be written (a read-only folder): the caller logs it and goes on.
 */
export async function writeProbe(dir: string, key: ProbeKey, m: { gpuStepMs: number; cpuStepMs: number }): Promise<string | null> {
  if (!goodMs(m.gpuStepMs) || !goodMs(m.cpuStepMs)) return 'not two positive step times';
  const file = join(dir, PROBE_FILE);
  const tmp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    const entries = await readAll(dir);
    entries[keyString(key)] = { key, gpuStepMs: m.gpuStepMs, cpuStepMs: m.cpuStepMs, measuredAt: new Date().toISOString() };
    await fsp.mkdir(dir, { recursive: true });
    await fsp.writeFile(tmp, JSON.stringify({ version: VERSION, entries } satisfies ProbeFile, null, 2));
    await fsp.rename(tmp, file);
    return null;
  } catch (e) {
    await fsp.rm(tmp, { force: true }).catch(() => {});
    return (e as Error).message.split('\n')[0];
  }
}
