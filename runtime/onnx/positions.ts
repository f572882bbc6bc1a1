// True positions for GroupQueryAttention with rotary inside (do_rotary=1, as onnxruntime-genai's builder writes it).
// That op rotates each new token by its cache length (seqlens_k, from the mask), so after a compaction the token would
// sit at the compressed length. Its optional input 9 `position_ids` overrides that on onnxruntime 1.30's CPU provider
// but not on its WebGPU provider (measured on an H200: WebGPU's logits after a StreamingLLM compaction left the CPU's,
// docs/gpu.md). So the rotary moves out of the op: the packed QKV is split, Q and K go through com.microsoft
// RotaryEmbedding fed by the graph's position_ids (the same cos/sin caches and layout), and GroupQueryAttention runs
// with do_rotary=0. The graph gains a position_ids input when the builder dropped it.
import { onnx } from 'onnx-proto';
import { attr, I64, tensor } from './build.js';
import { attrInt, defaultOpset, MS } from './graphIndex.js';

const COS = 7;
const SIN = 8;

export interface PositionsRewrite {
  /** GroupQueryAttention nodes whose rotary now runs in RotaryEmbedding nodes fed by position_ids. */
  wired: number;
  /** Whether a position_ids graph input had to be added. */
  addedInput: boolean;
}

export function wireTruePositions(model: onnx.IModelProto): PositionsRewrite {
  const graph = model.graph;
  const res: PositionsRewrite = { wired: 0, addedInput: false };
  if (!graph) return res;
  const isRotaryGqa = (n: onnx.INodeProto) => n.opType === 'GroupQueryAttention' && n.domain === MS && attrInt(n, 'do_rotary') === 1;
  if (!(graph.node ?? []).some(isRotaryGqa)) return res;
  res.addedInput = ensurePositionIds(graph);
  const opset = defaultOpset(model);
  const nodes: onnx.INodeProto[] = [];
  for (const n of graph.node ?? []) {
    if (isRotaryGqa(n)) {
      nodes.push(...rotaryOutside(n, graph, opset));
      res.wired++;
    }
    nodes.push(n);
  }
  graph.node = nodes;
  return res;
}

/** Adds the position_ids [batch, sequence] input when the graph lacks it; true when added. */
function ensurePositionIds(graph: onnx.IGraphProto): boolean {
  if ((graph.input ?? []).some((i) => i.name === 'position_ids')) return false;
  const seq = (graph.input ?? []).find((i) => i.name === 'inputs_embeds')?.type?.tensorType?.shape?.dim?.slice(0, 2);
  const dim = (d: onnx.TensorShapeProto.IDimension | undefined, fallback: string) => ({ dimParam: d?.dimParam || fallback });
  (graph.input ??= []).push(onnx.ValueInfoProto.create({
    name: 'position_ids',
    type: { tensorType: { elemType: onnx.TensorProto.DataType.INT64, shape: { dim: [dim(seq?.[0], 'batch_size'), dim(seq?.[1], 'sequence_length')] } } },
  }));
  return true;
}

/**
 * The nodes that rotate Q and K before `gqa` (returned in order, to be placed before it), and `gqa` rewired to take
 * them with do_rotary=0. Packed QKV (key and value inputs empty) is split first.
 */
function rotaryOutside(gqa: onnx.INodeProto, graph: onnx.IGraphProto, opset: number): onnx.INodeProto[] {
  const ins = (gqa.input ??= []);
  const name = gqa.name || `gqa_${ins[0]}`;
  const heads = attrInt(gqa, 'num_heads') ?? 0;
  const kvHeads = attrInt(gqa, 'kv_num_heads') ?? 0;
  const interleaved = attrInt(gqa, 'rotary_interleaved') ?? 0;
  const out: onnx.INodeProto[] = [];
  let [q, k, v] = [ins[0], ins[1] ?? '', ins[2] ?? ''];
  if (!k) {
    // Packed QKV: [B, S, (heads + 2 kvHeads) * headSize]; the head size is twice the cos cache's width.
    const headSize = 2 * cacheWidth(graph, ins[COS]);
    const sizes = [heads * headSize, kvHeads * headSize, kvHeads * headSize];
    [q, k, v] = ['q', 'k', 'v'].map((x) => `${name}/rotary/${x}`);
    const split = opset >= 13
      ? { input: [ins[0], constant(graph, `${name}/rotary/split_sizes`, sizes)], attribute: [attr('axis', -1)] }
      : { input: [ins[0]], attribute: [attr('axis', -1), attr('split', sizes)] };
    out.push(onnx.NodeProto.create({ opType: 'Split', name: `${name}/rotary/Split`, output: [q, k, v], ...split }));
  }
  const rotate = (x: string, n: number, tag: string) => {
    const y = `${name}/rotary/${tag}_rotated`;
    out.push(onnx.NodeProto.create({
      opType: 'RotaryEmbedding', domain: MS, name: `${name}/rotary/${tag}`, input: [x, 'position_ids', ins[COS], ins[SIN]], output: [y],
      attribute: [attr('interleaved', interleaved), attr('num_heads', n)],
    }));
    return y;
  };
  const qr = rotate(q, heads, 'q');
  const kr = rotate(k, kvHeads, 'k');
  ins[0] = qr;
  ins[1] = kr;
  ins[2] = v;
  // No rotary left inside: the caches and position_ids inputs go (the op wants them only with do_rotary=1).
  ins.splice(COS);
  const a = (gqa.attribute ?? []).find((x) => x.name === 'do_rotary');
  if (a) a.i = 0;
  return out;
}

/** The second dimension of the cos cache initializer (max positions x headSize / 2). */
function cacheWidth(graph: onnx.IGraphProto, cos: string): number {
  const init = (graph.initializer ?? []).find((t) => t.name === cos);
  const d = init?.dims?.[1];
  if (d == null) throw new Error(`positions: the rotary cache ${cos} is not an initializer of known shape`);
  return typeof d === 'number' ? d : (d as { toNumber(): number }).toNumber();
}

function constant(graph: onnx.IGraphProto, name: string, values: number[]): string {
  (graph.initializer ??= []).push(tensor(name, I64, [values.length], values));
  return name;
}
