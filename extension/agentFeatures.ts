// Where VS Code users ask besides the panel: the @vlm chat participant, the elasticVlm_askImage tool for agents,
// and the clipboard's image. Registered in one place so extension.ts stays a list of parts.
import * as vscode from 'vscode';
import { VlmChat, OPEN_IN_PANEL } from './chatParticipant.js';
import { AskImageTool, TOOL_NAME } from './askTool.js';
import { TempImages, pasteTarget, isPastedImage, type PastedImage } from './clipboard.js';
import { askQuestion, validateQuestion, type QuestionHistory } from './questionInput.js';
import type { PanelManager, TurnRecord } from './panel.js';
import type { SettingsManager } from './settings.js';
import type { WorkerHost } from './workerHost.js';
import { log } from './log.js';
import { modelsRoot } from './modelDownload.js';

export interface AgentFeatures {
  chat: VlmChat;
  tool: AskImageTool;
  temp: TempImages;
}

export function registerAgentFeatures(deps: {
  context: vscode.ExtensionContext;
  host: WorkerHost;
  settings: SettingsManager;
  panels: PanelManager;
  history: QuestionHistory;
}): AgentFeatures {
  const { context, host, settings, panels, history } = deps;
  const temp = new TempImages();
  const modelsDir = modelsRoot(context).fsPath;
  const chat = new VlmChat({ host, settings, temp, modelsDir }, context.extensionUri);
  const tool = new AskImageTool({ host, settings, modelsDir });
  context.subscriptions.push(temp, chat, vscode.lm.registerTool(TOOL_NAME, tool));

  // The chat's "Open in Panel" button: the panel shows the thread's turns and its follow-ups continue the cache.
  context.subscriptions.push(vscode.commands.registerCommand(OPEN_IN_PANEL, (id?: string) => {
    const c = typeof id === 'string' ? chat.conversations.get(id) : undefined;
    if (!c) {
      void vscode.window.showErrorMessage('Elastic VLM: that chat conversation is gone (the window was reloaded).');
      return undefined;
    }
    const panel = panels.open(vscode.Uri.file(c.image));
    panel.adoptConversation(c, c.turns);
    return panel;
  }));

  // Ask About Clipboard Image: from the palette (a paste target opens) or the panel's Paste button (the image comes along).
  context.subscriptions.push(vscode.commands.registerCommand('elasticVlm.askAboutClipboardImage', async (pasted?: unknown, questionArg?: unknown): Promise<TurnRecord | undefined> => {
    try {
      let image: PastedImage | undefined;
      if (pasted !== undefined) {
        if (!isPastedImage(pasted)) throw new Error('the pasted data is not a png, jpeg, webp, gif or bmp image of at most 20 MB');
        image = pasted;
      } else {
        image = await pasteTarget().image;
      }
      if (!image) return undefined;
      const uri = await temp.write(Buffer.from(image.data, 'base64'), image.mime);
      let question: string | undefined;
      if (typeof questionArg === 'string') {
        const why = validateQuestion(questionArg);
        if (why) throw new Error(why);
        question = questionArg;
      } else {
        question = await askQuestion(history, 'the pasted image');
      }
      if (!question) {
        temp.remove(uri);
        return undefined;
      }
      const panel = panels.open(uri);
      // The temp file lives as long as its panel (follow-ups may need to read the image again).
      panel.panel.onDidDispose(() => temp.remove(uri));
      log.info(`ask about the clipboard image (${image.mime}, ${uri.fsPath})`);
      return await panel.ask(question, false);
    } catch (e) {
      void vscode.window.showErrorMessage(`Elastic VLM: ${(e as Error).message}`);
      return undefined;
    }
  }));
  return { chat, tool, temp };
}
