// Reads and validates the elasticVlm.* settings; an invalid value is reported once in a warning and the previous
// valid value is used. Changes apply to the next question: callers read `current` when they need it.
import * as vscode from 'vscode';
import { describeProblem, DEFAULT_SETTINGS, LEGACY_KEEP_KEY, SECTION, SETTING_KEYS, validateSettings, type Settings } from './settingsCore.js';
import { log } from './log.js';

export class SettingsManager implements vscode.Disposable {
  private value: Settings = { ...DEFAULT_SETTINGS };
  private readonly emitter = new vscode.EventEmitter<{ previous: Settings; current: Settings }>();
  readonly onDidChange = this.emitter.event;
  private readonly sub: vscode.Disposable;
  /** Problems reported by the last read (tests look at them). */
  lastProblems: string[] = [];

  constructor() {
    this.read();
    this.sub = vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration(SECTION)) this.read();
    });
  }

  get current(): Settings {
    return { ...this.value };
  }

  /** Re-reads the configuration (also called on every change event). */
  read(): Settings {
    const cfg = vscode.workspace.getConfiguration(SECTION);
    const raw: Partial<Record<keyof Settings, unknown>> = {};
    for (const key of SETTING_KEYS) raw[key] = cfg.get(key);
    // A keep set under the old name still applies until the user sets the new one.
    if (!isSet(cfg.inspect('cacheKeep')) && isSet(cfg.inspect(LEGACY_KEEP_KEY))) raw.cacheKeep = cfg.get(LEGACY_KEEP_KEY);
    const previous = this.value;
    const { settings, problems } = validateSettings(raw, previous);
    this.lastProblems = problems.map(describeProblem);
    for (const msg of this.lastProblems) {
      log.warn(msg);
      void vscode.window.showWarningMessage(msg);
    }
    this.value = settings;
    if (SETTING_KEYS.some((k) => previous[k] !== settings[k])) this.emitter.fire({ previous, current: { ...settings } });
    return this.current;
  }

  async update<K extends keyof Settings>(key: K, value: Settings[K]): Promise<void> {
    const cfg = vscode.workspace.getConfiguration(SECTION);
    const inspect = cfg.inspect(key);
    // Write where the user has it (workspace wins over user), else in the user settings.
    const target = inspect?.workspaceFolderValue !== undefined
      ? vscode.ConfigurationTarget.WorkspaceFolder
      : inspect?.workspaceValue !== undefined
        ? vscode.ConfigurationTarget.Workspace
        : vscode.ConfigurationTarget.Global;
    await cfg.update(key, value, target);
  }

  dispose(): void {
    this.sub.dispose();
    this.emitter.dispose();
  }
}

const isSet = (i: { globalValue?: unknown; workspaceValue?: unknown; workspaceFolderValue?: unknown } | undefined) =>
  i !== undefined && (i.globalValue !== undefined || i.workspaceValue !== undefined || i.workspaceFolderValue !== undefined);
