// The dtype variants of the published onnx/ folders and how a dtype selects its files. onnx-community repos name
// them {base}.onnx (fp32) and {base}_{dtype}.onnx; a selection may mix dtypes per file, as transformers.js allows
// (`decoder=q4,vision=fp16,embed=fp32`), because repos publish e.g. a q4 decoder beside an fp16 vision encoder.
import { BadInputError } from '../errors.js';
import type { ModelGraph } from './layout.js';

export const DTYPES = ['fp32', 'fp16', 'q4', 'q4f16', 'int8', 'uint8', 'quantized', 'bnb4'] as const;
export type Dtype = (typeof DTYPES)[number];

/** The three files of a model, keyed by the short names a mixed selection uses. */
export const PARTS = { decoder: 'decoder_model_merged', vision: 'vision_encoder', embed: 'embed_tokens' } as const satisfies Record<string, ModelGraph>;
export type Part = keyof typeof PARTS;

export type DtypeSelection = Record<Part, Dtype>;

function checkDtype(v: string, what: string): Dtype {
  if (!(DTYPES as readonly string[]).includes(v)) {
    throw new BadInputError(`unknown dtype ${JSON.stringify(v)}${what} (expected ${DTYPES.join(', ')}, or part=dtype pairs for decoder, vision, embed)`);
  }
  return v as Dtype;
}

/** '' -> fp32 everywhere; 'q4' -> q4 everywhere; 'decoder=q4,vision=fp16' -> those, the rest fp32 (or a bare default). */
export function parseDtypeSelection(spec: string | undefined): DtypeSelection {
  const sel: DtypeSelection = { decoder: 'fp32', vision: 'fp32', embed: 'fp32' };
  const s = (spec ?? '').trim();
  if (!s) return sel;
  for (const item of s.split(',').map((x) => x.trim()).filter(Boolean)) {
    const eq = item.indexOf('=');
    if (eq === -1) {
      const d = checkDtype(item, '');
      for (const p of Object.keys(sel) as Part[]) sel[p] = d;
      continue;
    }
    const part = item.slice(0, eq).trim();
    if (!(part in PARTS)) throw new BadInputError(`unknown model part ${JSON.stringify(part)} in --dtype (expected decoder, vision, embed)`);
    sel[part as Part] = checkDtype(item.slice(eq + 1).trim(), ` for ${part}`);
  }
  return sel;
}
