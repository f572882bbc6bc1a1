// The panel's cache view: which prompt positions each layer kept (image tiles and text apart), the cache size
// against the tokens generated with the budget line, and the heat map of what the active policy kept and why.
// The compute functions have no DOM and are unit-tested; the render functions draw them.
import type { CacheStats, ElasticVariant, Importance, ImportanceMap, KeptPositions } from '../runtime/protocol.js';

const SVG = 'http://www.w3.org/2000/svg';

export const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** Runs of equal (kind, state) in one layer's row: what the strip draws, one rect per run. */
export function runs(kinds: string, states: string): { start: number; length: number; kind: string; state: string }[] {
  const out: { start: number; length: number; kind: string; state: string }[] = [];
  for (let p = 0; p < states.length; p++) {
    const kind = kinds[p] ?? 't';
    const state = states[p];
    const last = out[out.length - 1];
    if (last && last.kind === kind && last.state === state) last.length++;
    else out.push({ start: p, length: 1, kind, state });
  }
  return out;
}

export interface LayerCounts {
  image: { kept: number; total: number };
  text: { kept: number; total: number };
  answer: { kept: number; total: number };
}

/** Per layer: how many image, prompt-text and answer positions it still holds (kept or merged). */
export function layerCounts(k: KeptPositions): LayerCounts[] {
  return k.layers.map((states) => {
    const c: LayerCounts = { image: { kept: 0, total: 0 }, text: { kept: 0, total: 0 }, answer: { kept: 0, total: 0 } };
    for (let p = 0; p < states.length; p++) {
      const bucket = k.kinds[p] === 'i' ? c.image : k.kinds[p] === 'g' ? c.answer : c.text;
      bucket.total++;
      if (states[p] !== '-') bucket.kept++;
    }
    return c;
  });
}

/** The numbers of the cache panel, all in entries per layer (the policies keep the same count on every layer). */
export function cacheNumbers(s: CacheStats): { kept: number; seen: number; budget: number; evictedPerLayer: number; mergedPerLayer: number; pct: number } {
  const layers = Math.max(1, s.perLayerLength.length);
  return {
    kept: s.perLayerLength.length ? Math.max(...s.perLayerLength) : 0,
    seen: s.tokensSeen,
    budget: s.budget,
    // the worker counts evictions and merges over all layers
    evictedPerLayer: Math.round(s.evicted / layers),
    mergedPerLayer: Math.round(s.merged / layers),
    pct: s.fullBytes > 0 ? Math.round((100 * s.bytes) / s.fullBytes) : 100,
  };
}

/** Heat map cells with absolute values 0..1, in fractions of the image. */
export interface Cell { x: number; y: number; w: number; h: number; v: number }

/** Where each image token sits in the image (tiles of the ImportanceMap, the split tiles or an unsplit global). */
function tokenCells(map: ImportanceMap): ({ x: number; y: number; w: number; h: number } | null)[] {
  const local = map.tiles.some((t) => !t.global);
  const nr = local ? Math.max(1, map.rows) : 1;
  const nc = local ? Math.max(1, map.cols) : 1;
  const out: ({ x: number; y: number; w: number; h: number } | null)[] = [];
  for (const t of map.tiles) {
    const g = Math.max(1, t.gridSide);
    for (let k = 0; k < g * g; k++) {
      // the global tile of a split image repeats the whole image at low resolution: not drawn over the tiles
      if (local && t.global) {
        out.push(null);
        continue;
      }
      const i = Math.floor(k / g);
      const j = k % g;
      out.push({ x: t.col / nc + j / nc / g, y: t.row / nr + i / nr / g, w: 1 / nc / g, h: 1 / nr / g });
    }
  }
  return out;
}

/** Fraction of the layers that still hold each image token, drawn at its place: what the policy kept. */
export function keptCells(map: ImportanceMap, k: KeptPositions): Cell[] {
  const places = tokenCells(map);
  const imagePositions: number[] = [];
  for (let p = 0; p < k.kinds.length; p++) if (k.kinds[p] === 'i') imagePositions.push(p);
  const layers = Math.max(1, k.layers.length);
  const cells: Cell[] = [];
  imagePositions.forEach((p, idx) => {
    const place = places[idx];
    if (!place) return;
    let held = 0;
    for (const l of k.layers) if (l[p] !== '-') held++;
    cells.push({ ...place, v: held / layers });
  });
  return cells;
}

/**
 * What the policy ranks the image tokens by, scaled 0..1: Elastic 'mean' divides each column sum by the queries
 * that could see the key (the prompt after it); Elastic 'sum' and H2O use the column sums as they are (early tokens
 * collect more: that bias is what they act on). StreamingLLM and the full cache rank nothing (null).
 */
export function rankingCells(map: ImportanceMap, k: KeptPositions | null, policy: string, importance: Importance): Cell[] | null {
  if (policy === 'streaming' || policy === 'full') return null;
  const places = tokenCells(map);
  const imagePositions: number[] = [];
  if (k) for (let p = 0; p < k.kinds.length; p++) if (k.kinds[p] === 'i') imagePositions.push(p);
  const values: number[] = [];
  let idx = 0;
  for (const t of map.tiles) {
    for (const v of t.values) {
      const p = imagePositions[idx++];
      values.push(policy === 'elastic' && importance === 'mean' && k && p !== undefined ? v / Math.max(1, k.firstPrompt - p) : v);
    }
  }
  const shown = values.filter((_, i) => places[i]);
  const lo = Math.min(...shown);
  const hi = Math.max(...shown);
  const span = hi > lo ? hi - lo : 1;
  const cells: Cell[] = [];
  values.forEach((v, i) => {
    const place = places[i];
    if (place && Number.isFinite(v)) cells.push({ ...place, v: (v - lo) / span });
  });
  return cells;
}

/** One sentence: why the active policy kept what it kept. */
export function policyReason(policy: string, keep: number, importance: Importance, merge: boolean, variant: ElasticVariant = 'answers'): string {
  const pct = `${Math.round(keep * 100)}%`;
  switch (policy) {
    case 'elastic':
      if (variant === 'answers') {
        return `Elastic Cache keeps the ${pct} of the prompt your question attends to most (pooled over neighbouring patches), always the question ` +
          'and the global image, merges dropped image entries into a kept neighbour, and while answering evicts the entry with the least attention.';
      }
      return `Elastic Cache keeps the ${pct} of the prompt with the most attention ${importance === 'mean' ? 'per query that could see it' : 'in total (column sums: early tokens collect more)'}` +
        `${merge ? ', merging the rest into their nearest kept entry' : ', evicting the rest'}; while answering it evicts one entry at a fixed offset.`;
    case 'h2o':
      return `H2O keeps the heavy hitters (most attention received so far) and a recent window, ${pct} of the tokens seen, re-ranked at every step.`;
    case 'snapkv':
      return `SnapKV keeps the ${pct} of the prompt its last queries attend to most (pooled over neighbours), once after the prompt; while answering it evicts the oldest answer entry.`;
    case 'streaming':
      return `StreamingLLM keeps the first tokens (attention sinks) and the most recent window, ${pct} of the tokens seen: by position only, not by content.`;
    default:
      return 'Full cache: every entry is kept.';
  }
}

// ---- rendering ----

function el<K extends keyof SVGElementTagNameMap>(name: K, attrs: Record<string, string | number>): SVGElementTagNameMap[K] {
  const e = document.createElementNS(SVG, name);
  for (const [key, v] of Object.entries(attrs)) e.setAttribute(key, String(v));
  return e;
}

const KIND_NAME: Record<string, string> = { i: 'image', t: 'text', g: 'answer' };
const STATE_NAME: Record<string, string> = { k: 'kept', m: 'merged', '-': 'evicted' };

/** One row per layer over all positions seen; a band on top tells image tiles, text and answer apart. */
export function renderKeptStrips(svg: SVGSVGElement, k: KeptPositions, tileTokens: number): void {
  const n = Math.max(1, k.kinds.length);
  const rowH = 10;
  const gap = 3;
  const band = 8;
  const H = band + gap + k.layers.length * (rowH + gap);
  svg.setAttribute('viewBox', `0 0 ${n} ${H}`);
  svg.setAttribute('preserveAspectRatio', 'none');
  svg.style.height = `${Math.max(40, k.layers.length * 14 + 16)}px`;
  svg.replaceChildren();
  // the band: image tiles in alternating shades, text, answer
  let imageIdx = 0;
  for (const r of runs(k.kinds, k.kinds.replace(/./g, 'k'))) {
    if (r.kind === 'i' && tileTokens > 0) {
      for (let p = r.start; p < r.start + r.length; p++, imageIdx++) {
        svg.appendChild(el('rect', { class: `band i tile${Math.floor(imageIdx / tileTokens) % 2}`, x: p, y: 0, width: 1.02, height: band }));
      }
    } else {
      svg.appendChild(el('rect', { class: `band ${r.kind}`, x: r.start, y: 0, width: r.length, height: band }));
    }
  }
  k.layers.forEach((states, i) => {
    const y = band + gap + i * (rowH + gap);
    const g = el('g', {});
    for (const r of runs(k.kinds, states)) {
      g.appendChild(el('rect', { class: `pos ${r.kind} ${r.state === '-' ? 'evicted' : r.state === 'm' ? 'merged' : 'kept'}`, x: r.start, y, width: r.length, height: rowH }));
    }
    const t = el('title', {});
    const held = [...states].filter((c) => c !== '-').length;
    t.textContent = `layer ${i}: holds ${held} of ${plural(states.length, 'position')}`;
    g.appendChild(t);
    svg.appendChild(g);
  });
  const c = layerCounts(k);
  svg.setAttribute('aria-label', `Kept positions per layer: ${c.map((l, i) => `layer ${i} image ${l.image.kept}/${l.image.total}, text ${l.text.kept}/${l.text.total}`).join('; ')}`);
}

export interface GrowthPoint { generated: number; entries: number; seen: number; budget: number }

/** Cache entries per layer against the tokens generated, with the tokens seen (a full cache) and the budget. */
export function renderGrowth(svg: SVGSVGElement, pts: GrowthPoint[]): void {
  const W = 300;
  const H = 100;
  const padL = 30;
  const padB = 14;
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.replaceChildren();
  if (!pts.length) return;
  const maxX = Math.max(1, ...pts.map((p) => p.generated));
  const maxY = Math.max(1, ...pts.map((p) => Math.max(p.seen, p.entries, p.budget)));
  const x = (v: number) => padL + (v / maxX) * (W - padL - 4);
  const y = (v: number) => H - padB - (v / maxY) * (H - padB - 4);
  const line = (cls: string, f: (p: GrowthPoint) => number) =>
    svg.appendChild(el('polyline', { class: cls, points: pts.map((p) => `${x(p.generated).toFixed(1)},${y(f(p)).toFixed(1)}`).join(' ') }));
  svg.appendChild(el('line', { class: 'axis', x1: padL, x2: W - 4, y1: H - padB, y2: H - padB }));
  svg.appendChild(el('line', { class: 'axis', x1: padL, x2: padL, y1: 4, y2: H - padB }));
  for (const [v, anchor] of [[0, 'start'], [maxX, 'end']] as const) {
    const t = el('text', { class: 'tick', x: x(v), y: H - 2, 'text-anchor': anchor });
    t.textContent = String(v);
    svg.appendChild(t);
  }
  for (const v of [0, maxY]) {
    const t = el('text', { class: 'tick', x: padL - 3, y: y(v) + 3, 'text-anchor': 'end' });
    t.textContent = String(v);
    svg.appendChild(t);
  }
  line('seen', (p) => p.seen);
  line('budget', (p) => p.budget);
  line('kept', (p) => p.entries);
  const last = pts[pts.length - 1];
  svg.setAttribute('aria-label', `Cache size: ${last.entries} entries per layer after ${plural(last.generated, 'generated token')}; ${last.seen} tokens seen; budget ${last.budget}`);
}

/** Draws cells (v 0..1, absolute) over the image. */
export function drawCells(canvas: HTMLCanvasElement, img: HTMLImageElement, cells: Cell[] | null, color: (v: number) => string): void {
  const w = img.clientWidth;
  const h = img.clientHeight;
  const dpr = window.devicePixelRatio || 1;
  canvas.width = Math.max(1, Math.round(w * dpr));
  canvas.height = Math.max(1, Math.round(h * dpr));
  canvas.style.width = `${w}px`;
  canvas.style.height = `${h}px`;
  const ctx = canvas.getContext('2d');
  if (!ctx) return;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (!cells) return;
  for (const c of cells) {
    ctx.fillStyle = color(c.v);
    ctx.fillRect(c.x * canvas.width, c.y * canvas.height, Math.ceil(c.w * canvas.width), Math.ceil(c.h * canvas.height));
  }
}

/** Kept: evicted everywhere is dimmed dark, kept by every layer is clear. */
export const keptColor = (v: number) => `rgba(20,20,30,${(0.75 * (1 - v)).toFixed(3)})`;
/** Ranking: low is transparent blue, high is opaque yellow/red. */
export const rankColor = (v: number) => {
  const r = Math.round(255 * Math.min(1, v * 2));
  const g = Math.round(255 * Math.min(1, 2 - v * 2) * (v > 0.5 ? 1 : v * 2));
  const b = Math.round(255 * Math.max(0, 1 - v * 3));
  return `rgba(${r},${g},${b},${(0.15 + 0.5 * v).toFixed(3)})`;
};
