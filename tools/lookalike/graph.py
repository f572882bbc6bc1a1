"""A small wrapper over onnx.helper: named nodes, initializers, Constant nodes the way the genai builder names them."""
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

FLOAT, FLOAT16, INT64, INT32, BOOL = TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.INT64, TensorProto.INT32, TensorProto.BOOL
MS = "com.microsoft"


class Graph:
    def __init__(self, name):
        self.name = name
        self.nodes, self.inits, self.inputs, self.outputs, self.values = [], [], [], [], []
        self._consts = {}

    def input(self, name, elem, shape):
        self.inputs.append(helper.make_tensor_value_info(name, elem, shape))
        return name

    def output(self, name, elem, shape):
        self.outputs.append(helper.make_tensor_value_info(name, elem, shape))
        return name

    def init(self, name, array):
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op, inputs, name, outputs=None, domain=None, **attrs):
        """outputs default to [f'{name}/output_0'] (the builder's naming); returns the first output."""
        outs = outputs if outputs is not None else [f"{name}/output_0"]
        self.nodes.append(helper.make_node(op, inputs, outs, name=name, domain=domain, **attrs))
        return outs[0]

    def const(self, dtype, values, scalar=False):
        """A Constant node named like the builder's /model/constants/INT64/[1]."""
        arr = np.array(values, dtype=dtype)
        if scalar:
            arr = arr.reshape(())
        tag = {np.int64: "INT64", np.int32: "INT32", np.float32: "FLOAT"}[dtype]
        key = f"/model/constants/{tag}/{arr.tolist()}".replace(" ", "")
        if key not in self._consts:
            self.nodes.append(helper.make_node("Constant", [], [key], name=key, value=numpy_helper.from_array(arr)))
            self._consts[key] = key
        return key

    def model(self, opsets=(("", 21), (MS, 1)), producer="elastic-vlm lookalike"):
        g = helper.make_graph(self.nodes, self.name, self.inputs, self.outputs, self.inits, value_info=self.values)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets], producer_name=producer)
        m.ir_version = 10
        return m


def decoder_io(g, t, position_ids=True):
    """The published decoder's inputs and outputs: embeddings, mask, positions, past and present K/V per layer."""
    L, Hkv, D = t["num_hidden_layers"], t["num_key_value_heads"], t["head_dim"]
    g.input("inputs_embeds", FLOAT, ["batch_size", "sequence_length", t["hidden_size"]])
    g.input("attention_mask", INT64, ["batch_size", "total_sequence_length"])
    if position_ids:
        g.input("position_ids", INT64, ["batch_size", "sequence_length"])
    for i in range(L):
        for kv in ("key", "value"):
            g.input(f"past_key_values.{i}.{kv}", FLOAT, ["batch_size", Hkv, "past_sequence_length", D])
    g.output("logits", FLOAT, ["batch_size", "sequence_length", t["vocab_size"]])
    for i in range(L):
        for kv in ("key", "value"):
            g.output(f"present.{i}.{kv}", FLOAT, ["batch_size", Hkv, "total_sequence_length", D])
