// The importance heat map over the image: the prefill importance of each image token drawn at its place.
// Tiles come row-major (rows x cols of the split image), then the global image; each has gridSide x gridSide cells.
// The split tiles cover the whole image, so they are drawn; the global tile is drawn only for an unsplit image.
import type { ImportanceMap } from '../runtime/protocol.js';

/** Cells to draw, in fractions of the image's width and height, with normalized values 0..1. */
export function heatCells(map: ImportanceMap): { x: number; y: number; w: number; h: number; v: number }[] {
  const local = map.tiles.filter((t) => !t.global);
  const rows = Math.max(1, map.rows);
  const cols = Math.max(1, map.cols);
  const tiles = local.length ? local : map.tiles.filter((t) => t.global).slice(0, 1).map((t) => ({ ...t, row: 0, col: 0 }));
  const nr = local.length ? rows : 1;
  const nc = local.length ? cols : 1;
  const cells: { x: number; y: number; w: number; h: number; v: number }[] = [];
  let lo = Infinity;
  let hi = -Infinity;
  for (const t of tiles) for (const v of t.values) if (Number.isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  const span = hi > lo ? hi - lo : 1;
  for (const t of tiles) {
    const g = Math.max(1, t.gridSide);
    const tw = 1 / nc / g;
    const th = 1 / nr / g;
    for (let i = 0; i < g; i++) {
      for (let j = 0; j < g; j++) {
        const v = t.values[i * g + j];
        if (!Number.isFinite(v)) continue;
        cells.push({ x: t.col / nc + j * tw, y: t.row / nr + i * th, w: tw, h: th, v: (v - lo) / span });
      }
    }
  }
  return cells;
}

export function drawHeatmap(canvas: HTMLCanvasElement, img: HTMLImageElement, map: ImportanceMap | null, visible: boolean): void {
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
  if (!map || !visible) return;
  for (const c of heatCells(map)) {
    // transparent blue (unimportant) -> opaque yellow/red (important)
    const v = c.v;
    const r = Math.round(255 * Math.min(1, v * 2));
    const g = Math.round(255 * Math.min(1, 2 - v * 2) * (v > 0.5 ? 1 : v * 2));
    const b = Math.round(255 * Math.max(0, 1 - v * 3));
    ctx.fillStyle = `rgba(${r},${g},${b},${(0.15 + 0.5 * v).toFixed(3)})`;
    ctx.fillRect(c.x * canvas.width, c.y * canvas.height, Math.ceil(c.w * canvas.width), Math.ceil(c.h * canvas.height));
  }
}
