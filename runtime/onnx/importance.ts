// Derives, from a decoder ONNX graph in the SmolVLM layout, a decoder that additionally outputs per
// layer i `attn_importance.{i}`: float32 [batch, total_len], the head-averaged attention probabilities
// of the current queries summed over those queries (prefill: column sums; decode step: the step's row).
//
// Three kinds of graphs are handled (attentionSites.ts finds them, layerMap.ts assigns their layers):
//  - 'softmax': unfused attention, one Softmax per layer over [B, heads, S, T] (torch.onnx legacy export);
//  - 'mha': com.microsoft MultiHeadAttention; its optional 4th output `qk` holds the scaled, masked
//    scores before softmax, so a Softmax is added;
//  - 'gqa': com.microsoft GroupQueryAttention; attribute qk_output=2 makes its 4th output `output_qk`
//    the softmax probabilities.
// Each probability tensor is then reduced: Cast to float32 if needed, summed over the queries (a MatMul with a row
// of ones), averaged over the heads. No `vscode` import: this module runs in the worker, the CLI and tests.

import { onnx } from 'onnx-proto';
import { attr, tensor, I64 } from './build.js';
import { FLOAT, GraphIndex, attrInt, defaultOpset, hasExternalData, num, setAttrInt, UnsupportedModelError } from './graphIndex.js';
import { findSites, type AttentionKind, type Site } from './attentionSites.js';
import { assignLayers } from './layerMap.js';
import { wireTruePositions, type PositionsRewrite } from './positions.js';
import { lastPositionLogits } from './lastLogits.js';
import { exposeNewEntries } from './newEntries.js';
import { addMassBias, takesMassBias } from './massBias.js';

export { NoAttentionError, type AttentionKind } from './attentionSites.js';
export { UnsupportedModelError } from './graphIndex.js';

/** Bump when the rewrite's output changes: derived files of older versions are then ignored. */
// 22: attn_bias.* on GroupQueryAttention too. 21: attn_bias.* inputs on unfused attention (massBias.ts). 20: the positions decoder outputs attn_query.* (queries.ts). 19: new.* outputs. 18: the reductions listed last, layer 0's last; logits of the last position only. 17: the
// attn_window.* outputs and true positions for GroupQueryAttention (rotary outside it). Derived decoders are cached
// in a folder other checkouts share: a distinctive number keeps theirs apart.
export const REWRITE_VERSION = 22;
export const IMPORTANCE_PREFIX = 'attn_importance.';
/**
 * Per layer i, `attn_window.{i}`: float32 [batch, heads, min(W, queries), total_len], the attention probabilities of
 * the last W = WINDOW_QUERIES queries of the run, per query head (not averaged): the observation window SnapKV and the
 * question-aware Elastic score by (prefill), or the step's own row per head (decode). Opset >= 10 (Slice with inputs).
 */
export const WINDOW_PREFIX = 'attn_window.';
export const WINDOW_QUERIES = 64;

export interface RewriteResult {
  model: onnx.ModelProto;
  kind: AttentionKind;
  layers: number;
  /** `attn_importance.{i}` for i = 0..layers-1, in layer order. */
  outputNames: string[];
  /** GroupQueryAttention rotary rewired to position_ids (positions.ts). */
  positions?: PositionsRewrite;
  /** Whether `new.{i}.key|value` outputs were added (newEntries.ts). */
  newEntries: boolean;
}

export interface RewriteOptions {
  /** Used in error messages (the file name). */
  source?: string;
}

/**
 * Adds `attn_importance.{i}` outputs to a decoder graph, in place on `model` (which is also returned): find the
 * attention sites, assign each its layer, append to each a reduction of its probabilities to [batch, total_len].
 * Throws NoAttentionError when no attention is found, UnsupportedModelError for unsupported graphs.
 */
export function rewriteForImportance(model: onnx.ModelProto, opts: RewriteOptions = {}): RewriteResult {
  const src = opts.source ?? '<model>';
  const graph = model.graph;
  if (!graph) throw new UnsupportedModelError(`${src} has no graph`);
  if (hasExternalData(graph)) {
    throw new UnsupportedModelError(`${src} keeps tensors in external data files: deriving a scored decoder from such models is not supported yet`);
  }
  if ((graph.output ?? []).some((o) => (o.name ?? '').startsWith(IMPORTANCE_PREFIX))) {
    throw new UnsupportedModelError(`${src} already has ${IMPORTANCE_PREFIX}* outputs (is it a derived model?)`);
  }
  const opset = defaultOpset(model);
  const idx = new GraphIndex(graph);
  const found = findSites(graph, idx, opset, src);
  const layerOf = assignLayers(found, idx, src);

  const reduction = new Reduction(idx, opset);
  const constants = reduction.take();
  const outputNames: string[] = new Array(layerOf.length);
  const byLayer: onnx.NodeProto[][] = layerOf.map(() => []);
  found.sites.forEach((site, si) => {
    const layer = layerOf[si];
    const { tensor: probs, needSoftmax } = probabilityTensor(found.kind, site, graph, idx, src, `attn_importance/${layer}`);
    outputNames[layer] = reduction.append(probs, needSoftmax, layer, src);
    byLayer[layer].push(...reduction.take());
  });

  // The derived decoder also places tokens at their true positions after a compaction (positions.ts), outputs each
  // run's new cache entries (newEntries.ts, after the positions: GroupQueryAttention's keys are rotated by then) and
  // the last position's logits only (lastLogits.ts).
  const positions = found.kind === 'gqa' ? wireTruePositions(model) : undefined;
  const newEntries = exposeNewEntries(model);
  lastPositionLogits(model);
  // onnxruntime's default execution order is a depth-first walk back from the graph's leaves, last-listed leaf first.
  // Listed after everything else, layer 0's last, each reduction runs as soon as its layer's attention exists, and
  // that attention matrix is freed before the next layer's is made. Appended in layer order, all 30 of a 256M
  // prefill's (53 MB each at 1,200 tokens) were alive at once (docs/real-size.md, run 6).
  graph.node = [...constants, ...(graph.node ?? []), ...byLayer.reverse().flat()];
  // Elastic's mass merging: an attention bias per layer (massBias.ts).
  if (takesMassBias(found.kind)) addMassBias(graph, new GraphIndex(graph), found.sites, layerOf, opset);
  graph.output = [
    ...(graph.output ?? []),
    ...outputNames.map((name) => outputInfo(graph, name)),
    ...reduction.windowNames.filter(Boolean).map((name) => onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType: FLOAT } } })),
  ];
  return { model, kind: found.kind, layers: layerOf.length, outputNames, positions, newEntries };
}

/**
 * The site's attention as a tensor: a Softmax's own output; GroupQueryAttention's `output_qk` with qk_output=2
 * (probabilities); MultiHeadAttention's `qk` (scaled, masked scores: a Softmax is still needed).
 */
function probabilityTensor(kind: AttentionKind, site: Site, graph: onnx.IGraphProto, idx: GraphIndex, src: string, base: string):
  { tensor: string; needSoftmax: boolean } {
  const node = site.node;
  if (kind === 'softmax') return { tensor: node.output![0], needSoftmax: false };
  const outs = (node.output ??= []);
  const existing = outs[3];
  if (kind === 'gqa') {
    // qk_output=1 gives scores with masked positions left at 0 (not -inf): a Softmax over them is wrong, so switch
    // to probabilities (2), unless something already reads the scores.
    const mode = attrInt(node, 'qk_output') ?? 0;
    if (existing && mode === 1 && (idx.consumers.has(existing) || (graph.output ?? []).some((o) => o.name === existing))) {
      throw new UnsupportedModelError(`${src}: GroupQueryAttention ${node.name || ''} already outputs pre-softmax scores (qk_output=1) that the graph uses`);
    }
    if (mode !== 2) setAttrInt(node, 'qk_output', 2);
  }
  if (existing) return { tensor: existing, needSoftmax: kind === 'mha' };
  while (outs.length < 3) outs.push('');
  const t = idx.unique(`${base}/qk`);
  outs[3] = t;
  if (kind === 'mha') {
    // MHA's qk type is not tied to its inputs by the schema, so ORT cannot infer it: declare it as the attention's
    // own type (that of present_key or query), float32 when unknown.
    const elemType = [outs[1], outs[2], node.input?.[0]].map((x) => (x ? idx.elemTypes.get(x) : undefined)).find((x) => x !== undefined) ?? FLOAT;
    (graph.valueInfo ??= []).push(onnx.ValueInfoProto.create({ name: t, type: { tensorType: { elemType } } }));
  }
  return { tensor: t, needSoftmax: kind === 'mha' };
}

/**
 * Appends, per layer, probabilities [B, H, S, T] -> float32 [B, T]: Cast if needed, summed over the queries, averaged
 * over the heads. The sum over the queries is a product with a row of ones, [1, S] x [B, H, S, T] -> [B, H, 1, T]: a
 * MatMul runs that at full speed, where a ReduceSum over a middle axis walks the attention matrix with strides.
 */
class Reduction {
  private nodes: onnx.NodeProto[] = [];
  private readonly queryAxis: string;
  private readonly rowAxes?: string;
  private readonly headAxes?: string;
  private readonly windowStart?: string;
  private readonly windowEnd?: string;
  readonly windowNames: string[] = [];

  constructor(private readonly idx: GraphIndex, opset: number) {
    this.queryAxis = this.int64Const('query_axis', [2]);
    if (opset >= 10) {
      // Slice takes its bounds as inputs from opset 10 on: without it there is no window output.
      this.windowStart = this.int64Const('window_start', [-WINDOW_QUERIES]);
      this.windowEnd = this.int64Const('window_end', [2 ** 53 - 1]);
    }
    if (opset >= 13) this.rowAxes = this.int64Const('row_axes', [0]);
    if (opset >= 18) this.headAxes = this.int64Const('head_axes', [1, 2]);
  }

  append(probs: string, needSoftmax: boolean, layer: number, src: string): string {
    const out = `${IMPORTANCE_PREFIX}${layer}`;
    if (this.idx.names.has(out)) throw new UnsupportedModelError(`${src} already has a tensor named ${out}`);
    this.idx.names.add(out);
    const base = `attn_importance/${layer}`;
    const mk = (opType: string, input: string[], tag: string, attrs: onnx.AttributeProto[] = []) =>
      this.node(opType, input, tag === out ? out : this.idx.unique(`${base}/${tag}`), `${base}/${opType}`, attrs);
    // A float32 tensor needs no Cast (it would copy the whole attention matrix).
    let t = this.idx.elemTypes.get(probs) === FLOAT ? probs : mk('Cast', [probs], 'f32', [attr('to', FLOAT)]);
    if (needSoftmax) t = mk('Softmax', [t], 'probs', [attr('axis', 3)]);
    const shape = mk('Shape', [t], 'shape');
    const queries = mk('Gather', [shape, this.queryAxis], 'queries', [attr('axis', 0)]);
    const ones = mk('ConstantOfShape', [queries], 'ones', [attr('value', tensor('one', FLOAT, [1], [1]))]);
    const row = this.rowAxes ? mk('Unsqueeze', [ones, this.rowAxes], 'row') : mk('Unsqueeze', [ones], 'row', [attr('axes', [0])]);
    if (this.windowStart && this.windowEnd) {
      const win = `${WINDOW_PREFIX}${layer}`;
      if (this.idx.names.has(win)) throw new UnsupportedModelError(`${src} already has a tensor named ${win}`);
      this.idx.names.add(win);
      this.windowNames[layer] = this.node('Slice', [t, this.windowStart, this.windowEnd, this.queryAxis], win, `${base}/window`, []);
    }
    t = mk('MatMul', [row, t], 'query_sum');
    return this.headAxes
      ? mk('ReduceMean', [t, this.headAxes], out, [attr('keepdims', 0)])
      : mk('ReduceMean', [t], out, [attr('axes', [1, 2]), attr('keepdims', 0)]);
  }

  /** The nodes made since the last call. */
  take(): onnx.NodeProto[] {
    const made = this.nodes;
    this.nodes = [];
    return made;
  }

  private node(opType: string, input: string[], output: string, name: string, attribute: onnx.AttributeProto[]): string {
    this.nodes.push(onnx.NodeProto.create({ opType, name: this.idx.unique(name), input, output: [output], attribute }));
    return output;
  }

  private int64Const(tag: string, values: number[]): string {
    const name = this.idx.unique(`attn_importance/${tag}`);
    return this.node('Constant', [], name, `${name}/Constant`, [attr('value', onnx.TensorProto.create({ dataType: I64, dims: [values.length], int64Data: values }))]);
  }
}

/** The new output's value info: float32 [batch, total_len], with attention_mask's dimensions where it has them. */
function outputInfo(graph: onnx.IGraphProto, name: string): onnx.ValueInfoProto {
  const mask = (graph.input ?? []).find((i) => i.name === 'attention_mask');
  const maskDims = mask?.type?.tensorType?.shape?.dim;
  const dims: onnx.TensorShapeProto.IDimension[] = maskDims && maskDims.length === 2
    ? maskDims.map((d) => (d.dimParam ? { dimParam: d.dimParam } : num(d.dimValue) > 0 ? { dimValue: num(d.dimValue) } : {}))
    : [{}, {}];
  return onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType: FLOAT, shape: { dim: dims } } } });
}
