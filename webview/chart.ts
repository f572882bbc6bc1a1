// The cache occupancy chart: per layer, kept entries (bar) against tokens seen (outline) and the budget (line).
import type { CacheStats } from '../runtime/protocol.js';

const SVG = 'http://www.w3.org/2000/svg';

function el<K extends keyof SVGElementTagNameMap>(name: K, attrs: Record<string, string | number>): SVGElementTagNameMap[K] {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

export function renderCacheChart(svg: SVGSVGElement, s: CacheStats): void {
  const layers = s.perLayerLength.length;
  const W = Math.max(240, layers * 10);
  const H = 90;
  const top = Math.max(1, s.tokensSeen, ...s.perLayerLength);
  const y = (v: number) => H - (v / top) * H;
  svg.setAttribute('viewBox', `0 0 ${W} ${H + 2}`);
  svg.setAttribute('preserveAspectRatio', 'none');
  svg.replaceChildren();
  const bw = W / Math.max(1, layers);
  s.perLayerLength.forEach((kept, i) => {
    const g = el('g', {});
    g.appendChild(el('rect', { class: 'seen', x: i * bw + 1, y: y(s.tokensSeen), width: Math.max(1, bw - 2), height: H - y(s.tokensSeen) }));
    g.appendChild(el('rect', { class: 'kept', x: i * bw + 1, y: y(kept), width: Math.max(1, bw - 2), height: H - y(kept) }));
    const t = el('title', {});
    t.textContent = `layer ${i}: ${kept} kept of ${s.tokensSeen} tokens seen`;
    g.appendChild(t);
    svg.appendChild(g);
  });
  if (s.budget > 0 && s.budget < top * 1.001) {
    svg.appendChild(el('line', { class: 'budget', x1: 0, x2: W, y1: y(s.budget), y2: y(s.budget) }));
  }
  const kept = layers ? Math.max(...s.perLayerLength) : 0;
  svg.setAttribute('aria-label', `Cache: ${kept} entries kept per layer (max) of ${s.tokensSeen} tokens seen, budget ${s.budget}, ${layers} layers`);
}
