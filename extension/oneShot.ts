// One question to the worker for callers without a panel (the chat participant, the language-model tool):
// checks the image, applies the settings like the panel does, streams tokens, maps a cancellation token to the
// worker's cancel, and turns every failure into one clear message (never a throw).
import * as vscode from 'vscode';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { AskResult, CacheStats } from '../runtime/protocol.js';
import { SAFE_KEEP_MIN } from '../runtime/protocol.js';
import { WorkerError } from '../runtime/worker/client.js';
import { isImagePath, IMAGE_EXTENSIONS } from './imagePicker.js';
import type { SettingsManager } from './settings.js';
import { cacheOptions } from './settingsCore.js';
import type { Owner, WorkerHost } from './workerHost.js';

export type OneShotOutcome =
  | { ok: true; result: AskResult; followUp: boolean }
  | { ok: false; message: string; code: 'bad-input' | 'internal' | 'cancelled' | 'worker-exit' };

/** Why this file cannot be asked about, or undefined. */
export function checkImageFile(file: string): string | undefined {
  if (!isImagePath(file)) return `${path.basename(file)} is not an image file (${IMAGE_EXTENSIONS.join(', ')}).`;
  try {
    if (!fs.statSync(file).isFile()) return `${file} is not a file.`;
  } catch {
    return `${file} does not exist.`;
  }
  return undefined;
}

/** One line about the cache, in entries per layer, for the chat and the tool. */
export function cacheSummary(r: AskResult): string {
  const c: CacheStats = r.cache;
  const kept = c.perLayerLength.length ? Math.max(...c.perLayerLength) : 0;
  const pct = c.fullBytes > 0 ? Math.round((100 * c.bytes) / c.fullBytes) : 100;
  const tokens = (n: number) => `${n} ${n === 1 ? 'token' : 'tokens'}`;
  const warn = c.policy !== 'full' && c.keep < SAFE_KEEP_MIN ? ` (below the safe ${SAFE_KEEP_MIN}: answers may suffer)` : '';
  return `Cache: ${c.policy}, keep ${c.keep}${warn} · ${kept} of ${tokens(c.tokensSeen)} kept per layer (${pct}% of the bytes) · ` +
    `${tokens(r.generatedTokens)} generated · ${r.executionProvider}`;
}

/**
 * Asks `question` about `image` as a new conversation of `owner`, or continues owner's conversation when the worker
 * still holds it with the same cache settings (`followUp`).
 */
export async function askOnce(
  deps: { host: WorkerHost; settings: SettingsManager },
  owner: Owner,
  req: { image: string; question: string; followUp: boolean },
  on: { token?: (t: string) => void; cancel?: vscode.CancellationToken },
): Promise<OneShotOutcome> {
  const bad = checkImageFile(req.image);
  if (bad) return { ok: false, message: bad, code: 'bad-input' };
  if (!req.question.trim()) return { ok: false, message: 'Type a question about the image.', code: 'bad-input' };
  if (on.cancel?.isCancellationRequested) return { ok: false, message: 'Cancelled.', code: 'cancelled' };
  const cache = cacheOptions(deps.settings.current);
  const continues = req.followUp && deps.host.holdsConversation(owner) && deps.host.conversationUses(cache);
  let id: number | null = null;
  let cancelled = false;
  const sub = on.cancel?.onCancellationRequested(() => {
    cancelled = true;
    if (id !== null) deps.host.cancel(id);
  });
  try {
    const result = await deps.host.run(
      owner,
      { image: continues ? undefined : req.image, question: req.question, cache, maxNewTokens: deps.settings.current.maxNewTokens },
      { onToken: (t) => on.token?.(t) },
      (rid) => {
        id = rid;
        if (cancelled) deps.host.cancel(rid);
      },
    );
    if (result.stopReason === 'cancelled' || cancelled) return { ok: false, message: 'Cancelled.', code: 'cancelled' };
    return { ok: true, result, followUp: continues };
  } catch (e) {
    const err = e as WorkerError;
    const code = err instanceof WorkerError ? err.code : 'internal';
    if (cancelled) return { ok: false, message: 'Cancelled.', code: 'cancelled' };
    let message = err?.message ?? String(e);
    if (code === 'worker-exit') message += '. The next question starts a new worker.';
    return { ok: false, message, code };
  } finally {
    sub?.dispose();
  }
}
