import * as vscode from 'vscode';
import * as assert from 'node:assert/strict';
import type { ElasticVlmApi } from '../../../extension/extension.js';

export const EXT_ID = 'elastic-vlm.elastic-vlm';

export async function api(): Promise<ElasticVlmApi> {
  const ext = vscode.extensions.getExtension<ElasticVlmApi>(EXT_ID);
  assert.ok(ext, `${EXT_ID} is installed`);
  return ext.activate();
}

export function wsFile(name: string): vscode.Uri {
  const folder = vscode.workspace.workspaceFolders?.[0];
  assert.ok(folder, 'a workspace folder is open');
  return vscode.Uri.joinPath(folder.uri, name);
}

export async function waitFor<T>(fn: () => T | undefined | false | null, what: string, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v) return v as T;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function setSetting(key: string, value: unknown): Promise<void> {
  await vscode.workspace.getConfiguration('elasticVlm').update(key, value, vscode.ConfigurationTarget.Global);
  // onDidChangeConfiguration is delivered asynchronously
  await new Promise((r) => setTimeout(r, 300));
}
