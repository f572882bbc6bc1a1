// The vision-language model: a SmolVLM-layout folder loaded into three ONNX Runtime sessions, and the model
// pieces a conversation runs (embed, vision, decoder). The generation loop is runtime/generate/conversation.ts.
import type { InferenceSession, Tensor } from 'onnxruntime-node';
import { BadInputError } from './errors.js';
import { readModelFolder, type ModelConfig } from './model/modelFolder.js';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { decodeImageBytes, preprocess, readImageBytes, type Preprocessed } from './model/preprocess.js';
import { detailConfig } from './model/detail.js';
import { checkFitsInMemory } from './model/memory.js';
import { PromptBuilder } from './model/prompt.js';
import { ort, float16Tensor } from './model/ort.js';
import { chooseProvider, createSession, type AutoRace, type Provider } from './model/sessions.js';
import { probeContext, startDecode } from './model/probe.js';
import { decoderIdentity, keyString, machineId, PROBE_FILE, readProbe, writeProbe, type ProbeKey } from './model/probeCache.js';
import { defaultDerivedCacheDir } from './paths.js';
import { presentName, type KvDtype, type KvShape } from './cache/store.js';
import { AttentionScorer } from './model/scorer.js';
import { MASS_BIAS_PREFIX, zeroMassFeeds } from './onnx/massBias.js';
import { IMPORTANCE_PREFIX } from './onnx/importance.js';
import { QUERY_PREFIX, queryName } from './onnx/queries.js';
import { decoderFetches } from './onnx/newEntries.js';
import { f32ToF16 } from './util/half.js';
import type { Device, DeviceProbe, ImageDetail } from './protocol.js';
import { Conversation, type EncodedImage, type ForwardCounters, type LoadedModel } from './generate/conversation.js';
import { concatRows, feedable, tokenIds, toFloat } from './generate/tensors.js';
import { checkFeatures, loadFamiliarity, type FamiliarityModel, type FamiliarityResult } from './model/familiarity.js';

/** No tensor of the vision encoder's above this: tiles go through it in batches (one attention tensor per tile). */
export const MAX_TENSOR_BYTES = 256 * 1024 * 1024;
/**
 * Measured on an H200 (docs/gpu.md): the kernel refuses the output the importance rewrite reads. The scoring graph
 * (model/scorer.ts) stands in for it; this is the reason given when a decoder's queries cannot be exposed to it.
 */
export const WEBGPU_GQA_NO_SCORES = "onnxruntime 1.30's WebGPU GroupQueryAttention gives no attention scores (output_qk is not supported) and this decoder's attention is not one the scoring graph reproduces";
/** Images whose vision features stay cached (a few MB each at most). */
const ENCODED_IMAGES_KEPT = 8;

export { Conversation } from './generate/conversation.js';
export type { AskCallbacks, StepInfo, TurnOptions, TurnResult } from './generate/conversation.js';

export interface VlmLoadOptions {
  modelDir: string;
  device?: Device;
  dtype?: string;
  /** Derive the attention-importance decoder (needed by elastic and h2o). Default true. */
  scores?: boolean;
  cacheDir?: string;
  /** Bytes of memory the model may take (tests); default: what the machine and its cgroup have free. */
  availableMemory?: number;
  /** Tiles per vision-encoder run; default: as many as keep every tensor under MAX_TENSOR_BYTES. */
  visionBatchTiles?: number;
  log?: (line: string) => void;
  /** The GPU providers `auto` tries (default: this platform's, runtime/model/sessions.ts gpuCandidates; tests). */
  gpuCandidates?: Provider[];
}

interface Sessions {
  vision: InferenceSession;
  embed: InferenceSession;
  decoder: InferenceSession;
  /** Scores from the decoder's queries and keys, where its attention kernel gives none (WebGPU, fused). */
  scorer?: AttentionScorer;
}

/** What a decoder run should bring back besides the logits and the cache. */
export interface DecoderWants {
  /** attn_importance.* (a decoder that computes them in-graph returns them anyway). */
  scores?: boolean;
  /** attn_window.* too. */
  window?: boolean;
}

export class Vlm implements LoadedModel {
  readonly counters: ForwardCounters = { visionRuns: 0, prefillRuns: 0, decodeSteps: 0 };
  private readonly encoded = new Map<string, EncodedImage>();

  private constructor(
    readonly config: ModelConfig,
    readonly prompt: PromptBuilder,
    private readonly sessions: Sessions,
    readonly provider: Provider,
    readonly fallbackReason: string | undefined,
    readonly scoreOutputs: string[] | null,
    readonly kvDtype: KvDtype,
    readonly loadMs: number,
    /** Tiles per vision-encoder run. */
    readonly visionBatchTiles: number,
    /** Why attention importance is unavailable (null when it is available). */
    readonly scoresUnavailable: string | null = null,
    /** The unfamiliar-image statistics (familiarity.json), null without them; `familiarityReason` says why. */
    readonly familiarity: FamiliarityModel | null = null,
    readonly familiarityReason = '',
    /** `auto`'s measured race of a GPU provider against the CPU (absent when a device was named or no GPU loaded). */
    readonly probe?: DeviceProbe,
    /** Whether the decoder takes Elastic's mass bias (onnx/massBias.ts): the scored decoder of unfused attention. */
    readonly takesMassBias = false,
  ) {}

  /** Builder-made fused decoders may lack position_ids (rotary inside GroupQueryAttention): feed it only when taken. */
  get takesPositionIds(): boolean {
    return this.sessions.decoder.inputNames.includes('position_ids');
  }

  static async load(opts: VlmLoadOptions): Promise<Vlm> {
    const t0 = performance.now();
    const log = opts.log ?? (() => {});
    const config = readModelFolder(opts.modelDir, opts.dtype ?? '');
    const prompt = new PromptBuilder(config);

    // The importance-scoring decoder is derived once and cached on disk; without it the score-free policies run.
    let decoderPath = config.files.decoder;
    let kind: string | null = null;
    let scoreOutputs: string[] | null = null;
    let derivedSha: string | undefined;
    let scoresUnavailable: string | null = opts.scores === false ? 'attention scores were not requested' : null;
    if (opts.scores !== false) {
      try {
        const { deriveScoredDecoder } = await import('./onnx/derive.js');
        const d = await deriveScoredDecoder(config.files.decoder, { cacheDir: opts.cacheDir, isolate: true, log });
        decoderPath = d.path;
        kind = d.kind;
        scoreOutputs = d.outputNames;
        derivedSha = d.sourceSha256;
        log(`attention importance: ${d.kind} graph, ${d.layers} layers`);
      } catch (e) {
        scoresUnavailable = (e as Error).message.split('\n')[0];
        log(`attention importance unavailable (${scoresUnavailable}); elastic and h2o need it, streaming and full run`);
      }
    }

    const presents: string[] = [];
    for (let i = 0; i < config.numLayers; i++) presents.push(presentName(i, 'key'), presentName(i, 'value'));
    // WebGPU's GroupQueryAttention has no attention output: there it runs a decoder with true positions that
    // outputs its rotated queries, and the scoring graph computes the attention from them and the present keys.
    const gqaOnWebgpu = (p: Provider) => p === 'webgpu' && kind === 'gqa';
    const queries = Array.from({ length: config.numLayers }, (_, i) => queryName(i));
    const build = async (p: Provider): Promise<Sessions> => {
      // On a GPU the weights live in device memory, which Node cannot see; the CPU's must fit in RAM.
      if (p === 'cpu') checkFitsInMemory([decoderPath, config.files.vision, config.files.embed], opts.availableMemory);
      const derived = gqaOnWebgpu(p) ? await (await import('./onnx/derive.js')).derivePositionsDecoder(config.files.decoder, { cacheDir: opts.cacheDir, isolate: true, log }) : null;
      const withQueries = derived?.queryOutputs === config.numLayers;
      const decoder = await createSession(derived?.path ?? decoderPath, p, { gpuOutputs: p === 'webgpu' ? [...presents, ...(withQueries ? queries : [])] : undefined });
      const scorer = withQueries
        ? await AttentionScorer.create({ ...kvShapeOf(config, checkDecoder(config, decoder)), heads: config.numHeads }, 'webgpu')
        : undefined;
      const vision = await createSession(config.files.vision, p);
      // The embedding lookup is one Gather: on the CPU it costs nothing and spares a GPU round trip per step.
      const embed = await createSession(config.files.embed, 'cpu');
      return { vision, embed, decoder, scorer };
    };
    const device = opts.device ?? 'auto';
    const { choice, value: sessions } = await chooseProvider(device, {
      build,
      log,
      race: device === 'auto' ? await autoRace(config, decoderPath, derivedSha, opts.cacheDir ?? defaultDerivedCacheDir(), log) : undefined,
      candidates: opts.gpuCandidates,
    });
    if (gqaOnWebgpu(choice.provider)) {
      if (sessions.scorer) {
        scoreOutputs = queries.map((_, i) => `${IMPORTANCE_PREFIX}${i}`);
        log('attention importance on webgpu: from the decoder\'s queries and keys (the scoring graph)');
      } else {
        scoreOutputs = null;
        scoresUnavailable = WEBGPU_GQA_NO_SCORES;
        log(`${WEBGPU_GQA_NO_SCORES}: streaming and full run on the GPU`);
      }
    }
    const kvDtype = checkGraphs(config, sessions);
    const loadMs = performance.now() - t0;
    log(`loaded ${opts.modelDir} on ${choice.provider} in ${loadMs.toFixed(0)} ms`);
    const perTile = config.visionHeads * config.patchesPerTile ** 2 * 4; // one tile's attention probabilities, fp32
    // On the CPU one tile a run: the arena keeps a run's peak for good (5 tiles of the 256M look-alike: +1.2 GB of RSS, 1 tile:
    // +0.23 GB), and one tile was no slower (docs/real-size.md, run 6). A GPU keeps the bounded batches.
    const batch = opts.visionBatchTiles ?? (choice.provider === 'cpu' ? 1 : Math.max(1, Math.floor(MAX_TENSOR_BYTES / perTile)));
    const fam = loadFamiliarity(opts.modelDir, config.files.vision, config.hiddenSize, config.imageSeqLen);
    log(fam.reason);
    return new Vlm(config, prompt, sessions, choice.provider, choice.fallbackReason, scoreOutputs, kvDtype, loadMs, batch, scoresUnavailable, fam.model, fam.reason, choice.probe,
      sessions.decoder.inputNames.some((n) => n.startsWith(MASS_BIAS_PREFIX)));
  }

  /** Starts a conversation about one image (the cache lives in the conversation). */
  conversation(): Conversation {
    return new Conversation(this);
  }

  /** The vision encoder takes float16 pixel values (fp16 exports). */
  private get visionHalf(): boolean {
    const m = this.sessions.vision.inputMetadata.find((x) => x.name === 'pixel_values');
    return !!m && m.isTensor && m.type === 'float16';
  }

  async release(): Promise<void> {
    await releaseSessions(this.sessions);
  }

  // ---- model pieces -------------------------------------------------------------------------------------

  async embed(ids: number[]): Promise<Tensor> {
    const out = await this.sessions.embed.run({ [this.sessions.embed.inputNames[0]]: tokenIds(ids) });
    return feedable(out[this.sessions.embed.outputNames[0]]);
  }

  /**
   * An image's tile layout and vision features, from the cache when the same bytes were encoded at the same detail
   * (a re-ask, a second panel, the evaluation's cells): the vision encoder is the costliest part of a first token.
   */
  async encodeImage(image: string | Buffer, detail: ImageDetail = 'full'): Promise<EncodedImage> {
    const bytes = await readImageBytes(image);
    const key = `${createHash('sha256').update(bytes).digest('hex')}:${detail}`;
    const hit = this.encoded.get(key);
    if (hit) {
      this.encoded.delete(key); // re-insert: the map's order is the recency order
      this.encoded.set(key, hit);
      return { ...hit, visionMs: 0 };
    }
    const pre = await preprocess(await decodeImageBytes(bytes), detailConfig(this.config.image, detail));
    const tv = performance.now();
    const features = await this.vision(pre);
    const visionMs = performance.now() - tv;
    const encoded: EncodedImage = { layout: { rows: pre.rows, cols: pre.cols, numImages: pre.numImages }, features, visionMs, familiarity: this.familiarityOf(features) };
    this.encoded.set(key, encoded);
    while (this.encoded.size > ENCODED_IMAGES_KEPT) this.encoded.delete(this.encoded.keys().next().value!);
    return encoded;
  }

  /** The unfamiliar-image check of an image's vision features (null when the model folder has no statistics). */
  familiarityOf(features: Tensor): FamiliarityResult | null {
    return this.familiarity ? checkFeatures(this.familiarity, toFloat(features)) : null;
  }

  /** The vision encoder over every tile, in batches small enough that no tensor passes MAX_TENSOR_BYTES. */
  async vision(pre: Preprocessed): Promise<Tensor> {
    this.counters.visionRuns++;
    const batch = this.visionBatchTiles;
    const parts: Tensor[] = [];
    for (let first = 0; first < pre.numImages; first += batch) parts.push(await this.visionRun(pre, first, Math.min(batch, pre.numImages - first)));
    return parts.length === 1 ? parts[0] : concatRows(parts);
  }

  private async visionRun(pre: Preprocessed, first: number, count: number): Promise<Tensor> {
    const T = pre.tile;
    const plane = T * T;
    const pixels = pre.pixelValues.subarray(first * 3 * plane, (first + count) * 3 * plane);
    const dims = [1, count, 3, T, T];
    const feeds: Record<string, Tensor> = {
      pixel_values: this.visionHalf ? float16Tensor(Uint16Array.from(pixels, f32ToF16), dims) : new ort.Tensor('float32', pixels, dims),
    };
    if (this.sessions.vision.inputNames.includes('pixel_attention_mask')) {
      feeds.pixel_attention_mask = new ort.Tensor('bool', pre.pixelMask.subarray(first * plane, (first + count) * plane), [1, count, T, T]);
    }
    const out = await this.sessions.vision.run(feeds);
    return feedable(out[this.sessions.vision.outputNames[0]]);
  }

  /**
   * One decoder run. On the CPU a derived decoder's new.* entries are fetched instead of the present.* outputs:
   * onnxruntime-node copies every fetched output into a fresh buffer, the whole cache each step
   * (runtime/onnx/newEntries.ts). Where a scoring graph stands in for the attention kernel, it runs only when the
   * caller wants scores, on the run's queries and present keys, and the queries are released on the device.
   */
  async decoder(feeds: Record<string, Tensor>, wants: DecoderWants = {}): Promise<Record<string, Tensor>> {
    const { decoder, scorer } = this.sessions;
    if (this.takesMassBias) feeds = zeroMassFeeds(decoder.inputNames, feeds);
    // Worked out once: null (fetch everything) is an answer too, so `??=` would redo it every step.
    if (this.fetches === undefined) this.fetches = decoderFetches(decoder.outputNames, this.provider);
    if (scorer && (wants.scores || wants.window)) {
      const out = await decoder.run(feeds, decoder.outputNames);
      try {
        Object.assign(out, await scorer.score(out, !!wants.window));
      } finally {
        for (const n of decoder.outputNames) if (n.startsWith(QUERY_PREFIX)) out[n]?.dispose();
      }
      return out;
    }
    return this.fetches ? decoder.run(feeds, this.fetches) : decoder.run(feeds);
  }
  private fetches: string[] | null | undefined;

  get kvShape(): KvShape {
    return kvShapeOf(this.config, this.kvDtype);
  }
}

/**
 * `auto`'s race for this model (runtime/model/sessions.ts chooseProvider): the probe's workload on the decoder each
 * provider loaded, its answers cached in `dir` by decoder, provider, onnxruntime-node version and machine.
 * ELASTIC_VLM_REPROBE=1 ignores the cached answers (and records new ones).
 */
async function autoRace(config: ModelConfig, decoderPath: string, derivedSha: string | undefined, dir: string,
  log: (s: string) => void): Promise<AutoRace<Sessions>> {
  const version = derivedSha ? (await import('./onnx/importance.js')).REWRITE_VERSION : 0;
  const decoder = await decoderIdentity(decoderPath, derivedSha ? { sourceSha256: derivedSha, version } : undefined);
  const key = (gpu: Provider): ProbeKey => ({ decoder, gpu, ort: ort.env.versions.node ?? ort.env.versions.common, machine: machineId() });
  return {
    lookup: async (gpu) => (process.env.ELASTIC_VLM_REPROBE === '1' ? null : readProbe(dir, key(gpu))),
    start: async (s, p) => {
      const shape = kvShapeOf(config, checkGraphs(config, s));
      const context = probeContext(config.image, config.imageSeqLen);
      const run = await startDecode(s.decoder, p, shape, config.hiddenSize, context);
      log(`device probe on ${p}: prefill of ${context} tokens ${run.prefillMs.toFixed(1)} ms`);
      return run;
    },
    release: (s) => releaseSessions(s),
    save: async (gpu, m) => {
      const err = await writeProbe(dir, key(gpu), m);
      log(err ? `device probe not cached (${err})` : `device probe cached in ${join(dir, PROBE_FILE)} as "${keyString(key(gpu))}"`);
    },
  };
}

async function releaseSessions(s: Sessions): Promise<void> {
  await Promise.all([s.vision.release(), s.embed.release(), s.decoder.release(), s.scorer?.release()]);
}

function kvShapeOf(config: ModelConfig, dtype: KvDtype): KvShape {
  return { layers: config.numLayers, kvHeads: config.numKvHeads, headDim: config.headDim, dtype };
}

type Side = 'input' | 'output';
function need(sess: InferenceSession, names: string[], file: string, side: Side): void {
  const have = side === 'input' ? sess.inputNames : sess.outputNames;
  for (const n of names) {
    if (!have.includes(n)) throw new BadInputError(`${file} has no ${side} named ${n} (it has ${have.slice(0, 6).join(', ')}${have.length > 6 ? ', ...' : ''})`);
  }
}

/** Checks the graphs have the tensors the config promises; returns the KV dtype. */
function checkGraphs(cfg: ModelConfig, s: Sessions): KvDtype {
  need(s.vision, ['pixel_values'], 'onnx/vision_encoder', 'input');
  return checkDecoder(cfg, s.decoder);
}

/** Checks the decoder has the tensors and sizes the config promises; returns the KV dtype. */
function checkDecoder(cfg: ModelConfig, decoder: InferenceSession): KvDtype {
  need(decoder, ['inputs_embeds', 'attention_mask', 'past_key_values.0.key', 'past_key_values.0.value'], 'onnx/decoder_model_merged', 'input');
  need(decoder, ['logits', 'present.0.key'], 'onnx/decoder_model_merged', 'output');
  const pastInputs = decoder.inputNames.filter((n) => n.startsWith('past_key_values.') && n.endsWith('.key')).length;
  if (pastInputs !== cfg.numLayers) {
    throw new BadInputError(`config.json says ${cfg.numLayers} layers but onnx/decoder_model_merged has ${pastInputs}`);
  }
  const meta = decoder.inputMetadata.find((m) => m.name === 'past_key_values.0.key');
  if (meta && meta.isTensor) {
    const dims = meta.shape;
    if (typeof dims[1] === 'number' && dims[1] !== cfg.numKvHeads) {
      throw new BadInputError(`config.json says ${cfg.numKvHeads} KV heads but the decoder graph has ${dims[1]}`);
    }
    if (typeof dims[3] === 'number' && dims[3] !== cfg.headDim) {
      throw new BadInputError(`config.json says head_dim ${cfg.headDim} but the decoder graph has ${dims[3]}`);
    }
    return meta.type === 'float16' ? 'float16' : 'float32';
  }
  return 'float32';
}
