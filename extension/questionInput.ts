// The question input box, remembering recent questions (globalState) and offering them in a quick pick.
import * as vscode from 'vscode';
import { MAX_QUESTION_LENGTH } from './webviewMessages.js';

const KEY = 'elasticVlm.recentQuestions';
const KEEP = 20;

export function validateQuestion(q: string): string | undefined {
  if (q.trim() === '') return 'Type a question about the image.';
  if (q.length > MAX_QUESTION_LENGTH) return `Questions are limited to ${MAX_QUESTION_LENGTH} characters (this one has ${q.length}).`;
  return undefined;
}

export class QuestionHistory {
  constructor(private readonly state: vscode.Memento) {}

  get recent(): string[] {
    const v = this.state.get<unknown>(KEY);
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string').slice(0, KEEP) : [];
  }

  async remember(q: string): Promise<void> {
    const t = q.trim();
    await this.state.update(KEY, [t, ...this.recent.filter((x) => x !== t)].slice(0, KEEP));
  }
}

/** Asks for a question; recent questions are offered as items, typing a new one works too. */
export async function askQuestion(history: QuestionHistory, imageName: string): Promise<string | undefined> {
  const recent = history.recent;
  const qp = vscode.window.createQuickPick<vscode.QuickPickItem>();
  qp.title = `Ask about ${imageName}`;
  qp.placeholder = recent.length ? 'Type a question (or pick a recent one) and press Enter' : 'Type a question and press Enter';
  qp.ignoreFocusOut = true;
  const recentItems = recent.map((q) => ({ label: q, description: 'recent' }));
  const refresh = () => {
    const v = qp.value;
    const err = v ? validateQuestion(v) : undefined;
    const typed: vscode.QuickPickItem[] = v.trim() ? [{ label: v, description: err ?? 'ask', alwaysShow: true }] : [];
    qp.items = [...typed, ...recentItems.filter((i) => i.label !== v)];
  };
  refresh();
  return new Promise<string | undefined>((resolve) => {
    let done = false;
    const finish = (v: string | undefined) => {
      if (done) return;
      done = true;
      resolve(v);
      qp.dispose();
    };
    qp.onDidChangeValue(refresh);
    qp.onDidAccept(() => {
      const q = qp.selectedItems[0]?.label ?? qp.value;
      const err = validateQuestion(q);
      if (err) return; // the typed item's description already says why
      void history.remember(q);
      finish(q);
    });
    qp.onDidHide(() => finish(undefined));
    qp.show();
  });
}
