// Downloading a published SmolVLM ONNX model from a Hugging Face-shaped hub into a local folder.
// No `vscode` import: the unit tests run it against a loopback server.
//
// - The file list, sizes and checksums come from the hub's tree API (`/api/models/{repo}/tree/main[/onnx]`):
//   LFS files carry `lfs.oid` (sha256) and `lfs.size`; small git files carry `oid`, the git blob sha1.
// - Every file goes to `<file>.partial` inside a staging folder `<name>.partial/`; an interrupted transfer resumes
//   with an HTTP Range request (automatically a few times, and on the next run of the command); a file is renamed
//   to its name only after its size and checksum match. The staging folder becomes the model folder (one rename)
//   only when every file is verified, so a half model is never in the place where models are looked for.
// - Requests go only to the configured endpoint over HTTPS (plain HTTP only for 127.0.0.1, for tests); the hub's
//   redirects to its download CDN are followed only over HTTPS.
import { createHash } from 'node:crypto';
import { promises as fsp, createReadStream } from 'node:fs';
import * as path from 'node:path';
import { MODEL_GRAPHS, OPTIONAL_ROOT_FILES, REQUIRED_ROOT_FILES, onnxFileName } from '../runtime/protocol.js';
import { checkEndpoint } from './settingsCore.js';
import { fmtBytes } from './format.js';

export const MANIFEST = 'elastic-vlm-model.json';

export const KNOWN_MODELS = [
  { repo: 'HuggingFaceTB/SmolVLM-256M-Instruct', label: 'SmolVLM-256M-Instruct', detail: '256M parameters, fastest' },
  { repo: 'HuggingFaceTB/SmolVLM-500M-Instruct', label: 'SmolVLM-500M-Instruct', detail: '500M parameters, better answers' },
] as const;

/** onnx/ file variants: suffix '' is fp32. Sizes for 256M (MB) from the published folder. */
export const DTYPES = [
  { id: 'q4', label: 'q4', detail: '4-bit weights, ~215 MB for 256M (recommended on CPU)' },
  { id: 'int8', label: 'int8', detail: '8-bit weights, ~260 MB for 256M' },
  { id: 'fp16', label: 'fp16', detail: 'half precision, ~515 MB for 256M (GPU)' },
  { id: 'q4f16', label: 'q4f16', detail: '4-bit weights, fp16 activations, ~190 MB for 256M (GPU)' },
  { id: '', label: 'fp32', detail: 'full precision, ~1 GB for 256M' },
] as const;


export interface TreeEntry {
  type: string;
  path: string;
  size?: number;
  oid?: string;
  lfs?: { oid: string; size: number };
}

export interface PlannedFile {
  path: string;
  url: string;
  size: number;
  sha256?: string;
  gitSha1?: string;
}

export interface ModelManifest {
  repo: string;
  dtype: string;
  endpoint: string;
  files: { path: string; size: number; sha256?: string; gitSha1?: string }[];
  downloadedAt: string;
}

export class DownloadError extends Error {
  constructor(message: string, readonly kind: 'http' | 'checksum' | 'size' | 'network' | 'cancelled' | 'bad-tree' | 'disk' | 'config') {
    super(message);
    this.name = 'DownloadError';
  }
}

export type FetchLike = typeof fetch;

export interface DownloadOptions {
  endpoint: string;
  repo: string;
  dtype: string;
  /** Folder holding downloaded models (global storage /models). */
  destRoot: string;
  signal?: AbortSignal;
  onProgress?: (p: { file: string; fileDone: number; fileSize: number; done: number; total: number }) => void;
  log?: (line: string) => void;
  /** Automatic resumes of one file after a network error. */
  retries?: number;
  /** No byte for this long aborts an attempt (then resumed). */
  stallMs?: number;
  fetchImpl?: FetchLike;
}

export function modelFolderName(repo: string, dtype: string): string {
  return `${repo.replace(/[^A-Za-z0-9._-]+/g, '--')}--${dtype || 'fp32'}`;
}

const SAFE_PATH = /^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/;
function checkRelPath(p: string): void {
  if (!SAFE_PATH.test(p) || p.split('/').some((s) => s === '..' || s === '.')) {
    throw new DownloadError(`the hub listed an unsafe file path ${JSON.stringify(p).slice(0, 80)}`, 'bad-tree');
  }
}

function checkRepo(repo: string): void {
  if (!/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/.test(repo) || repo.includes('..')) throw new DownloadError(`bad repository name ${repo}`, 'config');
}

function endpointBase(endpoint: string): URL {
  const why = checkEndpoint(endpoint);
  if (why) throw new DownloadError(`hub endpoint ${why}`, 'config');
  return new URL(endpoint.replace(/\/+$/, '') + '/');
}

/** GET with manual redirects: only HTTPS targets (or the same loopback origin as the endpoint). */
async function get(url: string, base: URL, init: RequestInit, fetchImpl: FetchLike, log?: (l: string) => void): Promise<Response> {
  let current = new URL(url);
  for (let hop = 0; hop < 6; hop++) {
    const allowed = current.protocol === 'https:' || (current.origin === base.origin && current.protocol === 'http:' && checkEndpoint(base.origin) === null);
    if (!allowed) throw new DownloadError(`refusing to fetch ${current.origin}: only HTTPS (or the configured loopback endpoint)`, 'config');
    const res = await fetchImpl(current, { ...init, redirect: 'manual' });
    if (res.status >= 300 && res.status < 400 && res.headers.get('location')) {
      const next = new URL(res.headers.get('location')!, current);
      log?.(`redirect ${res.status} -> ${next.origin}${next.pathname}`);
      await res.body?.cancel().catch(() => undefined);
      current = next;
      continue;
    }
    return res;
  }
  throw new DownloadError('too many redirects', 'http');
}

async function getTree(base: URL, repo: string, sub: string, opts: DownloadOptions, fetchImpl: FetchLike): Promise<TreeEntry[]> {
  const url = new URL(`api/models/${repo}/tree/main${sub ? '/' + sub : ''}`, base).toString();
  let res: Response;
  try {
    res = await get(url, base, { signal: opts.signal, headers: { accept: 'application/json' } }, fetchImpl, opts.log);
  } catch (e) {
    if (e instanceof DownloadError) throw e;
    if (opts.signal?.aborted) throw new DownloadError('download cancelled', 'cancelled');
    throw new DownloadError(`cannot reach the hub at ${base.origin}: ${(e as Error).message}`, 'network');
  }
  if (!res.ok) throw new DownloadError(`the hub answered ${res.status} for the file list of ${repo}${sub ? '/' + sub : ''}`, 'http');
  const body = (await res.json()) as unknown;
  if (!Array.isArray(body)) throw new DownloadError('the hub file list is not an array', 'bad-tree');
  return body as TreeEntry[];
}

function plan(entry: TreeEntry, base: URL, repo: string): PlannedFile {
  checkRelPath(entry.path);
  const size = entry.lfs?.size ?? entry.size;
  if (typeof size !== 'number' || !Number.isInteger(size) || size < 0) throw new DownloadError(`no size for ${entry.path}`, 'bad-tree');
  const sha256 = entry.lfs?.oid;
  if (sha256 !== undefined && !/^[0-9a-f]{64}$/.test(sha256)) throw new DownloadError(`bad sha256 for ${entry.path}`, 'bad-tree');
  const gitSha1 = sha256 ? undefined : entry.oid;
  if (!sha256 && (typeof gitSha1 !== 'string' || !/^[0-9a-f]{40}$/.test(gitSha1))) throw new DownloadError(`no checksum for ${entry.path}`, 'bad-tree');
  const url = new URL(`${repo}/resolve/main/${entry.path.split('/').map(encodeURIComponent).join('/')}`, base).toString();
  return { path: entry.path, url, size, sha256, gitSha1 };
}

/** The files of one model variant, with sizes and checksums from the hub's tree API. */
export async function planModelDownload(opts: DownloadOptions): Promise<PlannedFile[]> {
  checkRepo(opts.repo);
  const base = endpointBase(opts.endpoint);
  const fetchImpl = opts.fetchImpl ?? fetch;
  const [root, onnx] = await Promise.all([
    getTree(base, opts.repo, '', opts, fetchImpl),
    getTree(base, opts.repo, 'onnx', opts, fetchImpl),
  ]);
  const files: PlannedFile[] = [];
  const byPath = new Map(root.filter((e) => e?.type === 'file').map((e) => [e.path, e]));
  for (const name of REQUIRED_ROOT_FILES) {
    const e = byPath.get(name);
    if (!e) throw new DownloadError(`${opts.repo} has no ${name}`, 'bad-tree');
    files.push(plan(e, base, opts.repo));
  }
  for (const name of OPTIONAL_ROOT_FILES) {
    const e = byPath.get(name);
    if (e) files.push(plan(e, base, opts.repo));
  }
  const onnxFiles = new Map(onnx.filter((e) => e?.type === 'file').map((e) => [e.path, e]));
  for (const g of MODEL_GRAPHS) {
    const p = onnxFileName(g, opts.dtype);
    const e = onnxFiles.get(p);
    if (!e) throw new DownloadError(`${opts.repo} has no ${p} (dtype ${opts.dtype || 'fp32'} not published?)`, 'bad-tree');
    files.push(plan(e, base, opts.repo));
    // Large graphs may keep their weights in an external data file beside them.
    for (const extra of [`${p}_data`, `${p}.data`]) {
      const d = onnxFiles.get(extra);
      if (d) files.push(plan(d, base, opts.repo));
    }
  }
  return files;
}

async function statSize(p: string): Promise<number> {
  try {
    return (await fsp.stat(p)).size;
  } catch {
    return -1;
  }
}

async function hashFile(p: string, kind: 'sha256' | 'sha1', size: number): Promise<string> {
  const h = createHash(kind);
  if (kind === 'sha1') h.update(`blob ${size}\0`);
  for await (const chunk of createReadStream(p)) h.update(chunk as Buffer);
  return h.digest('hex');
}

async function verify(file: PlannedFile, p: string): Promise<void> {
  const size = await statSize(p);
  if (size !== file.size) throw new DownloadError(`${file.path}: size ${size} does not match the hub's ${file.size}`, 'size');
  if (file.sha256) {
    const got = await hashFile(p, 'sha256', size);
    if (got !== file.sha256) throw new DownloadError(`${file.path}: sha256 ${got} does not match the hub's ${file.sha256}`, 'checksum');
  } else if (file.gitSha1) {
    const got = await hashFile(p, 'sha1', size);
    if (got !== file.gitSha1) throw new DownloadError(`${file.path}: git sha1 ${got} does not match the hub's ${file.gitSha1}`, 'checksum');
  }
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
  });

/**
 * Downloads one file to `target` through `target.partial`, then verifies it. Each attempt is one transfer that
 * resumes where the partial file ends; network failures are retried a few times with a growing pause.
 */
async function downloadFile(file: PlannedFile, target: string, base: URL, opts: DownloadOptions, onBytes: (fileDone: number) => void): Promise<void> {
  const partial = target + '.partial';
  const retries = opts.retries ?? 4;
  if (await alreadyVerified(file, target)) {
    onBytes(file.size);
    return;
  }
  // Whether some bytes of the partial file came from an earlier transfer (a resume): if the whole file then fails
  // its checksum, those old bytes may be the bad ones, so the file is fetched once more from byte 0.
  let resumed = false;
  let restartedClean = false;
  for (let attempt = 0; ; attempt++) {
    if (opts.signal?.aborted) throw new DownloadError('download cancelled', 'cancelled');
    let have = Math.max(0, await statSize(partial));
    if (have > 0) resumed = true;
    if (have > file.size) {
      await fsp.rm(partial, { force: true });
      have = 0;
    }
    if (have < file.size || file.size === 0) {
      try {
        await transfer(file, partial, have, base, opts, onBytes);
      } catch (e) {
        const why = retryReason(e, file, attempt, retries, opts);
        opts.log?.(`${file.path}: transfer interrupted at byte ${Math.max(0, await statSize(partial))} (${why}); resuming`);
        await sleep(Math.min(200 * 2 ** attempt, 3000), opts.signal);
        continue;
      }
    }
    const got = await statSize(partial);
    if (got < file.size) {
      if (attempt >= retries) throw new DownloadError(`${file.path}: the transfer stopped at ${got} of ${file.size} bytes`, 'network');
      opts.log?.(`${file.path}: the connection closed at byte ${got} of ${file.size}; resuming`);
      continue;
    }
    try {
      await verify(file, partial);
    } catch (e) {
      // A corrupt file is never kept: the next attempt starts it over.
      await fsp.rm(partial, { force: true });
      if (resumed && !restartedClean) {
        opts.log?.(`${file.path}: ${(e as Error).message} after a resume; fetching the whole file again`);
        restartedClean = true;
        resumed = false;
        continue;
      }
      throw e;
    }
    await fsp.rename(partial, target);
    return;
  }
}

/** A target already in place that matches the hub's size and checksum (a finished earlier run); else removed. */
async function alreadyVerified(file: PlannedFile, target: string): Promise<boolean> {
  if ((await statSize(target)) !== file.size) return false;
  try {
    await verify(file, target);
    return true;
  } catch {
    await fsp.rm(target, { force: true });
    return false;
  }
}

/**
 * Why a failed transfer may be retried (its message), or throws the error that ends the download: a cancel, a
 * non-network failure, a full disk, or the last attempt.
 */
function retryReason(e: unknown, file: PlannedFile, attempt: number, retries: number, opts: DownloadOptions): string {
  if (opts.signal?.aborted) throw new DownloadError('download cancelled', 'cancelled');
  if (e instanceof DownloadError && e.kind !== 'network') throw e;
  // A full disk is not a network hiccup: stop at once; the partial file stays for a resume once there is room.
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    throw new DownloadError(`${file.path}: the disk is full (${code}); free some space and download again to resume`, 'disk');
  }
  if (attempt >= retries) {
    throw new DownloadError(`${file.path}: transfer failed after ${attempt + 1} attempts: ${(e as Error).message}`, 'network');
  }
  return (e as Error & { cause?: Error }).cause?.message ?? (e as Error).message;
}

/**
 * One HTTP transfer into `partial`, from byte `have` (a Range request) or from 0 when the server ignores the range.
 * A transfer that receives nothing for `stallMs` is aborted (and retried by the caller).
 */
async function transfer(file: PlannedFile, partial: string, have: number, base: URL, opts: DownloadOptions, onBytes: (fileDone: number) => void): Promise<void> {
  const ctrl = new AbortController();
  const onAbort = () => ctrl.abort();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  let stall: ReturnType<typeof setTimeout> | undefined;
  const arm = () => {
    clearTimeout(stall);
    stall = setTimeout(() => ctrl.abort(), opts.stallMs ?? 60_000);
  };
  try {
    arm();
    const headers: Record<string, string> = have > 0 ? { range: `bytes=${have}-` } : {};
    const res = await get(file.url, base, { signal: ctrl.signal, headers }, opts.fetchImpl ?? fetch, opts.log);
    let append = false;
    if (res.status === 206 && have > 0) {
      const m = /^bytes (\d+)-/.exec(res.headers.get('content-range') ?? '');
      append = !!m && Number(m[1]) === have;
      if (!append) {
        await res.body?.cancel().catch(() => undefined);
        throw new DownloadError(`${file.path}: the server resumed at the wrong offset`, 'network');
      }
      opts.log?.(`${file.path}: resuming at byte ${have}`);
    } else if (res.status === 200) {
      if (have > 0) opts.log?.(`${file.path}: the server ignored the range request, starting over`);
    } else {
      await res.body?.cancel().catch(() => undefined);
      if (res.status === 416 && have === file.size) return;
      throw new DownloadError(`${file.path}: the hub answered HTTP ${res.status}`, 'http');
    }
    await writeBody(res, partial, append ? have : 0, file, arm, onBytes);
  } finally {
    clearTimeout(stall);
    opts.signal?.removeEventListener('abort', onAbort);
  }
}

/** Writes a response body to `partial` (appending after `from` bytes, or from the start), never past the file's size. */
async function writeBody(res: Response, partial: string, from: number, file: PlannedFile, onChunk: () => void, onBytes: (fileDone: number) => void): Promise<void> {
  const fh = await fsp.open(partial, from > 0 ? 'a' : 'w');
  try {
    let done = from;
    onBytes(done);
    if (!res.body) return;
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      onChunk();
      if (done + chunk.byteLength > file.size) throw new DownloadError(`${file.path}: the server sent more than ${file.size} bytes`, 'size');
      await fh.write(chunk);
      done += chunk.byteLength;
      onBytes(done);
    }
  } finally {
    await fh.close();
  }
}

async function freeBytes(dir: string): Promise<number | null> {
  try {
    const s = await fsp.statfs(dir);
    return Number(s.bavail) * Number(s.bsize);
  } catch {
    return null;
  }
}

/**
 * Downloads (or resumes) a model variant into `destRoot/<name>`; returns the model folder.
 * While it runs, everything is in `destRoot/<name>.partial`; on any failure that staging folder stays
 * (the next run resumes from it) and no model folder appears.
 */
export async function downloadModel(opts: DownloadOptions): Promise<{ dir: string; manifest: ModelManifest }> {
  const files = await planModelDownload(opts);
  const base = endpointBase(opts.endpoint);
  const name = modelFolderName(opts.repo, opts.dtype);
  const finalDir = path.join(opts.destRoot, name);
  const staging = finalDir + '.partial';
  await fsp.mkdir(staging, { recursive: true });
  const total = files.reduce((a, f) => a + f.size, 0);
  let alreadyThere = 0;
  for (const f of files) {
    const t = path.join(staging, ...f.path.split('/'));
    const s = Math.max(0, await statSize(t));
    const p = Math.max(0, await statSize(t + '.partial'));
    alreadyThere += Math.min(f.size, s === f.size ? s : p);
  }
  const free = await freeBytes(opts.destRoot);
  if (free !== null && free < total - alreadyThere) {
    throw new DownloadError(`not enough disk space: ${fmtBytes(total - alreadyThere)} needed, ${fmtBytes(free)} free in ${opts.destRoot}`, 'disk');
  }
  opts.log?.(`downloading ${opts.repo} (${opts.dtype || 'fp32'}): ${files.length} files, ${fmtBytes(total)} into ${staging}`);
  let finished = 0;
  for (const f of files) {
    const target = path.join(staging, ...f.path.split('/'));
    await fsp.mkdir(path.dirname(target), { recursive: true });
    await downloadFile(f, target, base, opts, (fileDone) =>
      opts.onProgress?.({ file: f.path, fileDone, fileSize: f.size, done: finished + fileDone, total }),
    );
    finished += f.size;
    opts.log?.(`${f.path}: ${fmtBytes(f.size)} verified (${f.sha256 ? 'sha256' : 'git sha1'})`);
  }
  const manifest: ModelManifest = {
    repo: opts.repo,
    dtype: opts.dtype,
    endpoint: base.origin,
    files: files.map(({ path: p, size, sha256, gitSha1 }) => ({ path: p, size, sha256, gitSha1 })),
    downloadedAt: new Date().toISOString(),
  };
  await fsp.writeFile(path.join(staging, MANIFEST), JSON.stringify(manifest, null, 2));
  // Swap in atomically: the old copy (a re-download) moves aside first and is removed after.
  const old = `${finalDir}.old-${Date.now()}`;
  let movedOld = false;
  if ((await statSize(finalDir)) >= 0) {
    await fsp.rename(finalDir, old);
    movedOld = true;
  }
  await fsp.rename(staging, finalDir);
  if (movedOld) await fsp.rm(old, { recursive: true, force: true });
  return { dir: finalDir, manifest };
}

export interface InstalledModel {
  dir: string;
  manifest: ModelManifest;
}

/** Complete downloaded models: folders with a manifest, never `*.partial` staging folders. */
export async function listInstalledModels(destRoot: string): Promise<InstalledModel[]> {
  let names: string[];
  try {
    names = await fsp.readdir(destRoot);
  } catch {
    return [];
  }
  const out: InstalledModel[] = [];
  for (const n of names.sort()) {
    if (n.endsWith('.partial') || n.includes('.old-')) continue;
    const dir = path.join(destRoot, n);
    try {
      const manifest = JSON.parse(await fsp.readFile(path.join(dir, MANIFEST), 'utf8')) as ModelManifest;
      out.push({ dir, manifest });
    } catch {
      /* not a complete model */
    }
  }
  return out;
}

/** Reads a model folder's manifest (downloaded models) or null. */
export async function readManifest(dir: string): Promise<ModelManifest | null> {
  try {
    return JSON.parse(await fsp.readFile(path.join(dir, MANIFEST), 'utf8')) as ModelManifest;
  } catch {
    return null;
  }
}
