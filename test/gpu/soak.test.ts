// Soak on WebGPU (issue 8): many conversations (ask + follow-up, elastic policy) with the tiny model in this
// process, the KV cache on the device. Counts the live device tensors (GpuKvStore.liveTensors): bounded by
// 2 x layers during a conversation, back to 0 after every dispose, never growing over the run. Skipped without a
// WebGPU adapter, unless ELASTIC_VLM_REQUIRE_WEBGPU=1 (CI), where a missing adapter fails (as webgpu.test.ts).
// GPU_SOAK_ROUNDS overrides the number of conversations.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { GpuKvStore } from '../../runtime/cache/gpuStore.js';
import { rssMiB, webgpuGate } from './device.js';

const root = join(__dirname, '..', '..');
const tiny = join(root, 'test', 'fixtures', 'tiny-model');
const images = ['diagram.png', 'gradient.png', 'exact.png'].map((f) => join(root, 'test', 'fixtures', 'images', f));
const ROUNDS = Number(process.env.GPU_SOAK_ROUNDS ?? 40);

const needWebgpu = webgpuGate();

it(`WebGPU soak: ${ROUNDS} conversations (ask + follow-up, elastic), live device tensors back to 0 after each, never growing`, { timeout: 300_000 }, async (t) => {
  if (!needWebgpu(t)) return;
  const { Vlm } = await import('../../runtime/vlm.js');
  const vlm = await Vlm.load({ modelDir: tiny, device: 'webgpu' });
  try {
    assert.equal(vlm.provider, 'webgpu');
    const layers = vlm.config.numLayers;
    const start = GpuKvStore.liveTensors;
    assert.equal(start, 0);
    const during: number[] = [];
    const rss: number[] = [];
    const t0 = performance.now();
    for (let i = 1; i <= ROUNDS; i++) {
      const conv = vlm.conversation();
      try {
        const a = await conv.ask(images[i % images.length], `Round ${i}: what is this?`, {
          cache: { policy: 'elastic', keep: 0.5 }, generate: { maxNewTokens: 3 + (i % 3), ignoreEos: true },
        }, { onStep: () => during.push(GpuKvStore.liveTensors) });
        assert.equal(a.cache.location, 'gpu');
        const f = await conv.followUp(`and the colour (${i})?`, { generate: { maxNewTokens: 3, ignoreEos: true } },
          { onStep: () => during.push(GpuKvStore.liveTensors) });
        assert.equal(f.generatedTokens, 3);
        during.push(GpuKvStore.liveTensors);
        if (i % 5 === 0) {
          // a second ask on the same conversation replaces its cache: the old device tensors are freed
          await conv.ask(images[0], 'again?', { cache: { policy: 'elastic', keep: 0.5 }, generate: { maxNewTokens: 2, ignoreEos: true } });
          during.push(GpuKvStore.liveTensors);
        }
      } finally {
        conv.dispose();
      }
      assert.equal(GpuKvStore.liveTensors, 0, `round ${i}: device tensors left after dispose`);
      rss.push(rssMiB());
      if (process.env.GPU_SOAK_TRACE && i % 10 === 0) console.log(`# round ${i}: RSS ${rss[rss.length - 1].toFixed(0)} MiB`);
    }
    const secs = (performance.now() - t0) / 1000;
    const maxDuring = Math.max(...during);
    t.diagnostic(`${ROUNDS} conversations in ${secs.toFixed(1)} s; live device tensors during a conversation max ${maxDuring} ` +
      `(2 x ${layers} layers), after each dispose 0; RSS round 1 ${rss[0].toFixed(0)} MiB, round 10 ${rss[Math.min(9, rss.length - 1)].toFixed(0)} MiB, ` +
      `round ${ROUNDS} ${rss[rss.length - 1].toFixed(0)} MiB`);
    assert.ok(maxDuring <= 2 * layers, `at most one key and one value tensor per layer live (saw ${maxDuring})`);
    assert.ok(during.every((n) => n === 2 * layers), 'a conversation holds exactly its cache on the device');
    assert.equal(GpuKvStore.liveTensors, start);
    // and the host side does not grow either (a leaked device buffer on lavapipe is host memory)
    const at10 = rss[Math.min(9, rss.length - 1)];
    assert.ok(rss[rss.length - 1] <= at10 * 1.1, `RSS ${at10.toFixed(0)} -> ${rss[rss.length - 1].toFixed(0)} MiB from round 10 to ${ROUNDS}`);
  } finally {
    await vlm.release();
  }
});
