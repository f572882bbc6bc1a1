// "Elastic VLM: Download Model": a published SmolVLM ONNX model from the configured hub endpoint into global storage,
// with a cancellable progress notification; then offers to use it.
import * as vscode from 'vscode';
import { DownloadError, downloadModel, DTYPES, KNOWN_MODELS } from './downloadCore.js';
import { fmtBytes } from './format.js';
import type { SettingsManager } from './settings.js';
import { log } from './log.js';

export interface DownloadArgs {
  repo?: string;
  dtype?: string;
  /** Use the model without asking (tests). */
  select?: boolean;
}

export function modelsRoot(context: vscode.ExtensionContext): vscode.Uri {
  return vscode.Uri.joinPath(context.globalStorageUri, 'models');
}

export async function downloadModelCommand(
  context: vscode.ExtensionContext,
  settings: SettingsManager,
  args: DownloadArgs = {},
): Promise<string | undefined> {
  let repo = args.repo;
  if (!repo) {
    const pick = await vscode.window.showQuickPick(
      KNOWN_MODELS.map((m) => ({ label: m.label, description: m.repo, detail: m.detail, repo: m.repo })),
      { title: 'Elastic VLM: Download Model (1/2)', placeHolder: 'Which model?' },
    );
    if (!pick) return undefined;
    repo = pick.repo;
  }
  let dtype = args.dtype;
  if (dtype === undefined) {
    const pick = await vscode.window.showQuickPick(
      DTYPES.map((d) => ({ label: d.label, detail: d.detail, dtype: d.id })),
      { title: 'Elastic VLM: Download Model (2/2)', placeHolder: 'Which weights?' },
    );
    if (!pick) return undefined;
    dtype = pick.dtype;
  }
  const endpoint = settings.current.hubEndpoint;
  const destRoot = modelsRoot(context);
  await vscode.workspace.fs.createDirectory(destRoot);
  log.info(`download ${repo} (${dtype || 'fp32'}) from ${endpoint} into ${destRoot.fsPath}`);
  let dir: string;
  try {
    dir = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Downloading ${repo.split('/').pop()} (${dtype || 'fp32'})`, cancellable: true },
      async (progress, token) => {
        const ctrl = new AbortController();
        token.onCancellationRequested(() => ctrl.abort());
        let lastPct = 0;
        const r = await downloadModel({
          endpoint,
          repo: repo!,
          dtype: dtype!,
          destRoot: destRoot.fsPath,
          signal: ctrl.signal,
          log: (l) => log.info(`download: ${l}`),
          onProgress: ({ file, done, total }) => {
            const pct = total > 0 ? Math.floor((100 * done) / total) : 100;
            if (pct !== lastPct) {
              progress.report({ increment: pct - lastPct, message: `${file.split('/').pop()} · ${fmtBytes(done)} of ${fmtBytes(total)}` });
              lastPct = pct;
            }
          },
        });
        return r.dir;
      },
    );
  } catch (e) {
    const err = e as DownloadError;
    if (err instanceof DownloadError && err.kind === 'cancelled') {
      log.info('download cancelled; run the command again to resume');
      void vscode.window.showInformationMessage('Download cancelled. Run "Elastic VLM: Download Model" again to resume it.');
      return undefined;
    }
    log.error(`download failed: ${err.message}`);
    void vscode.window.showErrorMessage(`Model download failed: ${err.message}`);
    throw e;
  }
  log.info(`downloaded and verified: ${dir}`);
  const use = args.select
    ? 'Use It'
    : await vscode.window.showInformationMessage(`Downloaded ${repo} (${dtype || 'fp32'}), checksums verified.`, 'Use It');
  if (use === 'Use It') await settings.update('modelPath', dir);
  return dir;
}
