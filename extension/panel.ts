// The webview panels. Rule: one panel per image file. Asking about an image that has a panel reveals and reuses
// that panel (a new conversation turn); another image opens its own panel. Questions typed in a panel are
// follow-ups that continue the conversation in the worker's KV cache when the cache still holds it.
import * as vscode from 'vscode';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { AskResult, AskWarning, CacheOptions, CacheStats, ImportanceMap, KeptPositions } from '../runtime/protocol.js';
import { WorkerError } from '../runtime/worker/client.js';
import { parseWebviewMessage, Throttle, type FromWebview, type ToWebview } from './webviewMessages.js';
import type { SettingsManager } from './settings.js';
import { cacheOptions } from './settingsCore.js';
import type { WorkerHost } from './workerHost.js';
import { log } from './log.js';
import { DOWNLOAD_MODEL_COMMAND, modelOffers, SELECT_MODEL_COMMAND, unfamiliarWarning, type ModelOffer } from './unfamiliar.js';

export const VIEW_TYPE = 'elasticVlm.panel';
/** Cache statistics reach the webview at most this often (the worker sends them every few tokens). */
export const STATS_INTERVAL_MS = 150;
/** Tokens are batched over this window before a post (keeps the message rate bounded on fast models). */
export const TOKEN_BATCH_MS = 16;

export interface TurnRecord {
  turn: number;
  question: string;
  followUp: boolean;
  answer: string;
  tokens: number;
  stopReason?: AskResult['stopReason'];
  error?: { message: string; code: string };
  stats?: CacheStats;
  importance?: ImportanceMap;
  result?: AskResult;
}

export function panelKey(uri: vscode.Uri): string {
  const p = path.normalize(uri.fsPath);
  return process.platform === 'win32' || process.platform === 'darwin' ? p.toLowerCase() : p;
}

export class ImagePanel implements vscode.Disposable {
  readonly panel: vscode.WebviewPanel;
  readonly transcript: TurnRecord[] = [];
  /** Messages from the webview that failed validation (ignored). */
  readonly rejected: string[] = [];
  private turns = 0;
  private currentId: number | null = null;
  private stopRequested = false;
  private running: Promise<TurnRecord> | null = null;
  private webviewReady = false;
  private readonly readyWaiters: (() => void)[] = [];
  private readonly queue: ToWebview[] = [];
  private disposed = false;
  private readonly subs: vscode.Disposable[] = [];
  private readonly turnEmitter = new vscode.EventEmitter<TurnRecord>();
  /** The downloaded models the last unfamiliar-image warning offered (useModel's ids index it). */
  private offers: ModelOffer[] = [];
  /** Fires when a turn ends (answer, stop or error). */
  readonly onDidEndTurn = this.turnEmitter.event;

  constructor(
    readonly image: vscode.Uri,
    private readonly extensionUri: vscode.Uri,
    private readonly host: WorkerHost,
    private readonly settings: SettingsManager,
    private readonly onDispose: (p: ImagePanel) => void,
    /** Where downloaded models live (the warning's offers). */
    private readonly modelsDir = '',
  ) {
    const name = path.basename(image.fsPath);
    this.panel = vscode.window.createWebviewPanel(VIEW_TYPE, `VLM: ${name}`, vscode.ViewColumn.Beside, {
      enableScripts: true,
      enableCommandUris: false,
      enableFindWidget: true,
      retainContextWhenHidden: true,
      localResourceRoots: [
        vscode.Uri.joinPath(extensionUri, 'dist'),
        vscode.Uri.joinPath(extensionUri, 'media'),
        vscode.Uri.file(path.dirname(image.fsPath)),
      ],
    });
    this.panel.iconPath = vscode.Uri.joinPath(extensionUri, 'media', 'icon.svg');
    this.panel.webview.html = this.html();
    this.subs.push(this.panel.webview.onDidReceiveMessage((m) => this.onMessage(m)));
    this.subs.push(this.panel.onDidDispose(() => this.dispose()));
  }

  get busy(): boolean {
    return this.running !== null;
  }

  get title(): string {
    return this.panel.title;
  }

  /** Resolves once the webview script runs and asked for its state. */
  whenReady(): Promise<void> {
    return this.webviewReady ? Promise.resolve() : new Promise((r) => this.readyWaiters.push(r));
  }

  private html(): string {
    const w = this.panel.webview;
    const nonce = randomBytes(18).toString('base64');
    // A separate nonce for styles: the component library reads it from <meta property="csp-nonce"> (FAST's
    // convention) for the one <style> element it adds; the script nonce never appears in a readable attribute.
    const styleNonce = randomBytes(18).toString('base64');
    const script = w.asWebviewUri(vscode.Uri.joinPath(this.extensionUri, 'dist', 'webview.js'));
    const css = w.asWebviewUri(vscode.Uri.joinPath(this.extensionUri, 'media', 'panel.css'));
    const csp = [
      "default-src 'none'",
      `img-src ${w.cspSource}`,
      `style-src ${w.cspSource} 'nonce-${styleNonce}'`,
      `font-src ${w.cspSource}`,
      `script-src 'nonce-${nonce}'`,
      "connect-src 'none'",
      "frame-src 'none'",
      "form-action 'none'",
      "base-uri 'none'",
    ].join('; ');
    return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta property="csp-nonce" content="${styleNonce}">
<link rel="stylesheet" nonce="${styleNonce}" href="${css}">
<title>Elastic VLM</title>
</head>
<body>
<main id="app" aria-busy="true"><p>Loading…</p></main>
<script nonce="${nonce}" src="${script}"></script>
</body>
</html>`;
  }

  post(msg: ToWebview): void {
    if (this.disposed) return;
    if (!this.webviewReady) {
      this.queue.push(msg);
      return;
    }
    void this.panel.webview.postMessage(msg);
  }

  private async onMessage(raw: unknown): Promise<void> {
    const parsed = parseWebviewMessage(raw);
    if (!parsed.ok) {
      this.rejected.push(parsed.error);
      log.warn(`ignored a message from the panel of ${path.basename(this.image.fsPath)}: ${parsed.error}`);
      return;
    }
    const m: FromWebview = parsed.message;
    switch (m.type) {
      case 'ready': {
        const s = this.settings.current;
        const model = await this.host.resolveModel().then((r) => r.label, () => '');
        const init: ToWebview = {
          type: 'init',
          image: { src: this.panel.webview.asWebviewUri(this.image).toString(), name: path.basename(this.image.fsPath), path: vscode.workspace.asRelativePath(this.image) },
          policy: s.cachePolicy,
          keep: s.cacheKeep,
          model,
          variant: s.elasticVariant,
          importance: s.elasticImportance,
          merge: s.elasticMerge,
        };
        void this.panel.webview.postMessage(init);
        this.webviewReady = true;
        for (const q of this.queue.splice(0)) void this.panel.webview.postMessage(q);
        for (const r of this.readyWaiters.splice(0)) r();
        return;
      }
      case 'ask':
        void this.ask(m.question, true);
        return;
      case 'stop':
        this.stop();
        return;
      case 'setCache':
        log.info(`panel changed the cache to ${m.policy}, keep ${m.keep}`);
        await this.settings.update('cachePolicy', m.policy);
        await this.settings.update('cacheKeep', m.keep);
        return;
      case 'showLog':
        log.show();
        return;
      case 'downloadModel':
        log.info('the panel\'s unfamiliar-image warning: Download Model');
        void vscode.commands.executeCommand(DOWNLOAD_MODEL_COMMAND);
        return;
      case 'useModel': {
        const offer = this.offers.find((o) => o.id === m.id);
        if (!offer) {
          this.rejected.push(`useModel: no offer ${m.id}`);
          return;
        }
        log.info(`the panel's unfamiliar-image warning: switch to ${offer.dir}`);
        await vscode.commands.executeCommand(SELECT_MODEL_COMMAND, offer.dir);
        return;
      }
      case 'pasteImage':
        // The Paste button: the image from the user's clipboard, asked about in a panel of its own.
        void vscode.commands.executeCommand('elasticVlm.askAboutClipboardImage', { mime: m.mime, data: m.data });
        return;
    }
  }

  /** Tells the webview the settings in use (after a change). */
  async refreshSettings(): Promise<void> {
    const s = this.settings.current;
    const model = await this.host.resolveModel().then((r) => r.label, () => '');
    this.post({ type: 'settings', policy: s.cachePolicy, keep: s.cacheKeep, model, variant: s.elasticVariant, importance: s.elasticImportance, merge: s.elasticMerge });
  }

  /** Asks a question: a new conversation about the image, or a follow-up in this panel's conversation. */
  async ask(question: string, followUp: boolean): Promise<TurnRecord> {
    if (this.running) {
      // One question at a time per panel: a new one stops the one in progress.
      this.stop();
      await this.running.catch(() => undefined);
    }
    const p = this.runTurn(question, followUp);
    this.running = p;
    try {
      return await p;
    } finally {
      if (this.running === p) this.running = null;
    }
  }

  private async runTurn(question: string, followUp: boolean): Promise<TurnRecord> {
    const turn = ++this.turns;
    const settings = this.settings.current;
    const cache = cacheOptions(settings);
    const { continues, note } = this.continuation(followUp, cache);
    const rec: TurnRecord = { turn, question, followUp: continues, answer: '', tokens: 0 };
    this.transcript.push(rec);
    this.stopRequested = false;
    this.currentId = null;
    this.post({ type: 'busy', busy: true });
    this.post({ type: 'turn', turn, question, followUp: continues, note });

    const tokens = new Throttle<string>(TOKEN_BATCH_MS, (text) => this.post({ type: 'tokens', turn, text }), Date.now, (a, b) => a + b);
    let kept: KeptPositions | undefined;
    const stats = new Throttle<CacheStats>(STATS_INTERVAL_MS, (s) => this.post({ type: 'stats', stats: s, ...(kept ? { kept } : {}) }));
    try {
      const result = await this.host.run(
        this,
        { image: continues ? undefined : this.image.fsPath, question, cache, maxNewTokens: settings.maxNewTokens, detail: settings.imageDetail },
        {
          onToken: (text) => {
            rec.answer += text;
            rec.tokens++;
            tokens.push(text);
          },
          onStats: (s, k) => {
            rec.stats = s;
            kept = k;
            stats.push(s);
          },
          onImportance: (map) => {
            rec.importance = map;
            this.post({ type: 'importance', map });
          },
          onProgress: (stage, detail) => this.post({ type: 'progress', stage, detail }),
        },
        (id) => {
          this.currentId = id;
          if (this.stopRequested) this.host.cancel(id);
        },
      );
      tokens.flush();
      stats.push(result.cache);
      stats.flush();
      await this.showWarnings(rec.turn, result.warnings);
      this.finishTurn(rec, result);
    } catch (e) {
      tokens.flush();
      stats.flush();
      this.failTurn(rec, e);
    } finally {
      tokens.dispose();
      stats.dispose();
      this.currentId = null;
      this.post({ type: 'busy', busy: false });
      this.turnEmitter.fire(rec);
    }
    return rec;
  }

  /**
   * Whether a follow-up continues the conversation in the worker's cache: only with the cache settings it was
   * started with (the worker keeps them for the whole conversation); otherwise it starts over, with a note why.
   */
  private continuation(followUp: boolean, cache: CacheOptions): { continues: boolean; note?: string } {
    const held = followUp && this.transcript.length > 0 && this.host.holdsConversation(this);
    const continues = held && this.host.conversationUses(cache);
    if (!followUp || continues || this.transcript.length === 0) return { continues };
    return {
      continues,
      note: held
        ? `The cache settings changed (now ${cache.policy}, keep ${cache.keep}): this question starts a new conversation that uses them.`
        : 'The earlier conversation is no longer in the cache (another image was asked about, or the worker restarted): this question starts a new one.',
    };
  }

  /** A turn that ended, by its end token, its length limit or a cancel (queued or in flight alike). */
  private finishTurn(rec: TurnRecord, result: AskResult): void {
    rec.stats = result.cache;
    rec.result = result;
    rec.stopReason = result.stopReason;
    // The final answer is authoritative (token pieces may not join to exactly the decoded text).
    if (result.answer && result.answer !== rec.answer) rec.answer = result.answer;
    const { stopReason, generatedTokens, promptTokens, imageTokens, executionProvider, timings } = result;
    this.post({ type: 'done', turn: rec.turn, result: { stopReason, generatedTokens, promptTokens, imageTokens, executionProvider, timings } });
  }

  /** A turn's warnings beside its answer; an unfamiliar image also gets the models to switch to. */
  private async showWarnings(turn: number, warnings: readonly AskWarning[] | undefined): Promise<void> {
    if (!warnings?.length) return;
    if (unfamiliarWarning(warnings)) {
      const current = await this.host.resolveModel().then((r) => r.modelDir, () => '');
      this.offers = this.modelsDir ? await modelOffers(this.modelsDir, current).catch(() => []) : [];
      log.info(`unfamiliar image ${path.basename(this.image.fsPath)}: ${unfamiliarWarning(warnings)!.message}`);
    }
    this.post({ type: 'warnings', turn, warnings: [...warnings], offers: this.offers.map(({ id, label }) => ({ id, label })) });
  }

  private failTurn(rec: TurnRecord, e: unknown): void {
    const code = e instanceof WorkerError ? e.code : 'internal';
    let message = e instanceof Error ? e.message : String(e);
    if (code === 'worker-exit') message += '. The next question starts a new worker.';
    rec.error = { message, code };
    this.post({ type: 'error', turn: rec.turn, message, code });
  }

  stop(): void {
    if (!this.running) return;
    this.stopRequested = true;
    if (this.currentId !== null) {
      log.info(`stop requested (request ${this.currentId})`);
      this.host.cancel(this.currentId);
    }
  }

  /**
   * Takes over a conversation asked elsewhere (a @vlm chat thread): shows its turns, and when the worker still holds
   * it, the panel's follow-ups continue that cache.
   */
  adoptConversation(owner: object, turns: { question: string; answer: string; result?: AskResult }[]): void {
    if (this.running || turns.length === 0) return;
    const continues = this.host.transfer(owner, this);
    for (const t of turns) {
      const turn = ++this.turns;
      const r = t.result;
      this.transcript.push({ turn, question: t.question, followUp: turn > 1, answer: t.answer, tokens: r?.generatedTokens ?? 0, stopReason: r?.stopReason, stats: r?.cache, result: r });
      this.post({ type: 'turn', turn, question: t.question, followUp: turn > 1, note: turn === 1 ? 'From the chat.' : undefined });
      this.post({ type: 'tokens', turn, text: t.answer });
      if (r) {
        this.post({ type: 'stats', stats: r.cache });
        void this.showWarnings(turn, r.warnings);
        const { stopReason, generatedTokens, promptTokens, imageTokens, executionProvider, timings } = r;
        this.post({ type: 'done', turn, result: { stopReason, generatedTokens, promptTokens, imageTokens, executionProvider, timings } });
      }
    }
    if (!continues) log.info('the chat conversation is no longer in the cache: the next question in the panel starts a new one');
  }

  reveal(): void {
    this.panel.reveal(undefined, false);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.stop();
    this.host.release(this);
    this.onDispose(this);
    for (const s of this.subs) s.dispose();
    this.turnEmitter.dispose();
    this.panel.dispose();
  }
}

export class PanelManager implements vscode.Disposable {
  private readonly panels = new Map<string, ImagePanel>();
  private lastActive: ImagePanel | undefined;
  private readonly sub: vscode.Disposable;

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly host: WorkerHost,
    private readonly settings: SettingsManager,
    private readonly modelsDir = '',
  ) {
    this.sub = settings.onDidChange(() => {
      for (const p of this.panels.values()) void p.refreshSettings();
    });
  }

  /** The panel of an image: the existing one (revealed) or a new one. */
  open(image: vscode.Uri): ImagePanel {
    const key = panelKey(image);
    let p = this.panels.get(key);
    if (p) {
      p.reveal();
    } else {
      p = new ImagePanel(image, this.extensionUri, this.host, this.settings, (gone) => {
        if (this.panels.get(key) === gone) this.panels.delete(key);
        if (this.lastActive === gone) this.lastActive = undefined;
      }, this.modelsDir);
      const created = p;
      created.panel.onDidChangeViewState((e) => {
        if (e.webviewPanel.active) this.lastActive = created;
      });
      this.panels.set(key, p);
    }
    this.lastActive = p;
    return p;
  }

  get(image: vscode.Uri): ImagePanel | undefined {
    return this.panels.get(panelKey(image));
  }

  get all(): ImagePanel[] {
    return [...this.panels.values()];
  }

  get active(): ImagePanel | undefined {
    return this.all.find((p) => p.panel.active) ?? this.lastActive;
  }

  /** Stops the generating panels (the active one first, else all). */
  stop(): boolean {
    const a = this.active;
    if (a?.busy) {
      a.stop();
      return true;
    }
    const busy = this.all.filter((p) => p.busy);
    for (const p of busy) p.stop();
    return busy.length > 0;
  }

  dispose(): void {
    this.sub.dispose();
    for (const p of this.all) p.dispose();
  }
}
