// A decoder rewrite in a child process. The rewrite holds the source file's bytes and its decoded graph (about 1x
// the decoder file, more while writing); done in the worker itself, that memory is still mapped when the sessions
// load and raised a first load's peak RSS to 2.6-2.7x the weight files (docs/real-size.md, run 6). In a child it is
// returned to the system when the child exits. The child program is deriveMain.ts; it writes into the same cache
// the in-process rewrite uses, so the caller reads the result as a cache hit would.
import { fork } from 'node:child_process';
import { deriveEntry } from '../paths.js';
import { NoAttentionError, type AttentionKind } from './attentionSites.js';
import { UnsupportedModelError } from './graphIndex.js';

/** A derived scored decoder on disk (derive.ts makes it, here or in the child). */
export interface DerivedDecoder {
  /** The derived model file (inside the cache folder). */
  path: string;
  kind: AttentionKind;
  layers: number;
  outputNames: string[];
  /** True when the file came from the cache and no rewrite ran. */
  cached: boolean;
  /** sha256 (hex) of the source file. */
  sourceSha256: string;
}

/** A derived positions decoder on disk (derive.ts), or the source itself when it needed no change. */
export interface DerivedPositions {
  path: string;
  /** Layers whose rotated queries are outputs (`attn_query.{i}`, queries.ts); 0 when none are. */
  queryOutputs: number;
}

export interface DeriveJob {
  kind: 'scored' | 'positions';
  source: string;
  cacheDir: string;
}

/** What deriveMain.ts sends back: the rewrite's result, or its error by class name and message. */
export type DeriveReply =
  | { ok: true; scored?: DerivedDecoder; positions?: DerivedPositions }
  | { ok: false; name: string; message: string };

export function inChildProcess(job: DeriveJob & { kind: 'scored' }, log?: (l: string) => void): Promise<DerivedDecoder>;
export function inChildProcess(job: DeriveJob & { kind: 'positions' }, log?: (l: string) => void): Promise<DerivedPositions>;
export function inChildProcess(job: DeriveJob, log?: (l: string) => void): Promise<DerivedDecoder | DerivedPositions> {
  const entry = deriveEntry();
  log?.(`deriving a decoder for ${job.source} in a child process (once per model; cached in ${job.cacheDir})`);
  return new Promise((resolve, reject) => {
    const child = fork(entry.path, [JSON.stringify(job)], {
      execArgv: entry.execArgv,
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      serialization: 'advanced',
    });
    let reply: DeriveReply | undefined;
    let stderr = '';
    child.stderr?.on('data', (d) => (stderr = (stderr + String(d)).slice(-2000)));
    child.on('message', (m) => (reply = m as DeriveReply));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (reply?.ok) return resolve(job.kind === 'scored' ? reply.scored! : reply.positions!);
      if (reply) return reject(rebuild(reply.name, reply.message));
      const why = signal ? `was killed by ${signal}${signal === 'SIGKILL' ? ' (out of memory?)' : ''}` : `exited with code ${code}`;
      // Node ends an uncaught error's report with its version line: name the error, not that.
      const lines = stderr.trim().split('\n');
      const tail = lines.find((l) => /Error|error:/.test(l)) ?? lines.slice(-1)[0];
      reject(new Error(`the decoder rewrite's child process ${why}${tail ? `: ${tail}` : ''}`));
    });
  });
}

function rebuild(name: string, message: string): Error {
  if (name === 'NoAttentionError') return new NoAttentionError(message);
  if (name === 'UnsupportedModelError') return new UnsupportedModelError(message);
  return new Error(message);
}
