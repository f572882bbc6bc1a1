"""The decoder as this project's train/export.py writes it (torch.onnx legacy export of DecoderExport): plain ops,
RMSNorm spelled out, rotary from position_ids, causal + attention_mask bias, K/V repeated to the query heads, one
Softmax per layer. Same weights as the fused decoder, so the two are twins."""
import numpy as np

from graph import FLOAT, INT64, Graph, decoder_io


def build(t, w):
    g = Graph("main_graph")
    H, D, L = t["hidden_size"], t["head_dim"], t["num_hidden_layers"]
    Hq, Hkv, V, eps = t["num_attention_heads"], t["num_key_value_heads"], t["vocab_size"], t["rms_norm_eps"]
    rep = Hq // Hkv
    decoder_io(g, t)
    c = lambda v: g.const(np.int64, v)  # noqa: E731
    f = lambda name, v: g.init(name, np.array(v, np.float32))  # noqa: E731

    # Rotary tables from position_ids: [B, 1, S, D].
    inv = 1.0 / (t["rope_theta"] ** (np.arange(0, D, 2, dtype=np.int64).astype(np.float32) / D))
    pos = g.node("Cast", ["position_ids"], "/rope/Cast", to=FLOAT)
    pos = g.node("Unsqueeze", [pos, c([2])], "/rope/Unsqueeze")
    freqs = g.node("Mul", [pos, g.init("rope.inv_freq", inv.astype(np.float32))], "/rope/Mul")
    emb = g.node("Concat", [freqs, freqs], "/rope/Concat", axis=-1)
    emb = g.node("Unsqueeze", [emb, c([1])], "/rope/Unsqueeze_1")
    cos = g.node("Cos", [emb], "/rope/Cos")
    sin = g.node("Sin", [emb], "/rope/Sin")

    # Mask bias [B, 1, S, T]: key j visible to query i iff j <= i + (T - S) and attention_mask[j] != 0.
    shp_m = g.node("Shape", ["attention_mask"], "/mask/Shape")
    T = g.node("Gather", [shp_m, g.const(np.int64, 1, scalar=True)], "/mask/T", axis=0)
    shp_e = g.node("Shape", ["inputs_embeds"], "/mask/Shape_1")
    S = g.node("Gather", [shp_e, g.const(np.int64, 1, scalar=True)], "/mask/S", axis=0)
    zero, one = g.const(np.int64, 0, scalar=True), g.const(np.int64, 1, scalar=True)
    kidx = g.node("Range", [zero, T, one], "/mask/kidx")
    qidx = g.node("Add", [g.node("Range", [zero, S, one], "/mask/qidx0"), g.node("Sub", [T, S], "/mask/past")], "/mask/qidx")
    causal = g.node("LessOrEqual", [g.node("Unsqueeze", [kidx, c([0])], "/mask/k2"),
                                    g.node("Unsqueeze", [qidx, c([1])], "/mask/q2")], "/mask/causal")
    keep = g.node("Not", [g.node("Equal", ["attention_mask", g.const(np.int64, 0, scalar=True)], "/mask/pad")], "/mask/keep")
    keep = g.node("Unsqueeze", [keep, c([1, 2])], "/mask/keep4")
    allowed = g.node("And", [g.node("Unsqueeze", [causal, c([0, 1])], "/mask/causal4"), keep], "/mask/allowed")
    bias = g.node("Where", [allowed, f("mask.zero", 0.0), f("mask.min", np.finfo(np.float32).min)], "/mask/bias")

    def rms(x, weight, name):
        sq = g.node("Pow", [x, f(f"{name}.two", 2.0)], f"{name}/Pow")
        var = g.node("ReduceMean", [sq], f"{name}/ReduceMean", axes=[-1], keepdims=1)  # opset 17: axes attribute
        r = g.node("Sqrt", [g.node("Add", [var, f(f"{name}.eps", eps)], f"{name}/Add")], f"{name}/Sqrt")
        y = g.node("Div", [x, r], f"{name}/Div")
        return g.node("Mul", [g.init(f"{name}.weight", weight), y], f"{name}/Mul")

    def heads(x, n, name):
        x = g.node("Reshape", [x, c([0, 0, n, D])], f"{name}/Reshape")
        return g.node("Transpose", [x], f"{name}/Transpose", perm=[0, 2, 1, 3])

    def rotary(x, name):
        x1 = g.node("Slice", [x, c([0]), c([D // 2]), c([-1])], f"{name}/Slice")
        x2 = g.node("Slice", [x, c([D // 2]), c([D]), c([-1])], f"{name}/Slice_1")
        rot = g.node("Concat", [g.node("Neg", [x2], f"{name}/Neg"), x1], f"{name}/Concat", axis=-1)
        return g.node("Add", [g.node("Mul", [x, cos], f"{name}/Mul"), g.node("Mul", [rot, sin], f"{name}/Mul_1")], f"{name}/Add")

    def repeat(x, name):
        x = g.node("Unsqueeze", [x, c([2])], f"{name}/Unsqueeze")
        x = g.node("Expand", [x, c([1, 1, rep, 1, 1])], f"{name}/Expand")
        return g.node("Reshape", [x, c([0, Hq, -1, D])], f"{name}/Reshape")

    h = "inputs_embeds"
    for i, lw in enumerate(w["layers"]):
        p = f"/model/layers.{i}"
        x = rms(h, lw["in_norm"], f"{p}/input_layernorm")
        q = heads(g.node("MatMul", [x, g.init(f"model.layers.{i}.self_attn.q_proj.weight", lw["q"])], f"{p}/q_proj/MatMul"), Hq, f"{p}/q")
        k = heads(g.node("MatMul", [x, g.init(f"model.layers.{i}.self_attn.k_proj.weight", lw["k"])], f"{p}/k_proj/MatMul"), Hkv, f"{p}/k")
        v = heads(g.node("MatMul", [x, g.init(f"model.layers.{i}.self_attn.v_proj.weight", lw["v"])], f"{p}/v_proj/MatMul"), Hkv, f"{p}/v")
        q, k = rotary(q, f"{p}/q_rot"), rotary(k, f"{p}/k_rot")
        k = g.node("Concat", [f"past_key_values.{i}.key", k], f"{p}/k_cat", outputs=[f"present.{i}.key"], axis=2)
        v = g.node("Concat", [f"past_key_values.{i}.value", v], f"{p}/v_cat", outputs=[f"present.{i}.value"], axis=2)
        kk, vv = repeat(k, f"{p}/k_rep"), repeat(v, f"{p}/v_rep")
        sc = g.node("MatMul", [q, g.node("Transpose", [kk], f"{p}/kT", perm=[0, 1, 3, 2])], f"{p}/scores/MatMul")
        sc = g.node("Add", [g.node("Mul", [sc, f(f"{p}.scale", D ** -0.5)], f"{p}/scores/Mul"), bias], f"{p}/scores/Add")
        pr = g.node("Softmax", [sc], f"{p}/Softmax", axis=-1)
        o = g.node("MatMul", [pr, vv], f"{p}/attn/MatMul")
        o = g.node("Reshape", [g.node("Transpose", [o], f"{p}/attn/Transpose", perm=[0, 2, 1, 3]), c([0, 0, Hq * D])], f"{p}/attn/Reshape")
        o = g.node("MatMul", [o, g.init(f"model.layers.{i}.self_attn.o_proj.weight", lw["o"])], f"{p}/o_proj/MatMul")
        h = g.node("Add", [h, o], f"{p}/residual_attn")
        x = rms(h, lw["post_norm"], f"{p}/post_attention_layernorm")
        gate = g.node("MatMul", [x, g.init(f"model.layers.{i}.mlp.gate_proj.weight", lw["gate"])], f"{p}/gate_proj/MatMul")
        up = g.node("MatMul", [x, g.init(f"model.layers.{i}.mlp.up_proj.weight", lw["up"])], f"{p}/up_proj/MatMul")
        act = g.node("Mul", [gate, g.node("Sigmoid", [gate], f"{p}/silu/Sigmoid")], f"{p}/silu/Mul")
        down = g.node("MatMul", [g.node("Mul", [act, up], f"{p}/mlp/Mul"),
                                 g.init(f"model.layers.{i}.mlp.down_proj.weight", lw["down"])], f"{p}/down_proj/MatMul")
        h = g.node("Add", [h, down], f"{p}/residual_mlp")
    x = rms(h, w["final_norm"], "/model/norm")
    g.node("MatMul", [x, g.init("lm_head.weight", np.ascontiguousarray(w["embed"].T))], "/lm_head/MatMul", outputs=["logits"])
    return g.model(opsets=(("", 17),), producer="pytorch")
