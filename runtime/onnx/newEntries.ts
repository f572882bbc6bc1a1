// Derived decoders also output each run's new cache entries, `new.{i}.key|value` [batch, kv_heads, new, head_dim]
// in the present outputs' layout and type. On the CPU the worker then fetches those instead of the present outputs:
// onnxruntime-node copies every fetched output into a fresh JS buffer, and at 1,600 tokens of a 256M model those
// presents are 77 MB a step (a step took 113 ms fetching them, 69 ms without, on 2 cores; docs/real-size.md).
import { onnx } from 'onnx-proto';
import { attr, I64, tensor } from './build.js';
import { attrInt, GraphIndex, isDefaultDomain, MS } from './graphIndex.js';
import { QUERY_PREFIX } from './queries.js';

export const NEW_ENTRIES_PREFIX = 'new.';
export const newEntriesName = (layer: number, kv: 'key' | 'value') => `${NEW_ENTRIES_PREFIX}${layer}.${kv}`;

/**
 * The outputs to fetch from a decoder run: on the CPU, where the decoder has new.* entries, everything but the
 * present.* outputs (the CPU store appends the new entries); never the attn_query.* outputs, which only the scoring
 * graph reads (Vlm.decoder fetches them itself when it wants scores); null fetches every output (a GPU keeps them on
 * the device).
 */
export function decoderFetches(outputNames: readonly string[], provider: string): string[] | null {
  const appended = provider === 'cpu' && outputNames.includes(newEntriesName(0, 'key'));
  const queries = outputNames.some((n) => n.startsWith(QUERY_PREFIX));
  if (!appended && !queries) return null;
  return outputNames.filter((n) => !(appended && n.startsWith('present.')) && !n.startsWith(QUERY_PREFIX));
}

/**
 * Adds `new.{i}.key|value` for every present output, in place. A present is either a Concat of the past and the new
 * entries on the sequence axis (possibly under Casts, as a float16 cache of a float32 graph), or GroupQueryAttention's
 * present (its key / value inputs, [B, S, kv_heads * head_dim], reshaped). Returns false, changing nothing, when one
 * present is neither: the worker then fetches the presents.
 */
export function exposeNewEntries(model: onnx.IModelProto): boolean {
  const graph = model.graph;
  if (!graph) return false;
  const nodes = graph.node ?? [];
  const idx = new GraphIndex(graph);
  const presents = (graph.output ?? []).map((o) => /^present\.(\d+)\.(key|value)$/.exec(o.name ?? '')).filter((m) => m !== null);
  if (!presents.length || presents.some((m) => idx.names.has(newEntriesName(Number(m[1]), m[2] as 'key' | 'value')))) return false;

  const added: onnx.NodeProto[] = [];
  const initializers: onnx.TensorProto[] = [];
  const outputs: onnx.IValueInfoProto[] = [];
  const make = (opType: string, input: string[], base: string, attribute: onnx.AttributeProto[] = [], output?: string) => {
    const out = output ?? idx.unique(base);
    added.push(onnx.NodeProto.create({ opType, name: idx.unique(`${base}/${opType}`), input, output: [out], attribute }));
    return out;
  };
  for (const m of presents) {
    const [present, layer, kv] = [m[0], Number(m[1]), m[2] as 'key' | 'value'];
    const target = newEntriesName(layer, kv);
    const base = `new_entries/${layer}/${kv}`;
    // Casts between the attention and the output are replayed on the new entries.
    const casts: number[] = [];
    let at = idx.producer.get(present);
    while (at && at.node.opType === 'Cast' && isDefaultDomain(at.node.domain)) {
      casts.unshift(attrInt(at.node, 'to')!);
      at = idx.producer.get(at.node.input![0]);
    }
    if (!at) return false;
    let entries: string;
    const n = at.node;
    if (n.opType === 'Concat' && isDefaultDomain(n.domain) && n.input?.length === 2 && [2, -2].includes(attrInt(n, 'axis') ?? 0)) {
      entries = n.input[1];
    } else if (n.opType === 'GroupQueryAttention' && n.domain === MS && (at.index === 1 || at.index === 2) && n.input?.[at.index]) {
      const kvHeads = attrInt(n, 'kv_num_heads');
      if (!kvHeads) return false;
      const shape = idx.unique(`${base}/shape`);
      initializers.push(tensor(shape, I64, [4], [0, 0, kvHeads, -1]));
      entries = make('Transpose', [make('Reshape', [n.input[at.index], shape], base)], base, [attr('perm', [0, 2, 1, 3])]);
    } else {
      return false;
    }
    casts.forEach((to, i) => (entries = make('Cast', [entries], base, [attr('to', to)], i === casts.length - 1 ? target : undefined)));
    if (!casts.length) entries = make('Identity', [entries], base, [], target);
    const info = (graph.output ?? []).find((o) => o.name === present)!;
    outputs.push(onnx.ValueInfoProto.create({ name: target, type: { tensorType: { elemType: info.type?.tensorType?.elemType ?? 1 } } }));
  }
  graph.initializer = [...(graph.initializer ?? []), ...initializers];
  graph.node = [...nodes, ...added];
  graph.output = [...(graph.output ?? []), ...outputs];
  return true;
}
