// Display formats shared by the extension and its webview. No `vscode` import and no DOM.

/** Bytes in binary units (B, KB, MB, GB), as file sizes are shown elsewhere in VS Code. */
export function fmtBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MB`;
  return `${(n / 1024 ** 3).toFixed(2)} GB`;
}
