// Reads a model folder in the Hugging Face SmolVLM (Idefics3) ONNX layout. Every size and id comes from the
// folder's own json files; a missing or malformed file is a BadInputError naming that file.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { BadInputError } from '../errors.js';
import { resolveChatTemplate } from './chatTemplate.js';
import { parseDtypeSelection, PARTS, type DtypeSelection, type Part } from './dtypes.js';
import { onnxFileName, REQUIRED_ROOT_FILES } from './layout.js';

export interface ImageProcessorConfig {
  doResize: boolean;
  longestEdge: number;
  tileSize: number;
  doImageSplitting: boolean;
  doRescale: boolean;
  rescaleFactor: number;
  doNormalize: boolean;
  mean: [number, number, number];
  std: [number, number, number];
  /** PIL resample id: 0 nearest, 1 lanczos, 2 bilinear, 3 bicubic. */
  resample: number;
}

export interface ModelConfig {
  dir: string;
  imageTokenId: number;
  imageSeqLen: number;
  numLayers: number;
  /** Query heads of the text model. */
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  hiddenSize: number;
  vocabSize: number;
  /** The vision encoder's attention heads and patches per tile: its largest tensor is heads x patches^2 per tile. */
  visionHeads: number;
  patchesPerTile: number;
  eosTokenIds: number[];
  image: ImageProcessorConfig;
  tokenizerJson: object;
  tokenizerConfig: Record<string, unknown>;
  chatTemplate: string;
  /** The file the chat template came from (chatTemplate.ts). */
  chatTemplateFile: string;
  dtypes: DtypeSelection;
  files: { vision: string; embed: string; decoder: string };
}

function readJson(dir: string, name: string, required: boolean): Record<string, any> | null {
  const p = join(dir, name);
  if (!existsSync(p)) {
    if (required) throw new BadInputError(`model folder ${dir} is missing ${name}`);
    return null;
  }
  try {
    const v = JSON.parse(readFileSync(p, 'utf8'));
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not a JSON object');
    return v;
  } catch (e) {
    throw new BadInputError(`${name} in ${dir} is malformed: ${(e as Error).message.split('\n')[0]}`);
  }
}

function num(v: unknown, file: string, key: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new BadInputError(`${file}: ${key} must be a number`);
  return v;
}

/** The onnx/ file of one part in its selected dtype (layout.ts names it); missing or empty is a BadInputError naming it. */
function onnxFile(dir: string, part: Part, dtypes: DtypeSelection): string {
  const dtype = dtypes[part];
  const name = onnxFileName(PARTS[part], dtype);
  const p = join(dir, name);
  const what = dtype === 'fp32' ? '' : ` (dtype ${dtype})`;
  if (!existsSync(p)) throw new BadInputError(`model folder ${dir} is missing ${name}${what}`);
  if (statSync(p).size < 16) throw new BadInputError(`${name} in ${dir} is truncated`);
  return p;
}

/** The image processor's settings (preprocessor_config.json), its tile checked against the vision encoder's size. */
function imageConfig(pre: Record<string, any>, imgSize: number): ImageProcessorConfig {
  const longest = pre.size?.longest_edge;
  const tile = pre.max_image_size?.longest_edge ?? imgSize;
  const triple = (v: unknown, d: number): [number, number, number] =>
    Array.isArray(v) && v.length === 3 ? (v as [number, number, number]) : typeof v === 'number' ? [v, v, v] : [d, d, d];
  const image: ImageProcessorConfig = {
    doResize: pre.do_resize ?? true,
    longestEdge: num(longest ?? tile, 'preprocessor_config.json', 'size.longest_edge'),
    tileSize: num(tile, 'preprocessor_config.json', 'max_image_size.longest_edge'),
    doImageSplitting: pre.do_image_splitting ?? true,
    doRescale: pre.do_rescale ?? true,
    rescaleFactor: pre.rescale_factor ?? 1 / 255,
    doNormalize: pre.do_normalize ?? true,
    mean: triple(pre.image_mean, 0.5),
    std: triple(pre.image_std, 0.5),
    resample: typeof pre.resample === 'number' ? pre.resample : 1,
  };
  if (image.tileSize !== imgSize) {
    throw new BadInputError(`preprocessor_config.json: max_image_size.longest_edge ${image.tileSize} disagrees with config.json vision_config.image_size ${imgSize}`);
  }
  return image;
}

export function readModelFolder(dir: string, dtype = ''): ModelConfig {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new BadInputError(`model folder not found: ${dir}`);
  for (const f of REQUIRED_ROOT_FILES) if (!existsSync(join(dir, f))) throw new BadInputError(`model folder ${dir} is missing ${f}`);
  const config = readJson(dir, 'config.json', true)!;
  const pre = readJson(dir, 'preprocessor_config.json', true)!;
  const proc = readJson(dir, 'processor_config.json', false);
  const tokenizerJson = readJson(dir, 'tokenizer.json', true)!;
  const tokenizerConfig = readJson(dir, 'tokenizer_config.json', true)!;
  // Optional: config.json holds the end token too.
  const gen = readJson(dir, 'generation_config.json', false) ?? {};
  const dtypes = parseDtypeSelection(dtype);

  const text = config.text_config;
  const vision = config.vision_config;
  if (typeof text !== 'object' || text === null) throw new BadInputError('config.json: text_config is missing');
  if (typeof vision !== 'object' || vision === null) throw new BadInputError('config.json: vision_config is missing');
  const hiddenSize = num(text.hidden_size, 'config.json', 'text_config.hidden_size');
  const heads = num(text.num_attention_heads, 'config.json', 'text_config.num_attention_heads');
  const kvHeads = text.num_key_value_heads === undefined ? heads : num(text.num_key_value_heads, 'config.json', 'text_config.num_key_value_heads');
  const headDim = text.head_dim === undefined ? hiddenSize / heads : num(text.head_dim, 'config.json', 'text_config.head_dim');
  const imageTokenId = num(config.image_token_id ?? config.image_token_index, 'config.json', 'image_token_id');

  // image_seq_len: processor_config.json when present, else derived like the Idefics3 processor does.
  const scale = num(config.scale_factor ?? 2, 'config.json', 'scale_factor');
  const imgSize = num(vision.image_size, 'config.json', 'vision_config.image_size');
  const patch = num(vision.patch_size, 'config.json', 'vision_config.patch_size');
  const imageSeqLen = proc?.image_seq_len !== undefined
    ? num(proc.image_seq_len, 'processor_config.json', 'image_seq_len')
    : Math.floor((imgSize / patch) ** 2 / (scale * scale));

  const { template: chatTemplate, file: chatTemplateFile } = resolveChatTemplate(dir, tokenizerConfig);

  const eos = gen.eos_token_id ?? config.eos_token_id ?? text.eos_token_id;
  const eosTokenIds = (Array.isArray(eos) ? eos : [eos]).filter((v) => typeof v === 'number');
  if (eosTokenIds.length === 0) throw new BadInputError('no eos_token_id in generation_config.json or config.json');

  const image = imageConfig(pre, imgSize);

  return {
    dir,
    imageTokenId,
    imageSeqLen,
    numLayers: num(text.num_hidden_layers, 'config.json', 'text_config.num_hidden_layers'),
    numHeads: heads,
    numKvHeads: kvHeads,
    headDim,
    hiddenSize,
    vocabSize: num(text.vocab_size ?? config.vocab_size, 'config.json', 'text_config.vocab_size'),
    visionHeads: vision.num_attention_heads === undefined ? 12 : num(vision.num_attention_heads, 'config.json', 'vision_config.num_attention_heads'),
    patchesPerTile: (imgSize / patch) ** 2,
    eosTokenIds,
    image,
    tokenizerJson,
    tokenizerConfig,
    chatTemplate,
    chatTemplateFile,
    dtypes,
    files: {
      vision: onnxFile(dir, 'vision', dtypes),
      embed: onnxFile(dir, 'embed', dtypes),
      decoder: onnxFile(dir, 'decoder', dtypes),
    },
  };
}
