// `auto`'s device probe on one model folder, checked against a real decode (bundled into the device carry):
//   1. load with device auto and a fresh cache folder: the probe runs (its numbers, choice, cost, load time);
//   2. load again: the cached answer, no probe (load time);
//   3. the same question on each device named (full cache, a fixed number of tokens): the real decode speeds,
//      so the probe's choice can be checked against what a user would see.
// One JSON line per step. Usage: node probe-auto.js MODEL_DIR CACHE_DIR IMAGE MAX_NEW_TOKENS [no-scores]
import { Vlm } from '../../runtime/vlm.js';
import type { Device } from '../../runtime/protocol.js';

async function load(dir: string, device: Device, cacheDir: string, scores: boolean) {
  const lines: string[] = [];
  const t0 = performance.now();
  const vlm = await Vlm.load({ modelDir: dir, device, cacheDir, scores, log: (l) => lines.push(l) });
  return { vlm, ms: performance.now() - t0, lines };
}

async function main() {
  const [dir, cacheDir, image, maxNew, flag] = process.argv.slice(2);
  const scores = flag !== 'no-scores';
  for (const step of ['probe', 'cached'] as const) {
    const { vlm, ms, lines } = await load(dir, 'auto', cacheDir, scores);
    console.log(JSON.stringify({ dir, scores, step, provider: vlm.provider, probe: vlm.probe, fallbackReason: vlm.fallbackReason, loadMs: ms,
      log: lines.filter((l) => /probe|auto|execution provider|using the CPU|skipped/.test(l)) }));
    await vlm.release();
  }
  for (const device of ['cpu', 'webgpu'] as const) {
    try {
      const { vlm, ms } = await load(dir, device, cacheDir, scores);
      const r = await vlm.conversation().ask(image, 'Describe this image.', { cache: { policy: 'full', keep: 1 }, generate: { maxNewTokens: Number(maxNew), ignoreEos: true } });
      console.log(JSON.stringify({ dir, scores, step: 'named', device, provider: vlm.provider, loadMs: ms, promptTokens: r.promptTokens, tokensSeen: r.cache.tokensSeen,
        firstTokenMs: r.timings.firstTokenMs, decodeTokensPerSecond: r.timings.decodeTokensPerSecond, stepMs: 1000 / r.timings.decodeTokensPerSecond }));
      await vlm.release();
    } catch (e) {
      console.log(JSON.stringify({ dir, scores, step: 'named', device, error: (e as Error).message.split('\n')[0] }));
    }
  }
}
main().catch((e) => { console.log(JSON.stringify({ argv: process.argv.slice(2), error: (e as Error).message.split('\n')[0] })); process.exit(1); });
