// Asking about the clipboard's image. vscode.env.clipboard reads text only, and platform tools (xclip, PowerShell,
// osascript) would read the clipboard of the machine the extension runs on, which in a browser or remote window
// (this extension runs on the workspace host) is not the user's. A webview's paste event carries the image from the
// user's own clipboard in every host, desktop or browser: so a small paste target (and the panel's Paste button)
// takes Ctrl+V, and the image goes to a temp file the user never sees, removed when its panel closes.
import * as vscode from 'vscode';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';

export const MAX_PASTE_BYTES = 20 * 1024 * 1024;
const EXT: Record<string, string> = { 'image/png': 'png', 'image/jpeg': 'jpg', 'image/webp': 'webp', 'image/gif': 'gif', 'image/bmp': 'bmp' };
export const PASTE_MIMES = Object.keys(EXT);

/** A pasted image as the webview sends it. */
export interface PastedImage {
  mime: string;
  /** base64 */
  data: string;
}

export function isPastedImage(v: unknown): v is PastedImage {
  const o = v as PastedImage;
  return typeof o === 'object' && o !== null && PASTE_MIMES.includes(o.mime) && typeof o.data === 'string' &&
    o.data.length > 0 && o.data.length <= Math.ceil(MAX_PASTE_BYTES / 3) * 4 && /^[A-Za-z0-9+/]+={0,2}$/.test(o.data);
}

/** Temp image files in one private folder of the OS temp dir; each is removed on request, all on dispose. */
export class TempImages implements vscode.Disposable {
  private dir: string | null = null;
  private n = 0;

  get folder(): string {
    this.dir ??= fs.mkdtempSync(path.join(os.tmpdir(), 'elastic-vlm-paste-'));
    return this.dir;
  }

  async write(bytes: Uint8Array, mime: string): Promise<vscode.Uri> {
    if (bytes.byteLength > MAX_PASTE_BYTES) throw new Error(`the image is ${(bytes.byteLength / 1048576).toFixed(1)} MB; the limit is ${MAX_PASTE_BYTES / 1048576} MB`);
    const file = path.join(this.folder, `clipboard-${++this.n}.${EXT[mime] ?? 'png'}`);
    await fs.promises.writeFile(file, bytes, { mode: 0o600 });
    return vscode.Uri.file(file);
  }

  remove(uri: vscode.Uri): void {
    fs.rmSync(uri.fsPath, { force: true });
  }

  /** Files still there (tests). */
  get files(): string[] {
    return this.dir && fs.existsSync(this.dir) ? fs.readdirSync(this.dir) : [];
  }

  dispose(): void {
    if (this.dir) fs.rmSync(this.dir, { recursive: true, force: true });
    this.dir = null;
  }
}

/**
 * A small webview that takes one paste (Ctrl+V / Cmd+V) and resolves with the image, or undefined when the user
 * closes it. Its script is inline with a nonce; it reads nothing but the paste event's image file.
 */
export function pasteTarget(title = 'Paste an Image'): { panel: vscode.WebviewPanel; image: Promise<PastedImage | undefined> } {
  const panel = vscode.window.createWebviewPanel('elasticVlm.paste', title, vscode.ViewColumn.Active, { enableScripts: true, localResourceRoots: [] });
  const nonce = randomBytes(18).toString('base64');
  panel.webview.html = `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'nonce-${nonce}'; script-src 'nonce-${nonce}'">
<style nonce="${nonce}">body{font-family:var(--vscode-font-family);color:var(--vscode-foreground);padding:24px}
#zone{border:2px dashed var(--vscode-focusBorder);border-radius:6px;padding:40px 16px;text-align:center;outline:none}
#msg{margin-top:10px;color:var(--vscode-errorForeground)}</style></head>
<body><div id="zone" tabindex="0" role="textbox" aria-label="Paste an image here">Press <b>Ctrl+V</b> (<b>Cmd+V</b> on macOS) to ask about the image in your clipboard.</div>
<div id="msg" role="alert"></div>
<script nonce="${nonce}">
const vscode = acquireVsCodeApi();
const zone = document.getElementById('zone');
zone.focus();
document.addEventListener('paste', (e) => {
  e.preventDefault();
  const item = [...(e.clipboardData?.items ?? [])].find((i) => i.kind === 'file' && i.type.startsWith('image/'));
  const file = item?.getAsFile();
  if (!file) { document.getElementById('msg').textContent = 'The clipboard holds no image.'; vscode.postMessage({ type: 'noImage' }); return; }
  file.arrayBuffer().then((buf) => {
    let s = ''; const b = new Uint8Array(buf);
    for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode.apply(null, b.subarray(i, i + 0x8000));
    vscode.postMessage({ type: 'pasteImage', mime: file.type, data: btoa(s) });
  });
});
</script></body></html>`;
  const image = new Promise<PastedImage | undefined>((resolve) => {
    const subs: vscode.Disposable[] = [];
    const done = (v: PastedImage | undefined) => {
      for (const s of subs) s.dispose();
      resolve(v);
    };
    subs.push(panel.webview.onDidReceiveMessage((m: unknown) => {
      const msg = m as { type?: string };
      if (msg?.type === 'pasteImage' && isPastedImage({ mime: (m as PastedImage).mime, data: (m as PastedImage).data })) {
        done({ mime: (m as PastedImage).mime, data: (m as PastedImage).data });
        panel.dispose();
      } else if (msg?.type === 'pasteImage') {
        void vscode.window.showErrorMessage('Elastic VLM: the pasted data is not a png, jpeg, webp, gif or bmp image of at most 20 MB.');
      }
    }));
    subs.push(panel.onDidDispose(() => done(undefined)));
  });
  return { panel, image };
}
