// The panel's UI. Model output is only ever inserted as text (textContent / text nodes), never as HTML.
import { isOneOf, KEEP_MAX, KEEP_MIN, POLICIES, type CacheStats, type ImportanceMap } from '../runtime/protocol.js';
import { fmtBytes } from '../extension/format.js';
import { MAX_QUESTION_LENGTH, type FromWebview, type ToWebview } from '../extension/webviewMessages.js';
import * as ui from './ui.js';
import { renderCacheChart } from './chart.js';
import { drawHeatmap } from './heatmap.js';

declare function acquireVsCodeApi(): { postMessage(m: FromWebview): void; getState(): unknown; setState(s: unknown): void };
const vscode = acquireVsCodeApi();
const send = (m: FromWebview) => vscode.postMessage(m);

ui.registerComponents();

function h<K extends keyof HTMLElementTagNameMap>(tag: K, props: { id?: string; className?: string; text?: string } = {}, ...kids: Node[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (props.id) e.id = props.id;
  if (props.className) e.className = props.className;
  if (props.text !== undefined) e.textContent = props.text;
  for (const k of kids) e.appendChild(k);
  return e;
}

const POLICY_LABELS: Record<string, string> = {
  elastic: 'Elastic Cache',
  h2o: 'H2O (heavy hitters + recent)',
  streaming: 'StreamingLLM (sinks + window)',
  full: 'Full cache (no compression)',
};

// ---- layout ----
const app = document.getElementById('app')!;
app.replaceChildren();
const title = h('h1', { id: 'title', text: 'Elastic VLM' });
const modelLabel = h('span', { id: 'model', className: 'muted' });
const policy = ui.dropdown({ id: 'policy', label: 'Cache policy', options: POLICIES.map((p) => ({ value: p, label: POLICY_LABELS[p] ?? p })) });
const keep = ui.slider({ id: 'keep', label: 'Keep ratio', min: KEEP_MIN, max: KEEP_MAX, step: 0.05 });
const keepOut = h('output', { id: 'keep-value' });
const policyLabel = h('label', { text: 'Policy' });
const keepLabel = h('label', { text: 'Keep' });
policyLabel.htmlFor = 'policy';
keepLabel.htmlFor = 'keep';
const header = h('header', { className: 'bar' },
  h('div', { className: 'titles' }, title, modelLabel),
  h('div', { className: 'controls' }, policyLabel, policy.el, keepLabel, keep.el, keepOut),
);

const img = h('img', { id: 'image' });
const heat = h('canvas', { id: 'heat' });
heat.setAttribute('aria-hidden', 'true');
const figure = h('figure', { className: 'figure' }, img, heat);
const imageError = h('div', { id: 'image-error', className: 'error' });
imageError.setAttribute('role', 'alert');
imageError.hidden = true;
const heatToggle = ui.checkbox({ id: 'heat-toggle', label: 'Importance heat map', checked: true });
const heatNote = h('span', { id: 'heat-note', className: 'muted', text: 'Heat map: after the image is read.' });
const imagePane = h('section', { className: 'pane image-pane' }, figure, imageError, h('div', { className: 'row' }, heatToggle.el, heatNote));
imagePane.setAttribute('aria-label', 'Image');

const stat = (id: string, label: string) => {
  const dd = h('dd', { id, text: '–' });
  return { dd, nodes: [h('dt', { text: label }), dd] };
};
const stats = {
  policy: stat('stat-policy', 'Policy'),
  tokens: stat('stat-tokens', 'Tokens seen'),
  kept: stat('stat-kept', 'Kept / layer'),
  budget: stat('stat-budget', 'Budget'),
  bytes: stat('stat-bytes', 'Bytes kept'),
  merged: stat('stat-merged', 'Merged'),
  evicted: stat('stat-evicted', 'Evicted'),
};
const dl = h('dl', { id: 'cache-numbers' });
for (const s of Object.values(stats)) for (const n of s.nodes) dl.appendChild(n);
const chart = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
chart.id = 'chart';
chart.setAttribute('role', 'img');
chart.setAttribute('aria-label', 'Cache occupancy per layer: no data yet');
const legend = h('div', { className: 'legend muted' },
  h('span', { className: 'key kept' }), document.createTextNode(' kept per layer '),
  h('span', { className: 'key seen' }), document.createTextNode(' tokens seen '),
  h('span', { className: 'key budget' }), document.createTextNode(' budget'),
);
const cachePane = h('section', { className: 'pane cache-pane' }, h('h2', { text: 'KV cache' }), dl, chart, legend);
cachePane.setAttribute('aria-label', 'KV cache occupancy');

const transcript = h('section', { id: 'transcript' });
transcript.setAttribute('aria-label', 'Conversation');
const status = h('div', { id: 'status', className: 'muted' });
status.setAttribute('role', 'status');
status.setAttribute('aria-live', 'polite');
const ring = ui.progressRing();
ring.hidden = true;

const question = ui.textArea({ id: 'question', placeholder: 'Ask a follow-up question (Enter to send, Shift+Enter for a new line)', label: 'Follow-up question', maxLength: MAX_QUESTION_LENGTH });
const askBtn = ui.button('Ask', { id: 'ask' });
const stopBtn = ui.button('Stop', { id: 'stop', secondary: true, title: 'Stop generating (Escape)' });
const logBtn = ui.button('Log', { id: 'show-log', secondary: true, title: 'Show the Elastic VLM log' });
stopBtn.disabled = true;
const footer = h('footer', { className: 'ask' }, question.el, h('div', { className: 'buttons' }, askBtn, stopBtn, logBtn, ring));

const conversation = h('section', { className: 'conversation' }, transcript, status);
app.append(header, h('div', { className: 'layout' }, imagePane, cachePane, conversation), footer);
app.removeAttribute('aria-busy');

// ---- state ----
let importance: ImportanceMap | null = null;
let busy = false;
const turnEls = new Map<number, { article: HTMLElement; answer: HTMLElement; meta: HTMLElement }>();

function redrawHeat(): void {
  if (img.complete && img.naturalWidth > 0) drawHeatmap(heat, img, importance, heatToggle.checked);
}
img.addEventListener('load', redrawHeat);
img.addEventListener('error', () => {
  imageError.textContent = 'This image cannot be displayed (the file may be corrupt or in an unsupported format).';
  imageError.hidden = false;
  figure.classList.add('broken');
});
heatToggle.onChange(redrawHeat);
new ResizeObserver(redrawHeat).observe(img);

function setBusy(b: boolean): void {
  busy = b;
  stopBtn.disabled = !b;
  askBtn.disabled = b;
  ring.hidden = !b;
}

/** The cache settings in use (from the extension); the controls post a change only when they differ. */
let applied = { policy: '', keep: 0 };
function setCacheControls(p: string, k: number): void {
  applied = { policy: p, keep: k };
  policy.value = p;
  keep.value = String(k);
  keepOut.textContent = `${Math.round(k * 100)}%`;
}

function showStats(s: CacheStats): void {
  const kept = s.perLayerLength.length ? Math.max(...s.perLayerLength) : 0;
  const pct = s.fullBytes > 0 ? (100 * s.bytes) / s.fullBytes : 100;
  stats.policy.dd.textContent = `${s.policy}, keep ${s.keep}`;
  stats.tokens.dd.textContent = String(s.tokensSeen);
  stats.kept.dd.textContent = String(kept);
  stats.budget.dd.textContent = String(s.budget);
  stats.bytes.dd.textContent = `${fmtBytes(s.bytes)} of ${fmtBytes(s.fullBytes)} (${pct.toFixed(0)}%) · ${s.location}`;
  stats.merged.dd.textContent = String(s.merged);
  stats.evicted.dd.textContent = String(s.evicted);
  renderCacheChart(chart, s);
}

function addTurn(turn: number, q: string, followUp: boolean, note?: string): void {
  const article = h('article', { className: 'turn', id: `turn-${turn}` });
  article.appendChild(h('div', { className: 'question', text: q }));
  if (note) article.appendChild(h('div', { className: 'note muted', text: note }));
  const answer = h('div', { className: 'answer', id: `answer-${turn}` });
  answer.setAttribute('aria-busy', 'true');
  const meta = h('div', { className: 'meta muted', text: followUp ? 'follow-up · reading…' : 'reading the image…' });
  article.append(answer, meta);
  transcript.appendChild(article);
  turnEls.set(turn, { article, answer, meta });
  article.scrollIntoView({ block: 'end' });
}

function finishTurn(turn: number): { article: HTMLElement; answer: HTMLElement; meta: HTMLElement } | undefined {
  const t = turnEls.get(turn);
  t?.answer.setAttribute('aria-busy', 'false');
  return t;
}

window.addEventListener('message', (ev: MessageEvent) => {
  const m = ev.data as ToWebview;
  if (!m || typeof m !== 'object') return;
  switch (m.type) {
    case 'init':
      title.textContent = m.image.name;
      img.alt = `The image ${m.image.path}`;
      img.src = m.image.src;
      modelLabel.textContent = m.model;
      setCacheControls(m.policy, m.keep);
      return;
    case 'settings':
      setCacheControls(m.policy, m.keep);
      modelLabel.textContent = m.model;
      status.textContent = `Cache: ${m.policy}, keep ${m.keep} (applies to the next question).`;
      return;
    case 'busy':
      setBusy(m.busy);
      return;
    case 'turn':
      addTurn(m.turn, m.question, m.followUp, m.note);
      status.textContent = 'Thinking…';
      return;
    case 'progress': {
      const last = [...turnEls.values()].pop();
      if (last && !last.answer.textContent) last.meta.textContent = `${m.stage}${m.detail ? ': ' + m.detail : ''}…`;
      return;
    }
    case 'tokens': {
      const t = turnEls.get(m.turn);
      if (!t) return;
      t.answer.appendChild(document.createTextNode(m.text));
      t.meta.textContent = 'generating…';
      return;
    }
    case 'stats':
      showStats(m.stats);
      return;
    case 'importance':
      importance = m.map;
      heatNote.textContent = `Prefill importance of ${m.map.tiles.reduce((a, t) => a + t.values.length, 0)} image tokens (${m.map.rows}×${m.map.cols} tiles + global).`;
      redrawHeat();
      return;
    case 'done': {
      const t = finishTurn(m.turn);
      const r = m.result;
      const why = r.stopReason === 'cancelled' ? 'stopped' : r.stopReason === 'length' ? 'token limit reached' : 'done';
      const speed = r.timings.decodeTokensPerSecond ? `, ${r.timings.decodeTokensPerSecond.toFixed(1)} tok/s` : '';
      const prompt = r.promptTokens ? `, prompt ${r.promptTokens} tokens (${r.imageTokens} image)` : '';
      if (t) {
        t.meta.textContent = `${why}: ${r.generatedTokens} tokens${prompt}${speed}${r.executionProvider ? ` · ${r.executionProvider}` : ''}`;
        t.article.classList.add(r.stopReason === 'cancelled' ? 'stopped' : 'complete');
      }
      status.textContent = r.stopReason === 'cancelled' ? 'Stopped.' : 'Answer complete.';
      return;
    }
    case 'error': {
      const t = finishTurn(m.turn);
      const box = h('div', { className: 'error', text: m.message });
      box.setAttribute('role', 'alert');
      box.dataset.code = m.code;
      if (t) {
        t.meta.textContent = 'failed';
        t.article.classList.add('failed');
        t.article.appendChild(box);
      } else {
        transcript.appendChild(box);
      }
      status.textContent = 'Error.';
      return;
    }
  }
});

// ---- input ----
function submit(): void {
  const q = question.value;
  if (busy || !q.trim()) return;
  send({ type: 'ask', question: q.slice(0, MAX_QUESTION_LENGTH) });
  question.value = '';
}
askBtn.addEventListener('click', submit);
stopBtn.addEventListener('click', () => send({ type: 'stop' }));
logBtn.addEventListener('click', () => send({ type: 'showLog' }));
question.el.addEventListener('keydown', (e: KeyboardEvent) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    submit();
  }
});
document.addEventListener('keydown', (e: KeyboardEvent) => {
  if (e.key === 'Escape' && busy) send({ type: 'stop' });
});
const sendCache = () => {
  const k = Number(keep.value);
  keepOut.textContent = `${Math.round(k * 100)}%`;
  const rounded = Math.round(k * 100) / 100;
  if (policy.value === applied.policy && Math.abs(rounded - applied.keep) < 1e-9) return;
  if (isOneOf(POLICIES, policy.value) && rounded >= KEEP_MIN && rounded <= KEEP_MAX) {
    applied = { policy: policy.value, keep: rounded };
    send({ type: 'setCache', policy: policy.value, keep: rounded });
  }
};
policy.onChange(sendCache);
keep.onChange(sendCache);
keep.el.addEventListener('input', () => (keepOut.textContent = `${Math.round(Number(keep.value) * 100)}%`));

send({ type: 'ready' });
