// Bad model folders: each a clear BadInputError naming the problem (and the CLI's exit code 2).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Vlm } from '../../runtime/vlm.js';
import { BadInputError } from '../../runtime/errors.js';

const root = join(__dirname, '..', '..');
const tiny = join(root, 'test', 'fixtures', 'tiny-model');
const work = mkdtempSync(join(tmpdir(), 'evlm-model-'));
process.on('exit', () => rmSync(work, { recursive: true, force: true }));
let n = 0;

/** A copy of the tiny model with one thing broken. */
function broken(change: (dir: string) => void): string {
  const dir = join(work, `m${n++}`);
  cpSync(tiny, dir, { recursive: true });
  change(dir);
  return dir;
}

const editJson = (dir: string, file: string, f: (j: any) => void) => {
  const p = join(dir, file);
  const j = JSON.parse(readFileSync(p, 'utf8'));
  f(j);
  writeFileSync(p, JSON.stringify(j));
};

async function fails(dir: string, pattern: RegExp) {
  await assert.rejects(Vlm.load({ modelDir: dir, device: 'cpu', scores: false }),
    (e: unknown) => e instanceof BadInputError && pattern.test((e as Error).message), `expected ${pattern}`);
}

test('missing folder', () => fails(join(work, 'nope'), /model folder not found/));
test('missing config.json', () => fails(broken((d) => unlinkSync(join(d, 'config.json'))), /missing config\.json/));
test('missing decoder', () => fails(broken((d) => unlinkSync(join(d, 'onnx', 'decoder_model_merged.onnx'))), /missing onnx\/decoder_model_merged\.onnx/));
test('malformed json', () => fails(broken((d) => writeFileSync(join(d, 'preprocessor_config.json'), '{"size": ')), /preprocessor_config\.json .*malformed/));
test('truncated .onnx', () => fails(broken((d) => {
  const p = join(d, 'onnx', 'vision_encoder.onnx');
  const b = readFileSync(p);
  writeFileSync(p, b.subarray(0, b.length >> 1));
}), /not a valid ONNX model/));
test('wrong tensor names', () => fails(broken((d) => {
  // The embed graph where the vision encoder should be: it has no pixel_values input.
  cpSync(join(d, 'onnx', 'embed_tokens.onnx'), join(d, 'onnx', 'vision_encoder.onnx'));
}), /has no input named pixel_values/));
test('config disagrees with the graph (layers)', () => fails(broken((d) => editJson(d, 'config.json', (j) => {
  j.text_config.num_hidden_layers += 1;
})), /layers/));
test('config disagrees with the graph (KV heads)', () => fails(broken((d) => editJson(d, 'config.json', (j) => {
  j.text_config.num_key_value_heads = 1;
  j.text_config.head_dim = j.text_config.head_dim * 2;
})), /KV heads|head_dim/));
test('tokenizer without the image token', () => fails(broken((d) => editJson(d, 'config.json', (j) => {
  j.image_token_id = 10 ** 7;
})), /no token for image_token_id/));
test('chat template missing', () => fails(broken((d) => editJson(d, 'tokenizer_config.json', (j) => {
  delete j.chat_template;
})), /no chat template/));
