// A fused look-alike (GroupQueryAttention with rotary inside, as the published SmolVLM decoders are) on WebGPU.
// onnxruntime 1.30's WebGPU GroupQueryAttention refuses the attention output the importance rewrite reads (seen on
// an H200, docs/gpu.md), so there the worker runs the decoder with true positions only: full and StreamingLLM work,
// Elastic and H2O say why they cannot, and `auto` keeps such a model on the CPU, where the scores exist.
// Logits are not compared with the CPU here: Mesa's lavapipe (CI) computes GroupQueryAttention prefill wrong for
// prompts of 32 tokens or more, and an image prompt is longer; the H200 run compares them (docs/gpu.md).
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Vlm, WEBGPU_GQA_NO_SCORES } from '../../runtime/vlm.js';
import { lookalike } from '../helpers/lookalike.js';
import { webgpuGate } from './device.js';

const root = join(__dirname, '..', '..');
const image = join(root, 'media', 'samples', 'bars.png');
const needWebgpu = webgpuGate();

it('fused look-alike on WebGPU: full and streaming run with the cache on the device; elastic says why it cannot', { timeout: 600_000 }, async (t) => {
  if (!needWebgpu(t)) return;
  const dir = lookalike(['--preset', 'smolvlm-256m', '--layers', '2', '--no-image-splitting', '--format', 'fused', '--dtypes', 'fp32']);
  const cacheDir = mkdtempSync(join(tmpdir(), 'evlm-fused-gpu-'));
  const gpu = await Vlm.load({ modelDir: dir, device: 'webgpu', cacheDir });
  try {
    assert.equal(gpu.provider, 'webgpu');
    assert.equal(gpu.scoreOutputs, null);
    assert.equal(gpu.scoresUnavailable, WEBGPU_GQA_NO_SCORES);
    assert.ok(gpu.takesPositionIds, 'the derived decoder takes position_ids (true positions after compaction)');
    for (const cache of [{ policy: 'full' as const, keep: 1 }, { policy: 'streaming' as const, keep: 0.3 }]) {
      const c = gpu.conversation();
      const r = await c.ask(image, 'Describe this image.', { cache, generate: { maxNewTokens: 6, ignoreEos: true } });
      c.dispose();
      assert.equal(r.generatedTokens, 6, cache.policy);
      assert.equal(r.cache.location, 'gpu');
      if (cache.policy === 'streaming') assert.equal(r.cache.perLayerLength[0], r.cache.budget);
    }
    const c = gpu.conversation();
    await assert.rejects(c.ask(image, 'Describe this image.', { cache: { policy: 'elastic', keep: 0.3 }, generate: { maxNewTokens: 2 } }),
      (e: Error) => e.name === 'BadInputError' && e.message.includes('output_qk is not supported') && /streaming and full run/.test(e.message));
    c.dispose();
  } finally {
    await gpu.release();
    rmSync(cacheDir, { recursive: true, force: true });
  }
});
