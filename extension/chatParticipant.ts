// The @vlm chat participant (structure after Microsoft's chat-sample): the user attaches or drops an image, or
// names a workspace image, and asks. The answer streams into the chat, then a one-line cache summary and a button
// that opens the panel on the same conversation. Follow-ups in the thread continue the worker's cache.
import * as vscode from 'vscode';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { AskResult } from '../runtime/protocol.js';
import { askOnce, cacheSummary } from './oneShot.js';
import { isImagePath, IMAGE_EXTENSIONS } from './imagePicker.js';
import type { TempImages } from './clipboard.js';
import type { SettingsManager } from './settings.js';
import type { WorkerHost } from './workerHost.js';
import { log } from './log.js';
import { DOWNLOAD_MODEL_COMMAND, modelOffers, remedy, SELECT_MODEL_COMMAND, unfamiliarWarning } from './unfamiliar.js';

export const PARTICIPANT_ID = 'elasticVlm.vlm';
export const OPEN_IN_PANEL = 'elasticVlm.openChatInPanel';

/** What a chat turn leaves in ChatResult.metadata: the thread's conversation and its image. */
export interface VlmChatMetadata {
  conversation: string;
  image: string;
  question: string;
  answer: string;
  result?: AskResult;
}

/** One chat thread's conversation in the worker; `turns` feed the panel when the user opens it. */
export interface ChatConversation {
  id: string;
  image: string;
  turns: { question: string; answer: string; result?: AskResult }[];
}

export interface ChatDeps {
  host: WorkerHost;
  settings: SettingsManager;
  temp: TempImages;
  /** Where downloaded models live (an unfamiliar image's offers). */
  modelsDir?: string;
}

/** A binary attachment (a dropped or pasted image): ChatReferenceBinaryData in newer VS Code. */
interface BinaryLike {
  mimeType: string;
  data(): Thenable<Uint8Array>;
}
const isBinary = (v: unknown): v is BinaryLike =>
  typeof v === 'object' && v !== null && typeof (v as BinaryLike).mimeType === 'string' && typeof (v as BinaryLike).data === 'function';

/** The image of a request: an attached file or image, else a workspace image named in the prompt. */
export async function findImage(request: Pick<vscode.ChatRequest, 'prompt' | 'references'>, temp: TempImages): Promise<string | { error: string } | undefined> {
  for (const ref of request.references) {
    const v = ref.value;
    const uri = v instanceof vscode.Uri ? v : v instanceof vscode.Location ? v.uri : undefined;
    if (uri) {
      if (uri.scheme !== 'file') return { error: `Elastic VLM reads images from disk only (got a ${uri.scheme}: attachment).` };
      if (isImagePath(uri.fsPath)) return uri.fsPath;
      return { error: `${path.basename(uri.fsPath)} is not an image file (${IMAGE_EXTENSIONS.join(', ')}).` };
    }
    if (isBinary(v)) {
      if (!/^image\//.test(v.mimeType)) return { error: `The attachment is ${v.mimeType}, not an image.` };
      return (await temp.write(await v.data(), v.mimeType)).fsPath;
    }
  }
  // "what is in shapes.png?" or "docs/images/panel.png": the first word that looks like an image file.
  const named = /(?:^|[\s"'`(])([^\s"'`()]+\.(?:png|jpe?g|webp|gif|bmp|svg))(?=$|[\s"'`),.?!:;])/i.exec(request.prompt)?.[1];
  if (!named) return undefined;
  if (path.isAbsolute(named)) return named;
  for (const folder of vscode.workspace.workspaceFolders ?? []) {
    const direct = vscode.Uri.joinPath(folder.uri, named);
    try {
      await vscode.workspace.fs.stat(direct);
      return direct.fsPath;
    } catch {
      // not at that path: search by name below
    }
  }
  const found = await vscode.workspace.findFiles(`**/${named.replace(/[[\]{}*?]/g, '')}`, '**/{node_modules,.git}/**', 1);
  return found[0]?.fsPath ?? { error: `No image named ${named} in the workspace.` };
}

/** The thread's conversation: from the last @vlm answer in the history. */
function previous(context: vscode.ChatContext): VlmChatMetadata | undefined {
  for (let i = context.history.length - 1; i >= 0; i--) {
    const t = context.history[i];
    if (t instanceof vscode.ChatResponseTurn && t.participant === PARTICIPANT_ID) {
      const m = t.result.metadata as VlmChatMetadata | undefined;
      if (m?.conversation) return m;
    }
  }
  return undefined;
}

export class VlmChat implements vscode.Disposable {
  /** Conversations by id; the object is the worker host's owner of the conversation's cache. */
  readonly conversations = new Map<string, ChatConversation>();
  private readonly participant: vscode.ChatParticipant;

  constructor(private readonly deps: ChatDeps, extensionUri: vscode.Uri) {
    this.participant = vscode.chat.createChatParticipant(PARTICIPANT_ID, (r, c, s, t) => this.handle(r, c, s, t));
    this.participant.iconPath = vscode.Uri.joinPath(extensionUri, 'media', 'icon.svg');
  }

  /** The request handler (also called directly by the extension-host tests, with their own stream). */
  async handle(request: vscode.ChatRequest, context: vscode.ChatContext, stream: vscode.ChatResponseStream, token: vscode.CancellationToken): Promise<vscode.ChatResult> {
    const fail = (message: string, code = 'bad-input'): vscode.ChatResult => {
      stream.markdown(`**Elastic VLM:** ${message}`);
      return { errorDetails: { message }, metadata: { error: code } };
    };
    const prior = previous(context);
    const found = await findImage(request, this.deps.temp);
    if (found && typeof found === 'object') return fail(found.error);
    const image = found ?? prior?.image;
    if (!image) return fail('Attach an image (drag it into the chat, or #file), or name a workspace image, e.g. `@vlm what is in chart.png?`');
    // Same image as the thread's last answer: a follow-up in its conversation; another image starts a new one.
    const conv = prior && prior.image === image && this.conversations.get(prior.conversation);
    const c: ChatConversation = conv || { id: randomUUID(), image, turns: [] };
    this.conversations.set(c.id, c);
    const question = request.prompt.trim() || 'Describe this image.';
    stream.progress(conv ? 'Continuing the conversation in the cache…' : `Reading ${path.basename(image)}…`);
    let answer = '';
    let started = false;
    const outcome = await askOnce(this.deps, c, { image, question, followUp: !!conv }, {
      cancel: token,
      token: (t) => {
        // The tokenizer's leading space would make the first line a code block in markdown.
        const text = started ? t : t.replace(/^\s+/, '');
        if (!text) return;
        started = true;
        answer += text;
        stream.markdown(escapeMarkdown(text));
      },
    });
    if (!outcome.ok) {
      log.info(`chat: ${outcome.code}: ${outcome.message}`);
      if (outcome.code === 'cancelled') {
        stream.markdown(answer ? '\n\n*Stopped.*' : '*Stopped.*');
        return { metadata: { conversation: c.id, image, question, answer, error: 'cancelled' } };
      }
      return fail(outcome.message, outcome.code);
    }
    const { result } = outcome;
    c.turns.push({ question, answer: result.answer, result });
    stream.markdown(`\n\n*${cacheSummary(result)}${outcome.followUp ? ' · follow-up, image not read again' : ''}*`);
    stream.button({ command: OPEN_IN_PANEL, title: 'Open in Panel', arguments: [c.id] });
    await this.warn(stream, result);
    const metadata: VlmChatMetadata = { conversation: c.id, image, question, answer: result.answer, result };
    return { metadata };
  }

  /** An unfamiliar image: the warning under the answer, and Download Model / Use buttons for the way out. */
  private async warn(stream: vscode.ChatResponseStream, result: AskResult): Promise<void> {
    const w = unfamiliarWarning(result.warnings);
    if (!w) return;
    const current = await this.deps.host.resolveModel().then((r) => r.modelDir, () => '');
    const offers = this.deps.modelsDir ? await modelOffers(this.deps.modelsDir, current).catch(() => []) : [];
    stream.markdown(`\n\n**Warning:** ${escapeMarkdown(w.message)} ${escapeMarkdown(remedy(offers))}`);
    stream.button({ command: DOWNLOAD_MODEL_COMMAND, title: 'Download Model' });
    for (const o of offers) stream.button({ command: SELECT_MODEL_COMMAND, title: `Use ${o.label}`, arguments: [o.dir] });
  }

  dispose(): void {
    this.participant.dispose();
  }
}

/** Model text goes into markdown as text: escape what markdown would read as markup or HTML. */
export function escapeMarkdown(t: string): string {
  return t.replace(/[\\`*_{}[\]()#+\-!<>|~]/g, (c) => `\\${c}`);
}
