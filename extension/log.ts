// The "Elastic VLM" log output channel (model loading, execution provider, timings, errors).
import * as vscode from 'vscode';

let channel: vscode.LogOutputChannel | undefined;

export function initLog(): vscode.LogOutputChannel {
  channel ??= vscode.window.createOutputChannel('Elastic VLM', { log: true });
  return channel;
}

export const log = {
  info: (msg: string) => channel?.info(msg),
  warn: (msg: string) => channel?.warn(msg),
  error: (msg: string) => channel?.error(msg),
  debug: (msg: string) => channel?.debug(msg),
  trace: (msg: string) => channel?.trace(msg),
  show: () => channel?.show(true),
};
