// npm run ask: --help lists every option the README documents, answers start without the tokenizer's space,
// --verbose logs only to stderr, and the npm project config gives no warnings.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { leadingTrimmer } from '../../runtime/cli/ask.js';
import { ask, root } from '../helpers/cli.js';

const tiny = join(root, 'test', 'fixtures', 'tiny-model');
const image = join(root, 'test', 'fixtures', 'images', 'diagram.png');

test('ask --help exits 0 and lists every option of the README', () => {
  const r = ask(['--help']);
  assert.equal(r.code, 0, r.err);
  assert.equal(r.err, '');
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const block = /```sh\nnpm run ask -- ([\s\S]*?)\nnpm run eval/.exec(readme);
  assert.ok(block, 'the README shows the ask command line');
  const options = [...new Set(block[1].match(/--[a-z][a-z-]*/g))];
  assert.ok(options.length >= 10, options.join(' '));
  for (const o of options) assert.match(r.out, new RegExp(`^\\s+${o}\\b`, 'm'), `--help lists ${o}`);
  assert.equal(ask(['-h']).out, r.out);
});

test('the streamed answer starts without whitespace, and equals the --json answer', () => {
  const common = [image, 'What is in the picture?', '--model', tiny, '--device', 'cpu', '--max-new-tokens', '6'];
  const plain = ask(common);
  assert.equal(plain.code, 0, plain.err);
  const json = JSON.parse(ask([...common, '--json']).out);
  assert.equal(plain.out, `${json.answer}\n`);
  assert.doesNotMatch(plain.out, /^\s/);
});

test('leadingTrimmer drops whitespace only before the first visible character', () => {
  let out = '';
  const w = leadingTrimmer((t) => (out += t));
  for (const t of [' ', '  ', ' Four', ' bars', '\n', ' x']) w(t);
  assert.equal(out, 'Four bars\n x');
});

test('--verbose logs to stderr, never into the answer', () => {
  const common = [image, 'What is in the picture?', '--model', tiny, '--device', 'cpu', '--max-new-tokens', '6'];
  const quiet = ask(common);
  const loud = ask([...common, '--verbose']);
  assert.equal(loud.code, 0, loud.err);
  assert.equal(loud.out, quiet.out, 'stdout holds only the answer');
  assert.match(loud.err, /loaded .* on cpu/, 'the log went to stderr');
  const loudJson = ask([...common, '--verbose', '--json']);
  assert.doesNotThrow(() => JSON.parse(loudJson.out), 'stdout is one JSON object with --verbose');
});

test('--device webgpu without a hardware GPU says the adapter is software, and how fast it decoded', { skip: existsSync('/dev/dri') || existsSync('/dev/nvidia0') ? 'a GPU device node is present' : false }, () => {
  const r = ask([image, 'What is in the picture?', '--model', tiny, '--device', 'webgpu', '--max-new-tokens', '4']);
  // With no Vulkan at all the provider fails (exit 2, one line); with lavapipe it answers: both name the adapter.
  assert.match(r.err, /software adapter/);
  if (r.code === 0) assert.match(r.err, /software WebGPU decoded [\d.]+ tokens\/s/);
});

test('npm commands print no "Unknown project config" warning', () => {
  const r = spawnSync('npm', ['run', '--silent', 'typecheck', '--', '--version'], { encoding: 'utf8', cwd: root });
  assert.doesNotMatch(r.stderr, /Unknown project config/);
  assert.ok(!existsSync(join(root, '.npmrc')) || !/onnxruntime-node-install/.test(readFileSync(join(root, '.npmrc'), 'utf8')));
});
