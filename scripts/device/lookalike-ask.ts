// One model folder, one device: loads it once and asks the same question under every policy (the image's vision
// features are reused across policies), printing one JSON line per policy with the timings, the cache lengths, the
// process's peak RSS and the first logits (for a cross-dtype sanity check). Bundled into the device carry.
// Usage: node lookalike-ask.js MODEL_DIR DTYPE DEVICE IMAGE MAX_NEW_TOKENS
import { readFileSync } from 'node:fs';
import sharp from 'sharp';
import { Vlm } from '../../runtime/vlm.js';

/** The process's peak resident set (VmHWM): ORT's runs block the event loop, so sampling would miss the peak. */
const peakRssMB = () => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0) / 1024;
import type { ImageDetail, PolicyName } from '../../runtime/protocol.js';

async function main() {
  const [dir, dtype, device, image, maxNew] = process.argv.slice(2);
  const vlm = await Vlm.load({ modelDir: dir, dtype, device: device as 'cpu' | 'webgpu' });
  const detail = (process.env.DETAIL ?? 'full') as ImageDetail;
  const policies = (process.env.POLICIES ?? 'full,elastic,h2o,streaming').split(',') as PolicyName[];
  if (process.env.WARMUP === '1') {
    // A warm worker: shaders compiled and arenas grown by an image of the same size, whose bytes differ (mirrored),
    // so that the measured ask still runs the vision encoder.
    const mirrored = await sharp(image).flop().png().toBuffer();
    const t0 = performance.now();
    await vlm.conversation().ask(mirrored, 'Describe this image.', { cache: { policy: 'full', keep: 1 }, generate: { maxNewTokens: 1 }, detail });
    console.log(JSON.stringify({ dir, dtype, device, detail, warmup: true, wallMs: performance.now() - t0 }));
  }
  for (const policy of policies) {
    const keep = policy === 'full' ? 1 : 0.3;
    const t0 = performance.now();
    let firstLogits: number[] | undefined;
    let lastLogits: number[] | undefined;
    try {
      const r = await vlm.conversation().ask(image, 'Describe this image.', {
        cache: { policy, keep }, generate: { maxNewTokens: Number(maxNew), ignoreEos: true }, detail,
      }, { onForward: (k, l) => { if (k === 'prefill') firstLogits = Array.from(l.subarray(0, 8)); else lastLogits = Array.from(l.subarray(0, 8)); } });
      console.log(JSON.stringify({ dir, dtype, device, detail, provider: vlm.provider, fallback: vlm.fallbackReason, policy, keep,
        timings: r.timings, wallMs: performance.now() - t0, promptTokens: r.promptTokens, generated: r.generatedTokens,
        tokensSeen: r.cache.tokensSeen, perLayerLength: r.cache.perLayerLength[0], layers: r.cache.perLayerLength.length,
        kvBytes: r.cache.bytes, peakRssMB: Math.round(peakRssMB()), scores: !!vlm.scoreOutputs, firstLogits, lastLogits }));
    } catch (e) {
      console.log(JSON.stringify({ dir, dtype, device, detail, policy, error: (e as Error).message.split('\n')[0] }));
    }
  }
  await vlm.release();
}
main().catch((e) => { console.log(JSON.stringify({ argv: process.argv.slice(2), error: (e as Error).message.split('\n')[0] })); process.exit(1); });
