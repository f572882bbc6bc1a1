"""vision_encoder and embed_tokens in the published I/O (docs/smolvlm-onnx-format.md):
pixel_values float32 [batch_size, num_images, 3, T, T], pixel_attention_mask bool [batch_size, num_images, T, T]
-> image_features [num_images, tokens, text_hidden]; input_ids int64 -> inputs_embeds float32.
The SigLIP tower is unfused (as an optimum/torch export is). The patch mask only matters for padded tiles, which
a single image never has, so positions are 0..n-1 and pixel_attention_mask is accepted but not read."""
import numpy as np

from graph import BOOL, FLOAT, INT64, Graph


def build_vision(v, text_hidden, scale, w):
    g = Graph("main_graph")
    T, P, D, nh = v["image_size"], v["patch_size"], v["hidden_size"], v["num_attention_heads"]
    hd, n, eps = D // nh, T // P, v["layer_norm_eps"]
    g.input("pixel_values", FLOAT, ["batch_size", "num_images", 3, T, T])
    g.input("pixel_attention_mask", BOOL, ["batch_size", "num_images", T, T])
    g.output("image_features", FLOAT, ["num_images", (n * n) // (scale * scale), text_hidden])
    c = lambda vals: g.const(np.int64, vals)  # noqa: E731
    x = g.node("Reshape", ["pixel_values", c([-1, 3, T, T])], "/vision/flatten")
    x = g.node("Conv", [x, g.init("patch_embedding.weight", w["patch_w"]), g.init("patch_embedding.bias", w["patch_b"])],
               "/vision/patch_embedding/Conv", kernel_shape=[P, P], strides=[P, P])
    x = g.node("Transpose", [g.node("Reshape", [x, c([0, D, n * n])], "/vision/patches")], "/vision/patchesT", perm=[0, 2, 1])
    h = g.node("Add", [x, g.init("position_embedding.weight", w["pos"])], "/vision/pos")

    def ln(x, wt, b, name):
        return g.node("LayerNormalization", [x, g.init(f"{name}.weight", wt), g.init(f"{name}.bias", b)], name, axis=-1, epsilon=eps)

    def lin(x, wt, b, name):
        y = g.node("MatMul", [x, g.init(f"{name}.weight", wt)], f"{name}/MatMul")
        return g.node("Add", [y, g.init(f"{name}.bias", b)], f"{name}/Add") if b is not None else y

    def split_heads(x, name):
        return g.node("Transpose", [g.node("Reshape", [x, c([0, 0, nh, hd])], f"{name}/Reshape")], f"{name}/T", perm=[0, 2, 1, 3])

    for i, lw in enumerate(w["layers"]):
        p = f"/vision/encoder/layers.{i}"
        x = ln(h, lw["ln1_w"], lw["ln1_b"], f"{p}/layer_norm1")
        q = split_heads(lin(x, lw["q"], lw["qb"], f"{p}/q_proj"), f"{p}/q")
        k = split_heads(lin(x, lw["k"], lw["kb"], f"{p}/k_proj"), f"{p}/k")
        vv = split_heads(lin(x, lw["v"], lw["vb"], f"{p}/v_proj"), f"{p}/v")
        s = g.node("MatMul", [q, g.node("Transpose", [k], f"{p}/kT", perm=[0, 1, 3, 2])], f"{p}/scores")
        s = g.node("Mul", [s, g.init(f"{p}.scale", np.array(hd ** -0.5, np.float32))], f"{p}/scaled")
        o = g.node("MatMul", [g.node("Softmax", [s], f"{p}/Softmax", axis=-1), vv], f"{p}/attn")
        o = g.node("Reshape", [g.node("Transpose", [o], f"{p}/attnT", perm=[0, 2, 1, 3]), c([0, 0, D])], f"{p}/merge")
        h = g.node("Add", [h, lin(o, lw["o"], lw["ob"], f"{p}/out_proj")], f"{p}/res1")
        x = ln(h, lw["ln2_w"], lw["ln2_b"], f"{p}/layer_norm2")
        x = g.node("Gelu", [lin(x, lw["fc1"], lw["fc1b"], f"{p}/fc1")], f"{p}/gelu", approximate="tanh")
        h = g.node("Add", [h, lin(x, lw["fc2"], lw["fc2b"], f"{p}/fc2")], f"{p}/res2")
    h = ln(h, w["post_w"], w["post_b"], "/vision/post_layernorm")
    # Idefics3 pixel shuffle (modeling_idefics3 Idefics3Connector.pixel_shuffle), then the modality projection.
    s = scale
    x = g.node("Reshape", [h, c([-1, n, n // s, D * s])], "/connector/r1")
    x = g.node("Transpose", [x], "/connector/t1", perm=[0, 2, 1, 3])
    x = g.node("Reshape", [x, c([-1, n // s, n // s, D * s * s])], "/connector/r2")
    x = g.node("Transpose", [x], "/connector/t2", perm=[0, 2, 1, 3])
    x = g.node("Reshape", [x, c([-1, (n * n) // (s * s), D * s * s])], "/connector/r3")
    g.node("MatMul", [x, g.init("connector.modality_projection.proj.weight", w["proj"])], "/connector/proj", outputs=["image_features"])
    return g.model(opsets=(("", 21),), producer="pytorch")


def build_embed(embed):
    g = Graph("main_graph")
    g.input("input_ids", INT64, ["batch_size", "sequence_length"])
    g.output("inputs_embeds", FLOAT, ["batch_size", "sequence_length", embed.shape[1]])
    g.node("Gather", [g.init("embed_tokens.weight", embed), "input_ids"], "/embed_tokens/Gather", outputs=["inputs_embeds"], axis=0)
    return g.model(opsets=(("", 21),), producer="pytorch")
