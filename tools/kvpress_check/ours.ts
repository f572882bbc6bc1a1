// Our side of the kvpress peer check (issue 15): for the first N held-out samples, the entries our snapkv, streaming
// and h2o policies keep right after the prompt's prefill (before any decode step), per layer, with the prompt's token
// ids and a checksum of the pixel values, so that tools/kvpress_check/compare.py can put kvpress's presses on the
// same inputs of the PyTorch twin without Node on the GPU machine.
// Usage: node --import tsx tools/kvpress_check/ours.ts [--data data/heldout] [--limit 40] [--out tools/kvpress_check/ours.json]
// Format (compact): ids are comma-separated with runs of one id written ID*COUNT; each layer's kept set is the
// base64 of a little-endian bit mask over the prompt positions (bit j of byte j>>3 set = position j kept).
import { createHash } from 'node:crypto';
import { execSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Vlm } from '../../runtime/vlm.js';
import { defaultModelDir } from '../../runtime/paths.js';
import { decodeImage, preprocess } from '../../runtime/model/preprocess.js';
import { readSamples, samplesFile } from '../../runtime/cli/eval.js';
import { toFloat } from '../../runtime/generate/tensors.js';
import type { PolicyName } from '../../runtime/protocol.js';
import { SNAPKV_KERNEL, SNAPKV_WINDOW } from '../../runtime/cache/policies/snapkv.js';
import { STREAMING_DEFAULT_SINKS } from '../../runtime/cache/policies/streaming.js';
import { H2O_DEFAULT_HEAVY_SHARE } from '../../runtime/cache/policies/h2o.js';

const POLICIES: PolicyName[] = ['snapkv', 'streaming', 'h2o'];
const KEEPS = [0.5, 0.3, 0.2];

/** "1,5*64,7": runs of one id collapse to ID*COUNT. */
export function packIds(ids: number[]): string {
  const out: string[] = [];
  for (let i = 0; i < ids.length;) {
    let j = i;
    while (j < ids.length && ids[j] === ids[i]) j++;
    out.push(j - i > 2 ? `${ids[i]}*${j - i}` : ids.slice(i, j).join(','));
    i = j;
  }
  return out.join(',');
}

/** A kept-state string ('k' kept, 'm' merged, '-' gone) as a little-endian bit mask in base64. */
export function packMask(state: string): string {
  const bytes = new Uint8Array(Math.ceil(state.length / 8));
  for (let j = 0; j < state.length; j++) if (state[j] !== '-') bytes[j >> 3] |= 1 << (j & 7);
  return Buffer.from(bytes).toString('base64');
}

async function main() {
  const { values } = parseArgs({ options: { data: { type: 'string' }, limit: { type: 'string' }, out: { type: 'string' }, model: { type: 'string' } } });
  const data = values.data ?? 'data/heldout';
  const limit = Number(values.limit ?? 40);
  const out = values.out ?? 'tools/kvpress_check/ours.json';
  const samples = readSamples(samplesFile(resolve(data))).slice(0, limit);
  const vlm = await Vlm.load({ modelDir: resolve(values.model ?? defaultModelDir()), device: 'cpu' });
  const rows = [];
  try {
    for (let i = 0; i < samples.length; i++) {
      const s = samples[i];
      const enc = await vlm.encodeImage(s.image);
      const { ids } = vlm.prompt.firstTurn(s.question, enc.layout);
      // The pixel values as the 8-bit tiles they came from: Python's PIL path must give the same bytes.
      const pre = await preprocess(await decodeImage(s.image), vlm.config.image);
      const u8 = Uint8Array.from(pre.pixelValues, (x) => Math.round((x * 0.5 + 0.5) * 255));
      const feats = toFloat(enc.features);
      let absMean = 0;
      for (const v of feats) absMean += Math.abs(v);
      const kept: Record<string, Record<string, string[]>> = {};
      for (const policy of POLICIES) {
        kept[policy] = {};
        for (const keep of KEEPS) {
          let layers: string[] = [];
          const r = await vlm.conversation().ask(s.image, s.question, { cache: { policy, keep }, generate: { maxNewTokens: 1 } }, {
            trackKept: true,
            onStats: (_st, k) => { if (k) layers = k.layers; },
          });
          // maxNewTokens 1: no decode step ran, so the snapshot is the prefill's plan alone.
          if (r.cache.tokensSeen !== ids.length) throw new Error(`sample ${i}: ${r.cache.tokensSeen} tokens seen, prompt is ${ids.length}`);
          kept[policy][String(keep)] = layers.map(packMask);
        }
      }
      rows.push({
        i, task: s.task, image: s.image.replace(`${resolve(data)}/`, ''), question: s.question, L: ids.length, ids: packIds(ids),
        tiles: { rows: pre.rows, cols: pre.cols, n: pre.numImages, sha256: createHash('sha256').update(u8).digest('hex') },
        features: { head: Array.from(feats.subarray(0, 8), (v) => Number(v.toPrecision(6))), absMean: Number((absMean / feats.length).toPrecision(6)) },
        kept,
      });
      process.stderr.write(`${i + 1}/${samples.length} L=${ids.length}\n`);
    }
  } finally {
    await vlm.release();
  }
  let commit = '';
  try { commit = execSync('git rev-parse --short HEAD', { encoding: 'utf8' }).trim(); } catch { /* not a checkout */ }
  const doc = {
    what: 'entries kept right after the prefill (no decode step) by runtime/cache/policies/{snapkv,streaming,h2o}.ts, per layer',
    commit, model: values.model ?? 'models/default', data, provider: vlm.provider,
    params: { snapkv: { window: SNAPKV_WINDOW, kernel: SNAPKV_KERNEL }, streaming: { sinks: STREAMING_DEFAULT_SINKS }, h2o: { heavyShare: H2O_DEFAULT_HEAVY_SHARE } },
    policies: POLICIES, keeps: KEEPS, layers: vlm.config.numLayers, imageTokenId: vlm.config.imageTokenId, rows,
  };
  writeFileSync(out, `${JSON.stringify(doc)}\n`);
  process.stderr.write(`wrote ${out}\n`);
}

if (require.main === module) main().catch((e) => { process.stderr.write(`error: ${(e as Error).stack}\n`); process.exit(1); });
