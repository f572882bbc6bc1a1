// The attention-mass input of a derived decoder: per layer i, `attn_bias.{i}` float32 [batch, total_len], added to
// that layer's attention logits before the softmax. Elastic's mass merging feeds log(count) for an entry that stands
// for `count` merged entries, so that it draws the attention they would have drawn together (proportional attention,
// as token merging does; docs/elastic-cache.md). They are plain inputs (onnxruntime-node drops feeds of overridable
// initializers): a run that has no bias to give feeds zeros (zeroMassFeeds).
// Unfused attention (one Softmax per layer) adds it in front of the Softmax. GroupQueryAttention (the published fused
// format) takes it as its `attention_bias` input (index 10), which onnxruntime 1.30's CPU kernel reads as
// [B or 1, 1, S, T] with S the run's queries exactly: the row is expanded to S rows. Its WebGPU kernel has no such
// input (the WebGPU positions decoder, queries.ts, gets none), nor is MultiHeadAttention handled.
import { onnx } from 'onnx-proto';
import { attr, I64 } from './build.js';
import type { Tensor } from 'onnxruntime-node';
import { ort } from '../model/ort.js';
import { FLOAT, UnsupportedModelError, type GraphIndex } from './graphIndex.js';
import type { AttentionKind, Site } from './attentionSites.js';

export const MASS_BIAS_PREFIX = 'attn_bias.';
/** The decoder input that carries layer i's attention bias. */
export const massBiasName = (i: number) => `${MASS_BIAS_PREFIX}${i}`;

/** Whether a derived decoder of this attention kind takes the `attn_bias.*` inputs. */
export function takesMassBias(kind: AttentionKind | string | null | undefined): boolean {
  return kind === 'softmax' || kind === 'gqa';
}

/** GroupQueryAttention's attention_bias input. */
const GQA_BIAS_INPUT = 10;

/**
 * Adds `attn_bias.{layer}` to every attention site of `layerOf`: a Softmax's scores + the bias unsqueezed to
 * [B, 1, 1, T]; a GroupQueryAttention's attention_bias, the same expanded to [B, 1, S, T]; cast to the attention's
 * type. The new nodes go just before their site in graph.node.
 */
export function addMassBias(graph: onnx.IGraphProto, idx: GraphIndex, sites: Site[], layerOf: number[], opset: number): void {
  let nodes: onnx.NodeProto[] = [];
  const before = new Map<onnx.INodeProto, onnx.NodeProto[]>();
  const constI64 = (base: string, values: number[]) => {
    const out = idx.unique(base);
    nodes.push(onnx.NodeProto.create({
      opType: 'Constant', name: idx.unique(`${base}/Constant`), output: [out],
      attribute: [attr('value', onnx.TensorProto.create({ dataType: I64, dims: [values.length], int64Data: values }))],
    }));
    return out;
  };
  const node = (opType: string, input: string[], base: string, attribute: onnx.AttributeProto[] = []) => {
    const out = idx.unique(base);
    nodes.push(onnx.NodeProto.create({ opType, name: idx.unique(`${base}/${opType}`), input, output: [out], attribute }));
    return out;
  };
  let axes: string | undefined;
  // The axes constant goes with the first site in graph order, before every use.
  const order = sites.map((_, i) => i).sort((a, b) => (idx.nodeOrder.get(sites[a].node) ?? 0) - (idx.nodeOrder.get(sites[b].node) ?? 0));
  if (opset >= 13) {
    axes = idx.unique('attn_bias/axes');
    nodes.push(onnx.NodeProto.create({
      opType: 'Constant', name: idx.unique('attn_bias/axes/Constant'), output: [axes],
      attribute: [attr('value', onnx.TensorProto.create({ dataType: I64, dims: [2], int64Data: [1, 2] }))],
    }));
  }
  for (const si of order) {
    const site = sites[si];
    const layer = layerOf[si];
    const name = massBiasName(layer);
    if (idx.names.has(name)) throw new Error(`the decoder already has a tensor named ${name}`);
    idx.names.add(name);
    (graph.input ??= []).push(onnx.ValueInfoProto.create({
      name, type: { tensorType: { elemType: FLOAT, shape: { dim: [{ dimParam: 'batch_size' }, { dimParam: 'total_sequence_length' }] } } },
    }));
    const base = `attn_bias/${layer}`;
    let b = axes ? node('Unsqueeze', [name, axes], `${base}/b4`) : node('Unsqueeze', [name], `${base}/b4`, [attr('axes', [1, 2])]);
    if (site.node.opType === 'GroupQueryAttention') {
      const ins = site.node.input!;
      if (ins[GQA_BIAS_INPUT]) throw new UnsupportedModelError(`GroupQueryAttention ${site.node.name ?? ''} already takes an attention_bias`);
      // [B, 1, 1, T] -> [B, 1, S, T]: Expand by [1, 1, S, 1], S = the query's second dimension
      const shape = node('Shape', [ins[0]], `${base}/query_shape`);
      const s = opset >= 10
        ? node('Slice', [shape, constI64(`${base}/one`, [1]), constI64(`${base}/two`, [2])], `${base}/queries`)
        : node('Slice', [shape], `${base}/queries`, [attr('starts', [1]), attr('ends', [2])]);
      const dims = node('Concat', [constI64(`${base}/ones`, [1, 1]), s, constI64(`${base}/one_t`, [1])], `${base}/dims`, [attr('axis', 0)]);
      b = node('Expand', [b, dims], `${base}/rows`);
      const type = idx.elemTypes.get(site.node.output?.[1] ?? '') ?? idx.elemTypes.get(ins[0]);
      if (type !== undefined && type !== FLOAT) b = node('Cast', [b], `${base}/cast`, [attr('to', type)]);
      while (ins.length < GQA_BIAS_INPUT) ins.push('');
      ins[GQA_BIAS_INPUT] = b;
    } else {
      const scores = site.node.input![0];
      const type = idx.elemTypes.get(scores);
      if (type !== undefined && type !== FLOAT) b = node('Cast', [b], `${base}/cast`, [attr('to', type)]);
      site.node.input![0] = node('Add', [scores, b], `${base}/scores`);
    }
    before.set(site.node, nodes);
    nodes = [];
  }
  graph.node = (graph.node ?? []).flatMap((n) => [...(before.get(n) ?? []), n]);
}

/** Adds zero `attn_bias.*` feeds for every such input of the decoder the caller did not feed (no merged entries). */
export function zeroMassFeeds(inputNames: readonly string[], feeds: Record<string, Tensor>): Record<string, Tensor> {
  const missing = inputNames.filter((n) => n.startsWith(MASS_BIAS_PREFIX) && !feeds[n]);
  if (!missing.length) return feeds;
  const total = feeds.attention_mask?.dims[1];
  if (total === undefined) throw new Error('the decoder takes attn_bias.* but was fed no attention_mask to size them by');
  const zeros = new ort.Tensor('float32', new Float32Array(total), [1, total]);
  const out = { ...feeds };
  for (const n of missing) out[n] = zeros;
  return out;
}
