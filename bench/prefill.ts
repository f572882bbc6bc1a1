// What the importance outputs and the prefill compaction cost: the same prompt prefilled with the stock decoder
// and the full cache, and with the rewritten decoder and elastic compaction (fastest of several alternating runs in one
// warm process).
import { Vlm } from '../runtime/vlm.js';
import { runAsChild } from './child.js';

export interface PrefillCost {
  plainPrefillMs: number;
  scoredPrefillMs: number;
  share: number;
}


export async function prefillCost(modelDir: string, image: string, dtype?: string, keep = 0.2, runs = 15): Promise<PrefillCost> {
  const plain = await Vlm.load({ modelDir, dtype, device: 'cpu', scores: false });
  const scored = await Vlm.load({ modelDir, dtype, device: 'cpu' });
  const a: number[] = [];
  const b: number[] = [];
  for (let i = 0; i < runs; i++) {
    // alternate, so drift in the machine's load hits both alike
    a.push((await plain.conversation().ask(image, 'Describe this image.', { cache: { policy: 'full', keep: 1 }, generate: { maxNewTokens: 1 } })).timings.prefillMs);
    b.push((await scored.conversation().ask(image, 'Describe this image.', { cache: { policy: 'elastic', keep }, generate: { maxNewTokens: 1 } })).timings.prefillMs);
  }
  await plain.release();
  await scored.release();
  // The minimum: other work on a shared machine only ever adds time.
  const p = Math.min(...a);
  const s = Math.min(...b);
  return { plainPrefillMs: p, scoredPrefillMs: s, share: (s - p) / p };
}

if (require.main === module) runAsChild((spec: { modelDir: string; image: string; dtype?: string }) => prefillCost(spec.modelDir, spec.image, spec.dtype));
