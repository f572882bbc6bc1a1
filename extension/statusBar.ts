// The status bar item: worker state (loading / ready / generating) and the current cache occupancy.
import * as vscode from 'vscode';
import type { WorkerHost, WorkerState } from './workerHost.js';
import type { CacheStats } from '../runtime/protocol.js';
import { deviceReason, fmtBytes } from './format.js';

const ICON: Record<WorkerState, string> = {
  idle: '$(circle-outline)',
  loading: '$(loading~spin)',
  ready: '$(check)',
  generating: '$(sync~spin)',
  error: '$(error)',
};

export function occupancy(s: CacheStats): string {
  const kept = s.perLayerLength.length ? Math.max(...s.perLayerLength) : 0;
  const pct = s.fullBytes > 0 ? Math.round((100 * s.bytes) / s.fullBytes) : 100;
  return `${kept}/${s.tokensSeen} tokens, ${pct}% (${fmtBytes(s.bytes)})`;
}

export class StatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('elasticVlm.status', vscode.StatusBarAlignment.Right, 100);
  private readonly subs: vscode.Disposable[] = [];
  private stats: CacheStats | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(private readonly host: WorkerHost) {
    this.item.name = 'Elastic VLM';
    this.subs.push(host.onDidChangeState(() => this.render()));
    this.subs.push(
      host.onDidStats((s) => {
        this.stats = s;
        // Status bar updates are cheap but not free: at most 4 a second.
        this.timer ??= setTimeout(() => {
          this.timer = null;
          this.render();
        }, 250);
      }),
    );
    this.render();
    this.item.show();
  }

  /** The text shown, for tests. */
  get text(): string {
    return this.item.text;
  }

  render(): void {
    const state = this.host.state;
    const cache = this.stats ? ` · cache ${occupancy(this.stats)}` : '';
    this.item.text = `${ICON[state]} VLM ${state}${state === 'generating' || state === 'ready' ? cache : ''}`;
    const md = new vscode.MarkdownString(undefined, true);
    md.appendMarkdown(`**Elastic VLM**: ${state}\n\n`);
    if (this.host.info) {
      md.appendMarkdown(`Execution provider: ${this.host.info.executionProvider}\n\n`);
      const why = deviceReason(this.host.info);
      if (why) md.appendText(`${why}\n\n`);
    }
    if (this.stats) {
      md.appendMarkdown(`Cache (${this.stats.policy}, keep ${this.stats.keep}): ${occupancy(this.stats)}, ` +
        `${this.stats.merged} merged, ${this.stats.evicted} evicted\n\n`);
    }
    if (this.host.lastError && state === 'error') md.appendText(`Last error: ${this.host.lastError}\n\n`);
    md.appendMarkdown(state === 'generating' ? 'Click to stop.' : 'Click to show the log.');
    this.item.tooltip = md;
    this.item.command = state === 'generating' ? 'elasticVlm.stop' : 'elasticVlm.showLog';
    this.item.backgroundColor = state === 'error' ? new vscode.ThemeColor('statusBarItem.errorBackground') : undefined;
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    for (const s of this.subs) s.dispose();
    this.item.dispose();
  }
}
