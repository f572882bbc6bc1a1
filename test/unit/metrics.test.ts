import { test } from 'node:test';
import assert from 'node:assert/strict';
import { exactMatch, lcsLength, perplexity, rougeL } from '../../runtime/eval/metrics.js';
import { argmax, logProb, makeSampler } from '../../runtime/generate/sampling.js';
import { parseRequest } from '../../runtime/protocol.js';
import { describeFailure } from '../../runtime/errors.js';

test('exact match ignores case, spacing and a final full stop', () => {
  assert.ok(exactMatch(' Red.', 'red'));
  assert.ok(!exactMatch('red square', 'red'));
});

test('ROUGE-L by hand', () => {
  // LCS("the red box is left", "the box is red") = the, box, is -> 3; P = 3/5, R = 3/4, F = 2PR/(P+R) = 0.6667
  assert.equal(lcsLength('the red box is left'.split(' '), 'the box is red'.split(' ')), 3);
  assert.ok(Math.abs(rougeL('the red box is left', 'the box is red') - (2 * 0.6 * 0.75) / 1.35) < 1e-12);
  assert.equal(rougeL('same words here', 'Same words, here.'), 1);
  assert.equal(rougeL('', 'x'), 0);
});

test('perplexity is exp of the mean negative log-likelihood', () => {
  assert.ok(Math.abs(perplexity([Math.log(0.5), Math.log(0.25)]) - Math.exp((Math.log(2) + Math.log(4)) / 2)) < 1e-12);
});

test('greedy picks the argmax; log-probabilities are normalised', () => {
  const l = Float32Array.from([0, 2, 1]);
  assert.equal(argmax(l), 1);
  const total = [0, 1, 2].reduce((s, i) => s + Math.exp(logProb(l, i)), 0);
  assert.ok(Math.abs(total - 1) < 1e-9);
});

test('seeded sampling is reproducible and top-p cuts the tail', () => {
  const logits = Float32Array.from([5, 4, 0, -5]);
  const a = makeSampler({ temperature: 1, topP: 1, seed: 7 });
  const b = makeSampler({ temperature: 1, topP: 1, seed: 7 });
  const sa = Array.from({ length: 50 }, () => a(logits));
  const sb = Array.from({ length: 50 }, () => b(logits));
  assert.deepEqual(sa, sb);
  // p(0) = 0.73, p(1) = 0.27: top-p 0.5 keeps only token 0
  const c = makeSampler({ temperature: 1, topP: 0.5, seed: 1 });
  for (let i = 0; i < 50; i++) assert.equal(c(logits), 0);
});

test('protocol: malformed messages are rejected with a reason', () => {
  assert.equal(parseRequest(null).ok, false);
  assert.equal(parseRequest({ type: 'ask', id: 1 }).ok, false);
  const bad = parseRequest({ type: 'ask', id: 3, image: 'a.png', question: 'q', cache: { policy: 'nope', keep: 0.5 }, generate: { maxNewTokens: 4 } });
  assert.ok(!bad.ok && /unknown cache policy/.test(bad.error) && bad.id === 3);
  const keep = parseRequest({ type: 'ask', id: 3, image: 'a.png', question: 'q', cache: { policy: 'elastic', keep: 1.5 }, generate: { maxNewTokens: 4 } });
  assert.ok(!keep.ok && /cache keep must be in \(0, 1\]/.test(keep.error));
  // A follow-up keeps the first turn's cache options: a cache field would be silently ignored, so it is refused.
  const fu = parseRequest({ type: 'followUp', id: 5, question: 'q', cache: { policy: 'h2o', keep: 0.5 }, generate: { maxNewTokens: 4 } });
  assert.ok(!fu.ok && /followUp takes no cache options/.test(fu.error));
  assert.ok(parseRequest({ type: 'followUp', id: 6, question: 'q', generate: { maxNewTokens: 4 } }).ok);
  assert.equal(parseRequest({ type: 'explode', id: 2 }).ok, false);
  const ok = parseRequest({ type: 'ask', id: 4, image: 'a.png', question: 'q', cache: { policy: 'elastic', keep: 0.5 }, generate: { maxNewTokens: 4 } });
  assert.ok(ok.ok);
});

test('an allocation failure is named as such with what to try; other failures pass through as one line', () => {
  const m = describeFailure(new Error('[ErrorCode:RuntimeException] Failed to allocate memory for requested buffer of size 855638016\n at ...'));
  assert.match(m, /^out of memory while answering \(.*Failed to allocate memory.*\): try elasticVlm\.imageDetail low/);
  assert.equal(describeFailure(new Error('shape mismatch\nstack')), 'shape mismatch');
});
