"""Seeded random weights at the real sizes, shared by the fused and torch formats (so they are twins).
Matrices are stored [in, out] (the orientation MatMul uses)."""
import numpy as np


def _mat(rng, shape, std=0.02):
    return (rng.standard_normal(shape, dtype=np.float32) * np.float32(std))


def _norm(rng, n):
    # Not all ones, so a wrong norm weight shows up in the logits.
    return (1.0 + 0.1 * rng.standard_normal(n, dtype=np.float32)).astype(np.float32)


def text_weights(t, seed):
    rng = np.random.default_rng([seed, 1])
    H, I, D = t["hidden_size"], t["intermediate_size"], t["head_dim"]
    q, kv = t["num_attention_heads"] * D, t["num_key_value_heads"] * D
    w = {"embed": _mat(rng, (t["vocab_size"], H)), "final_norm": _norm(rng, H), "layers": []}
    for _ in range(t["num_hidden_layers"]):
        w["layers"].append(dict(
            in_norm=_norm(rng, H), q=_mat(rng, (H, q)), k=_mat(rng, (H, kv)), v=_mat(rng, (H, kv)),
            o=_mat(rng, (q, H)), post_norm=_norm(rng, H), gate=_mat(rng, (H, I)), up=_mat(rng, (H, I)),
            down=_mat(rng, (I, H))))
    return w


def vision_weights(v, text_hidden, scale, seed):
    rng = np.random.default_rng([seed, 2])
    D, I, P = v["hidden_size"], v["intermediate_size"], v["patch_size"]
    n = (v["image_size"] // P) ** 2
    w = {"patch_w": _mat(rng, (D, 3, P, P)), "patch_b": _mat(rng, (D,)), "pos": _mat(rng, (n, D)),
         "post_w": _norm(rng, D), "post_b": _mat(rng, (D,)), "proj": _mat(rng, (D * scale * scale, text_hidden)),
         "layers": []}
    for _ in range(v["num_hidden_layers"]):
        w["layers"].append(dict(
            ln1_w=_norm(rng, D), ln1_b=_mat(rng, (D,)), q=_mat(rng, (D, D)), qb=_mat(rng, (D,)),
            k=_mat(rng, (D, D)), kb=_mat(rng, (D,)), v=_mat(rng, (D, D)), vb=_mat(rng, (D,)),
            o=_mat(rng, (D, D)), ob=_mat(rng, (D,)), ln2_w=_norm(rng, D), ln2_b=_mat(rng, (D,)),
            fc1=_mat(rng, (D, I)), fc1b=_mat(rng, (I,)), fc2=_mat(rng, (I, D)), fc2b=_mat(rng, (D,))))
    return w
