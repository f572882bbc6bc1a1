"""The decoder as onnxruntime-genai's model builder writes a Llama/SmolLM2 with exclude_embeds=true for the CPU or
WebGPU provider (src/python/py/models/builders/base.py): packed QKV MatMul, GroupQueryAttention with rotary inside
(do_rotary=1, cos/sin caches of max_position_embeddings x head_dim/2), SimplifiedLayerNormalization then
SkipSimplifiedLayerNormalization, Sigmoid*x for SiLU, lm_head MatMul. Node and tensor names follow the builder.

One deliberate difference, kept because the published SmolVLM decoders have it (issue 13): a position_ids input.
The builder drops it when rotary sits inside GroupQueryAttention; keep_position_ids=False does the same."""
import numpy as np

from graph import FLOAT, INT64, MS, Graph, decoder_io


def rope_caches(t):
    D = t["head_dim"]
    inv = 1.0 / (t["rope_theta"] ** (np.arange(0, D, 2, dtype=np.int64).astype(np.float32) / D))
    freqs = np.outer(np.arange(t["max_position_embeddings"], dtype=np.float32), inv)
    return np.cos(freqs).astype(np.float32), np.sin(freqs).astype(np.float32)


def build(t, w, keep_position_ids=True):
    g = Graph("main_graph")
    H, D, L = t["hidden_size"], t["head_dim"], t["num_hidden_layers"]
    Hq, Hkv, V, eps = t["num_attention_heads"], t["num_key_value_heads"], t["vocab_size"], t["rms_norm_eps"]
    decoder_io(g, t, position_ids=keep_position_ids)

    # attention_mask -> seqlens_k (sum - 1, int32) and total_seq_len (int32), as make_attention_mask_reformatting_for_gqa.
    b = "/model/attn_mask_reformat/attn_mask_subgraph"
    rs = g.node("ReduceSum", ["attention_mask", g.const(np.int64, [1])], f"{b}/ReduceSum", keepdims=0)
    sub = g.node("Sub", [rs, g.const(np.int64, [1])], f"{b}/Sub")
    seqlens_k = g.node("Cast", [sub], f"{b}/Sub/Cast", to=6)
    shp = g.node("Shape", ["attention_mask"], f"{b}/Shape")
    gat = g.node("Gather", [shp, g.const(np.int64, 1, scalar=True)], f"{b}/Gather", axis=0)
    total = g.node("Cast", [gat], f"{b}/Gather/Cast", to=6)
    cos, sin = rope_caches(t)
    g.init("cos_cache", cos)
    g.init("sin_cache", sin)

    root = skip = "inputs_embeds"
    for i, lw in enumerate(w["layers"]):
        p = f"/model/layers.{i}"
        wname = g.init(f"model.layers.{i}.input_layernorm.weight", lw["in_norm"])
        if i == 0:
            x = g.node("SimplifiedLayerNormalization", [root, wname], f"{p}/input_layernorm/LayerNorm",
                       outputs=[f"{p}/input_layernorm/output_0"], axis=-1, epsilon=eps, stash_type=1)
        else:
            x = g.node("SkipSimplifiedLayerNormalization", [root, skip, wname], f"{p}/input_layernorm/SkipLayerNorm",
                       outputs=[f"{p}/input_layernorm/output_0", "", "", f"{p}/input_layernorm/output_3"],
                       domain=MS, epsilon=eps)
            root = f"{p}/input_layernorm/output_3"
        qkv_w = np.concatenate([lw["q"], lw["k"], lw["v"]], axis=1)
        qkv = g.node("MatMul", [x, g.init(f"model.layers.{i}.attn.qkv_proj.MatMul.weight", qkv_w)],
                     f"{p}/attn/qkv_proj/MatMul")
        attn = g.node("GroupQueryAttention",
                      [qkv, "", "", f"past_key_values.{i}.key", f"past_key_values.{i}.value", seqlens_k, total,
                       "cos_cache", "sin_cache"],
                      f"{p}/attn/GroupQueryAttention",
                      outputs=[f"{p}/attn/GroupQueryAttention/output_0", f"present.{i}.key", f"present.{i}.value"],
                      domain=MS, num_heads=Hq, kv_num_heads=Hkv, scale=float(D ** -0.5), local_window_size=-1,
                      softcap=0.0, do_rotary=1, rotary_interleaved=0)
        o = g.node("MatMul", [attn, g.init(f"model.layers.{i}.attn.o_proj.MatMul.weight", lw["o"])], f"{p}/attn/o_proj/MatMul")
        wname = g.init(f"model.layers.{i}.post_attention_layernorm.weight", lw["post_norm"])
        x = g.node("SkipSimplifiedLayerNormalization", [root, o, wname], f"{p}/post_attention_layernorm/SkipLayerNorm",
                   outputs=[f"{p}/post_attention_layernorm/output_0", "", "", f"{p}/post_attention_layernorm/output_3"],
                   domain=MS, epsilon=eps)
        root = f"{p}/post_attention_layernorm/output_3"
        gate = g.node("MatMul", [x, g.init(f"model.layers.{i}.mlp.gate_proj.MatMul.weight", lw["gate"])], f"{p}/mlp/gate_proj/MatMul")
        up = g.node("MatMul", [x, g.init(f"model.layers.{i}.mlp.up_proj.MatMul.weight", lw["up"])], f"{p}/mlp/up_proj/MatMul")
        sig = g.node("Sigmoid", [gate], f"{p}/mlp/act_fn/Sigmoid")
        act = g.node("Mul", [gate, sig], f"{p}/mlp/act_fn/Mul")
        mul = g.node("Mul", [act, up], f"{p}/mlp/Mul")
        skip = g.node("MatMul", [mul, g.init(f"model.layers.{i}.mlp.down_proj.MatMul.weight", lw["down"])], f"{p}/mlp/down_proj/MatMul")
    wname = g.init(f"model.layers.{L}.final_norm_layernorm.weight", w["final_norm"])
    x = g.node("SkipSimplifiedLayerNormalization", [root, skip, wname], f"/model/layers.{L}/final_norm_layernorm/SkipLayerNorm",
               outputs=[f"/model/layers.{L}/final_norm_layernorm/output_0"], domain=MS, epsilon=eps)
    # Tied embeddings: the lm_head weight is the embedding matrix transposed (its own initializer, as the builder).
    g.node("MatMul", [x, g.init("lm_head.MatMul.weight", np.ascontiguousarray(w["embed"].T))], "/lm_head/MatMul",
           outputs=["logits"])
    return g.model(producer="onnxruntime-genai")
