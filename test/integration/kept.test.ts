// The kept-position bookkeeping (cacheStats.kept): replayed from the very plans the store applies, so its slot
// counts equal the cache's lengths; it tells image from text, and streaming keeps exactly its sinks and window.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Vlm } from '../../runtime/vlm.js';
import { KeptTracker } from '../../runtime/cache/kept.js';
import type { CacheStats, KeptPositions } from '../../runtime/protocol.js';

const root = join(__dirname, '..', '..');
const tiny = join(root, 'test', 'fixtures', 'tiny-model');
const image = join(root, 'test', 'fixtures', 'images', 'diagram.png');

test('KeptTracker replays evictions and merges per layer', () => {
  const t = new KeptTracker(2, 4);
  t.append('itti');
  // layer 0: evict position 1, merge 2 and 3; layer 1: keep all but the last
  t.apply([Int32Array.from([0, -1, 1, 1]), Int32Array.from([0, 1, 2, -1])]);
  t.append('g');
  assert.deepEqual(t.lengths, [3, 4]);
  assert.deepEqual(t.snapshot(), { kinds: 'ittig', layers: ['k-mmk', 'kkk-k'], firstPrompt: 4 });
});

// Merging everything dropped into its nearest anchor is the paper variant's stage 1 (the product's merges only
// image neighbours), so it is the case where merged entries must show up.
const runs: [string, { policy: 'elastic' | 'h2o' | 'streaming'; keep: number; variant?: 'paper'; merge?: boolean }][] = [
  ['h2o', { policy: 'h2o', keep: 0.4 }],
  ['elastic (paper) with merging', { policy: 'elastic', keep: 0.4, variant: 'paper', merge: true }],
  ['streaming', { policy: 'streaming', keep: 0.4 }],
];
for (const [name, cache] of runs) {
  test(`${name}: every report's kept positions agree with the cache's lengths, across a follow-up`, async () => {
    const vlm = await Vlm.load({ modelDir: tiny, device: 'cpu' });
    try {
      const c = vlm.conversation();
      const seen: [CacheStats, KeptPositions][] = [];
      const cb = { trackKept: true, onStats: (s: CacheStats, k?: KeptPositions) => { assert.ok(k, 'kept comes with the stats'); seen.push([s, k]); } };
      const a = await c.ask(image, 'What is this?', { cache, generate: { maxNewTokens: 10, ignoreEos: true, statsEvery: 1 } }, cb);
      await c.followUp('And then?', { generate: { maxNewTokens: 6, ignoreEos: true, statsEvery: 1 } }, cb);
      assert.ok(seen.length > 10);
      for (const [s, k] of seen) {
        assert.equal(k.kinds.length, s.tokensSeen);
        assert.equal(k.layers.length, s.perLayerLength.length);
        k.layers.forEach((l, i) => {
          assert.equal(l.length, s.tokensSeen);
          const kept = [...l].filter((ch) => ch === 'k').length;
          const merged = [...l].filter((ch) => ch === 'm').length;
          // every 'k' is a slot of its own; merged positions share slots, at least two to a slot
          const slots = s.perLayerLength[i];
          assert.ok(slots >= kept + (merged ? 1 : 0) && slots <= kept + Math.floor(merged / 2), `layer ${i}: ${kept} k, ${merged} m, ${slots} slots`);
          if (!cache.merge) assert.equal(merged, 0);
        });
      }
      const [, last] = seen[seen.length - 1];
      assert.equal([...last.kinds].filter((ch) => ch === 'i').length, a.imageTokens, 'image tokens are marked as such');
      assert.equal(last.firstPrompt, a.promptTokens);
      assert.ok(last.kinds.includes('g') && last.kinds.slice(a.promptTokens).includes('t'), 'answer tokens, then the follow-up text');
      if (cache.merge) assert.ok(seen.some(([, k]) => k.layers.some((l) => l.includes('m'))), 'merged entries show up');
      if (cache.policy === 'streaming') {
        // sinks at the start, a recent window at the end, the same on every layer
        const l0 = last.layers[0];
        assert.ok(last.layers.every((l) => l === l0));
        assert.match(l0, /^k+-+k+$/);
      } else if (cache.policy === 'h2o') {
        assert.ok(new Set(last.layers).size > 1, 'the layers rank by their own attention, so they keep different positions');
      }
    } finally {
      await vlm.release();
    }
  });
}
