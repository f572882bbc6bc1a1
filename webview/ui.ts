// The one module that knows the component library. Everything else in the webview builds its controls through
// these functions, so @vscode/webview-ui-toolkit (deprecated upstream) can be swapped for @vscode-elements/elements
// (vscode-button, vscode-textarea, vscode-single-select, vscode-checkbox, vscode-progress-ring) here alone.
import {
  provideVSCodeDesignSystem,
  vsCodeBadge,
  vsCodeButton,
  vsCodeCheckbox,
  vsCodeDivider,
  vsCodeDropdown,
  vsCodeOption,
  vsCodeProgressRing,
  vsCodeTextArea,
} from '@vscode/webview-ui-toolkit';

export function registerComponents(): void {
  provideVSCodeDesignSystem().register(
    vsCodeButton(), vsCodeTextArea(), vsCodeDropdown(), vsCodeOption(), vsCodeCheckbox(),
    vsCodeProgressRing(), vsCodeDivider(), vsCodeBadge(),
  );
}

/** A control with a string value. */
export interface ValueControl {
  el: HTMLElement;
  get value(): string;
  set value(v: string);
  set disabled(d: boolean);
  focus(): void;
  onChange(fn: () => void): void;
}

export function button(label: string, opts: { id: string; secondary?: boolean; title?: string }): HTMLElement & { disabled: boolean } {
  const b = document.createElement('vscode-button') as HTMLElement & { disabled: boolean };
  b.id = opts.id;
  b.textContent = label;
  if (opts.secondary) b.setAttribute('appearance', 'secondary');
  if (opts.title) b.title = opts.title;
  return b;
}

export function textArea(opts: { id: string; placeholder: string; label: string; maxLength: number; rows?: number }): ValueControl {
  const t = document.createElement('vscode-text-area') as HTMLElement & { value: string; disabled: boolean };
  t.id = opts.id;
  t.setAttribute('placeholder', opts.placeholder);
  t.setAttribute('maxlength', String(opts.maxLength));
  t.setAttribute('rows', String(opts.rows ?? 2));
  t.setAttribute('resize', 'vertical');
  t.setAttribute('aria-label', opts.label);
  t.textContent = opts.label;
  return wrapValue(t, 'input');
}

export function dropdown(opts: { id: string; label: string; options: { value: string; label: string }[] }): ValueControl {
  const d = document.createElement('vscode-dropdown') as HTMLElement & { value: string; disabled: boolean };
  d.id = opts.id;
  d.setAttribute('aria-label', opts.label);
  for (const o of opts.options) {
    const opt = document.createElement('vscode-option');
    opt.setAttribute('value', o.value);
    opt.textContent = o.label;
    d.appendChild(opt);
  }
  return wrapValue(d, 'change');
}

/** A range input (the toolkit has no slider); themed by media/panel.css. */
export function slider(opts: { id: string; label: string; min: number; max: number; step: number }): ValueControl {
  const r = document.createElement('input');
  r.type = 'range';
  r.id = opts.id;
  r.min = String(opts.min);
  r.max = String(opts.max);
  r.step = String(opts.step);
  r.className = 'slider';
  r.setAttribute('aria-label', opts.label);
  return wrapValue(r as unknown as HTMLElement & { value: string; disabled: boolean }, 'change');
}

export function checkbox(opts: { id: string; label: string; checked: boolean }): { el: HTMLElement; get checked(): boolean; onChange(fn: () => void): void } {
  const c = document.createElement('vscode-checkbox') as HTMLElement & { checked: boolean };
  c.id = opts.id;
  c.textContent = opts.label;
  if (opts.checked) c.setAttribute('checked', '');
  return {
    el: c,
    get checked() {
      return c.checked;
    },
    onChange(fn) {
      c.addEventListener('change', fn);
    },
  };
}

export function progressRing(): HTMLElement {
  const p = document.createElement('vscode-progress-ring');
  p.setAttribute('aria-label', 'Generating');
  return p;
}

export function divider(): HTMLElement {
  return document.createElement('vscode-divider');
}

export function badge(text: string): HTMLElement {
  const b = document.createElement('vscode-badge');
  b.textContent = text;
  return b;
}

function wrapValue(el: HTMLElement & { value: string; disabled: boolean }, event: string): ValueControl {
  return {
    el,
    get value() {
      return el.value ?? '';
    },
    set value(v: string) {
      el.value = v;
    },
    set disabled(d: boolean) {
      el.disabled = d;
    },
    focus() {
      el.focus();
    },
    onChange(fn) {
      el.addEventListener(event, fn);
    },
  };
}
