// The cost of Elastic's key search at SmolVLM-256M size (docs/elastic-cache.md, "The key search"): 30 layers, 3 KV
// heads x 64, a 1,138-token prompt with 1,088 image tokens, random keys; the reference loop against onnxruntime.
//   node --import tsx bench/nearest.ts
import { similarMergeAssign, similarMergeAssignFast } from '../runtime/cache/policies/elasticQuestion.js';

const LAYERS = 30, HEADS = 3, HEAD_DIM = 64, LEN = 1138, IMAGE = 1088;

async function main(): Promise<void> {
  const image = new Uint8Array(LEN).fill(1, 4, 4 + IMAGE);
  let r = 1;
  const keys = Float32Array.from({ length: HEADS * LEN * HEAD_DIM }, () => ((r = (r * 1664525 + 1013904223) >>> 0) / 2 ** 32) - 0.5);
  for (const keep of [0.5, 0.3, 0.2]) {
    // the sinks and the text after the image kept, the rest of the budget spread over the image
    const budget = Math.round(keep * LEN);
    const mask = new Uint8Array(LEN).fill(1, 0, 4).fill(1, 4 + IMAGE);
    const free = budget - 4 - (LEN - 4 - IMAGE);
    for (let k = 0; k < free; k++) mask[4 + Math.floor((k * IMAGE) / free)] = 1;
    let t = performance.now();
    for (let l = 0; l < LAYERS; l++) similarMergeAssign(mask, image, keys, HEADS, HEAD_DIM);
    const loop = performance.now() - t;
    await similarMergeAssignFast(mask, image, keys, HEADS, HEAD_DIM); // the session is made once per process
    t = performance.now();
    for (let l = 0; l < LAYERS; l++) await similarMergeAssignFast(mask, image, keys, HEADS, HEAD_DIM);
    console.log(`keep ${keep}: ${LAYERS} layers, loop ${loop.toFixed(0)} ms, onnxruntime ${(performance.now() - t).toFixed(0)} ms`);
  }
}

void main();
