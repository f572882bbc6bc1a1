// The panel's cache view, computed without a DOM: per-layer counts by kind, units in entries per layer, the heat
// map of what the cache kept (by position in the image) and of what the policy ranks by.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cacheNumbers, keptCells, layerCounts, plural, policyReason, rankingCells, runs } from '../../webview/cacheView.js';
import { parseWebviewMessage } from '../../extension/webviewMessages.js';
import type { CacheStats, ImportanceMap, KeptPositions } from '../../runtime/protocol.js';

// Two 2x2 tiles side by side (1 row, 2 cols) and a global tile: 12 image tokens after 2 text tokens.
const map: ImportanceMap = {
  rows: 1, cols: 2,
  tiles: [
    { row: 0, col: 0, global: false, gridSide: 2, values: [8, 7, 6, 5] },
    { row: 0, col: 1, global: false, gridSide: 2, values: [4, 3, 2, 1] },
    { row: 0, col: 0, global: true, gridSide: 2, values: [1, 1, 1, 1] },
  ],
};
const kinds = 'tt' + 'i'.repeat(12) + 'tt' + 'gg';
const kept: KeptPositions = {
  kinds,
  // layer 0 keeps the first tile, layer 1 keeps both tiles' first token only
  layers: ['kk' + 'kkkk' + '----' + '----' + 'kk' + 'kk', 'kk' + 'k---' + 'k---' + '----' + 'kk' + '-k'],
  firstPrompt: 16,
};

test('runs group equal kind and state', () => {
  assert.deepEqual(runs('ttii', 'kk-k').map((r) => [r.start, r.length, r.kind, r.state]), [[0, 2, 't', 'k'], [2, 1, 'i', '-'], [3, 1, 'i', 'k']]);
});

test('layerCounts tells image, text and answer apart per layer', () => {
  const [l0, l1] = layerCounts(kept);
  assert.deepEqual(l0, { image: { kept: 4, total: 12 }, text: { kept: 4, total: 4 }, answer: { kept: 2, total: 2 } });
  assert.deepEqual(l1, { image: { kept: 2, total: 12 }, text: { kept: 4, total: 4 }, answer: { kept: 1, total: 2 } });
});

test('keptCells: the fraction of layers holding each image token, at its place; the global tile is not drawn over a split image', () => {
  const cells = keptCells(map, kept);
  assert.equal(cells.length, 8);
  assert.deepEqual(cells.map((c) => c.v), [1, 0.5, 0.5, 0.5, 0.5, 0, 0, 0]);
  assert.deepEqual([cells[4].x, cells[4].y, cells[4].w], [0.5, 0, 0.25]);
});

test('rankingCells: mean divides by the queries that could see the token, sum keeps the raw sums, streaming ranks nothing', () => {
  const sum = rankingCells(map, kept, 'h2o', 'sum')!;
  assert.deepEqual(sum.map((c) => c.v), [1, 6 / 7, 5 / 7, 4 / 7, 3 / 7, 2 / 7, 1 / 7, 0]);
  const mean = rankingCells(map, kept, 'elastic', 'mean')!;
  // position p = 2 + index; queries that see it = 16 - p
  const raw = [8, 7, 6, 5, 4, 3, 2, 1].map((v, i) => v / (16 - (2 + i)));
  const lo = Math.min(...raw);
  const hi = Math.max(...raw);
  mean.forEach((c, i) => assert.ok(Math.abs(c.v - (raw[i] - lo) / (hi - lo)) < 1e-12));
  assert.equal(rankingCells(map, kept, 'streaming', 'mean'), null);
});

test('cacheNumbers: evicted and merged totals over layers become per layer, like kept and budget', () => {
  const s: CacheStats = { policy: 'h2o', keep: 0.5, tokensSeen: 100, budget: 50, perLayerLength: [50, 50, 50, 50], bytes: 500, fullBytes: 1000, merged: 0, evicted: 200, location: 'cpu' };
  assert.deepEqual(cacheNumbers(s), { kept: 50, seen: 100, budget: 50, evictedPerLayer: 50, mergedPerLayer: 0, pct: 50 });
});

test('plural and the policy reasons', () => {
  assert.equal(plural(1, 'token'), '1 token');
  assert.equal(plural(2, 'token'), '2 tokens');
  assert.match(policyReason('elastic', 0.7, 'mean', false, 'paper'), /70%.*per query.*evicting/);
  assert.match(policyReason('elastic', 0.3, 'mean', false), /30%.*your question attends to.*global image/);
  assert.match(policyReason('snapkv', 0.2, 'mean', false), /20%.*last queries/);
  assert.match(policyReason('streaming', 0.4, 'mean', false), /by position only/);
});

test('pasteImage messages from the panel: image types only, base64 only', () => {
  assert.equal(parseWebviewMessage({ type: 'pasteImage', mime: 'image/png', data: 'iVBORw0KGgo=' }).ok, true);
  assert.equal(parseWebviewMessage({ type: 'pasteImage', mime: 'text/html', data: 'PGI+' }).ok, false);
  assert.equal(parseWebviewMessage({ type: 'pasteImage', mime: 'image/png', data: '<script>' }).ok, false);
  assert.equal(parseWebviewMessage({ type: 'pasteImage', mime: 'image/png', data: 'AAAA', path: '/etc/passwd' }).ok, false);
});
