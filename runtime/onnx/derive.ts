// The derived decoder on disk: the importance rewrite runs once per source file (keyed by its sha256 and the
// rewrite's version) into a cache folder; later loads read the derived file. The source is only ever read.
import { onnx } from 'onnx-proto';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { NoAttentionError, type AttentionKind } from './attentionSites.js';
import { REWRITE_VERSION, rewriteForImportance, type RewriteResult } from './importance.js';
import { wireTruePositions } from './positions.js';
import { lastPositionLogits } from './lastLogits.js';
import { exposeQueries } from './queries.js';
import { defaultDerivedCacheDir } from '../paths.js';
import { writeModelFile } from './writeModel.js';
import { inChildProcess, type DerivedDecoder, type DerivedPositions } from './deriveChild.js';

export type { DerivedDecoder, DerivedPositions };

export interface DeriveOptions {
  /** Where derived models are kept; default $XDG_CACHE_HOME/elastic-vlm/derived or ~/.cache/elastic-vlm/derived. */
  cacheDir?: string;
  /**
   * Run a rewrite that is not cached in a child process (deriveChild.ts), so that its memory (the source's bytes
   * and the decoded graph) is the child's and is gone before the caller loads its sessions. Default: in process.
   */
  isolate?: boolean;
  /** Where the isolated rewrite's progress lines go. */
  log?: (line: string) => void;
  /** Skip the cache look-up and rewrite (the child process: its parent has just looked and missed). */
  rewrite?: boolean;
}

export { defaultDerivedCacheDir };

interface CacheMeta {
  version: number;
  sourceSha256: string;
  source: string;
  bytes?: number;
  kind?: AttentionKind;
  layers?: number;
  outputNames?: string[];
  /** Recorded when the source has no attention, so later loads fail fast without a rewrite. */
  noAttention?: string;
}

async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Writes `file` through a temporary file renamed into place, so that a reader never sees half a file. */
async function writeAtomic<T>(file: string, write: (tmp: string) => Promise<T>): Promise<T> {
  const tmp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    const r = await write(tmp);
    await fsp.rename(tmp, file);
    return r;
  } catch (e) {
    await fsp.rm(tmp, { force: true }).catch(() => {});
    throw e;
  }
}

const writeJsonAtomic = (file: string, data: object) => writeAtomic(file, (tmp) => fsp.writeFile(tmp, JSON.stringify(data, null, 2)));
/** The model written piece by piece (writeModel.ts); returns its size in bytes. */
const writeModelAtomic = (file: string, model: onnx.IModelProto) => writeAtomic(file, (tmp) => writeModelFile(model, tmp));

async function readMeta(file: string): Promise<CacheMeta | undefined> {
  try {
    const m = JSON.parse(await fsp.readFile(file, 'utf8')) as CacheMeta;
    return m && m.version === REWRITE_VERSION ? m : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Returns a decoder derived from `srcPath` with `attn_importance.{i}` outputs, from the cache when a
 * derivation of the same source bytes (sha256) and rewrite version exists. The source file and its
 * folder are only read. Rejects with NoAttentionError (message "no attention found in <file>: ...")
 * when the decoder has no usable attention, and UnsupportedModelError for unsupported models.
 */
export async function deriveScoredDecoder(srcPath: string, opts: DeriveOptions = {}): Promise<DerivedDecoder> {
  const dir = opts.cacheDir ?? defaultDerivedCacheDir();
  const paths = (h: string) => {
    const base = path.join(dir, `${h}.r${REWRITE_VERSION}`);
    return { model: `${base}.onnx`, meta: `${base}.json` };
  };
  if (!opts.rewrite) {
    const hashed = await sha256File(srcPath);
    const p = paths(hashed);
    const meta = await readMeta(p.meta);
    if (meta && meta.sourceSha256 === hashed) {
      if (meta.noAttention) throw new NoAttentionError(meta.noAttention);
      const st = await fsp.stat(p.model).catch(() => undefined);
      if (st && st.size === meta.bytes && meta.kind && meta.layers !== undefined && meta.outputNames) {
        return { path: p.model, kind: meta.kind, layers: meta.layers, outputNames: meta.outputNames, cached: true, sourceSha256: hashed };
      }
    }
    if (opts.isolate) return inChildProcess({ kind: 'scored', source: srcPath, cacheDir: dir }, opts.log);
  }

  const bytes = await fsp.readFile(srcPath);
  // Key by the bytes actually read (the file may have changed since it was hashed).
  const sha = createHash('sha256').update(bytes).digest('hex');
  const p = paths(sha);
  await fsp.mkdir(dir, { recursive: true });

  let result: RewriteResult;
  try {
    const model = onnx.ModelProto.decode(bytes);
    result = rewriteForImportance(model, { source: srcPath });
  } catch (e) {
    if (e instanceof NoAttentionError) {
      const m: CacheMeta = { version: REWRITE_VERSION, sourceSha256: sha, source: srcPath, noAttention: e.message };
      await writeJsonAtomic(p.meta, m).catch(() => {});
    }
    throw e;
  }
  const written = await writeModelAtomic(p.model, result.model);
  const m: CacheMeta = {
    version: REWRITE_VERSION,
    sourceSha256: sha,
    source: srcPath,
    bytes: written,
    kind: result.kind,
    layers: result.layers,
    outputNames: result.outputNames,
  };
  await writeJsonAtomic(p.meta, m);
  return { path: p.model, kind: result.kind, layers: result.layers, outputNames: result.outputNames, cached: false, sourceSha256: sha };
}

/**
 * A decoder derived from `srcPath` with true positions (rotary moved out of GroupQueryAttention, positions.ts),
 * last-position logits (lastLogits.ts) and each layer's rotated queries (queries.ts), no importance outputs: for
 * providers whose GroupQueryAttention cannot output attention (WebGPU in onnxruntime 1.30), where the queries go to
 * the scoring graph (model/scorer.ts). Returns the source itself when there is nothing to change. Cached like the
 * scored decoder.
 */
export async function derivePositionsDecoder(srcPath: string, opts: DeriveOptions = {}): Promise<DerivedPositions> {
  const dir = opts.cacheDir ?? defaultDerivedCacheDir();
  const files = (sha: string) => {
    const base = path.join(dir, `${sha}.positions.r${REWRITE_VERSION}`);
    return { model: `${base}.onnx`, meta: `${base}.json` };
  };
  if (!opts.rewrite) {
    const hashed = files(await sha256File(srcPath));
    const hit = await readPositionsMeta(hashed.meta);
    if (hit && (await fsp.stat(hashed.model).then((s) => s.size === hit.bytes, () => false))) return { path: hashed.model, queryOutputs: hit.queryOutputs };
    if (opts.isolate) return inChildProcess({ kind: 'positions', source: srcPath, cacheDir: dir }, opts.log);
  }
  const bytes = await fsp.readFile(srcPath);
  const target = files(createHash('sha256').update(bytes).digest('hex'));
  const model = onnx.ModelProto.decode(bytes);
  const wired = wireTruePositions(model).wired;
  const queryOutputs = exposeQueries(model);
  if (!lastPositionLogits(model) && wired === 0 && queryOutputs === 0) return { path: srcPath, queryOutputs: 0 };
  await fsp.mkdir(dir, { recursive: true });
  const written = await writeModelAtomic(target.model, model);
  await writeJsonAtomic(target.meta, { version: REWRITE_VERSION, source: srcPath, bytes: written, queryOutputs });
  return { path: target.model, queryOutputs };
}

async function readPositionsMeta(file: string): Promise<{ bytes: number; queryOutputs: number } | undefined> {
  try {
    const m = JSON.parse(await fsp.readFile(file, 'utf8')) as { version?: number; bytes?: number; queryOutputs?: number };
    return m.version === REWRITE_VERSION && typeof m.bytes === 'number' && typeof m.queryOutputs === 'number' ? { bytes: m.bytes, queryOutputs: m.queryOutputs } : undefined;
  } catch {
    return undefined;
  }
}
