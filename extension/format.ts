// Display formats shared by the extension and its webview. No `vscode` import and no DOM.
import { describeProbe, deviceWords, type ModelInfo } from '../runtime/protocol.js';

/** Bytes in binary units (B, KB, MB, GB), as file sizes are shown elsewhere in VS Code. */
export function fmtBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MB`;
  return `${(n / 1024 ** 3).toFixed(2)} GB`;
}

/**
 * Why the model runs where it runs, in words, or null when a device was named and loaded: `auto`'s measured probe
 * ("auto chose the CPU: 2.1 ms a step against 9.8 ms on WebGPU (measured, cached)"), or why it fell back.
 */
export function deviceReason(info: Pick<ModelInfo, 'executionProvider' | 'fallbackReason' | 'probe'>): string | null {
  const parts: string[] = [];
  if (info.probe) parts.push(describeProbe(info.executionProvider, info.probe));
  if (info.fallbackReason) parts.push(`${info.probe ? 'skipped' : `auto fell back to ${deviceWords(info.executionProvider)}`}: ${info.fallbackReason}`);
  return parts.length ? parts.join('; ') : null;
}
