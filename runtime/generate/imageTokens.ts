// The image's place in the prompt: vision features spliced into the <image> rows of the embeddings, and the
// prefill importance of those rows mapped back onto the tiles for the heat map.
import type { Tensor } from 'onnxruntime-node';
import { BadInputError } from '../errors.js';
import type { ImportanceMap } from '../protocol.js';

/** The tiles of an image in the prompt: rows x cols, then the global image (0 x 0: one unsplit frame). */
export interface ImageLayout {
  rows: number;
  cols: number;
  numImages: number;
}

const imagePositions = (ids: number[], imageTokenId: number): number[] => {
  const positions: number[] = [];
  ids.forEach((id, i) => id === imageTokenId && positions.push(i));
  return positions;
};

/** Overwrites, in order, the embedding rows at <image> positions with the vision encoder's features. */
export function spliceImageFeatures(embeds: Tensor, features: Tensor, ids: number[], imageTokenId: number): number {
  const hidden = embeds.dims[2];
  const featHidden = features.dims[features.dims.length - 1];
  if (featHidden !== hidden) {
    throw new BadInputError(`vision encoder features have width ${featHidden} but the text embeddings ${hidden} (config and graphs disagree)`);
  }
  const positions = imagePositions(ids, imageTokenId);
  const rows = features.data.length / hidden;
  if (rows !== positions.length) {
    throw new BadInputError(`the prompt has ${positions.length} image tokens but the vision encoder gave ${rows} feature rows (image_seq_len disagrees with the graph)`);
  }
  const dst = embeds.data as Float32Array | Uint16Array;
  const src = features.data as Float32Array | Uint16Array;
  if (dst.constructor !== src.constructor) throw new BadInputError('vision features and text embeddings have different dtypes');
  positions.forEach((p, r) => dst.set(src.subarray(r * hidden, (r + 1) * hidden), p * hidden));
  return positions.length;
}

/** Maps the prefill importance of image tokens (averaged over layers) back to tiles and patch cells. */
export function importanceMap(scores: Float32Array[], ids: number[], imageTokenId: number, pre: ImageLayout, seqLen: number): ImportanceMap {
  const positions = imagePositions(ids, imageTokenId);
  const side = Math.round(Math.sqrt(seqLen));
  const tiles: ImportanceMap['tiles'] = [];
  const split = pre.rows > 0;
  for (let t = 0; t < pre.numImages; t++) {
    const values: number[] = [];
    for (let k = 0; k < seqLen; k++) {
      const p = positions[t * seqLen + k];
      let v = 0;
      for (const layer of scores) v += layer[p] ?? 0;
      values.push(v / scores.length);
    }
    const global = !split || t === pre.numImages - 1;
    tiles.push({ row: global ? 0 : Math.floor(t / pre.cols), col: global ? 0 : t % pre.cols, global, gridSide: side, values });
  }
  return { tiles, rows: pre.rows, cols: pre.cols };
}
