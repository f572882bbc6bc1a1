// The language-model tool elasticVlm_askImage { path, question } (structure after Microsoft's lm-tool sample):
// an agent, with any model, asks the local vision model about an image and gets the answer as text. A file
// outside the workspace needs the user's confirmation first; every failure comes back as text, never a throw.
import * as vscode from 'vscode';
import * as os from 'node:os';
import * as path from 'node:path';
import { askOnce, cacheSummary } from './oneShot.js';
import type { SettingsManager } from './settings.js';
import type { WorkerHost } from './workerHost.js';
import { modelOffers, toolWarningText, unfamiliarWarning } from './unfamiliar.js';

export const TOOL_NAME = 'elasticVlm_askImage';

export interface AskImageInput {
  path: string;
  question: string;
}

/** The file the tool reads: absolute, ~/..., or relative to the (first) workspace folder. */
export function resolveToolPath(p: string): string {
  const t = p.trim();
  if (t === '~' || t.startsWith('~/')) return path.join(os.homedir(), t.slice(1));
  if (t.startsWith('file://')) return vscode.Uri.parse(t).fsPath;
  if (path.isAbsolute(t)) return path.normalize(t);
  const ws = vscode.workspace.workspaceFolders?.[0];
  return ws ? path.join(ws.uri.fsPath, t) : path.resolve(t);
}

export function insideWorkspace(file: string): boolean {
  return (vscode.workspace.workspaceFolders ?? []).some((f) => {
    const rel = path.relative(f.uri.fsPath, file);
    return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
  });
}

const text = (s: string) => new vscode.LanguageModelToolResult([new vscode.LanguageModelTextPart(s)]);

export class AskImageTool implements vscode.LanguageModelTool<AskImageInput> {
  /** One owner per call: each call is its own conversation (an agent's calls are independent questions). */
  constructor(private readonly deps: { host: WorkerHost; settings: SettingsManager; modelsDir?: string }) {}

  prepareInvocation(options: vscode.LanguageModelToolInvocationPrepareOptions<AskImageInput>): vscode.PreparedToolInvocation {
    const p = typeof options.input?.path === 'string' ? options.input.path : '';
    const file = resolveToolPath(p);
    const prepared: vscode.PreparedToolInvocation = { invocationMessage: `Asking the local vision model about ${path.basename(file) || 'an image'}` };
    if (p && !insideWorkspace(file)) {
      prepared.confirmationMessages = {
        title: 'Read an image outside the workspace?',
        message: new vscode.MarkdownString(`Elastic VLM will read \`${file}\`, which is outside the workspace, and answer: ${JSON.stringify(options.input.question ?? '')}`),
      };
    }
    return prepared;
  }

  async invoke(options: vscode.LanguageModelToolInvocationOptions<AskImageInput>, token: vscode.CancellationToken): Promise<vscode.LanguageModelToolResult> {
    const input = options.input ?? ({} as AskImageInput);
    if (typeof input.path !== 'string' || !input.path.trim()) return text('Error: the "path" of an image file is required.');
    if (typeof input.question !== 'string' || !input.question.trim()) return text('Error: a "question" about the image is required.');
    const file = resolveToolPath(input.path);
    const outcome = await askOnce(this.deps, {}, { image: file, question: input.question, followUp: false }, { cancel: token });
    if (!outcome.ok) return text(outcome.code === 'cancelled' ? 'Cancelled: no answer.' : `Error: ${outcome.message}`);
    const answer = `${outcome.result.answer}\n\n(${path.basename(file)}; ${cacheSummary(outcome.result)})`;
    const w = unfamiliarWarning(outcome.result.warnings);
    if (!w) return text(answer);
    const current = await this.deps.host.resolveModel().then((r) => r.modelDir, () => '');
    const offers = this.deps.modelsDir ? await modelOffers(this.deps.modelsDir, current).catch(() => []) : [];
    // First, so that an agent reads the doubt before the answer.
    return text(`${toolWarningText(w, offers)}\n\n${answer}`);
  }
}
