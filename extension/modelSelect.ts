// "Elastic VLM: Select Model": the embedded default model, a downloaded one, or a folder on disk.
import * as vscode from 'vscode';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MODEL_GRAPHS, REQUIRED_ROOT_FILES } from '../runtime/protocol.js';
import { listInstalledModels } from './downloadCore.js';
import { fmtBytes } from './format.js';
import { modelsRoot } from './modelDownload.js';
import type { SettingsManager } from './settings.js';
import type { WorkerHost } from './workerHost.js';

interface ModelItem extends vscode.QuickPickItem {
  value?: string;
  browse?: boolean;
  download?: boolean;
}

/** Why a folder does not look like a model in the SmolVLM ONNX layout, or null. */
export function checkModelFolder(dir: string): string | null {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) return `${dir} is not a folder`;
  const missing = REQUIRED_ROOT_FILES.filter((f) => !fs.existsSync(path.join(dir, f)));
  if (missing.length) return `${dir} has no ${missing.join(', ')}`;
  // Any dtype will do here: the device and dtype are chosen at load.
  const onnxDir = path.join(dir, 'onnx');
  const have = fs.existsSync(onnxDir) ? fs.readdirSync(onnxDir) : [];
  const absent = MODEL_GRAPHS.filter((g) => !have.some((f) => f.startsWith(g) && f.endsWith('.onnx')));
  if (absent.length) return `${dir} has no onnx/${absent.join('*.onnx, onnx/')}*.onnx`;
  return null;
}

export async function selectModelCommand(
  context: vscode.ExtensionContext,
  settings: SettingsManager,
  host: WorkerHost,
  arg?: string,
): Promise<string | undefined> {
  if (typeof arg === 'string') {
    await settings.update('modelPath', arg);
    return arg;
  }
  const current = settings.current.modelPath;
  const mark = (v: string) => (v === current ? '$(check) ' : '');
  const items: ModelItem[] = [
    { label: `${mark('')}Embedded default model`, description: fs.existsSync(host.embeddedModelDir) ? 'ships with the extension' : 'missing from this build', value: '' },
  ];
  const installed = await listInstalledModels(modelsRoot(context).fsPath);
  if (installed.length) items.push({ label: 'Downloaded', kind: vscode.QuickPickItemKind.Separator });
  for (const m of installed) {
    const size = m.manifest.files.reduce((a, f) => a + f.size, 0);
    items.push({
      label: `${mark(m.dir)}${m.manifest.repo.split('/').pop()} (${m.manifest.dtype || 'fp32'})`,
      description: fmtBytes(size),
      detail: m.dir,
      value: m.dir,
    });
  }
  if (current && current !== '' && !installed.some((m) => m.dir === current)) {
    items.push({ label: 'Folder', kind: vscode.QuickPickItemKind.Separator });
    items.push({ label: `${mark(current)}${path.basename(current)}`, detail: current, value: current });
  }
  items.push({ label: '', kind: vscode.QuickPickItemKind.Separator });
  items.push({ label: '$(folder-opened) Choose a Folder on Disk...', browse: true });
  items.push({ label: '$(cloud-download) Download a Model...', download: true });
  const choice = await vscode.window.showQuickPick(items, { title: 'Elastic VLM: Select Model', placeHolder: 'Model used for the next question' });
  if (!choice) return undefined;
  if (choice.download) {
    await vscode.commands.executeCommand('elasticVlm.downloadModel');
    return undefined;
  }
  let value = choice.value;
  if (choice.browse) {
    const picked = await vscode.window.showOpenDialog({ canSelectFolders: true, canSelectFiles: false, openLabel: 'Use This Model' });
    if (!picked?.[0]) return undefined;
    value = picked[0].fsPath;
    const why = checkModelFolder(value);
    if (why) {
      const go = await vscode.window.showWarningMessage(`This does not look like a SmolVLM ONNX model folder: ${why}.`, 'Use Anyway');
      if (go !== 'Use Anyway') return undefined;
    }
  }
  if (value === undefined) return undefined;
  await settings.update('modelPath', value);
  return value;
}
