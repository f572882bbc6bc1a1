// The commands of the extension.
import * as vscode from 'vscode';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pickImage, isImagePath } from './imagePicker.js';
import { askQuestion, QuestionHistory, validateQuestion } from './questionInput.js';
import { downloadModelCommand, type DownloadArgs } from './modelDownload.js';
import { selectModelCommand } from './modelSelect.js';
import type { PanelManager, TurnRecord } from './panel.js';
import type { SettingsManager } from './settings.js';
import type { WorkerHost } from './workerHost.js';
import { log } from './log.js';

export interface CommandDeps {
  context: vscode.ExtensionContext;
  panels: PanelManager;
  host: WorkerHost;
  settings: SettingsManager;
  history: QuestionHistory;
}

/**
 * elasticVlm.askAboutImage(uri?, question?): from the palette (no arguments: pick an image, then type a question),
 * the explorer context menu and the image preview's title bar (the file's uri). Resolves when the answer is complete.
 */
async function askAboutImage(deps: CommandDeps, uriArg?: unknown, questionArg?: unknown): Promise<TurnRecord | undefined> {
  let uri = uriArg instanceof vscode.Uri ? uriArg : undefined;
  if (!uri) uri = await pickImage();
  if (!uri) return undefined;
  if (uri.scheme !== 'file') {
    void vscode.window.showErrorMessage(`Elastic VLM reads images from disk only (got a ${uri.scheme}: resource).`);
    return undefined;
  }
  if (!isImagePath(uri.fsPath)) {
    void vscode.window.showErrorMessage(`${path.basename(uri.fsPath)} is not an image file (png, jpg, jpeg, webp, gif, bmp, svg).`);
    return undefined;
  }
  try {
    const st = fs.statSync(uri.fsPath);
    if (!st.isFile()) throw new Error('not a file');
  } catch {
    void vscode.window.showErrorMessage(`Cannot read ${uri.fsPath}: the file does not exist.`);
    return undefined;
  }
  let question: string | undefined;
  if (typeof questionArg === 'string') {
    const why = validateQuestion(questionArg);
    if (why) throw new Error(why);
    question = questionArg;
    await deps.history.remember(question);
  } else {
    question = await askQuestion(deps.history, path.basename(uri.fsPath));
  }
  if (!question) return undefined;
  const panel = deps.panels.open(uri);
  log.info(`ask about ${uri.fsPath}: ${JSON.stringify(question.slice(0, 200))}`);
  return panel.ask(question, false);
}

export function registerCommands(deps: CommandDeps): void {
  const { context } = deps;
  const reg = (id: string, fn: (...args: any[]) => unknown) => context.subscriptions.push(vscode.commands.registerCommand(id, fn));
  reg('elasticVlm.askAboutImage', (uri?: unknown, question?: unknown) =>
    askAboutImage(deps, uri, question).catch((e: Error) => {
      log.error(`ask failed: ${e.message}`);
      void vscode.window.showErrorMessage(`Elastic VLM: ${e.message}`);
      return undefined;
    }),
  );
  reg('elasticVlm.stop', () => deps.panels.stop());
  reg('elasticVlm.downloadModel', (args?: DownloadArgs) => downloadModelCommand(context, deps.settings, typeof args === 'object' && args ? args : {}));
  reg('elasticVlm.selectModel', (arg?: string) => selectModelCommand(context, deps.settings, deps.host, arg));
  reg('elasticVlm.showLog', () => log.show());
}
