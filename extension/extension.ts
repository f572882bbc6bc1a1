// Elastic VLM: ask a local vision-language model about an image; answers stream into a webview panel together with
// the live occupancy of the (Elastic Cache compressed) KV cache. Inference runs only in a forked worker process.
import * as vscode from 'vscode';
import { initLog, log } from './log.js';
import { SettingsManager } from './settings.js';
import { WorkerHost } from './workerHost.js';
import { StatusBar } from './statusBar.js';
import { PanelManager } from './panel.js';
import { QuestionHistory } from './questionInput.js';
import { registerCommands } from './commands.js';
import { modelsRoot } from './modelDownload.js';
import { registerAgentFeatures, type AgentFeatures } from './agentFeatures.js';
import { embeddedModelNotice } from './firstRun.js';

/** What activate() returns: used by the extension-host tests. */
export interface ElasticVlmApi {
  host: WorkerHost;
  panels: PanelManager;
  settings: SettingsManager;
  statusBar: StatusBar;
  history: QuestionHistory;
  /** Where downloaded models go. */
  modelsDir: string;
  /** The chat participant, the language-model tool and the clipboard's temp images. */
  agent: AgentFeatures;
}

let host: WorkerHost | undefined;

export function activate(context: vscode.ExtensionContext): ElasticVlmApi {
  context.subscriptions.push(initLog());
  log.info(`Elastic VLM ${context.extension.packageJSON.version} activating (extension host Node ${process.version})`);
  const settings = new SettingsManager();
  host = new WorkerHost(context.extensionPath, () => settings.current);
  const statusBar = new StatusBar(host);
  const panels = new PanelManager(context.extensionUri, host, settings, modelsRoot(context).fsPath);
  const history = new QuestionHistory(context.globalState);
  context.subscriptions.push(settings, statusBar, panels);
  registerCommands({ context, panels, host, settings, history });
  const agent = registerAgentFeatures({ context, host, settings, panels, history });

  // The Stop command is offered in the palette while an answer is being generated.
  context.subscriptions.push(
    host.onDidChangeState((s) => void vscode.commands.executeCommand('setContext', 'elasticVlm.generating', s === 'generating')),
  );
  // The first question to the embedded model (panel, chat or tool) says once what it knows.
  const h0 = host;
  context.subscriptions.push(
    host.onDidChangeState((s) => {
      if (s === 'generating') void h0.resolveModel().then((m) => embeddedModelNotice(context.globalState, m.embedded), () => undefined);
    }),
  );
  // A new model folder or device: reload now if a worker is running, so the next question does not wait for it.
  const h = host;
  context.subscriptions.push(
    settings.onDidChange(({ previous, current }) => {
      if ((previous.modelPath !== current.modelPath || previous.device !== current.device) && h.workerPid !== undefined) {
        log.info('model or device setting changed: reloading the model');
        h.ensureLoaded().catch(() => undefined);
      }
    }),
  );
  return { host, panels, settings, statusBar, history, modelsDir: modelsRoot(context).fsPath, agent };
}

export async function deactivate(): Promise<void> {
  await host?.dispose();
  host = undefined;
}
