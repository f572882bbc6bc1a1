// Image detail: how finely the image is tiled before the vision encoder sees it. Fewer tiles mean fewer image
// tokens, a faster first token and a smaller cache; the model's own setting (`full`) reads small text best.
import type { ImageDetail } from '../protocol.js';
import type { ImageProcessorConfig } from './modelFolder.js';

/** Most tiles along the image's longer side at each level (`full`: as many as the model's longest_edge allows). */
const TILES_ON_LONG_SIDE: Record<Exclude<ImageDetail, 'global' | 'full'>, number> = { low: 2, medium: 3 };

/** The processor settings for a detail level: `global` is the whole image in one tile, no split. */
export function detailConfig(cfg: ImageProcessorConfig, detail: ImageDetail): ImageProcessorConfig {
  if (detail === 'full') return cfg;
  if (detail === 'global') return { ...cfg, doImageSplitting: false };
  return { ...cfg, longestEdge: Math.min(cfg.longestEdge, TILES_ON_LONG_SIDE[detail] * cfg.tileSize) };
}
