// Evaluation statistics: metrics from per-sample items, seeded bootstrap intervals, shards and their merge, the
// multi-turn pairs, and the eval CLI's bad-input errors (one `error:` line, exit 2).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { bootstrap, metrics, parseShard, percentile, separated, shardOf, type Item } from '../../runtime/cli/evalStats.js';
import { makeRow, mergeShards, multiTurnPairs, needsImportance, readSamples, samplesFile, type Sample } from '../../runtime/cli/eval.js';
import { isBadInput } from '../../runtime/errors.js';

const it = (i: number, task: string, x: number, lp = -0.1, n = 1): Item =>
  task === 'describe' ? { i, task, rouge: x, lp, n, kept: 2, seen: 10 } : { i, task, hit: x, lp, n, kept: 2, seen: 10 };

test('metrics: accuracy over short answers, ROUGE-L over descriptions, token-level perplexity', () => {
  const m = metrics([it(0, 'a', 1, -1, 2), it(1, 'a', 0, 0, 2), it(2, 'b', 1, -1, 1), it(3, 'describe', 0.5, 0, 1)]);
  assert.equal(m.accuracy, 2 / 3);
  assert.deepEqual(m.perTask, { a: 0.5, b: 1 });
  assert.equal(m.rougeL, 0.5);
  assert.ok(Math.abs(m.ppl - Math.exp(2 / 6)) < 1e-12);
  assert.equal(m.keptShare, 0.2);
});

test('bootstrap: deterministic, brackets the estimate, degenerate when every sample agrees', () => {
  const items = Array.from({ length: 40 }, (_, i) => it(i, 'a', i % 4 === 0 ? 0 : 1));
  const a = bootstrap(items, 500);
  const b = bootstrap(items, 500);
  assert.deepEqual(a, b);
  assert.ok(a.accuracy!.lo < 0.75 && a.accuracy!.hi > 0.75 && a.accuracy!.lo > 0.5);
  assert.equal(a.rougeL, null);
  const all = bootstrap(Array.from({ length: 10 }, (_, i) => it(i, 'a', 1)), 100);
  assert.deepEqual(all.accuracy, { lo: 1, hi: 1 });
  assert.equal(percentile([0, 10], 0.25), 2.5);
  assert.ok(separated({ lo: 0, hi: 0.4 }, { lo: 0.5, hi: 1 }) && !separated({ lo: 0, hi: 0.6 }, { lo: 0.5, hi: 1 }));
});

test('shards cover every sample once and merge back to the unsharded row', () => {
  assert.deepEqual(parseShard('2/3'), [2, 3]);
  assert.equal(parseShard('0/3'), null);
  assert.equal(parseShard('4/3'), null);
  assert.equal(parseShard('x'), null);
  const xs = [...'abcdefg'];
  const got = [1, 2, 3].flatMap((i) => shardOf(xs, i, 3).map((e) => e.index)).sort();
  assert.deepEqual(got, [0, 1, 2, 3, 4, 5, 6]);
  const items = Array.from({ length: 9 }, (_, i) => it(i, i % 3 ? 'a' : 'describe', i % 2));
  const whole = makeRow('h2o', 0.2, 'absolute', '', false, items);
  const parts = [1, 2, 3].map((k) => ({ rows: [makeRow('h2o', 0.2, 'absolute', '', false, shardOf(items, k, 3).map((e) => e.x))] }));
  const [merged] = mergeShards(parts);
  assert.equal(merged.accuracy, whole.accuracy);
  assert.equal(merged.rougeL, whole.rougeL);
  assert.equal(merged.ppl, whole.ppl);
  assert.deepEqual(merged.ci, whole.ci);
  assert.equal(merged.samples, 9);
});

test('multi-turn pairs: first short question of an image, then one of another task', () => {
  const s = (image: string, task: string): Sample => ({ image, task, question: 'q', answer: 'a' });
  const samples = [s('x', 'count'), s('x', 'count'), s('x', 'color'), s('x', 'describe'), s('y', 'count'), s('z', 'a'), s('z', 'b')];
  assert.deepEqual(multiTurnPairs(samples), [[0, 2], [5, 6]]);
});

const root = join(__dirname, '..', '..');

test('--data: a samples.jsonl, or a folder holding one (data/heldout-real), image paths resolved against it', () => {
  const dir = join(root, 'data', 'heldout-real');
  assert.equal(samplesFile(dir), join(dir, 'samples.jsonl'));
  assert.equal(samplesFile(join(dir, 'samples.jsonl')), join(dir, 'samples.jsonl'));
  const samples = readSamples(samplesFile(dir));
  assert.ok(samples.length > 200);
  assert.ok(samples.some((s) => s.task === 'bars_title'));
  assert.ok(samples.every((s) => s.image.startsWith(dir)));
});

const evalCli = (...args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', join(root, 'runtime', 'cli', 'eval.ts'), ...args], { encoding: 'utf8', cwd: root });

for (const [name, args, pattern] of [
  ['keep 0', ['--keep', '0'], /--keep must be a number in \(0, 1\]/],
  ['keep above 1', ['--keep', '1.5'], /--keep/],
  ['unknown policy', ['--policy', 'snap'], /unknown policy "snap"/],
  ['unknown variant', ['--variant', 'v2'], /unknown --variant "v2"/],
  ['unknown follow-up mode', ['--follow-up', 'forget'], /--follow-up must be reexpand or reuse/],
  ['bad shard', ['--shard', '3/2'], /--shard must be i\/n/],
  ['unknown option', ['--bogus'], /bogus/],
  ['missing held-out folder', ['--data', 'no/such/dir'], /held-out set not found: .*no\/such\/dir/],
] as const) {
  test(`eval: bad input exits 2 with one error line: ${name}`, () => {
    const r = evalCli(...args);
    assert.equal(r.status, 2, r.stderr);
    const lines = r.stderr.trim().split('\n').filter((l) => !l.startsWith('npm warn'));
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], /^error: /);
    assert.match(lines[0], pattern);
  });
}

test('a model whose importance cannot be read: a bad-input error naming the policies (the CLI prints it, exit 2)', () => {
  const e = needsImportance([{ policy: 'full' }, { policy: 'elastic' }, { policy: 'snapkv' }, { policy: 'elastic' }], false, 'm');
  assert.ok(e && isBadInput(e));
  assert.match(e!.message, /attention importance of m cannot be read.*elastic, snapkv cannot run/);
  assert.equal(needsImportance([{ policy: 'full' }, { policy: 'streaming' }], false, 'm'), null);
  assert.equal(needsImportance([{ policy: 'h2o' }], true, 'm'), null);
});
