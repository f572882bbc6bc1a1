// Folders shaped like the published SmolVLM ONNX repos (tools/lookalike, built here at test time): a fused
// decoder as onnxruntime-genai's builder writes it (GroupQueryAttention with rotary inside) at the real widths with
// 2 layers, in every published dtype, and its torch-format twin with the same weights. Random weights repeat one
// token, so parity is shown with logits.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync, mkdirSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onnx } from 'onnx-proto';
import { Vlm, type TurnResult } from '../../runtime/vlm.js';
import { BadInputError } from '../../runtime/errors.js';
import { DTYPES } from '../../runtime/model/dtypes.js';
import type { CacheOptions, PolicyName } from '../../runtime/protocol.js';
import { lookalike } from '../helpers/lookalike.js';

const root = join(__dirname, '..', '..');
const IMAGE = join(root, 'media', 'samples', 'bars.png');
const BASE = ['--preset', 'smolvlm-256m', '--layers', '2', '--no-image-splitting'];
const FUSED = lookalike([...BASE, '--format', 'fused', '--dtypes', DTYPES.join(',')]);
const TWIN = lookalike([...BASE, '--format', 'torch', '--dtypes', 'fp32']);
const work = mkdtempSync(join(tmpdir(), 'evlm-lookalike-'));
const cacheDir = join(work, 'derived');
process.on('exit', () => rmSync(work, { recursive: true, force: true }));

const ops = (file: string) => {
  const m = onnx.ModelProto.decode(readFileSync(file));
  const count: Record<string, number> = {};
  for (const n of m.graph?.node ?? []) count[n.opType!] = (count[n.opType!] ?? 0) + 1;
  return count;
};

interface Run { result: TurnResult; logits: Float32Array[] }
async function run(vlm: Vlm, cache: CacheOptions, force?: number[]): Promise<Run> {
  const logits: Float32Array[] = [];
  const result = await vlm.conversation().ask(IMAGE, 'Describe this image.', {
    cache, generate: { maxNewTokens: force ? force.length : 6, ignoreEos: true }, force,
  }, { onForward: (_k, l) => logits.push(Float32Array.from(l)) });
  return { result, logits };
}
const maxDiff = (a: Float32Array[], b: Float32Array[]) => {
  assert.equal(a.length, b.length);
  let d = 0;
  a.forEach((x, i) => x.forEach((v, j) => (d = Math.max(d, Math.abs(v - b[i][j])))));
  return d;
};

test('the fused decoder is the builder\'s graph; the twin has one Softmax per layer', () => {
  const f = ops(join(FUSED, 'onnx', 'decoder_model_merged.onnx'));
  assert.equal(f.GroupQueryAttention, 2);
  assert.equal(f.SkipSimplifiedLayerNormalization, 4);
  assert.equal(f.Softmax, undefined);
  assert.equal(ops(join(FUSED, 'onnx', 'decoder_model_merged_q4.onnx')).MatMulNBits, 2 * 5 + 1); // qkv, o, gate, up, down per layer, lm_head
  assert.equal(ops(join(TWIN, 'onnx', 'decoder_model_merged.onnx')).Softmax, 2);
  const tok = JSON.parse(readFileSync(join(FUSED, 'tokenizer.json'), 'utf8'));
  assert.equal(Object.keys(tok.model.vocab).length + tok.added_tokens.length - 3, 49280);
});

test('parity with the torch-format twin: logits within 1e-3 at full cache and after an Elastic compaction, at true positions', async () => {
  const fused = await Vlm.load({ modelDir: FUSED, device: 'cpu', cacheDir });
  const twin = await Vlm.load({ modelDir: TWIN, device: 'cpu', cacheDir });
  const full = await run(twin, { policy: 'full', keep: 1 });
  const force = full.result.ids;
  const rows: Record<string, number> = {};
  // Elastic with its mass-keeping merges: both derived decoders take attn_bias.* (a Softmax's scores, GroupQueryAttention's
  // attention_bias; onnx/massBias.ts), so the merged cache must give the same logits in both formats.
  for (const cache of [{ policy: 'full', keep: 1 }, { policy: 'elastic', keep: 0.3 }, { policy: 'h2o', keep: 0.3 }] as CacheOptions[]) {
    const a = await run(fused, cache, force);
    const b = await run(twin, cache, force);
    rows[cache.policy] = maxDiff(a.logits, b.logits);
    assert.ok(rows[cache.policy] < 1e-3, `${cache.policy}: fused vs twin max |d logit| ${rows[cache.policy]}`);
    if (cache.policy !== 'full') assert.ok(a.result.cache.perLayerLength[0] < 0.4 * a.result.cache.tokensSeen);
  }
  // Both ways: the fused graph as published (rotary from the cache length) puts the token at the compressed length.
  const raw = await Vlm.load({ modelDir: FUSED, device: 'cpu', scores: false });
  const stream = { policy: 'streaming', keep: 0.3 } as CacheOptions;
  const asPublished = maxDiff((await run(raw, stream, force)).logits, (await run(twin, stream, force)).logits);
  const compressed = maxDiff((await run(raw, stream, force)).logits, (await run(twin, { ...stream, positions: 'compressed' }, force)).logits);
  console.log(`# fused vs twin max |d logit|: ${JSON.stringify(rows)}; published fused graph after compaction: ${asPublished.toExponential(2)} vs true positions, ${compressed.toExponential(2)} vs compressed positions`);
  assert.ok(asPublished > 1e-2, 'the unrewritten fused graph ignores true positions');
  assert.ok(compressed < 1e-3, 'and matches the twin at compressed positions');
  await Promise.all([fused.release(), twin.release(), raw.release()]);
});

for (const dtype of DTYPES) {
  test(`dtype ${dtype}: loads and runs every policy`, async () => {
    const vlm = await Vlm.load({ modelDir: FUSED, device: 'cpu', dtype, cacheDir });
    assert.ok(vlm.scoreOutputs, `${dtype}: importance from GroupQueryAttention`);
    for (const policy of ['full', 'elastic', 'h2o', 'streaming'] as PolicyName[]) {
      const { result, logits } = await run(vlm, { policy, keep: 0.3 });
      assert.equal(result.generatedTokens, 6);
      assert.ok(logits.every((l) => l.every(Number.isFinite)), `${dtype}/${policy}: finite logits`);
      const c = result.cache;
      if (policy === 'full') assert.equal(c.perLayerLength[0], c.tokensSeen);
      else assert.ok(Math.abs(c.perLayerLength[0] - 0.3 * c.tokensSeen) <= 2, `${dtype}/${policy}: ${c.perLayerLength[0]} of ${c.tokensSeen}`);
    }
    await vlm.release();
  });
}

test('the chat template from chat_template.jinja or chat_template.json alone, without generation_config.json, gives the same tokens', async () => {
  const ref = await Vlm.load({ modelDir: FUSED, device: 'cpu', cacheDir });
  const want = (await run(ref, { policy: 'elastic', keep: 0.3 })).result.ids;
  await ref.release();
  for (const only of ['chat_template.jinja', 'chat_template.json']) {
    const dir = copy(FUSED, (d) => {
      unlinkSync(join(d, 'generation_config.json'));
      const tc = JSON.parse(readFileSync(join(d, 'tokenizer_config.json'), 'utf8'));
      const template = tc.chat_template;
      delete tc.chat_template;
      writeFileSync(join(d, 'tokenizer_config.json'), JSON.stringify(tc));
      unlinkSync(join(d, 'chat_template.json'));
      if (only === 'chat_template.jinja') writeFileSync(join(d, only), template);
      else writeFileSync(join(d, only), JSON.stringify({ chat_template: template }));
    });
    const vlm = await Vlm.load({ modelDir: dir, device: 'cpu', cacheDir });
    assert.equal(vlm.config.chatTemplateFile, only);
    assert.deepEqual((await run(vlm, { policy: 'elastic', keep: 0.3 })).result.ids, want, only);
    await vlm.release();
  }
});

// ---- bad input ----------------------------------------------------------------------------------------------

let n = 0;
/** A copy of a folder (large files linked, the changed ones copied by `change`). */
function copy(src: string, change: (dir: string) => void): string {
  const dir = join(work, `m${n++}`);
  mkdirSync(join(dir, 'onnx'), { recursive: true });
  for (const f of readdirSync(src)) if (f !== 'onnx') cpSync(join(src, f), join(dir, f));
  for (const f of readdirSync(join(src, 'onnx'))) symlinkSync(join(src, 'onnx', f), join(dir, 'onnx', f));
  change(dir);
  return dir;
}
const replaceFile = (dir: string, rel: string, data: Uint8Array | string) => {
  unlinkSync(join(dir, rel));
  writeFileSync(join(dir, rel), data);
};
const editDecoder = (dir: string, f: (m: onnx.ModelProto) => void, rel = 'onnx/decoder_model_merged.onnx') => {
  const m = onnx.ModelProto.decode(readFileSync(join(dir, rel)));
  f(m);
  replaceFile(dir, rel, onnx.ModelProto.encode(m).finish());
};

async function badInput(dir: string, pattern: RegExp, dtype?: string) {
  await assert.rejects(Vlm.load({ modelDir: dir, device: 'cpu', dtype, cacheDir }),
    (e: unknown) => e instanceof BadInputError && pattern.test((e as Error).message), `expected ${pattern}`);
}

test('an unknown attention op: bad input naming the decoder', () => badInput(copy(FUSED, (d) => editDecoder(d, (m) => {
  for (const node of m.graph!.node!) if (node.opType === 'GroupQueryAttention') node.opType = 'PagedGroupAttention';
})), /decoder_model_merged\.onnx uses an operator this onnxruntime cannot run/));

test('a missing or truncated file, a dtype whose files are absent: bad input naming the file', async () => {
  await badInput(copy(FUSED, (d) => unlinkSync(join(d, 'onnx', 'embed_tokens_q4.onnx'))), /missing onnx\/embed_tokens_q4\.onnx \(dtype q4\)/, 'q4');
  await badInput(copy(FUSED, (d) => {
    const b = readFileSync(join(d, 'onnx', 'decoder_model_merged_int8.onnx'));
    replaceFile(d, 'onnx/decoder_model_merged_int8.onnx', b.subarray(0, b.length >> 1));
  }), /decoder_model_merged_int8\.onnx is not a valid ONNX model/, 'int8');
  await badInput(TWIN, /missing onnx\/decoder_model_merged_q4f16\.onnx \(dtype q4f16\)|missing onnx\/\w+_q4f16\.onnx/, 'q4f16');
  await badInput(FUSED, /unknown dtype "q3"/, 'q3');
});

test('a tokenizer smaller than the vocabulary: one error line naming tokenizer.json, exit 2', () => {
  const dir = copy(FUSED, (d) => {
    const t = JSON.parse(readFileSync(join(d, 'tokenizer.json'), 'utf8'));
    t.added_tokens = t.added_tokens.filter((a: { id: number }) => a.id !== 49279);
    writeFileSync(join(d, 'tokenizer.json'), JSON.stringify(t));
  });
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'runtime', 'cli', 'ask.ts'), IMAGE, 'Hi', '--model', dir, '--in-process'],
    { encoding: 'utf8', cwd: root });
  assert.equal(r.status, 2, r.stderr);
  const lines = r.stderr.trim().split('\n').filter((l) => !/^npm warn/.test(l));
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], /^error: tokenizer\.json in .* has 49279 tokens but config\.json says vocab_size 49280/);
});

test('importance unreadable (external data): streaming and full still run, elastic says why', async () => {
  const dir = copy(TWIN, (d) => editDecoder(d, (m) => {
    const t = m.graph!.initializer!.find((x) => x.name === 'lm_head.weight')!;
    writeFileSync(join(d, 'onnx', 'lm_head.bin'), t.rawData!);
    t.rawData = new Uint8Array(0);
    t.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
    t.externalData = [{ key: 'location', value: 'lm_head.bin' }];
  }));
  const vlm = await Vlm.load({ modelDir: dir, device: 'cpu', cacheDir });
  assert.equal(vlm.scoreOutputs, null);
  for (const policy of ['full', 'streaming'] as PolicyName[]) assert.equal((await run(vlm, { policy, keep: 0.3 })).result.generatedTokens, 6);
  await assert.rejects(run(vlm, { policy: 'elastic', keep: 0.3 }), (e: unknown) =>
    e instanceof BadInputError && /needs attention scores.*external data.*streaming and full run without them/.test((e as Error).message));
  await vlm.release();
});

void execFileSync;
