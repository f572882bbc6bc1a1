// The generation loop through the API: follow-ups reuse the cache or re-expand it (the image is encoded once), the budget keeps
// applying across turns, streaming text equals the answer, and cancellation stops between steps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Vlm } from '../../runtime/vlm.js';
import { budgetFor } from '../../runtime/cache/policies/budget.js';

const root = join(__dirname, '..', '..');
const tiny = join(root, 'test', 'fixtures', 'tiny-model');
const image = join(root, 'test', 'fixtures', 'images', 'diagram.png');

test('a follow-up reuses the cache: the vision encoder ran once, the cache grew by the new turn', async () => {
  const vlm = await Vlm.load({ modelDir: tiny, device: 'cpu' });
  try {
    const c = vlm.conversation();
    const a = await c.ask(image, 'What is this?', { cache: { policy: 'full', keep: 1 }, generate: { maxNewTokens: 5, ignoreEos: true } });
    assert.equal(vlm.counters.visionRuns, 1);
    const b = await c.followUp('And what else?', { generate: { maxNewTokens: 5, ignoreEos: true } });
    assert.equal(vlm.counters.visionRuns, 1, 'no second vision run');
    assert.equal(vlm.counters.prefillRuns, 2);
    // full cache: everything seen is kept; the follow-up's prompt has no image tokens
    assert.equal(b.cache.perLayerLength[0], b.cache.tokensSeen);
    assert.ok(b.promptTokens < a.promptTokens && b.promptTokens > 3);
    // the first turn's last token was sampled but not fed: it opens the follow-up's prompt; again 4 of 5 fed
    assert.equal(b.cache.tokensSeen, a.cache.tokensSeen + b.promptTokens + 4);
  } finally {
    await vlm.release();
  }
});

for (const policy of ['elastic', 'h2o', 'streaming'] as const) {
  test(`${policy}: the budget (keep x tokens seen) holds after a follow-up on a compressed cache`, async () => {
    const vlm = await Vlm.load({ modelDir: tiny, device: 'cpu' });
    try {
      const c = vlm.conversation();
      const keep = 0.4;
      const lengths: [number, number][] = [];
      const onStats = (s: { perLayerLength: number[]; tokensSeen: number }) => lengths.push([s.perLayerLength[0], s.tokensSeen]);
      await c.ask(image, 'What is this?', { cache: { policy, keep }, generate: { maxNewTokens: 12, ignoreEos: true, statsEvery: 1 } }, { onStats });
      const b = await c.followUp('Tell me more.', { generate: { maxNewTokens: 12, ignoreEos: true, statsEvery: 1 } }, { onStats });
      assert.ok(lengths.length > 20);
      for (const [len, seen] of lengths) assert.equal(len, budgetFor(keep, seen, 5), `cache ${len} at ${seen} tokens seen`);
      assert.ok(Math.abs(b.cache.bytes / b.cache.fullBytes - keep) < 0.02);
    } finally {
      await vlm.release();
    }
  });
}

test('a follow-up on a compressed cache re-expands: its logits are the full cache\'s, the image is not encoded again', async () => {
  const vlm = await Vlm.load({ modelDir: tiny, device: 'cpu' });
  try {
    const gen = { maxNewTokens: 6, ignoreEos: true };
    const firstLogits = async (cache: { policy: 'full' | 'elastic'; keep: number; followUps?: 'reexpand' | 'reuse' }, force?: number[]) => {
      const c = vlm.conversation();
      const a = await c.ask(image, 'What is this?', { cache, generate: gen, force });
      let logits: Float32Array | null = null;
      const b = await c.followUp('And what else?', { generate: { maxNewTokens: 3, ignoreEos: true } }, {
        onForward: (kind, l) => { if (kind === 'prefill' && !logits) logits = l.slice(); },
      });
      c.dispose();
      return { a, b, logits: logits! };
    };
    const full = await firstLogits({ policy: 'full', keep: 1 });
    // the same first-turn tokens for every cache (forced), so the conversations differ only in their caches
    const visions = vlm.counters.visionRuns;
    const re = await firstLogits({ policy: 'elastic', keep: 0.4 }, full.a.ids);
    const reuse = await firstLogits({ policy: 'elastic', keep: 0.4, followUps: 'reuse' }, full.a.ids);
    assert.equal(vlm.counters.visionRuns, visions, 'image features came from the encoded-image cache');
    const maxDiff = (x: Float32Array, y: Float32Array) => x.reduce((m, v, i) => Math.max(m, Math.abs(v - y[i])), 0);
    assert.ok(maxDiff(re.logits, full.logits) < 1e-3, `re-expanded follow-up differs from the full cache by ${maxDiff(re.logits, full.logits)}`);
    assert.ok(maxDiff(reuse.logits, full.logits) > 1e-2, 'the reused compressed cache should differ from the full one');
    assert.equal(re.b.cache.reexpanded, 1);
    assert.equal(reuse.b.cache.reexpanded, 0);
    // the same conversation length, and the budget holds after the re-expansion as after a reuse
    assert.equal(re.b.cache.tokensSeen, full.b.cache.tokensSeen);
    assert.equal(re.b.cache.perLayerLength[0], budgetFor(0.4, re.b.cache.tokensSeen, 5));
    assert.equal(re.b.promptTokens, full.b.promptTokens, 'promptTokens counts the new turn only');
  } finally {
    await vlm.release();
  }
});

test('streamed text adds up to the answer; isCancelled stops within one step', async () => {
  const vlm = await Vlm.load({ modelDir: tiny, device: 'cpu' });
  try {
    let streamed = '';
    const r = await vlm.conversation().ask(image, 'What is this?', { cache: { policy: 'elastic', keep: 0.5 }, generate: { maxNewTokens: 10, ignoreEos: true } },
      { onToken: (t) => (streamed += t) });
    assert.equal(streamed.trim(), r.answer);
    // decode steps run after each generated token but the last; cancel once two have run, i.e. after token 3
    let steps = 0;
    const c = await vlm.conversation().ask(image, 'What is this?', { cache: { policy: 'elastic', keep: 0.5 }, generate: { maxNewTokens: 500, ignoreEos: true } },
      { onStep: () => steps++, isCancelled: () => steps >= 2 });
    assert.equal(c.stopReason, 'cancelled');
    assert.equal(c.generatedTokens, 3);
  } finally {
    await vlm.release();
  }
});
