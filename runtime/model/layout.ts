// The files of a model folder in the Hugging Face SmolVLM (Idefics3) ONNX layout: the one list that loading
// (modelFolder.ts), downloading and model selection (extension/) agree on. Pure data: the webview bundles it too.

/** The three graphs under onnx/, each published once per dtype. */
export const MODEL_GRAPHS = ['vision_encoder', 'embed_tokens', 'decoder_model_merged'] as const;
export type ModelGraph = (typeof MODEL_GRAPHS)[number];

/** Root files a folder must have. */
export const REQUIRED_ROOT_FILES = ['config.json', 'preprocessor_config.json', 'tokenizer.json', 'tokenizer_config.json'] as const;

/**
 * Root files read when present: the end tokens fall back to config.json without generation_config.json, and the
 * chat template may sit in tokenizer_config.json, chat_template.json or chat_template.jinja. FAMILIARITY_FILE holds
 * the statistics of the unfamiliar-image check (this project's; published SmolVLM folders have none, so no check).
 */
export const FAMILIARITY_FILE = 'familiarity.json';
export const OPTIONAL_ROOT_FILES = [
  'processor_config.json', 'generation_config.json', 'special_tokens_map.json', 'added_tokens.json',
  'chat_template.json', 'chat_template.jinja', FAMILIARITY_FILE,
] as const;

/** onnx/ file name of a graph for a dtype: '' or 'fp32' -> name.onnx, else name_{dtype}.onnx (as published). */
export function onnxFileName(graph: ModelGraph, dtype: string): string {
  return `onnx/${graph}${!dtype || dtype === 'fp32' ? '' : `_${dtype}`}.onnx`;
}
