// The first question answered by the embedded model says, once, in one line what that model knows, and offers
// Download Model (a new user otherwise asks it about a photo and takes the small model's guess for the tool's limit).
import * as vscode from 'vscode';

const KEY = 'elasticVlm.embeddedNoticeShown';
export const EMBEDDED_NOTICE =
  'The embedded model is small and knows only synthetic shapes, bar charts, UI windows and flow diagrams; for other images download a SmolVLM model.';

export async function embeddedModelNotice(state: vscode.Memento, embedded: boolean): Promise<boolean> {
  if (!embedded || state.get<boolean>(KEY)) return false;
  await state.update(KEY, true);
  void vscode.window.showInformationMessage(EMBEDDED_NOTICE, 'Download Model').then((choice) => {
    if (choice === 'Download Model') void vscode.commands.executeCommand('elasticVlm.downloadModel');
  });
  return true;
}
