// The vision-language model: a SmolVLM-layout folder loaded into three ONNX Runtime sessions, and the model
// pieces a conversation runs (embed, vision, decoder). The generation loop is runtime/generate/conversation.ts.
import type { InferenceSession, Tensor } from 'onnxruntime-node';
import { BadInputError } from './errors.js';
import { readModelFolder, type ModelConfig } from './model/modelFolder.js';
import type { Preprocessed } from './model/preprocess.js';
import { PromptBuilder } from './model/prompt.js';
import { ort, float16Tensor } from './model/ort.js';
import { chooseProvider, createSession, type Provider } from './model/sessions.js';
import { presentName, type KvDtype } from './cache/store.js';
import { f32ToF16 } from './util/half.js';
import type { Device } from './protocol.js';
import { Conversation, type ForwardCounters, type LoadedModel } from './generate/conversation.js';
import { feedable, tokenIds } from './generate/tensors.js';

export { Conversation } from './generate/conversation.js';
export type { AskCallbacks, StepInfo, TurnOptions, TurnResult } from './generate/conversation.js';

export interface VlmLoadOptions {
  modelDir: string;
  device?: Device;
  dtype?: string;
  /** Derive the attention-importance decoder (needed by elastic and h2o). Default true. */
  scores?: boolean;
  cacheDir?: string;
  log?: (line: string) => void;
}

interface Sessions {
  vision: InferenceSession;
  embed: InferenceSession;
  decoder: InferenceSession;
}

export class Vlm implements LoadedModel {
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
    /** Why attention importance is unavailable (null when it is available). */
    readonly scoresUnavailable: string | null = null,
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
    let scoreOutputs: string[] | null = null;
    let scoresUnavailable: string | null = opts.scores === false ? 'attention scores were not requested' : null;
    if (opts.scores !== false) {
      try {
        const { deriveScoredDecoder } = await import('./onnx/derive.js');
        const d = await deriveScoredDecoder(config.files.decoder, { cacheDir: opts.cacheDir });
        decoderPath = d.path;
        scoreOutputs = d.outputNames;
        log(`attention importance: ${d.kind} graph, ${d.layers} layers`);
      } catch (e) {
        scoresUnavailable = (e as Error).message.split('\n')[0];
        log(`attention importance unavailable (${scoresUnavailable}); elastic and h2o need it, streaming and full run`);
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
    return new Vlm(config, prompt, sessions, choice.provider, choice.fallbackReason, scoreOutputs, kvDtype, loadMs, scoresUnavailable);
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
    const out = await this.sessions.embed.run({ [this.sessions.embed.inputNames[0]]: tokenIds(ids) });
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
  need(s.decoder, ['inputs_embeds', 'attention_mask', 'past_key_values.0.key', 'past_key_values.0.value'], 'onnx/decoder_model_merged', 'input');
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
