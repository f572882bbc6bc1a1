// A fused look-alike (GroupQueryAttention with rotary inside, as the published SmolVLM decoders are) on WebGPU.
// onnxruntime 1.30's WebGPU GroupQueryAttention refuses the attention output the importance rewrite reads (seen on
// an H200, docs/gpu.md), so there the worker runs a decoder with true positions that outputs its rotated queries,
// and the scoring graph (runtime/model/scorer.ts) computes the attention from them and the present keys: every
// policy runs with the cache on the device. The scoring graph's numbers against GroupQueryAttention's own are checked
// on the CPU (test/integration/scorer.test.ts); here, the same graph on WebGPU against the CPU on the same inputs.
// Decoder logits are not compared with the CPU here: Mesa's lavapipe (CI) computes GroupQueryAttention prefill wrong
// for prompts of 32 tokens or more, and an image prompt is longer; the H200 run compares them (docs/gpu.md).
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Tensor } from 'onnxruntime-node';
import { Vlm } from '../../runtime/vlm.js';
import { ort } from '../../runtime/model/ort.js';
import { AttentionScorer } from '../../runtime/model/scorer.js';
import { GPU_EVICT_BATCH } from '../../runtime/cache/gpuStore.js';
import { IMPORTANCE_PREFIX, WINDOW_PREFIX } from '../../runtime/onnx/importance.js';
import { queryName } from '../../runtime/onnx/queries.js';
import type { ImportanceMap } from '../../runtime/protocol.js';
import { lookalike } from '../helpers/lookalike.js';
import { webgpuGate } from './device.js';
import { seeded as seededIn } from '../helpers/seeded.js';

const root = join(__dirname, '..', '..');
const image = join(root, 'media', 'samples', 'bars.png');
const needWebgpu = webgpuGate();
const seeded = (n: number, seed: number) => seededIn(n, seed, 2);


it('the scoring graphs (per layer and stacked) on WebGPU give the CPU\'s importance and window rows', { timeout: 120_000 }, async (t) => {
  if (!needWebgpu(t)) return;
  const shape = { layers: 2, kvHeads: 3, headDim: 64, dtype: 'float32' as const, heads: 9 };
  const [gpu, cpu] = await Promise.all([AttentionScorer.create(shape, 'webgpu'), AttentionScorer.create(shape, 'cpu')]);
  try {
    for (const [S, T] of [[70, 70], [1, 71], [5, 90]]) {
      const out: Record<string, Tensor> = {};
      for (let i = 0; i < shape.layers; i++) {
        out[queryName(i)] = new ort.Tensor('float32', seeded(S * shape.heads * 64, 10 * i + S), [1, S, shape.heads * 64]);
        out[`present.${i}.key`] = new ort.Tensor('float32', seeded(T * shape.kvHeads * 64, 10 * i + T + 1), [1, shape.kvHeads, T, 64]);
      }
      const c = await cpu.score(out, true, false);
      for (const stacked of [false, true]) {
        const g = await gpu.score(out, true, stacked);
        for (let i = 0; i < shape.layers; i++) {
          for (const name of [`${IMPORTANCE_PREFIX}${i}`, `${WINDOW_PREFIX}${i}`]) {
            assert.deepEqual(g[name].dims, c[name].dims, name);
            const a = g[name].data as Float32Array;
            const b = c[name].data as Float32Array;
            let d = 0;
            for (let j = 0; j < a.length; j++) d = Math.max(d, Math.abs(a[j] - b[j]));
            assert.ok(d < 1e-4 * Math.max(1, S), `${name}, ${S} queries over ${T} keys (stacked: ${stacked}): ${d}`);
          }
        }
      }
    }
  } finally {
    await Promise.all([gpu.release(), cpu.release()]);
  }
});

it('fused look-alike on WebGPU: every policy runs with the cache on the device, the scored ones through the scoring graph', { timeout: 600_000 }, async (t) => {
  if (!needWebgpu(t)) return;
  const dir = lookalike(['--preset', 'smolvlm-256m', '--layers', '2', '--no-image-splitting', '--format', 'fused', '--dtypes', 'fp32']);
  const cacheDir = mkdtempSync(join(tmpdir(), 'evlm-fused-gpu-'));
  const gpu = await Vlm.load({ modelDir: dir, device: 'webgpu', cacheDir });
  try {
    assert.equal(gpu.provider, 'webgpu');
    assert.deepEqual(gpu.scoreOutputs, [`${IMPORTANCE_PREFIX}0`, `${IMPORTANCE_PREFIX}1`]);
    assert.equal(gpu.scoresUnavailable, null);
    assert.ok(gpu.takesPositionIds, 'the derived decoder takes position_ids (true positions after compaction)');
    for (const cache of [
      { policy: 'full' as const, keep: 1 },
      { policy: 'streaming' as const, keep: 0.3 },
      { policy: 'elastic' as const, keep: 0.3 },
      { policy: 'elastic' as const, keep: 0.3, variant: 'paper' as const },
      { policy: 'h2o' as const, keep: 0.3 },
      { policy: 'snapkv' as const, keep: 0.3 },
    ]) {
      const c = gpu.conversation();
      let map: ImportanceMap | undefined;
      const steps: Float32Array[][] = [];
      const r = await c.ask(image, 'Describe this image.', { cache, generate: { maxNewTokens: 6, ignoreEos: true } }, {
        onImportance: (m) => (map = m),
        onForward: (_k, _l, scores) => scores && steps.push(scores),
      });
      c.dispose();
      const label = `${cache.policy} ${'variant' in cache ? cache.variant : ''}`;
      assert.equal(r.generatedTokens, 6, label);
      assert.equal(r.cache.location, 'gpu', label);
      // The device evicts GPU_EVICT_BATCH at a time once past the budget, and never holds more than it.
      if (cache.policy !== 'full') assert.ok(r.cache.perLayerLength[0] <= r.cache.budget && r.cache.perLayerLength[0] > r.cache.budget - GPU_EVICT_BATCH, label);
      // The panel's heat map comes from the prefill's scores, for every policy.
      assert.ok(map && map.tiles.some((tile) => tile.values.some((v) => v > 0)), `${label}: importance map`);
      // Prefill and 5 steps, each with one importance row per layer over the cache it saw.
      assert.equal(steps.length, 6, label);
      assert.ok(steps.every((s) => s.length === 2 && s.every((row) => row.every(Number.isFinite))), label);
    }
  } finally {
    await gpu.release();
    rmSync(cacheDir, { recursive: true, force: true });
  }
});
