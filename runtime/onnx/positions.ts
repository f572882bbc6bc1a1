// True positions for GroupQueryAttention with rotary inside (do_rotary=1, as onnxruntime-genai's builder writes it).
// Without a position_ids input the op rotates the new token by its cache length (seqlens_k from the mask), so after
// a compaction the token would sit at the compressed length. GroupQueryAttention's optional input 9 `position_ids`
// (onnxruntime >= 1.2x; measured honoured by 1.30's CPU provider, docs/smolvlm-onnx-format.md) overrides that:
// wire the graph's position_ids into every such node, adding the graph input when the builder dropped it.
import { onnx } from 'onnx-proto';

const MS = 'com.microsoft';
const POSITION_IDS_INPUT = 9;

export interface PositionsRewrite {
  /** GroupQueryAttention nodes whose rotary now takes position_ids. */
  wired: number;
  /** Whether a position_ids graph input had to be added. */
  addedInput: boolean;
}

const attrInt = (n: onnx.INodeProto, name: string): number | undefined => {
  const a = (n.attribute ?? []).find((x) => x.name === name);
  if (!a || a.i == null) return undefined;
  return typeof a.i === 'number' ? a.i : (a.i as { toNumber(): number }).toNumber();
};

export function wireTruePositions(model: onnx.IModelProto): PositionsRewrite {
  const graph = model.graph;
  const res: PositionsRewrite = { wired: 0, addedInput: false };
  if (!graph) return res;
  const rotaryGqa = (graph.node ?? []).filter((n) => n.opType === 'GroupQueryAttention' && n.domain === MS && attrInt(n, 'do_rotary') === 1);
  const toWire = rotaryGqa.filter((n) => !(n.input ?? [])[POSITION_IDS_INPUT]);
  if (!toWire.length) return res;
  if (!(graph.input ?? []).some((i) => i.name === 'position_ids')) {
    const seq = (graph.input ?? []).find((i) => i.name === 'inputs_embeds')?.type?.tensorType?.shape?.dim?.slice(0, 2);
    const dim = (d: onnx.TensorShapeProto.IDimension | undefined, fallback: string) =>
      d?.dimParam ? { dimParam: d.dimParam } : { dimParam: fallback };
    (graph.input ??= []).push(onnx.ValueInfoProto.create({
      name: 'position_ids',
      type: { tensorType: { elemType: onnx.TensorProto.DataType.INT64, shape: { dim: [dim(seq?.[0], 'batch_size'), dim(seq?.[1], 'sequence_length')] } } },
    }));
    res.addedInput = true;
  }
  for (const n of toWire) {
    const ins = (n.input ??= []);
    while (ins.length < POSITION_IDS_INPUT) ins.push('');
    ins[POSITION_IDS_INPUT] = 'position_ids';
    res.wired++;
  }
  return res;
}
