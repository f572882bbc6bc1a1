// One conversation about one image: the KV cache, its policy and the chat history, and the generation loop.
// The loop reads top to bottom: prefill (forward, adopt, plan, apply), then per token: choose it, stream it, step
// (forward, adopt, plan, apply); finish. A follow-up on a compressed cache re-expands by default: the whole
// conversation is prefilled again from its kept inputs (the first prompt's embeddings with the image features, then
// every token fed since) and compressed for the new question, because what the first question's plan dropped is
// often what the next one needs (docs/evaluation.md, multi-turn). `followUps: 'reuse'` extends the compressed cache.
import type { Tensor } from 'onnxruntime-node';
import { BadInputError } from '../errors.js';
import type { ModelConfig } from '../model/modelFolder.js';
import type { Preprocessed } from '../model/preprocess.js';
import type { ChatMessage, PromptBuilder } from '../model/prompt.js';
import { TextStream } from '../model/detokenize.js';
import type { Provider } from '../model/sessions.js';
import { CpuKvStore, entryBytes, type KvShape, type KvStore } from '../cache/store.js';
import { GpuKvStore, gpuEvictBatch } from '../cache/gpuStore.js';
import { createPolicy } from '../cache/policies/index.js';
import { planSummary } from '../cache/compact.js';
import type { CachePlan, CachePolicy, PrefillContext, WindowAttention } from '../cache/types.js';
import type { AskResult, AskWarning, CacheOptions, CacheStats, GenerateOptions, ImageDetail, ImportanceMap, KeptPositions, Timings } from '../protocol.js';
import { unfamiliarWarning, type FamiliarityResult } from '../model/familiarity.js';
import { KeptTracker } from '../cache/kept.js';
import { importanceMap, spliceImageFeatures, type ImageLayout } from './imageTokens.js';
import { concatEmbeds, lastLogits, ones, positionIds, toFloat } from './tensors.js';
import { TokenChooser } from './tokenChooser.js';
import { WINDOW_PREFIX } from '../onnx/importance.js';

/** What a conversation needs of a loaded model (runtime/vlm.ts's Vlm). */
export interface LoadedModel {
  readonly config: ModelConfig;
  readonly prompt: PromptBuilder;
  readonly provider: Provider;
  /** The decoder's attention-importance output names, one per layer; null without scores. */
  readonly scoreOutputs: string[] | null;
  /** Why there are no scores (null when there are). */
  readonly scoresUnavailable: string | null;
  /** Whether the decoder takes position_ids (a builder-made fused graph may derive positions itself). */
  readonly takesPositionIds: boolean;
  /** Whether the decoder takes the `attn_bias.*` inputs that mass merging feeds (onnx/massBias.ts). */
  readonly takesMassBias: boolean;
  readonly kvShape: KvShape;
  readonly loadMs: number;
  readonly counters: ForwardCounters;
  encodeImage(image: string | Buffer, detail?: ImageDetail): Promise<EncodedImage>;
  /** The unfamiliar-image check of vision features; null when the model has no familiarity statistics. */
  familiarityOf(features: Tensor): FamiliarityResult | null;
  embed(ids: number[]): Promise<Tensor>;
  vision(pre: Preprocessed): Promise<Tensor>;
  /** One decoder run; `wants` says whether its attention scores (and window rows) are read (runtime/vlm.ts). */
  decoder(feeds: Record<string, Tensor>, wants?: { scores?: boolean; window?: boolean }): Promise<Record<string, Tensor>>;
}

/** Where an image's tiles sit (rows x cols + the global image; 0 x 0 unsplit) and their vision features. */
export interface EncodedImage {
  layout: ImageLayout;
  features: Tensor;
  /** Time the vision encoder took (0 when the features came from the cache). */
  visionMs: number;
  /** The unfamiliar-image check of these features (null: the model has no statistics). */
  familiarity: FamiliarityResult | null;
}

export interface ForwardCounters {
  visionRuns: number;
  prefillRuns: number;
  decodeSteps: number;
}

export interface AskCallbacks {
  onToken?: (text: string, index: number) => void;
  /** `kept` (which positions each layer holds) comes along when the first turn asked for `trackKept`. */
  onStats?: (stats: CacheStats, kept?: KeptPositions) => void;
  /** First turn: keep the per-layer position bookkeeping for the conversation (the panel's cache view). */
  trackKept?: boolean;
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

export interface TurnOptions {
  cache: CacheOptions;
  generate: GenerateOptions;
  /** Teacher forcing: feed these tokens instead of sampling and record their log-probabilities. */
  force?: number[];
  /** How finely the first turn's image is tiled (default: the model's own tiling). */
  detail?: ImageDetail;
}

export interface TurnResult extends AskResult {
  /** With `force`: the natural-log probability of each forced token. */
  forcedLogProbs?: number[];
  ids: number[];
}

/** Wall-clock marks of one turn (ms since the turn started). */
interface Clock {
  t0: number;
  visionMs: number;
  prefillMs: number;
  firstTokenMs: number;
  decodeStart: number;
}

export class Conversation {
  private store: KvStore | null = null;
  private policy: CachePolicy | null = null;
  private cacheOpts: CacheOptions | null = null;
  private history: ChatMessage[] = [];
  private tokensSeen = 0;
  private merged = 0;
  private evicted = 0;
  /** The last token chosen but not yet fed to the decoder (the next turn feeds it first). */
  private pendingToken: number | null = null;
  private lastStop: AskResult['stopReason'] = 'eos';
  private imageTokens = 0;
  /** Per entry of the next prefill, 1 for an image token (handed to the policy). */
  private newImageMask: Uint8Array | null = null;
  /** Which position each cache slot holds, per layer (only when the first turn asked for trackKept). */
  private kept: KeptTracker | null = null;
  /** The image's warnings: every turn about it carries them. */
  private warnings: AskWarning[] = [];
  /** The first prompt's embeddings (image features spliced in) and its image mask: what a re-expansion starts from. */
  private firstPrompt: { embeds: Tensor; imageMask: Uint8Array; layout: string } | null = null;
  /** Every token fed to the decoder after the first prompt, in order (decode steps and follow-up prompts). */
  private fedIds: number[] = [];
  /** Follow-ups that re-expanded the cache. */
  private reexpansions = 0;

  constructor(private readonly model: LoadedModel) {}

  async ask(image: string | Buffer, question: string, opts: TurnOptions, cb: AskCallbacks = {}): Promise<TurnResult> {
    const t0 = performance.now();
    return this.firstTurn(await this.model.encodeImage(image, opts.detail), question, opts, cb, t0);
  }

  /** The first turn from pixel values already made (tests feed the reference processor's own). */
  async askPreprocessed(pre: Preprocessed, question: string, opts: TurnOptions, cb: AskCallbacks = {}): Promise<TurnResult> {
    const t0 = performance.now();
    const features = await this.model.vision(pre);
    const visionMs = performance.now() - t0;
    const encoded = { layout: { rows: pre.rows, cols: pre.cols, numImages: pre.numImages }, features, visionMs, familiarity: this.model.familiarityOf(features) };
    return this.firstTurn(encoded, question, opts, cb, t0);
  }

  private async firstTurn(image: EncodedImage, question: string, opts: TurnOptions, cb: AskCallbacks, t0: number): Promise<TurnResult> {
    const { config, prompt } = this.model;
    const { ids, messages } = prompt.firstTurn(question, { rows: image.layout.rows, cols: image.layout.cols });
    const embeds = await this.model.embed(ids);
    const clock: Clock = { t0, visionMs: image.visionMs, prefillMs: 0, firstTokenMs: 0, decodeStart: 0 };
    this.imageTokens = spliceImageFeatures(embeds, image.features, ids, config.imageTokenId);

    this.reset(opts.cache);
    this.warnings = image.familiarity && !image.familiarity.familiar ? [unfamiliarWarning(image.familiarity)] : [];
    this.newImageMask = Uint8Array.from(ids, (id) => (id === config.imageTokenId ? 1 : 0));
    const layout = ids.map((id) => (id === config.imageTokenId ? 'i' : 't')).join('');
    this.firstPrompt = { embeds, imageMask: this.newImageMask, layout };
    this.fedIds = [];
    this.reexpansions = 0;
    this.kept = cb.trackKept ? new KeptTracker(config.numLayers, ids.length) : null;
    this.kept?.append(layout);
    this.history = messages;
    const { result, prefillScores } = await this.generate(embeds, ids.length, opts, cb, clock);
    if (cb.onImportance && prefillScores) cb.onImportance(importanceMap(prefillScores, ids, config.imageTokenId, image.layout, config.imageSeqLen));
    return result;
  }

  /** Another question about the same image; the first turn's policy and keep stay for the whole conversation. */
  async followUp(question: string, opts: Omit<TurnOptions, 'cache'>, cb: AskCallbacks = {}): Promise<TurnResult> {
    if (!this.store || !this.firstPrompt) throw new BadInputError('no conversation to follow up: ask about an image first');
    const t0 = performance.now();
    const { ids: delta, messages } = this.model.prompt.followUp(this.history, question);
    // A turn that stopped at its length limit left its last token unfed: it opens this one.
    const ids = this.pendingToken !== null && this.lastStop !== 'eos' ? [this.pendingToken, ...delta] : delta;
    const newLayout = (ids.length > delta.length ? 'g' : '') + 't'.repeat(delta.length);
    this.history = messages;
    const clock: Clock = { t0, visionMs: 0, prefillMs: 0, firstTokenMs: 0, decodeStart: 0 };
    const cache = this.cacheOpts!;
    if (this.shouldReexpand()) {
      // Rebuild from the inputs: a fresh cache and policy, the whole conversation prefilled at its true positions,
      // the new question as the observation window.
      const first = this.firstPrompt;
      const history = await this.model.embed([...this.fedIds, ...ids]);
      const embeds = concatEmbeds(first.embeds, history);
      const total = first.imageMask.length + this.fedIds.length + ids.length;
      const layout = this.kept?.layout ?? '';
      this.reset(cache);
      this.reexpansions++;
      this.newImageMask = new Uint8Array(total);
      this.newImageMask.set(first.imageMask);
      if (this.kept) {
        this.kept = new KeptTracker(this.model.config.numLayers, first.imageMask.length);
        this.kept.append(layout + newLayout);
      }
      this.fedIds.push(...ids);
      const { result } = await this.generate(embeds, total, { ...opts, cache }, cb, clock, ids.length);
      return result;
    }
    this.kept?.append(newLayout);
    this.newImageMask = new Uint8Array(ids.length);
    this.fedIds.push(...ids);
    const embeds = await this.model.embed(ids);
    return (await this.generate(embeds, ids.length, { ...opts, cache }, cb, clock)).result;
  }

  /** Re-expand when the cache lost entries and the conversation asks for it (a full cache has nothing to regain). */
  private shouldReexpand(): boolean {
    const c = this.cacheOpts!;
    return (c.followUps ?? 'reexpand') === 'reexpand' && this.merged + this.evicted > 0;
  }

  dispose(): void {
    this.store?.dispose();
    this.store = null;
  }

  /** The cache right now (the panel's live view, CLI --json). */
  stats(): CacheStats {
    const store = this.store!;
    return {
      policy: this.cacheOpts!.policy,
      keep: this.cacheOpts!.keep,
      tokensSeen: this.tokensSeen,
      budget: this.policy!.budget(this.tokensSeen),
      perLayerLength: new Array(store.shape.layers).fill(store.length),
      bytes: store.bytes(),
      fullBytes: this.tokensSeen * entryBytes(store.shape),
      merged: this.merged,
      evicted: this.evicted,
      reexpanded: this.reexpansions,
      location: store.location,
    };
  }

  private reset(cache: CacheOptions): void {
    this.store?.dispose();
    this.cacheOpts = cache;
    const { policy: _name, positions: _positions, followUps: _followUps, ...options } = cache;
    const gpu = this.model.provider === 'webgpu';
    // The device compacts in a run of its own: there the policies evict in batches (gpuStore.ts GPU_EVICT_BATCH).
    this.policy = createPolicy(cache.policy, { ...options, evictBatch: gpu ? gpuEvictBatch() : 1 });
    this.store = gpu ? new GpuKvStore(this.model.kvShape) : new CpuKvStore(this.model.kvShape, { mass: !!this.policy.mass });
    if (this.policy.needsScores && !this.model.scoreOutputs) {
      throw new BadInputError(`the ${cache.policy} policy needs attention scores, which this decoder cannot give (${this.model.scoresUnavailable}); streaming and full run without them`);
    }
    this.tokensSeen = 0;
    this.merged = 0;
    this.evicted = 0;
    this.pendingToken = null;
  }

  /** Prefill `n` new entries (embeds), then decode token by token. */
  private async generate(embeds: Tensor, n: number, opts: TurnOptions, cb: AskCallbacks, clock: Clock, question?: number):
    Promise<{ result: TurnResult; prefillScores: Float32Array[] | null }> {
    const positions = opts.cache.positions ?? 'absolute';
    const chooser = new TokenChooser(opts.generate, new Set(this.model.config.eosTokenIds), opts.force);
    const stream = new TextStream((ids) => this.model.prompt.decode(ids));
    const statsEvery = Math.max(1, opts.generate.statsEvery ?? 4);
    const generated: number[] = [];
    let stopReason: AskResult['stopReason'] = 'length';

    const tp = performance.now();
    const prefill = await this.prefill(embeds, n, positions, cb, question);
    clock.prefillMs = performance.now() - tp;

    let logits = prefill.logits;
    for (let step = 0; step < chooser.steps; step++) {
      const next = chooser.choose(logits, step);
      if (step === 0) {
        clock.firstTokenMs = performance.now() - clock.t0;
        clock.decodeStart = performance.now();
      }
      this.pendingToken = next;
      if (chooser.ends(next)) {
        stopReason = 'eos';
        break;
      }
      generated.push(next);
      const delta = stream.push(next);
      if (delta) cb.onToken?.(delta, generated.length - 1);
      if (step === chooser.steps - 1) break; // the last token needs no forward pass
      await cb.yieldEachStep?.();
      if (cb.isCancelled?.()) {
        stopReason = 'cancelled';
        break;
      }
      logits = await this.step(next, positions, cb);
      if (cb.onStats && generated.length % statsEvery === 0) this.report(cb);
    }
    return { prefillScores: prefill.scores, result: this.finish(generated, stopReason, question ?? n, clock, chooser, cb) };
  }

  /** Runs the decoder over the new entries with the cache so far; the policy compresses the result. */
  private async prefill(embeds: Tensor, n: number, positions: 'absolute' | 'compressed', cb: AskCallbacks, question?: number) {
    const store = this.store!;
    const start = positions === 'absolute' ? this.tokensSeen : store.length;
    const policy = this.policy!;
    const out = await this.model.decoder({
      inputs_embeds: embeds,
      attention_mask: ones(store.length + n),
      ...(this.model.takesPositionIds ? { position_ids: positionIds(start, n) } : {}),
      ...store.feeds(),
      ...this.massFeeds(n),
    }, { scores: policy.needsScores || !!cb.onImportance || !!cb.onForward, window: !!policy.needsWindow });
    this.model.counters.prefillRuns++;
    store.adopt(out);
    this.tokensSeen += n;
    const scores = this.scores(out);
    const logits = lastLogits(out.logits);
    cb.onForward?.('prefill', logits, scores);
    const imageMask = this.newImageMask ?? undefined;
    this.newImageMask = null;
    const ctx: PrefillContext = {
      cacheLength: store.length, newEntries: n, tokensSeen: this.tokensSeen, scores, numLayers: store.shape.layers,
      window: policy.needsWindow ? this.window(out) : null, imageMask, questionLength: question, kvHeads: store.shape.kvHeads,
      ...(store instanceof CpuKvStore ? { keys: (l: number) => store.keysOf(l), headDim: store.shape.headDim } : {}),
    };
    await this.apply(policy.afterPrefillAsync ? await policy.afterPrefillAsync(ctx) : policy.afterPrefill(ctx));
    return { logits, scores };
  }

  /** Feeds one token: its K/V is appended, then the policy may compress. Returns the next logits. */
  private async step(token: number, positions: 'absolute' | 'compressed', cb: AskCallbacks): Promise<Float32Array> {
    const store = this.store!;
    const ts = performance.now();
    const policy = this.policy!;
    const stepScores = policy.stepScores ?? policy.needsScores;
    const out = await this.model.decoder({
      inputs_embeds: await this.model.embed([token]),
      attention_mask: ones(store.length + 1),
      ...(this.model.takesPositionIds ? { position_ids: positionIds(positions === 'absolute' ? this.tokensSeen : store.length, 1) } : {}),
      ...store.feeds(),
      ...this.massFeeds(1),
    }, { scores: stepScores || !!cb.onForward, window: stepScores && !!policy.needsWindow });
    this.model.counters.decodeSteps++;
    store.adopt(out);
    this.tokensSeen++;
    this.fedIds.push(token);
    this.kept?.append('g');
    this.pendingToken = null;
    const tpol = performance.now();
    const scores = stepScores || cb.onForward ? this.scores(out) : null;
    await this.apply(policy.afterStep({
      cacheLength: store.length, tokensSeen: this.tokensSeen, scores, numLayers: store.shape.layers,
      window: stepScores && policy.needsWindow ? this.window(out) : null, kvHeads: store.shape.kvHeads,
    }));
    const policyMs = performance.now() - tpol;
    const logits = lastLogits(out.logits);
    cb.onForward?.('step', logits, scores);
    cb.onStep?.({ stepMs: performance.now() - ts, policyMs, cacheLength: store.length, tokensSeen: this.tokensSeen });
    return logits;
  }

  /** Closes the turn: the answer joins the history, the last stats go out, the timings are summed up. */
  private finish(generated: number[], stopReason: AskResult['stopReason'], n: number, clock: Clock, chooser: TokenChooser, cb: AskCallbacks): TurnResult {
    const decodeMs = performance.now() - clock.decodeStart;
    this.lastStop = stopReason;
    const answer = this.model.prompt.decode(generated).trim();
    this.history = [...this.history, { role: 'assistant', content: [{ type: 'text', text: answer }] }];
    const stats = this.report(cb);
    const timings: Timings = {
      loadMs: this.model.loadMs,
      visionMs: clock.visionMs,
      prefillMs: clock.prefillMs,
      firstTokenMs: clock.firstTokenMs,
      decodeTokensPerSecond: generated.length > 1 ? (generated.length - 1) / (decodeMs / 1000) : 0,
    };
    return {
      answer,
      ids: generated,
      promptTokens: n,
      imageTokens: this.imageTokens,
      generatedTokens: generated.length,
      executionProvider: this.model.provider,
      stopReason,
      timings,
      cache: stats,
      warnings: this.warnings.map((w) => ({ ...w })),
      forcedLogProbs: chooser.forcing ? chooser.forcedLogProbs : undefined,
    };
  }

  /** The `attn_bias.*` feeds of a run appending `n` entries, where the cache counts merged entries and the decoder takes them. */
  private massFeeds(n: number): Record<string, Tensor> {
    const store = this.store;
    return this.model.takesMassBias && store instanceof CpuKvStore && this.policy?.mass ? store.massFeeds(n) : {};
  }

  /** The run's attention importance per layer; null without scores, or when the run was not asked for them. */
  private scores(out: Record<string, Tensor>): Float32Array[] | null {
    const names = this.model.scoreOutputs;
    return names && out[names[0]] ? names.map((nm) => toFloat(out[nm])) : null;
  }

  /** The per-head window attention (`attn_window.*`, onnx/importance.ts WINDOW_PREFIX), when the derived decoder has it. */
  private window(out: Record<string, Tensor>): WindowAttention[] | null {
    const n = this.model.scoreOutputs?.length ?? 0;
    if (!n || !out[`${WINDOW_PREFIX}0`]) return null;
    const w: WindowAttention[] = [];
    for (let l = 0; l < n; l++) {
      const t = out[`${WINDOW_PREFIX}${l}`];
      w.push({ data: toFloat(t), heads: t.dims[1], queries: t.dims[2], len: t.dims[3] });
    }
    return w;
  }

  private async apply(plan: CachePlan): Promise<void> {
    if (!plan) return;
    const s = planSummary(plan, this.store!.length); // the length tells per-KV-head plans apart (types.ts)
    this.merged += s.merged;
    this.evicted += s.evicted;
    this.kept?.apply(plan);
    await this.store!.apply(plan);
  }

  /** Sends the cache statistics (with the kept positions when tracked); returns the statistics. */
  private report(cb: AskCallbacks): CacheStats {
    const stats = this.stats();
    cb.onStats?.(stats, this.kept?.snapshot());
    return stats;
  }
}
