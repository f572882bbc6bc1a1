// npm run ask: the JSON it prints, and one clear error line with exit code 2 for each kind of bad input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ask, root } from '../helpers/cli.js';

const tiny = join(root, 'test', 'fixtures', 'tiny-model');
const image = join(root, 'test', 'fixtures', 'images', 'diagram.png');

test('ask --json prints the answer, counts, provider, timings and cache', () => {
  const r = ask([image, 'What is in the picture?', '--model', tiny, '--device', 'cpu', '--max-new-tokens', '6', '--policy', 'elastic', '--keep', '0.3', '--json']);
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  for (const k of ['answer', 'promptTokens', 'imageTokens', 'generatedTokens', 'executionProvider', 'timings', 'cache']) assert.ok(k in j, k);
  for (const k of ['loadMs', 'visionMs', 'prefillMs', 'firstTokenMs', 'decodeTokensPerSecond']) assert.equal(typeof j.timings[k], 'number', k);
  for (const k of ['policy', 'perLayerLength', 'bytes', 'fullBytes']) assert.ok(k in j.cache, k);
  assert.equal(j.executionProvider, 'cpu');
  assert.equal(j.cache.policy, 'elastic');
  // keep 0.3: every layer holds round(0.3 x tokens seen) entries, and bytes scale the same way
  const budget = Math.floor(0.3 * j.cache.tokensSeen + 0.5);
  assert.ok(j.cache.perLayerLength.every((l: number) => l === budget), JSON.stringify(j.cache));
  assert.ok(Math.abs(j.cache.bytes / j.cache.fullBytes - 0.3) < 0.01, `${j.cache.bytes / j.cache.fullBytes}`);
  assert.ok(j.imageTokens > 0 && j.promptTokens > j.imageTokens);
});

test('ask streams the answer to stdout without --json', () => {
  const r = ask([image, 'What is in the picture?', '--model', tiny, '--device', 'cpu', '--max-new-tokens', '4']);
  assert.equal(r.code, 0, r.err);
  assert.ok(r.out.trim().length > 0);
});

const badCases: [string, string[], RegExp][] = [
  ['missing image', [join(root, 'no-such.png'), 'q'], /image not found/],
  ['text file as image', [join(root, 'package.json'), 'q'], /not a supported image|could not be decoded/],
  ['empty question', [image, '   '], /question is empty/],
  ['huge question', [image, 'x'.repeat(100_000)], /limit is/],
  ['unknown device', [image, 'q', '--device', 'tpu'], /unknown device/],
  ['bad keep', [image, 'q', '--keep', '1.5'], /--keep/],
  ['unknown policy', [image, 'q', '--policy', 'lru'], /unknown policy/],
  ['bad max-new-tokens', [image, 'q', '--max-new-tokens', '0'], /max-new-tokens/],
  ['unknown detail', [image, 'q', '--detail', 'huge'], /--detail must be one of global, low, medium, full/],
  ['unknown option', [image, 'q', '--frobnicate'], /Unknown option|unknown option/i],
  ['missing model folder', [image, 'q', '--model', join(root, 'no-model')], /model folder not found/],
  ['missing arguments', [image], /usage/],
];
for (const [name, args, pattern] of badCases) {
  test(`bad input exits 2 with one line: ${name}`, () => {
    const r = ask([...args, ...(args.includes('--model') ? [] : ['--model', tiny]), '--device', args.includes('--device') ? args[args.indexOf('--device') + 1] : 'cpu']);
    assert.equal(r.code, 2, `${r.err}`);
    const lines = r.err.trim().split('\n');
    assert.equal(lines.length, 1, r.err);
    assert.match(lines[0], /^error: /);
    assert.match(lines[0], pattern);
  });
}
