// Per layer i, `attn_query.{i}`: the rotated queries [batch, sequence, heads * head_dim] that GroupQueryAttention
// takes once positions.ts has moved rotary out of it. onnxruntime 1.30's WebGPU GroupQueryAttention gives no attention
// output, so on WebGPU these queries and the present keys go to a small scoring graph (scorer.ts) that computes the
// same probabilities the CPU's output_qk holds: Elastic, H2O and SnapKV then run on the GPU too.
import { onnx } from 'onnx-proto';
import { attrInt, GraphIndex, MS } from './graphIndex.js';

export const QUERY_PREFIX = 'attn_query.';
export const queryName = (layer: number) => `${QUERY_PREFIX}${layer}`;

/**
 * Attention the scoring graph reproduces: the default scale (1/sqrt(head_dim), where a scale is written the past key's
 * head_dim must confirm it), no softcap, no local window, plain softmax, rotary already applied.
 */
function plainAttention(n: onnx.INodeProto, graph: onnx.IGraphProto): boolean {
  const f = (name: string) => (n.attribute ?? []).find((a) => a.name === name)?.f ?? 0;
  const scale = f('scale');
  const pastDims = (graph.input ?? []).find((i) => i.name === n.input?.[3])?.type?.tensorType?.shape?.dim;
  const headDim = Number(pastDims?.[3]?.dimValue ?? 0);
  return (scale === 0 || (headDim > 0 && Math.abs(scale - 1 / Math.sqrt(headDim)) < 1e-6)) && f('softcap') === 0 &&
    (attrInt(n, 'local_window_size') ?? -1) <= 0 && (attrInt(n, 'smooth_softmax') ?? 0) === 0 && (attrInt(n, 'do_rotary') ?? 0) === 0;
}

/**
 * Adds `attn_query.{i}` for every GroupQueryAttention whose present key is `present.{i}.key`, in place. Returns the
 * number of layers exposed, or 0, changing nothing, unless every such node takes unpacked, already rotated queries
 * and computes attention the scoring graph reproduces.
 */
export function exposeQueries(model: onnx.IModelProto): number {
  const graph = model.graph;
  if (!graph) return 0;
  const idx = new GraphIndex(graph);
  const sites: { layer: number; query: string }[] = [];
  for (const n of graph.node ?? []) {
    if (n.opType !== 'GroupQueryAttention' || n.domain !== MS) continue;
    const m = /^present\.(\d+)\.key$/.exec(n.output?.[1] ?? '');
    if (!m || !n.input?.[1] || !plainAttention(n, graph) || idx.names.has(queryName(Number(m[1])))) return 0;
    sites.push({ layer: Number(m[1]), query: n.input[0] });
  }
  if (!sites.length) return 0;
  for (const { layer, query } of sites) {
    const name = queryName(layer);
    graph.node!.push(onnx.NodeProto.create({ opType: 'Identity', name: idx.unique(`${name}/Identity`), input: [query], output: [name] }));
    graph.output!.push(onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType: idx.elemTypes.get(query) ?? outputType(graph, layer) } } }));
  }
  return sites.length;
}

/** The present key's element type (the queries share it), float32 when unknown. */
function outputType(graph: onnx.IGraphProto, layer: number): number {
  return (graph.output ?? []).find((o) => o.name === `present.${layer}.key`)?.type?.tensorType?.elemType ?? onnx.TensorProto.DataType.FLOAT;
}
