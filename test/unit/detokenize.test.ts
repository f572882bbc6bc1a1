// The streamed text (TextStream, the generation loop's detokenizer) must equal what decoding the whole answer at
// every step gave: same text at the end, same text after every token that completes a character.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readModelFolder } from '../../runtime/model/modelFolder.js';
import { PromptBuilder } from '../../runtime/model/prompt.js';
import { TextStream } from '../../runtime/model/detokenize.js';

const root = join(__dirname, '..', '..');
const TEXTS = [
  'This is a bar chart titled delta with five blue bars. The y axis goes from 0 to 10 with a grid line at every step. '.repeat(4),
  'Zwölf Boxkämpfer jagen Viktor quer über den großen Sylter Deich — 日本語のテキスト 🙂🙂 and emoji 👩‍💻 at the end',
  'lines\nwith\n\n  indentation\tand tabs, "quotes", (brackets) and punctuation ... ! ? ; : 1234567890 x',
];

/** Deltas of a TextStream over ids, and the reference: decode(prefix) at every step, as the loop did before. */
function both(decode: (ids: number[]) => string, ids: number[]) {
  const s = new TextStream(decode);
  let streamed = '';
  let reference = '';
  const mismatches: string[] = [];
  ids.forEach((id, k) => {
    streamed += s.push(id);
    const full = decode(ids.slice(0, k + 1));
    if (full.length > reference.length && !full.endsWith('\uFFFD')) reference = full;
    if (streamed !== reference) mismatches.push(`after token ${k}: ${JSON.stringify(streamed.slice(-20))} vs ${JSON.stringify(reference.slice(-20))}`);
  });
  return { streamed, all: decode(ids), mismatches };
}

for (const name of ['default', 'tiny-model']) {
  test(`streamed text equals the whole decode at every step (${name} tokenizer)`, () => {
    const dir = name === 'default' ? join(root, 'models', 'default') : join(root, 'test', 'fixtures', name);
    const pb = new PromptBuilder(readModelFolder(dir));
    const decode = (ids: number[]) => pb.decode(ids);
    for (const text of TEXTS) {
      const ids = pb.tokenizer.encode(text).ids;
      assert.ok(ids.length > 40, `${ids.length} tokens`);
      const r = both(decode, ids);
      assert.deepEqual(r.mismatches, []);
      assert.equal(r.streamed, r.all);
    }
  });
}

test('a decoder that drops the first space of its output still streams the spaces between words', () => {
  // Like a Metaspace decoder: ids are words; each word but the first of a decode call gets a leading space.
  const words = Array.from({ length: 60 }, (_, i) => `w${i}`);
  const decode = (ids: number[]) => ids.map((i) => words[i]).join(' ');
  const ids = words.map((_, i) => i);
  const r = both(decode, ids);
  assert.deepEqual(r.mismatches, []);
  assert.equal(r.streamed, words.join(' '));
});

test('a decoder whose prefixes are not text prefixes falls back to decoding everything', () => {
  // Title-cases the first letter of its output: a decode of the tail alone differs from the same tokens in context.
  const words = Array.from({ length: 40 }, (_, i) => `word${i}`);
  const decode = (ids: number[]) => {
    const t = ids.map((i) => words[i]).join(' ');
    return t.charAt(0).toUpperCase() + t.slice(1);
  };
  const ids = words.map((_, i) => i);
  const r = both(decode, ids);
  assert.deepEqual(r.mismatches, []);
  assert.equal(r.streamed, decode(ids));
});

test('decodes a bounded number of tokens per step', () => {
  let longest = 0;
  const decode = (ids: number[]) => {
    longest = Math.max(longest, ids.length);
    return ids.map((i) => `t${i}`).join(' ');
  };
  const s = new TextStream(decode);
  for (let i = 0; i < 1000; i++) s.push(i);
  assert.ok(longest <= 17, `decoded up to ${longest} tokens at once`);
});
