// Picks an image: a quick pick of the workspace's image files (the active image editor's file first) + "Browse...".
import * as vscode from 'vscode';
import * as path from 'node:path';

export const IMAGE_EXTENSIONS = ['png', 'jpg', 'jpeg', 'webp', 'gif', 'bmp', 'svg'];
const GLOB = `**/*.{${[...IMAGE_EXTENSIONS, ...IMAGE_EXTENSIONS.map((e) => e.toUpperCase())].join(',')}}`;
const MAX_FILES = 2000;

export function isImagePath(p: string): boolean {
  return IMAGE_EXTENSIONS.includes(path.extname(p).slice(1).toLowerCase());
}

/** The file of the active image preview (VS Code's built-in image editor) or an active image tab, if any. */
export function activeImageUri(): vscode.Uri | undefined {
  const input = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
  if (input instanceof vscode.TabInputCustom && isImagePath(input.uri.path)) return input.uri;
  if (input instanceof vscode.TabInputText && isImagePath(input.uri.path)) return input.uri;
  return undefined;
}

interface ImageItem extends vscode.QuickPickItem {
  uri?: vscode.Uri;
  browse?: boolean;
}

export async function pickImage(): Promise<vscode.Uri | undefined> {
  const active = activeImageUri();
  const found = await vscode.workspace.findFiles(GLOB, '**/{node_modules,.git}/**', MAX_FILES);
  found.sort((a, b) => a.path.localeCompare(b.path));
  const items: ImageItem[] = [];
  const label = (u: vscode.Uri) => ({ label: `$(file-media) ${path.basename(u.fsPath)}`, description: vscode.workspace.asRelativePath(u, true), uri: u });
  if (active) items.push({ ...label(active), detail: 'active editor' });
  for (const u of found) if (!active || u.toString() !== active.toString()) items.push(label(u));
  items.push({ label: '$(folder-opened) Browse...', description: 'choose an image file on disk', browse: true, alwaysShow: true });
  const choice = await vscode.window.showQuickPick(items, {
    title: 'Elastic VLM: Ask About Image',
    placeHolder: found.length ? 'Pick an image to ask about' : 'No images in the workspace: browse for one',
    matchOnDescription: true,
  });
  if (!choice) return undefined;
  if (choice.uri) return choice.uri;
  const picked = await vscode.window.showOpenDialog({
    canSelectMany: false,
    openLabel: 'Ask About Image',
    filters: { Images: IMAGE_EXTENSIONS },
  });
  return picked?.[0];
}
