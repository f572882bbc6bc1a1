import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseWebviewMessage, Throttle, MAX_QUESTION_LENGTH } from '../../extension/webviewMessages.js';

test('valid webview messages pass the schema', () => {
  for (const m of [
    { type: 'ready' },
    { type: 'stop' },
    { type: 'showLog' },
    { type: 'ask', question: 'What is in the picture?' },
    { type: 'ask', question: 'x'.repeat(MAX_QUESTION_LENGTH) },
    { type: 'setCache', policy: 'elastic', keep: 0.5 },
    { type: 'setCache', policy: 'full', keep: 1 },
    { type: 'setCache', policy: 'h2o', keep: 0.05 },
    { type: 'downloadModel' },
    { type: 'useModel', id: 0 },
    { type: 'useModel', id: 2 },
  ]) {
    const r = parseWebviewMessage(m);
    assert.equal(r.ok, true, JSON.stringify(m));
    if (r.ok) assert.deepEqual(r.message, m);
  }
});

test('unknown and malformed webview messages are rejected with a reason', () => {
  const bad: unknown[] = [
    null, undefined, 42, 'ask', [], [{ type: 'ready' }],
    {}, { type: 'nope' }, { type: 'constructor' }, { type: '__proto__' }, { type: 'toString' }, { type: 7 },
    { type: 'ask' }, { type: 'ask', question: '' }, { type: 'ask', question: '   \n\t' }, { type: 'ask', question: 5 },
    { type: 'ask', question: 'x'.repeat(MAX_QUESTION_LENGTH + 1) },
    { type: 'ask', question: 'hi', image: '/etc/passwd' },
    { type: 'ready', extra: 1 },
    { type: 'setCache', policy: 'elastic' }, { type: 'setCache', keep: 0.5 },
    { type: 'setCache', policy: 'magic', keep: 0.5 }, { type: 'setCache', policy: 'elastic', keep: 0 },
    { type: 'setCache', policy: 'elastic', keep: 1.5 }, { type: 'setCache', policy: 'elastic', keep: NaN },
    { type: 'setCache', policy: 'elastic', keep: '0.5' }, { type: 'setCache', policy: 'elastic', keep: Infinity },
    // the warning's offers: an index into the extension's own list, never a path
    { type: 'useModel' }, { type: 'useModel', id: -1 }, { type: 'useModel', id: 3 }, { type: 'useModel', id: 0.5 },
    { type: 'useModel', id: '0' }, { type: 'useModel', id: 0, dir: '/tmp/evil' }, { type: 'downloadModel', repo: 'x/y' },
  ];
  for (const m of bad) {
    const r = parseWebviewMessage(m);
    assert.equal(r.ok, false, `should reject ${JSON.stringify(m)}`);
    if (!r.ok) assert.ok(r.error.length > 0 && r.error.length < 200);
  }
});

test('a prototype-polluting message is rejected and pollutes nothing', () => {
  const m = JSON.parse('{"type":"ready","__proto__":{"polluted":true}}');
  assert.equal(parseWebviewMessage(m).ok, false);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});

test('Throttle: first value at once, then at most one per interval, the last value always delivered', async () => {
  let now = 0;
  const got: number[] = [];
  const t = new Throttle<number>(100, (v) => got.push(v), () => now);
  t.push(1);
  assert.deepEqual(got, [1]);
  t.push(2);
  t.push(3);
  assert.deepEqual(got, [1]);
  now = 100;
  await new Promise((r) => setTimeout(r, 120));
  assert.deepEqual(got, [1, 3]);
  t.push(4);
  t.flush();
  assert.deepEqual(got, [1, 3, 4]);
  t.flush();
  assert.deepEqual(got, [1, 3, 4]);
  t.dispose();
});

test('Throttle bounds the post rate under a token-rate stream', async () => {
  const got: number[] = [];
  const t = new Throttle<number>(50, (v) => got.push(v));
  const start = Date.now();
  let i = 0;
  while (Date.now() - start < 260) {
    t.push(i++);
    await new Promise((r) => setTimeout(r, 2));
  }
  t.flush();
  assert.ok(i > 40, `pushed ${i}`);
  assert.ok(got.length <= 8, `posted ${got.length} of ${i}`);
  assert.equal(got[got.length - 1], i - 1);
});
