// The embedded default model on WebGPU (a real GPU, or Mesa's lavapipe in CI): the same greedy answer as the CPU,
// the KV cache on the device, and a 300-step generation with flat memory and a constant number of live device
// tensors. Skipped without an adapter unless ELASTIC_VLM_REQUIRE_WEBGPU=1.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Vlm } from '../../runtime/vlm.js';
import { GpuKvStore } from '../../runtime/cache/gpuStore.js';
import { rssMiB, webgpuGate } from './device.js';

const root = join(__dirname, '..', '..');
const model = join(root, 'models', 'default');
const image = join(root, 'media', 'samples', 'bars.png');
const cache = { policy: 'elastic' as const, keep: 0.7, importance: 'mean' as const, merge: false };
const needWebgpu = webgpuGate();

it('default model: WebGPU gives the CPU greedy answer, with the cache on the device', { timeout: 300_000 }, async (t) => {
  if (!needWebgpu(t)) return;
  const cpu = await Vlm.load({ modelDir: model, device: 'cpu' });
  const gpu = await Vlm.load({ modelDir: model, device: 'webgpu' });
  try {
    assert.equal(gpu.provider, 'webgpu');
    for (const q of ['How many bars are there?', 'Describe this image.']) {
      const ca = cpu.conversation();
      const cb = gpu.conversation();
      const a = await ca.ask(image, q, { cache, generate: { maxNewTokens: 40 } });
      const b = await cb.ask(image, q, { cache, generate: { maxNewTokens: 40 } });
      ca.dispose();
      cb.dispose();
      assert.equal(b.cache.location, 'gpu');
      assert.equal(b.executionProvider, 'webgpu');
      assert.deepEqual(b.ids, a.ids, `${q}: ${JSON.stringify(a.answer)} on the CPU, ${JSON.stringify(b.answer)} on WebGPU`);
    }
  } finally {
    await cpu.release();
    await gpu.release();
  }
});

it('default model: 300 steps on WebGPU with eviction, memory flat and live device tensors constant', { timeout: 600_000 }, async (t) => {
  if (!needWebgpu(t)) return;
  const gpu = await Vlm.load({ modelDir: model, device: 'webgpu' });
  try {
    const before = GpuKvStore.liveTensors; // the process-wide count: other suites' stores may still be alive
    const live: number[] = [];
    const rss: number[] = [];
    const c = gpu.conversation();
    const r = await c.ask(image, 'Describe this image.', { cache: { ...cache, keep: 0.5 }, generate: { maxNewTokens: 300, ignoreEos: true } }, {
      onStep: (s) => {
        if (s.tokensSeen % 50 === 0) {
          live.push(GpuKvStore.liveTensors);
          rss.push(rssMiB());
        }
      },
    });
    assert.equal(r.generatedTokens, 300);
    assert.ok(r.cache.evicted > 100, `evicted ${r.cache.evicted}`);
    assert.ok(live.every((n) => n === live[0]), `live device tensors over the run: ${live.join(' ')}`);
    // after warm-up (the first sample), resident memory stays within 10%
    const base = rss[1];
    assert.ok(rss.slice(1).every((m) => m <= base * 1.1), `RSS MiB every 50 tokens: ${rss.map((m) => m.toFixed(0)).join(' ')}`);
    console.log(`# default model on WebGPU: 300 steps, ${r.timings.decodeTokensPerSecond.toFixed(1)} tok/s; RSS MiB ${rss.map((m) => m.toFixed(0)).join(' ')}; live tensors ${live.join(' ')}`);
    c.dispose();
    assert.equal(GpuKvStore.liveTensors, before, 'every device tensor of the conversation released');
  } finally {
    await gpu.release();
  }
});
