// The vision-language model: loading a SmolVLM-layout folder, and the generation loop. The loop reads top to
// bottom: image -> pixel values -> prompt ids -> embeddings with image features spliced in -> prefill ->
// cache policy -> decode token by token, the policy planning after every step.
import type { InferenceSession, Tensor } from 'onnxruntime-node';
import { BadInputError, CancelledError } from './errors.js';
import { readModelFolder, type ModelConfig } from './model/modelFolder.js';
import { decodeImage, preprocess, type Preprocessed } from './model/preprocess.js';
import { PromptBuilder, type ChatMessage } from './model/prompt.js';
import { TextStream } from './model/detokenize.js';
import { ort, float16Tensor } from './model/ort.js';
import { chooseProvider, createSession, type Provider } from './model/sessions.js';
import { CpuKvStore, entryBytes, kvBits, presentName, type KvDtype, type KvStore } from './cache/store.js';
import { GpuKvStore } from './cache/gpuStore.js';
import { createPolicy, budgetFor } from './cache/policies/index.js';
import type { CachePlan, CachePolicy, CacheStats, WindowAttention } from './cache/types.js';
import { planSummary } from './cache/compact.js';
import { makeSampler, logProb } from './sampling.js';
import { halfArrayToFloat, f32ToF16 } from './util/half.js';
import type { AskResult, CacheOptions, Device, GenerateOptions, ImportanceMap, Timings } from './protocol.js';

export interface VlmLoadOptions {
  modelDir: string;
  device?: Device;
  dtype?: string;
  /** Derive the attention-importance decoder (needed by elastic and h2o). Default true. */
  scores?: boolean;
  cacheDir?: string;
  log?: (line: string) => void;
}

export interface AskCallbacks {
  onToken?: (text: string, index: number) => void;
  onStats?: (stats: CacheStats) => void;
  onImportance?: (map: ImportanceMap) => void;
  /** Checked between decode steps; true stops generation. */
  isCancelled?: () => boolean;
  /** Awaited after every decode step (the worker lets its IPC messages in here). */
  yieldEachStep?: () => Promise<void>;
  /** After every decoder run: the next-token logits and the attention-importance rows (tests, analysis). */
  onForward?: (kind: 'prefill' | 'step', logits: Float32Array, scores: Float32Array[] | null) => void;
  /** Per decode step: its wall time, the part spent in the cache policy (scores, planning, compaction), the cache length. */
  onStep?: (info: StepInfo) => void;
}

export interface StepInfo {
  stepMs: number;
  policyMs: number;
  cacheLength: number;
  tokensSeen: number;
}

interface Sessions {
  vision: InferenceSession;
  embed: InferenceSession;
  decoder: InferenceSession;
}

export interface ForwardCounters {
  visionRuns: number;
  prefillRuns: number;
  decodeSteps: number;
}

export class Vlm {
  readonly counters: ForwardCounters = { visionRuns: 0, prefillRuns: 0, decodeSteps: 0 };

  private constructor(
    readonly config: ModelConfig,
    readonly prompt: PromptBuilder,
    private readonly sessions: Sessions,
    readonly provider: Provider,
    readonly fallbackReason: string | undefined,
    readonly scoreOutputs: string[] | null,
    readonly kvDtype: KvDtype,
    readonly loadMs: number,
  ) {}

  static async load(opts: VlmLoadOptions): Promise<Vlm> {
    const t0 = performance.now();
    const log = opts.log ?? (() => {});
    const config = readModelFolder(opts.modelDir, opts.dtype ?? '');
    const prompt = new PromptBuilder(config);

    // The importance-scoring decoder is derived once and cached on disk; without it the score-free policies run.
    let decoderPath = config.files.decoder;
    let scoreOutputs: string[] | null = null;
    if (opts.scores !== false) {
      try {
        const { deriveScoredDecoder } = await import('./onnx/importance.js');
        const d = await deriveScoredDecoder(config.files.decoder, { cacheDir: opts.cacheDir });
        decoderPath = d.path;
        scoreOutputs = d.outputNames;
        log(`attention importance: ${d.kind} graph, ${d.layers} layers`);
      } catch (e) {
        log(`attention importance unavailable (${(e as Error).message.split('\n')[0]}); elastic and h2o need it`);
      }
    }

    const presents: string[] = [];
    for (let i = 0; i < config.numLayers; i++) presents.push(presentName(i, 'key'), presentName(i, 'value'));
    const { choice, value: sessions } = await chooseProvider(opts.device ?? 'auto', async (p) => {
      const decoder = await createSession(decoderPath, p, { gpuOutputs: p === 'webgpu' ? presents : undefined });
      const vision = await createSession(config.files.vision, p);
      // The embedding lookup is one Gather: on the CPU it costs nothing and spares a GPU round trip per step.
      const embed = await createSession(config.files.embed, 'cpu');
      return { vision, embed, decoder };
    }, log);
    const kvDtype = checkGraphs(config, sessions);
    const loadMs = performance.now() - t0;
    log(`loaded ${opts.modelDir} on ${choice.provider} in ${loadMs.toFixed(0)} ms`);
    return new Vlm(config, prompt, sessions, choice.provider, choice.fallbackReason, scoreOutputs, kvDtype, loadMs);
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
    await Promise.all([this.sessions.vision.release(), this.sessions.embed.release(), this.sessions.decoder.release()]);
  }

  // ---- model pieces -------------------------------------------------------------------------------------

  async embed(ids: number[]): Promise<Tensor> {
    const input = new ort.Tensor('int64', BigInt64Array.from(ids, (v) => BigInt(v)), [1, ids.length]);
    const out = await this.sessions.embed.run({ [this.sessions.embed.inputNames[0]]: input });
    return feedable(out[this.sessions.embed.outputNames[0]]);
  }

  /** Evaluation runs reuse each image's pixel values and vision features across cells (set by the caller). */
  imageMemo: Map<string, Preprocessed> | null = null;
  private featureMemo = new WeakMap<Preprocessed, Tensor>();

  async vision(pre: Preprocessed): Promise<Tensor> {
    const hit = this.imageMemo ? this.featureMemo.get(pre) : undefined;
    if (hit) return hit;
    const features = await this.visionRun(pre);
    if (this.imageMemo) this.featureMemo.set(pre, features);
    return features;
  }

  private async visionRun(pre: Preprocessed): Promise<Tensor> {
    this.counters.visionRuns++;
    const T = pre.tile;
    const dims = [1, pre.numImages, 3, T, T];
    const feeds: Record<string, Tensor> = {
      pixel_values: this.visionHalf ? float16Tensor(Uint16Array.from(pre.pixelValues, f32ToF16), dims) : new ort.Tensor('float32', pre.pixelValues, dims),
    };
    if (this.sessions.vision.inputNames.includes('pixel_attention_mask')) {
      feeds.pixel_attention_mask = new ort.Tensor('bool', pre.pixelMask, [1, pre.numImages, T, T]);
    }
    const out = await this.sessions.vision.run(feeds);
    return feedable(out[this.sessions.vision.outputNames[0]]);
  }

  async decoder(feeds: Record<string, Tensor>): Promise<Record<string, Tensor>> {
    return this.sessions.decoder.run(feeds);
  }

  get kvShape() {
    return { layers: this.config.numLayers, kvHeads: this.config.numKvHeads, headDim: this.config.headDim, dtype: this.kvDtype };
  }
}

/** Checks the graphs have the tensors the config promises; returns the KV dtype. */
function checkGraphs(cfg: ModelConfig, s: Sessions): KvDtype {
  const need = (sess: InferenceSession, names: string[], file: string, side: 'input' | 'output') => {
    const have = side === 'input' ? sess.inputNames : sess.outputNames;
    for (const n of names) {
      if (!have.includes(n)) throw new BadInputError(`${file} has no ${side} named ${n} (it has ${have.slice(0, 6).join(', ')}${have.length > 6 ? ', ...' : ''})`);
    }
  };
  need(s.vision, ['pixel_values'], 'onnx/vision_encoder', 'input');
  need(s.decoder, ['inputs_embeds', 'attention_mask', 'position_ids', 'past_key_values.0.key', 'past_key_values.0.value'], 'onnx/decoder_model_merged', 'input');
  need(s.decoder, ['logits', 'present.0.key'], 'onnx/decoder_model_merged', 'output');
  const pastInputs = s.decoder.inputNames.filter((n) => n.startsWith('past_key_values.') && n.endsWith('.key')).length;
  if (pastInputs !== cfg.numLayers) {
    throw new BadInputError(`config.json says ${cfg.numLayers} layers but onnx/decoder_model_merged has ${pastInputs}`);
  }
  const meta = s.decoder.inputMetadata.find((m) => m.name === 'past_key_values.0.key');
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

const toFloat = (t: Tensor): Float32Array => (t.type === 'float16' ? halfArrayToFloat(kvBits(t) as Uint16Array) : (t.data as Float32Array));

/** The last row of [1, S, V] logits as float32. */
function lastLogits(t: Tensor): Float32Array {
  const V = t.dims[2];
  const S = t.dims[1];
  const all = t.type === 'float16' ? kvBits(t) : (t.data as Float32Array);
  const row = all.subarray((S - 1) * V, S * V);
  return row instanceof Uint16Array ? halfArrayToFloat(row) : row;
}

/** A float16 output fed back as an input must carry uint16 bits relabelled (Node >= 23 bug, see ort.ts). */
function feedable(t: Tensor): Tensor {
  return t.type === 'float16' ? float16Tensor(kvBits(t) as Uint16Array, t.dims) : t;
}

export interface TurnOptions {
  cache: CacheOptions;
  generate: GenerateOptions;
  /** Teacher forcing: feed these tokens instead of sampling and record their log-probabilities. */
  force?: number[];
}

export interface TurnResult extends AskResult {
  /** With `force`: the natural-log probability of each forced token. */
  forcedLogProbs?: number[];
  ids: number[];
}

/**
 * One conversation about one image: the KV cache, the policy, the chat history. A follow-up extends the
 * cache (the image is not encoded again).
 */
export class Conversation {
  private store: KvStore | null = null;
  private policy: CachePolicy | null = null;
  private cacheOpts: CacheOptions | null = null;
  private history: ChatMessage[] = [];
  private tokensSeen = 0;
  private merged = 0;
  private evicted = 0;
  private pendingToken: number | null = null;
  private lastStop: AskResult['stopReason'] = 'eos';
  private imageTokens = 0;
  /** Per entry of the next prefill, 1 for an image token (handed to the policy). */
  private newImageMask: Uint8Array | null = null;

  constructor(private readonly vlm: Vlm) {}

  async ask(image: string | Buffer, question: string, opts: TurnOptions, cb: AskCallbacks = {}): Promise<TurnResult> {
    const t0 = performance.now();
    const memo = typeof image === 'string' ? this.vlm.imageMemo?.get(image) : undefined;
    const pre = memo ?? (await preprocess(await decodeImage(image), this.vlm.config.image));
    if (typeof image === 'string' && this.vlm.imageMemo && !memo) this.vlm.imageMemo.set(image, pre);
    return this.askPreprocessed(pre, question, opts, cb, t0);
  }

  /** The first turn from pixel values already made (tests feed the reference processor's own). */
  async askPreprocessed(pre: Preprocessed, question: string, opts: TurnOptions, cb: AskCallbacks = {}, t0 = performance.now()): Promise<TurnResult> {
    const vlm = this.vlm;
    const { ids, messages } = vlm.prompt.firstTurn(question, { rows: pre.rows, cols: pre.cols });

    const embeds = await vlm.embed(ids);
    const tv = performance.now();
    const features = await vlm.vision(pre);
    const visionMs = performance.now() - tv;
    this.imageTokens = spliceImageFeatures(embeds, features, ids, vlm.config.imageTokenId);

    this.reset(opts.cache);
    this.history = messages;
    this.newImageMask = Uint8Array.from(ids, (id) => (id === vlm.config.imageTokenId ? 1 : 0));
    const r = await this.run(embeds, ids.length, opts, cb, t0, visionMs);
    if (cb.onImportance && r.prefillScores) cb.onImportance(importanceMap(r.prefillScores, ids, vlm.config.imageTokenId, pre, vlm.config.imageSeqLen));
    return r.result;
  }

  async followUp(question: string, opts: Omit<TurnOptions, 'cache'> & { cache?: CacheOptions }, cb: AskCallbacks = {}): Promise<TurnResult> {
    if (!this.store) throw new BadInputError('no conversation to follow up: ask about an image first');
    const t0 = performance.now();
    // The first turn's policy and keep ratio stay for the whole conversation: another policy cannot take over a
    // cache this one shaped (its scores and eviction index live in the policy).
    const { ids: delta, messages } = this.vlm.prompt.followUp(this.history, question);
    const ids = this.pendingToken !== null && this.lastStop !== 'eos' ? [this.pendingToken, ...delta] : delta;
    this.history = messages;
    const embeds = await this.vlm.embed(ids);
    this.newImageMask = new Uint8Array(ids.length);
    const r = await this.run(embeds, ids.length, { ...opts, cache: this.cacheOpts! }, cb, t0, 0);
    return r.result;
  }

  dispose(): void {
    this.store?.dispose();
    this.store = null;
  }

  private reset(cache: CacheOptions): void {
    this.store?.dispose();
    this.store = this.vlm.provider === 'webgpu' ? new GpuKvStore(this.vlm.kvShape) : new CpuKvStore(this.vlm.kvShape);
    this.cacheOpts = cache;
    this.policy = createPolicy(cache.policy, { keepRatio: cache.keep, startSize: cache.startSize, distance: cache.distance, importance: cache.importance, merge: cache.merge, literal: cache.literal, variant: cache.variant,
      window: cache.window, kernel: cache.kernel, mergeRadius: cache.mergeRadius, protectQuestion: cache.protectQuestion,
      protectGlobal: cache.protectGlobal, blend: cache.blend, rerank: cache.rerank, keepProtected: cache.keepProtected });
    if (this.policy.needsScores && !this.vlm.scoreOutputs) {
      throw new BadInputError(`the ${cache.policy} policy needs attention scores, which this decoder cannot give; use streaming or full`);
    }
    this.tokensSeen = 0;
    this.merged = 0;
    this.evicted = 0;
    this.pendingToken = null;
  }

  /** Prefill `n` new entries (embeds), then decode. */
  private async run(embeds: Tensor, n: number, opts: TurnOptions, cb: AskCallbacks, t0: number, visionMs: number):
    Promise<{ result: TurnResult; prefillScores: Float32Array[] | null }> {
    const vlm = this.vlm;
    const store = this.store!;
    const policy = this.policy!;
    const positions = opts.cache.positions ?? 'absolute';
    const gen = opts.generate;
    const sample = makeSampler(gen);
    const eos = new Set(vlm.config.eosTokenIds);

    // ---- prefill ----
    const tp = performance.now();
    const start = positions === 'absolute' ? this.tokensSeen : store.length;
    let out = await vlm.decoder({
      inputs_embeds: embeds,
      attention_mask: ones(store.length + n),
      position_ids: range(start, n),
      ...store.feeds(),
    });
    vlm.counters.prefillRuns++;
    store.adopt(out);
    this.tokensSeen += n;
    const prefillScores = this.scores(out);
    cb.onForward?.('prefill', lastLogits(out.logits), prefillScores);
    const imageMask = this.newImageMask ?? undefined;
    this.newImageMask = null;
    await this.applyPlan(policy.afterPrefill({ cacheLength: store.length, newEntries: n, tokensSeen: this.tokensSeen, scores: prefillScores, numLayers: store.shape.layers,
      window: policy.needsWindow ? this.window(out) : null, imageMask }));
    const prefillMs = performance.now() - tp;

    // ---- decode ----
    const generated: number[] = [];
    const forcedLogProbs: number[] = [];
    let logits = lastLogits(out.logits);
    let stopReason: AskResult['stopReason'] = 'length';
    let firstTokenMs = 0;
    let decodeStart = 0;
    const stream = new TextStream((ids) => vlm.prompt.decode(ids));
    const statsEvery = Math.max(1, gen.statsEvery ?? 4);
    const steps = opts.force ? opts.force.length : gen.maxNewTokens;
    for (let step = 0; step < steps; step++) {
      // ignoreEos (fixed-length benchmarks) masks the end tokens, as min_new_tokens does elsewhere: the answer goes
      // on with the best other token instead of feeding an end token back.
      if (gen.ignoreEos && !opts.force) for (const id of eos) logits[id] = -Infinity;
      const next = opts.force ? opts.force[step] : sample(logits);
      if (opts.force) forcedLogProbs.push(logProb(logits, next));
      if (step === 0) {
        firstTokenMs = performance.now() - t0;
        decodeStart = performance.now();
      }
      if (!opts.force && !gen.ignoreEos && eos.has(next)) {
        stopReason = 'eos';
        this.pendingToken = next;
        break;
      }
      generated.push(next);
      const delta = stream.push(next);
      if (delta) cb.onToken?.(delta, generated.length - 1);
      this.pendingToken = next;
      if (step === steps - 1) break; // the last token needs no forward pass
      await cb.yieldEachStep?.();
      if (cb.isCancelled?.()) {
        stopReason = 'cancelled';
        break;
      }
      // Feed the token: its K/V is appended, then the policy may compress.
      const ts = performance.now();
      const pos = positions === 'absolute' ? this.tokensSeen : store.length;
      out = await vlm.decoder({
        inputs_embeds: await vlm.embed([next]),
        attention_mask: ones(store.length + 1),
        position_ids: range(pos, 1),
        ...store.feeds(),
      });
      vlm.counters.decodeSteps++;
      store.adopt(out);
      this.tokensSeen++;
      this.pendingToken = null;
      const tpol = performance.now();
      const scores = policy.needsScores || cb.onForward ? this.scores(out) : null;
      await this.applyPlan(policy.afterStep({ cacheLength: store.length, tokensSeen: this.tokensSeen, scores, numLayers: store.shape.layers,
        window: policy.needsWindow ? this.window(out) : null }));
      const policyMs = performance.now() - tpol;
      logits = lastLogits(out.logits);
      cb.onForward?.('step', logits, scores);
      cb.onStep?.({ stepMs: performance.now() - ts, policyMs, cacheLength: store.length, tokensSeen: this.tokensSeen });
      if (cb.onStats && generated.length % statsEvery === 0) cb.onStats(this.stats());
    }
    const decodeMs = performance.now() - decodeStart;
    if (stopReason !== 'eos' && this.pendingToken === null && generated.length) this.pendingToken = generated[generated.length - 1];
    this.lastStop = stopReason;
    const answer = vlm.prompt.decode(generated).trim();
    this.history = [...this.history, { role: 'assistant', content: [{ type: 'text', text: answer }] }];
    const stats = this.stats();
    cb.onStats?.(stats);
    const timings: Timings = {
      loadMs: vlm.loadMs,
      visionMs,
      prefillMs,
      firstTokenMs,
      decodeTokensPerSecond: generated.length > 1 ? (generated.length - 1) / (decodeMs / 1000) : 0,
    };
    return {
      prefillScores,
      result: {
        answer,
        ids: generated,
        promptTokens: n,
        imageTokens: this.imageTokens,
        generatedTokens: generated.length,
        executionProvider: vlm.provider,
        stopReason,
        timings,
        cache: stats,
        forcedLogProbs: opts.force ? forcedLogProbs : undefined,
      },
    };
  }

  /** The per-head window attention (`attn_window.*`, onnx/importance.ts WINDOW_PREFIX), when the derived decoder has it. */
  private window(out: Record<string, Tensor>): WindowAttention[] | null {
    const n = this.vlm.scoreOutputs?.length ?? 0;
    if (!n || !out['attn_window.0']) return null;
    const w: WindowAttention[] = [];
    for (let l = 0; l < n; l++) {
      const t = out[`attn_window.${l}`];
      w.push({ data: toFloat(t), heads: t.dims[1], queries: t.dims[2], len: t.dims[3] });
    }
    return w;
  }

  private scores(out: Record<string, Tensor>): Float32Array[] | null {
    const names = this.vlm.scoreOutputs;
    if (!names) return null;
    return names.map((nm) => toFloat(out[nm]));
  }

  private async applyPlan(plan: CachePlan): Promise<void> {
    if (!plan) return;
    const s = planSummary(plan);
    this.merged += s.merged;
    this.evicted += s.evicted;
    await this.store!.apply(plan);
  }

  stats(): CacheStats {
    const store = this.store!;
    const per = entryBytes(store.shape);
    return {
      policy: this.cacheOpts!.policy,
      keepRatio: this.cacheOpts!.keep,
      tokensSeen: this.tokensSeen,
      budget: this.cacheOpts!.policy === 'full' ? this.tokensSeen : budgetFor(this.cacheOpts!.keep, this.tokensSeen),
      perLayerLength: new Array(store.shape.layers).fill(store.length),
      bytes: store.bytes(),
      fullBytes: this.tokensSeen * per,
      merged: this.merged,
      evicted: this.evicted,
      location: store.location,
    };
  }
}

function ones(n: number): Tensor {
  return new ort.Tensor('int64', new BigInt64Array(n).fill(1n), [1, n]);
}

function range(start: number, n: number): Tensor {
  return new ort.Tensor('int64', BigInt64Array.from({ length: n }, (_, i) => BigInt(start + i)), [1, n]);
}

/** Overwrites, in order, the embedding rows at <image> positions with the vision encoder's features. */
export function spliceImageFeatures(embeds: Tensor, features: Tensor, ids: number[], imageTokenId: number): number {
  const hidden = embeds.dims[2];
  const featHidden = features.dims[features.dims.length - 1];
  if (featHidden !== hidden) {
    throw new BadInputError(`vision encoder features have width ${featHidden} but the text embeddings ${hidden} (config and graphs disagree)`);
  }
  const positions: number[] = [];
  ids.forEach((id, i) => id === imageTokenId && positions.push(i));
  const rows = features.data.length / hidden;
  if (rows !== positions.length) {
    throw new BadInputError(`the prompt has ${positions.length} image tokens but the vision encoder gave ${rows} feature rows (image_seq_len disagrees with the graph)`);
  }
  const dst = embeds.data as Float32Array | Uint16Array;
  const src = features.data as Float32Array | Uint16Array;
  if (dst.constructor !== src.constructor) throw new BadInputError('vision features and text embeddings have different dtypes');
  positions.forEach((p, r) => dst.set(src.subarray(r * hidden, (r + 1) * hidden), p * hidden));
  return positions.length;
}

/** Maps the prefill importance of image tokens (averaged over layers) back to tiles and patch cells. */
export function importanceMap(scores: Float32Array[], ids: number[], imageTokenId: number, pre: Preprocessed, seqLen: number): ImportanceMap {
  const positions: number[] = [];
  ids.forEach((id, i) => id === imageTokenId && positions.push(i));
  const side = Math.round(Math.sqrt(seqLen));
  const tiles: ImportanceMap['tiles'] = [];
  const split = pre.rows > 0;
  for (let t = 0; t < pre.numImages; t++) {
    const values: number[] = [];
    for (let k = 0; k < seqLen; k++) {
      const p = positions[t * seqLen + k];
      let v = 0;
      for (const layer of scores) v += layer[p] ?? 0;
      values.push(v / scores.length);
    }
    const global = !split || t === pre.numImages - 1;
    tiles.push({ row: global ? 0 : Math.floor(t / pre.cols), col: global ? 0 : t % pre.cols, global, gridSide: side, values });
  }
  return { tiles, rows: pre.rows, cols: pre.cols };
}

