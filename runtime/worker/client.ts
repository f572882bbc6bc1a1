// The client side of the inference worker: forks `worker.js`, speaks runtime/protocol.ts, and
// restarts a fresh worker for the next request when the old one died (killed, crashed, OOM).
// Used by both the extension host and the CLI.
import { fork, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { WORKER_MALLOC_ENV } from './env.js';
import type {
  AskResult, CacheOptions, CacheStats, GenerateOptions, ImageDetail, ImportanceMap, KeptPositions, LoadOptions, ModelInfo,
  Request, WorkerErrorCode, WorkerEvent,
} from '../protocol.js';

export interface WorkerClientOptions {
  /** Path of the bundled worker entry (dist/worker.js) or a .ts file run through tsx. */
  workerPath: string;
  execArgv?: string[];
  env?: NodeJS.ProcessEnv;
  log?: (line: string) => void;
}

export interface AskHandlers {
  onToken?: (text: string, index: number) => void;
  /** `kept`: which positions each layer's cache holds (the worker sends it with its statistics). */
  onStats?: (stats: CacheStats, kept?: KeptPositions) => void;
  onImportance?: (map: ImportanceMap) => void;
  onProgress?: (stage: string, detail?: string) => void;
}

/** An error of a request: the worker's own (bad input, internal), or 'worker-exit' when its process died. */
export class WorkerError extends Error {
  constructor(message: string, readonly code: WorkerErrorCode | 'worker-exit') {
    super(message);
    this.name = 'WorkerError';
  }
}

interface Pending {
  resolve: (v: any) => void;
  reject: (e: WorkerError) => void;
  handlers?: AskHandlers;
}

type AskBody = { image: string; question: string; cache: CacheOptions; generate: GenerateOptions; detail?: ImageDetail };
type FollowUpBody = { question: string; generate: GenerateOptions };
// Distributive Omit, so each request kind keeps its own fields.
type Body<R> = R extends unknown ? Omit<R, 'id'> : never;

/**
 * Requests run one at a time in the worker (ONNX Runtime blocks its event loop); the worker queues them in
 * arrival order. A cancel is handled between decode steps.
 */
export class WorkerClient extends EventEmitter {
  private child: ChildProcess | null = null;
  private nextId = 1;
  private pending = new Map<number, Pending>();
  private lastLoad: LoadOptions | null = null;
  private loaded: ModelInfo | null = null;
  private stderrTail = '';
  private oomReason: string | null = null;

  constructor(private readonly opts: WorkerClientOptions) {
    super();
  }

  get running(): boolean {
    return this.child !== null;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Loads (or reloads) the model; later asks reload it automatically after a worker restart. */
  async load(options: LoadOptions): Promise<ModelInfo> {
    this.lastLoad = options;
    this.loaded = null;
    const info = await this.send<ModelInfo>({ type: 'load', options });
    this.loaded = info;
    return info;
  }

  /** Asks about an image; returns the request id (for cancel) and the final result (stopReason 'cancelled' if cancelled). */
  ask(body: AskBody, handlers?: AskHandlers): { id: number; result: Promise<AskResult> } {
    return this.request({ type: 'ask', ...body }, handlers);
  }

  /** A follow-up question on the last image, reusing the worker's KV cache. */
  followUp(body: FollowUpBody, handlers?: AskHandlers): { id: number; result: Promise<AskResult> } {
    return this.request({ type: 'followUp', ...body }, handlers);
  }

  cancel(target: number): void {
    if (!this.child) return;
    this.post({ type: 'cancel', id: this.nextId++, target });
  }

  /** Stops the worker; pending requests fail with a worker-exit error. */
  async dispose(): Promise<void> {
    const child = this.child;
    if (!child) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    this.post({ type: 'dispose', id: this.nextId++ });
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  }

  private request(msg: Body<Request>, handlers?: AskHandlers): { id: number; result: Promise<AskResult> } {
    const id = this.nextId++;
    const result = (async () => {
      // A restarted worker has no model: load it again first.
      if (!this.child || !this.loaded) {
        if (!this.lastLoad) throw new WorkerError('no model loaded: call load() first', 'internal');
        if (!this.loaded) await this.load(this.lastLoad);
      }
      return this.sendWithId<AskResult>(id, msg, handlers);
    })();
    return { id, result };
  }

  private send<T>(msg: Body<Request>, handlers?: AskHandlers): Promise<T> {
    return this.sendWithId<T>(this.nextId++, msg, handlers);
  }

  private sendWithId<T>(id: number, msg: Body<Request>, handlers?: AskHandlers): Promise<T> {
    this.ensureChild();
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, handlers });
      this.post({ ...msg, id } as Request);
    });
  }

  private post(msg: Request): void {
    this.child?.send(msg);
  }

  private ensureChild(): void {
    if (this.child) return;
    const child = fork(this.opts.workerPath, [], {
      execArgv: this.opts.execArgv ?? [],
      env: { ...WORKER_MALLOC_ENV, ...process.env, ...this.opts.env, ORT_DISABLE_TELEMETRY: '1' },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      serialization: 'advanced',
    });
    this.child = child;
    this.stderrTail = '';
    child.stdout?.on('data', (d) => this.opts.log?.(String(d).trimEnd()));
    this.oomReason = null;
    child.stderr?.on('data', (d) => {
      const s = String(d);
      // V8 names an out-of-memory death before a long native stack; remember it, the tail will not hold it.
      const oom = /heap out of memory|Reached heap limit|std::bad_alloc|Cannot allocate memory/i.exec(s);
      if (oom) this.oomReason = oom[0];
      this.stderrTail = (this.stderrTail + s).slice(-2000);
      this.opts.log?.(s.trimEnd());
    });
    child.on('message', (m) => this.onEvent(m as WorkerEvent));
    child.on('exit', (code, signal) => {
      if (this.child !== child) return;
      this.child = null;
      this.loaded = null;
      // The kernel's OOM killer sends SIGKILL without a word: say what it most likely was.
      const why = signal ? `killed by ${signal}${signal === 'SIGKILL' && !this.oomReason ? ' (by the system: out of memory, or ended by hand)' : ''}` : `exited with code ${code}`;
      // Out of memory: V8 prints its reason and then a native stack; name the reason, not the last frame.
      const tail = this.oomReason ? `out of memory (${this.oomReason})` : (this.stderrTail.trim().split('\n').slice(-1)[0] ?? '');
      const err = new WorkerError(`inference worker ${why}${tail ? `: ${tail}` : ''}`, 'worker-exit');
      this.opts.log?.(err.message);
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
      this.emit('exit', err);
    });
    this.emit('spawn', child.pid);
  }

  private onEvent(ev: WorkerEvent): void {
    const p = this.pending.get(ev.id);
    switch (ev.type) {
      case 'token':
        p?.handlers?.onToken?.(ev.text, ev.index);
        return;
      case 'cacheStats':
        p?.handlers?.onStats?.(ev.stats, ev.kept);
        this.emit('cacheStats', ev.stats);
        return;
      case 'importance':
        p?.handlers?.onImportance?.(ev.map);
        return;
      case 'progress':
        p?.handlers?.onProgress?.(ev.stage, ev.detail);
        this.emit('progress', ev.stage, ev.detail);
        return;
      case 'ready':
        this.pending.delete(ev.id);
        p?.resolve(ev.info);
        return;
      case 'done':
        this.pending.delete(ev.id);
        p?.resolve(ev.result);
        return;
      case 'disposed':
        this.pending.delete(ev.id);
        p?.resolve(undefined);
        return;
      case 'error':
        if (!p) {
          this.opts.log?.(`worker error: ${ev.message}`);
          return;
        }
        this.pending.delete(ev.id);
        p.reject(new WorkerError(ev.message, ev.code));
        return;
    }
  }
}
