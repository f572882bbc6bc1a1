// The panel's UI. Model output is only ever inserted as text (textContent / text nodes), never as HTML.
import { isOneOf, KEEP_MAX, KEEP_MIN, POLICIES, SAFE_KEEP_MIN, type AskWarning, type CacheStats, type ElasticVariant, type Importance, type ImportanceMap, type KeptPositions } from '../runtime/protocol.js';
import { fmtBytes } from '../extension/format.js';
import { MAX_QUESTION_LENGTH, PASTE_MIMES, type FromWebview, type ToWebview } from '../extension/webviewMessages.js';
import * as ui from './ui.js';
import {
  cacheNumbers, drawCells, keptCells, keptColor, layerCounts, plural, policyReason, rankColor, rankingCells, renderGrowth,
  renderKeptStrips, type GrowthPoint,
} from './cacheView.js';

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
  snapkv: 'SnapKV (observation window)',
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
const keepWarning = h('div', { id: 'keep-warning', className: 'warning' });
keepWarning.setAttribute('role', 'status');
keepWarning.hidden = true;
// One line of cache truth above the fold, whatever the width.
const summary = h('div', { id: 'cache-summary', className: 'summary muted', text: 'Cache: no question yet.' });
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
const heatToggle = ui.checkbox({ id: 'heat-toggle', label: 'Heat map', checked: true });
const heatMode = ui.dropdown({ id: 'heat-mode', label: 'Heat map shows', options: [
  { value: 'kept', label: 'What the cache kept' },
  { value: 'rank', label: 'What the policy ranks by' },
] });
const heatNote = h('div', { id: 'heat-note', className: 'muted', text: 'Heat map: after the image is read.' });
const heatReason = h('div', { id: 'heat-reason', className: 'muted' });
const imagePane = h('section', { className: 'pane image-pane' }, figure, imageError, h('div', { className: 'row' }, heatToggle.el, heatMode.el), heatNote, heatReason);
imagePane.setAttribute('aria-label', 'Image');

const stat = (id: string, label: string) => {
  const dd = h('dd', { id, text: '–' });
  return { dd, nodes: [h('dt', { text: label }), dd] };
};
// Every count is in entries per layer (the worker's evicted and merged totals are over all layers).
const stats = {
  policy: stat('stat-policy', 'Policy'),
  tokens: stat('stat-tokens', 'Tokens seen'),
  kept: stat('stat-kept', 'Kept / layer'),
  budget: stat('stat-budget', 'Budget / layer'),
  evicted: stat('stat-evicted', 'Evicted / layer'),
  merged: stat('stat-merged', 'Merged / layer'),
  bytes: stat('stat-bytes', 'Bytes kept'),
  image: stat('stat-image', 'Image tokens kept'),
  text: stat('stat-text', 'Text tokens kept'),
};
const dl = h('dl', { id: 'cache-numbers' });
for (const s of Object.values(stats)) for (const n of s.nodes) dl.appendChild(n);
const svg = (id: string, label: string) => {
  const e = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  e.id = id;
  e.setAttribute('role', 'img');
  e.setAttribute('aria-label', label);
  return e;
};
const growth = svg('growth', 'Cache size against tokens generated: no data yet');
const growthLegend = h('div', { className: 'legend muted' },
  h('span', { className: 'key kept' }), document.createTextNode(' entries / layer '),
  h('span', { className: 'key seen' }), document.createTextNode(' tokens seen (full cache) '),
  h('span', { className: 'key budget' }), document.createTextNode(' budget'),
);
const growthCaption = h('div', { className: 'caption muted', text: 'x: answer tokens generated in this conversation; y: entries per layer' });
const strips = svg('kept-strips', 'Kept positions per layer: no data yet');
const stripsLegend = h('div', { className: 'legend muted' },
  h('span', { className: 'key pos i kept' }), document.createTextNode(' image '),
  h('span', { className: 'key pos t kept' }), document.createTextNode(' text '),
  h('span', { className: 'key pos g kept' }), document.createTextNode(' answer '),
  h('span', { className: 'key pos t merged' }), document.createTextNode(' merged '),
  h('span', { className: 'key pos evicted' }), document.createTextNode(' evicted'),
);
const stripsCaption = h('div', { className: 'caption muted', text: 'One row per layer over every position seen (left: the prompt, image tiles shaded in turn above).' });
const cachePane = h('section', { className: 'pane cache-pane' }, h('h2', { text: 'KV cache' }), dl,
  h('h3', { text: 'Which positions each layer kept' }), strips, stripsLegend, stripsCaption,
  h('h3', { text: 'Cache size' }), growth, growthLegend, growthCaption);
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
const pasteBtn = ui.button('Paste Image', { id: 'paste', secondary: true, title: 'Ask about the image in your clipboard (or press Ctrl+V here)' });
stopBtn.disabled = true;
const footer = h('footer', { className: 'ask' }, question.el, h('div', { className: 'buttons' }, askBtn, stopBtn, pasteBtn, logBtn, ring));

const conversation = h('section', { className: 'conversation' }, transcript, status);
app.append(header, keepWarning, summary, h('div', { className: 'layout' }, imagePane, cachePane, conversation), footer);
app.removeAttribute('aria-busy');

// ---- state ----
let importance: ImportanceMap | null = null;
let kept: KeptPositions | null = null;
let lastStats: CacheStats | null = null;
let elastic = { variant: 'answers' as ElasticVariant, importance: 'mean' as Importance, merge: false };
const history: GrowthPoint[] = [];
let busy = false;
const turnEls = new Map<number, { article: HTMLElement; answer: HTMLElement; meta: HTMLElement }>();

function redrawHeat(): void {
  if (!(img.complete && img.naturalWidth > 0)) return;
  const policyNow = lastStats?.policy ?? applied.policy;
  const keepNow = lastStats?.keep ?? applied.keep;
  heatReason.textContent = policyReason(policyNow, keepNow, elastic.importance, elastic.merge, elastic.variant);
  if (!heatToggle.checked || !importance) return drawCells(heat, img, null, keptColor);
  if (heatMode.value === 'rank') {
    const cells = rankingCells(importance, kept, policyNow, elastic.importance);
    heatNote.textContent = cells
      ? `Bright: what ${policyNow} ranks highest (${policyNow === 'elastic' && elastic.importance === 'mean' ? 'attention per query that could see the token' : 'attention received'}).`
      : `${policyNow} ranks nothing by content: no ranking to show.`;
    return drawCells(heat, img, cells, rankColor);
  }
  if (!kept) {
    heatNote.textContent = 'What the cache kept: after the first cache report.';
    return drawCells(heat, img, null, keptColor);
  }
  const cells = keptCells(importance, kept);
  const all = cells.filter((c) => c.v === 1).length;
  const none = cells.filter((c) => c.v === 0).length;
  heatNote.textContent = `Clear: kept by every layer (${all} of ${plural(cells.length, 'image token')}); dark: evicted by every layer (${none}).`;
  drawCells(heat, img, cells, keptColor);
}
img.addEventListener('load', redrawHeat);
img.addEventListener('error', () => {
  imageError.textContent = 'This image cannot be displayed (the file may be corrupt or in an unsupported format).';
  imageError.hidden = false;
  figure.classList.add('broken');
});
heatToggle.onChange(redrawHeat);
heatMode.onChange(redrawHeat);
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
  warnKeep(p, k);
}

/** A budget below the measured safe range spoils answers: say so where the budget is chosen. */
function warnKeep(p: string, k: number): void {
  const low = p !== 'full' && k < SAFE_KEEP_MIN;
  keepWarning.hidden = !low;
  keepWarning.textContent = low
    ? `Keep ${Math.round(k * 100)}% is below the measured safe range (at least ${Math.round(SAFE_KEEP_MIN * 100)}%): answers may be wrong or cut short.`
    : '';
}

function showStats(s: CacheStats, k?: KeptPositions): void {
  lastStats = s;
  const n = cacheNumbers(s);
  stats.policy.dd.textContent = `${s.policy}, keep ${s.keep}`;
  stats.tokens.dd.textContent = String(n.seen);
  stats.kept.dd.textContent = String(n.kept);
  stats.budget.dd.textContent = String(n.budget);
  stats.bytes.dd.textContent = `${fmtBytes(s.bytes)} of ${fmtBytes(s.fullBytes)} (${n.pct}%) · ${s.location}`;
  stats.merged.dd.textContent = String(n.mergedPerLayer);
  stats.evicted.dd.textContent = String(n.evictedPerLayer);
  summary.textContent = `Cache: ${s.policy}, keep ${Math.round(s.keep * 100)}% · ${n.kept} of ${plural(n.seen, 'token')} kept per layer (budget ${n.budget}) · ${n.pct}% of the bytes`;
  if (k) {
    kept = k;
    const c = layerCounts(k);
    const range = (f: (l: (typeof c)[number]) => { kept: number; total: number }) => {
      const v = c.map((l) => f(l).kept);
      const lo = Math.min(...v);
      const hi = Math.max(...v);
      return `${lo === hi ? lo : `${lo}-${hi}`} of ${f(c[0]).total}`;
    };
    stats.image.dd.textContent = `${range((l) => l.image)} per layer`;
    stats.text.dd.textContent = `${range((l) => l.text)} per layer`;
    const tileTokens = importance?.tiles[0] ? importance.tiles[0].values.length : 0;
    renderKeptStrips(strips, k, tileTokens);
    const generated = [...k.kinds].filter((ch) => ch === 'g').length;
    const last = history[history.length - 1];
    if (!last || last.generated !== generated || last.entries !== n.kept) history.push({ generated, entries: n.kept, seen: n.seen, budget: n.budget });
    renderGrowth(growth, history);
    redrawHeat();
  }
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

/**
 * A turn's warnings beside its answer. unfamiliar-image: the worker's line, and the way out: Download Model, or
 * Use for each model already downloaded (the extension maps the offer's id back to its folder).
 */
function showWarnings(turn: number, warnings: AskWarning[], offers: { id: number; label: string }[]): void {
  const t = turnEls.get(turn);
  if (!t) return;
  for (const w of warnings) {
    const box = h('div', { className: `warning ${w.code}`, id: `warning-${turn}` });
    box.setAttribute('role', 'status');
    box.dataset.code = w.code;
    box.appendChild(h('div', { className: 'warning-text', text: w.message }));
    if (w.code === 'unfamiliar-image') {
      box.appendChild(h('div', { className: 'warning-text', text: 'A larger model answers such images.' }));
      const row = h('div', { className: 'warning-actions' });
      const download = ui.button('Download Model', { id: `download-model-${turn}`, title: 'Elastic VLM: Download Model (a SmolVLM)' });
      download.addEventListener('click', () => send({ type: 'downloadModel' }));
      row.appendChild(download);
      for (const o of offers) {
        const use = ui.button(`Use ${o.label}`, { id: `use-model-${turn}-${o.id}`, secondary: true, title: 'Switch to this downloaded model for the next question' });
        use.addEventListener('click', () => {
          send({ type: 'useModel', id: o.id });
          status.textContent = `Switching to ${o.label}: ask again to get its answer.`;
        });
        row.appendChild(use);
      }
      box.appendChild(row);
    }
    t.answer.after(box);
  }
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
      if (m.importance) elastic = { variant: m.variant ?? 'answers', importance: m.importance, merge: !!m.merge };
      title.textContent = m.image.name;
      img.alt = `The image ${m.image.path}`;
      img.src = m.image.src;
      modelLabel.textContent = m.model;
      setCacheControls(m.policy, m.keep);
      return;
    case 'settings':
      if (m.importance) elastic = { variant: m.variant ?? 'answers', importance: m.importance, merge: !!m.merge };
      setCacheControls(m.policy, m.keep);
      modelLabel.textContent = m.model;
      status.textContent = `Cache: ${m.policy}, keep ${m.keep} (applies to the next question).`;
      return;
    case 'busy':
      setBusy(m.busy);
      return;
    case 'turn':
      if (!m.followUp) history.length = 0;
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
      // The tokenizer's space before the first word is not part of the answer.
      const text = t.answer.textContent ? m.text : m.text.replace(/^\s+/, '');
      if (text) t.answer.appendChild(document.createTextNode(text));
      t.meta.textContent = 'generating…';
      return;
    }
    case 'stats':
      showStats(m.stats, m.kept);
      return;
    case 'importance':
      importance = m.map;
      redrawHeat();
      return;
    case 'done': {
      const t = finishTurn(m.turn);
      const r = m.result;
      const why = r.stopReason === 'cancelled' ? 'stopped' : r.stopReason === 'length' ? 'token limit reached' : 'done';
      const speed = r.timings.decodeTokensPerSecond ? `, ${r.timings.decodeTokensPerSecond.toFixed(1)} tok/s` : '';
      const prompt = r.promptTokens ? `, prompt ${plural(r.promptTokens, 'token')} (${r.imageTokens} image)` : '';
      if (t) {
        t.meta.textContent = `${why}: ${plural(r.generatedTokens, 'token')}${prompt}${speed}${r.executionProvider ? ` · ${r.executionProvider}` : ''}`;
        t.article.classList.add(r.stopReason === 'cancelled' ? 'stopped' : 'complete');
      }
      status.textContent = r.stopReason === 'cancelled' ? 'Stopped.' : 'Answer complete.';
      return;
    }
    case 'warnings':
      showWarnings(m.turn, m.warnings, m.offers);
      return;
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
// Paste: the image from the user's own clipboard (the paste event works in desktop and browser VS Code alike).
pasteBtn.addEventListener('click', () => {
  status.textContent = 'Press Ctrl+V (Cmd+V on macOS) to ask about the image in your clipboard.';
  pasteBtn.focus();
});
document.addEventListener('paste', (e: ClipboardEvent) => {
  const item = Array.from(e.clipboardData?.items ?? []).find((i) => i.kind === 'file' && i.type.startsWith('image/'));
  if (!item) return; // text pastes into the question box as usual
  e.preventDefault();
  const file = item.getAsFile();
  if (!file || !PASTE_MIMES.includes(file.type)) {
    status.textContent = `The clipboard holds a ${item.type} image; png, jpeg, webp, gif and bmp can be asked about.`;
    return;
  }
  void file.arrayBuffer().then((buf: ArrayBuffer) => {
    const b = new Uint8Array(buf);
    let bin = '';
    for (let i = 0; i < b.length; i += 0x8000) bin += String.fromCharCode(...b.subarray(i, i + 0x8000));
    send({ type: 'pasteImage', mime: file.type, data: btoa(bin) });
    status.textContent = 'Asking about the pasted image in a new panel…';
  });
});
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
  warnKeep(policy.value, rounded);
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
