// Encoding an image: tiles go through the vision encoder in bounded batches with the same features as one run,
// the features of an image are cached by its bytes and detail (a re-ask skips the encoder), and the detail levels
// tile as they say.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Vlm } from '../../runtime/vlm.js';
import { detailConfig } from '../../runtime/model/detail.js';
import { toFloat } from '../../runtime/generate/tensors.js';

const root = join(__dirname, '..', '..');
const tiny = join(root, 'test', 'fixtures', 'tiny-model');
const image = join(root, 'test', 'fixtures', 'images', 'diagram.png');
const opts = { cache: { policy: 'full' as const, keep: 1 }, generate: { maxNewTokens: 6, ignoreEos: true } };

test('tiles in batches of one give the features and the answer of one run over all tiles', async () => {
  const whole = await Vlm.load({ modelDir: tiny, device: 'cpu', scores: false });
  const single = await Vlm.load({ modelDir: tiny, device: 'cpu', scores: false, visionBatchTiles: 1 });
  try {
    const a = await whole.encodeImage(image);
    const b = await single.encodeImage(image);
    assert.ok(a.layout.numImages > 1, `the image is split (${a.layout.numImages} frames)`);
    assert.deepEqual(b.features.dims.slice(1), a.features.dims.slice(1));
    const fa = toFloat(a.features);
    const fb = toFloat(b.features);
    assert.equal(fb.length, fa.length);
    let worst = 0;
    for (let i = 0; i < fa.length; i++) worst = Math.max(worst, Math.abs(fa[i] - fb[i]));
    assert.ok(worst < 1e-5, `largest difference ${worst}`);
    const ra = await whole.conversation().ask(image, 'What is this?', opts);
    const rb = await single.conversation().ask(image, 'What is this?', opts);
    assert.deepEqual(rb.ids, ra.ids);
  } finally {
    await whole.release();
    await single.release();
  }
});

test('vision features are cached by content and detail: a re-ask, the same bytes or another path skip the encoder', async () => {
  const vlm = await Vlm.load({ modelDir: tiny, device: 'cpu', scores: false });
  try {
    const first = await vlm.conversation().ask(image, 'What is this?', opts);
    assert.equal(vlm.counters.visionRuns, 1);
    assert.ok(first.timings.visionMs > 0);
    const again = await vlm.conversation().ask(readFileSync(image), 'What is this?', opts);
    assert.equal(vlm.counters.visionRuns, 1, 'same bytes: no second vision run');
    assert.equal(again.timings.visionMs, 0);
    assert.deepEqual(again.ids, first.ids);
    const global = await vlm.conversation().ask(image, 'What is this?', { ...opts, detail: 'global' });
    assert.equal(vlm.counters.visionRuns, 2, 'another detail is another encoding');
    assert.ok(global.imageTokens < first.imageTokens, `${global.imageTokens} image tokens at global vs ${first.imageTokens} at full`);
    assert.equal(global.imageTokens, vlm.config.imageSeqLen, 'global: one frame');
  } finally {
    await vlm.release();
  }
});

test('detail levels: global is one unsplit frame, low and medium cap the long side at 2 and 3 tiles, full is the model', () => {
  const cfg = { doResize: true, longestEdge: 2048, tileSize: 512, doImageSplitting: true, doRescale: true, rescaleFactor: 1 / 255, doNormalize: true, mean: [0.5, 0.5, 0.5] as [number, number, number], std: [0.5, 0.5, 0.5] as [number, number, number], resample: 1 };
  assert.equal(detailConfig(cfg, 'full'), cfg);
  assert.equal(detailConfig(cfg, 'global').doImageSplitting, false);
  assert.equal(detailConfig(cfg, 'low').longestEdge, 1024);
  assert.equal(detailConfig(cfg, 'medium').longestEdge, 1536);
  assert.equal(detailConfig({ ...cfg, longestEdge: 1024 }, 'medium').longestEdge, 1024, 'never above the model');
});

test('a model too large for the free memory fails at load with one clear line', async () => {
  await assert.rejects(
    Vlm.load({ modelDir: tiny, device: 'cpu', availableMemory: 1000 }),
    (e: Error) => e.name === 'BadInputError' && /this model needs about .* GB of memory .* but 0\.0 GB are free/.test(e.message) && !e.message.includes('\n'),
  );
});
