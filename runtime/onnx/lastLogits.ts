// Derived decoders compute the logits of the last position only. Generation reads nothing else, and a prefill's
// logits over every position are what a 256M model's LM head costs most: [1, 1,200, 49,280] float32 is 227 MB and
// about 68 GFLOP. The rewrite slices the LM head's input to its last row, so `logits` is [batch, 1, vocab] on every run.
import { onnx } from 'onnx-proto';
import { I64, tensor } from './build.js';
import { defaultOpset, GraphIndex, isDefaultDomain, MS } from './graphIndex.js';

/** Ops between the LM head and `logits` that keep the row count (a float16 model's Cast to float32). */
const PASS_THROUGH = new Set(['Cast', 'Identity']);

/**
 * Slices the LM head's input to the last position, in place. Returns false, changing nothing, when `logits` is not
 * a recognisable [B, S, H] x [H, V] product (MatMul, or MatMulNBits for 4-bit exports) or the opset predates Slice's
 * inputs (opset 10).
 */
export function lastPositionLogits(model: onnx.IModelProto): boolean {
  const graph = model.graph;
  if (!graph || defaultOpset(model) < 10) return false;
  const nodes = graph.node ?? [];
  const idx = new GraphIndex(graph);
  const initializers = new Set((graph.initializer ?? []).map((t) => t.name));

  let head = idx.producer.get('logits')?.node;
  while (head && PASS_THROUGH.has(head.opType ?? '') && isDefaultDomain(head.domain)) head = idx.producer.get(head.input![0])?.node;
  if (!head) return false;
  const isMatMul = head.opType === 'MatMul' && isDefaultDomain(head.domain);
  const isNBits = head.opType === 'MatMulNBits' && head.domain === MS;
  if (!isMatMul && !isNBits) return false;
  // The activation is the input that is not a weight; MatMulNBits takes it first.
  const slot = isNBits ? 0 : (head.input ?? []).findIndex((x) => !initializers.has(x) && idx.producer.get(x)?.node.opType !== 'Constant');
  if (slot < 0 || (isMatMul && (head.input ?? []).filter((x) => !initializers.has(x)).length !== 1)) return false;
  // Only the LM head's own input is cut: any other reader of the hidden states still sees every position.
  const hidden = head.input![slot];

  const starts = idx.unique('last_logits/starts');
  const ends = idx.unique('last_logits/ends');
  const axes = idx.unique('last_logits/axes');
  const last = idx.unique('last_logits/hidden');
  graph.initializer = [
    ...(graph.initializer ?? []),
    tensor(starts, I64, [1], [-1]),
    tensor(ends, I64, [1], [2 ** 53 - 1]),
    tensor(axes, I64, [1], [1]),
  ];
  const slice = onnx.NodeProto.create({ opType: 'Slice', name: idx.unique('last_logits/Slice'), input: [hidden, starts, ends, axes], output: [last] });
  head.input![slot] = last;
  graph.node = nodes.flatMap((n) => (n === head ? [slice, n] : [n]));
  // `logits` keeps its rank; its row axis is 1 now, whatever the graph declared.
  const out = (graph.output ?? []).find((o) => o.name === 'logits');
  const dims = out?.type?.tensorType?.shape?.dim;
  if (dims && dims.length === 3) dims[1] = { dimValue: 1 };
  return true;
}
