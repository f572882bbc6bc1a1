// Owns the one inference worker (WorkerClient) of the extension: loads the model for the current settings, reloads
// when the model folder or device changes, tracks whose conversation the worker's KV cache holds, and reports its
// state (loading / ready / generating) to the status bar.
import * as vscode from 'vscode';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { WorkerClient, WorkerError, type AskHandlers } from '../runtime/worker/client.js';
import { describeProbe, type AskResult, type CacheOptions, type CacheStats, type ImageDetail, type LoadOptions, type ModelInfo } from '../runtime/protocol.js';
import type { Settings } from './settingsCore.js';
import { readManifest } from './downloadCore.js';
import { log } from './log.js';

export type WorkerState = 'idle' | 'loading' | 'ready' | 'generating' | 'error';

export interface ResolvedModel {
  modelDir: string;
  dtype?: string;
  label: string;
  embedded: boolean;
}

/** Who owns a conversation (a panel); the worker's KV cache holds at most one conversation. */
export type Owner = object;

export class WorkerHost implements vscode.Disposable {
  private client: WorkerClient | null = null;
  private loadedKey: string | null = null;
  private loading: Promise<ModelInfo> | null = null;
  private active = 0;
  private owner: Owner | null = null;
  /** The cache options the held conversation was started with (the worker keeps them for its follow-ups). */
  private ownerCache: CacheOptions | null = null;
  private _state: WorkerState = 'idle';
  info: ModelInfo | null = null;
  lastStats: CacheStats | null = null;
  lastError: string | null = null;
  private readonly stateEmitter = new vscode.EventEmitter<WorkerState>();
  readonly onDidChangeState = this.stateEmitter.event;
  private readonly statsEmitter = new vscode.EventEmitter<CacheStats>();
  readonly onDidStats = this.statsEmitter.event;

  constructor(
    private readonly extensionPath: string,
    private readonly getSettings: () => Settings,
  ) {}

  get state(): WorkerState {
    return this._state;
  }

  get workerPid(): number | undefined {
    return this.client?.pid;
  }

  private setState(s: WorkerState): void {
    if (s === this._state) return;
    this._state = s;
    this.stateEmitter.fire(s);
  }

  /** The worker entry: the bundled dist/worker.js. */
  get workerPath(): string {
    return path.join(this.extensionPath, 'dist', 'worker.js');
  }

  /** The embedded model: models/default of the extension. */
  get embeddedModelDir(): string {
    return path.join(this.extensionPath, 'models', 'default');
  }

  async resolveModel(settings = this.getSettings()): Promise<ResolvedModel> {
    let dir = settings.modelPath.trim();
    const embedded = dir === '';
    if (embedded) dir = this.embeddedModelDir;
    else if (dir === '~' || dir.startsWith('~/')) dir = path.join(os.homedir(), dir.slice(1));
    else if (!path.isAbsolute(dir)) {
      const ws = vscode.workspace.workspaceFolders?.[0];
      dir = ws ? path.join(ws.uri.fsPath, dir) : path.resolve(dir);
    }
    const manifest = await readManifest(dir);
    const label = embedded
      ? 'embedded default model'
      : manifest
        ? `${manifest.repo.split('/').pop()} (${manifest.dtype || 'fp32'})`
        : path.basename(dir);
    return { modelDir: dir, dtype: manifest?.dtype, label, embedded };
  }

  private ensureClient(): WorkerClient {
    if (this.client) return this.client;
    const workerPath = this.workerPath;
    if (!fs.existsSync(workerPath)) {
      throw new WorkerError(`the inference worker ${workerPath} is missing from this installation`, 'internal');
    }
    const client = new WorkerClient({ workerPath, log: (l) => log.info(`[worker] ${l}`) });
    client.on('spawn', (pid: number) => log.info(`inference worker started (pid ${pid}, ${path.basename(workerPath)})`));
    client.on('exit', (err: Error) => {
      log.warn(err.message);
      // A restarted worker has no cache and reloads the model on the next request.
      this.owner = null;
      this.info = null;
      if (this.active === 0) this.setState('idle');
    });
    client.on('progress', (stage: string, detail?: string) => log.debug(`progress ${stage}${detail ? ': ' + detail : ''}`));
    this.client = client;
    return client;
  }

  /** Loads the model for the current settings, unless that very model is loaded already. */
  async ensureLoaded(): Promise<ModelInfo> {
    const model = await this.resolveModel();
    const settings = this.getSettings();
    const options: LoadOptions = { modelDir: model.modelDir, device: settings.device, ...(model.dtype !== undefined ? { dtype: model.dtype } : {}) };
    const key = JSON.stringify(options);
    if (this.loading && this.loadedKey === key) return this.loading;
    if (this.info && this.loadedKey === key && this.client?.running) return this.info;
    if (!fs.existsSync(model.modelDir)) {
      const msg = model.embedded
        ? `The embedded model is missing (${model.modelDir}). Run "Elastic VLM: Download Model" or set elasticVlm.modelPath.`
        : `The model folder ${model.modelDir} does not exist (setting elasticVlm.modelPath). Run "Elastic VLM: Select Model" to pick another.`;
      throw new WorkerError(msg, 'bad-input');
    }
    const client = this.ensureClient();
    this.loadedKey = key;
    this.owner = null;
    this.info = null;
    this.setState('loading');
    log.info(`loading ${model.label} from ${model.modelDir} (device ${settings.device}${model.dtype !== undefined ? `, dtype ${model.dtype || 'fp32'}` : ''})`);
    const p = client.load(options).then(
      (info) => {
        this.info = info;
        this.lastError = null;
        log.info(`model ready in ${info.loadMs.toFixed(0)} ms: execution provider ${info.executionProvider}, ${info.layers} layers, attention scores ${info.scores ? 'yes' : 'no'}`);
        if (info.fallbackReason) log.warn(`device ${settings.device} fell back to ${info.executionProvider}: ${info.fallbackReason}`);
        if (info.probe) log.info(describeProbe(info.executionProvider, info.probe));
        return info;
      },
      (e: Error) => {
        this.loadedKey = null;
        this.lastError = e.message;
        log.error(`model load failed: ${e.message}`);
        throw e;
      },
    );
    this.loading = p;
    try {
      await p;
    } finally {
      if (this.loading === p) this.loading = null;
      if (this.active === 0) this.setState(this.info ? 'ready' : 'error');
    }
    return p;
  }

  /** Does the worker's KV cache hold `owner`'s conversation (so a follow-up can reuse it)? */
  holdsConversation(owner: Owner): boolean {
    return this.owner === owner && !!this.client?.running && !!this.info;
  }

  /**
   * Was the held conversation started with these cache options? The worker keeps the first turn's policy and keep
   * ratio for the whole conversation, so after a settings change a follow-up must start a new conversation for the
   * change to apply to the next question.
   */
  conversationUses(cache: CacheOptions): boolean {
    const c = this.ownerCache;
    return !!c && c.policy === cache.policy && c.keep === cache.keep && c.variant === cache.variant && c.importance === cache.importance && c.merge === cache.merge;
  }

  /**
   * Asks a new question about an image (`followUp` false) or continues `owner`'s conversation. The caller checks
   * holdsConversation() first; a follow-up whose conversation is gone is the caller's to turn into an ask.
   */
  async run(
    owner: Owner,
    body: { image?: string; question: string; cache: CacheOptions; maxNewTokens: number; detail?: ImageDetail },
    handlers: AskHandlers,
    onId: (id: number) => void,
  ): Promise<AskResult> {
    this.active++;
    this.setState('generating');
    try {
      await this.ensureLoaded();
      const client = this.ensureClient();
      this.setState('generating');
      const wrapped: AskHandlers = {
        ...handlers,
        onStats: (s, kept) => {
          this.lastStats = s;
          this.statsEmitter.fire(s);
          handlers.onStats?.(s, kept);
        },
      };
      const generate = { maxNewTokens: body.maxNewTokens, statsEvery: 4 };
      const req = body.image !== undefined
        ? client.ask({ image: body.image, question: body.question, cache: body.cache, generate, detail: body.detail }, wrapped)
        : client.followUp({ question: body.question, generate }, wrapped);
      this.owner = owner;
      if (body.image !== undefined) this.ownerCache = { ...body.cache };
      onId(req.id);
      const result = await req.result;
      log.info(
        `answer: ${result.generatedTokens} tokens (${result.stopReason}), prompt ${result.promptTokens} (${result.imageTokens} image), ` +
          `${result.executionProvider}, vision ${result.timings.visionMs.toFixed(0)} ms, prefill ${result.timings.prefillMs.toFixed(0)} ms, ` +
          `first token ${result.timings.firstTokenMs.toFixed(0)} ms, ${result.timings.decodeTokensPerSecond.toFixed(1)} tok/s`,
      );
      return result;
    } catch (e) {
      // After a failed ask the worker's cache is not a conversation to continue.
      if (this.owner === owner) this.owner = null;
      const err = e as WorkerError;
      log.error(`request failed (${err.code ?? 'error'}): ${err.message}`);
      throw e;
    } finally {
      this.active--;
      if (this.active === 0) this.setState(this.client?.running && this.info ? 'ready' : this.lastError ? 'error' : 'idle');
    }
  }

  cancel(id: number): void {
    this.client?.cancel(id);
  }

  /** Hands the held conversation from one owner to another (a chat thread opened in the panel). */
  transfer(from: Owner, to: Owner): boolean {
    if (this.owner !== from) return false;
    this.owner = to;
    return true;
  }

  /** Forgets the conversation of an owner that went away (a closed panel). */
  release(owner: Owner): void {
    if (this.owner === owner) this.owner = null;
  }

  async dispose(): Promise<void> {
    const c = this.client;
    this.client = null;
    this.stateEmitter.dispose();
    this.statsEmitter.dispose();
    await c?.dispose().catch(() => undefined);
  }
}
