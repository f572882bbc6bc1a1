"""Logits of a look-alike decoder (ONNX Runtime CPU) against PyTorch's own Llama with the same seeded weights.
Needs torch and transformers (the GPU machine has them; the generator itself does not).
Usage: python parity_torch.py --preset smolvlm-256m [--layers N] [--seed S] DIR [DIR...]  -> JSON on stdout"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402

import presets as P  # noqa: E402
import weights as W  # noqa: E402


def hf_model(t, w):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    cfg = LlamaConfig(hidden_size=t["hidden_size"], intermediate_size=t["intermediate_size"],
                      num_hidden_layers=t["num_hidden_layers"], num_attention_heads=t["num_attention_heads"],
                      num_key_value_heads=t["num_key_value_heads"], head_dim=t["head_dim"], vocab_size=t["vocab_size"],
                      rms_norm_eps=t["rms_norm_eps"], rope_theta=t["rope_theta"], max_position_embeddings=t["max_position_embeddings"],
                      tie_word_embeddings=True, attention_bias=False, mlp_bias=False, hidden_act="silu")
    cfg._attn_implementation = "eager"
    m = LlamaForCausalLM(cfg).eval()
    T = lambda a: torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
    with torch.no_grad():
        m.model.embed_tokens.weight.copy_(T(w["embed"]))
        m.model.norm.weight.copy_(T(w["final_norm"]))
        for layer, lw in zip(m.model.layers, w["layers"]):
            a = layer.self_attn
            for mod, key in ((a.q_proj, "q"), (a.k_proj, "k"), (a.v_proj, "v"), (a.o_proj, "o"),
                             (layer.mlp.gate_proj, "gate"), (layer.mlp.up_proj, "up"), (layer.mlp.down_proj, "down")):
                mod.weight.copy_(T(lw[key].T))
            layer.input_layernorm.weight.copy_(T(lw["in_norm"]))
            layer.post_attention_layernorm.weight.copy_(T(lw["post_norm"]))
        m.tie_weights()
    return m


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", required=True)
    ap.add_argument("--layers", type=int)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--prompt", type=int, default=256)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("dirs", nargs="+")
    a = ap.parse_args()
    import torch
    p = P.preset(a.preset, a.layers)
    t = p["text"]
    m = hf_model(t, W.text_weights(t, a.seed))
    rng = np.random.default_rng(123)
    S, H = a.prompt, t["hidden_size"]
    embeds = [rng.standard_normal((1, S, H), dtype=np.float32)] + [rng.standard_normal((1, 1, H), dtype=np.float32) for _ in range(a.steps)]
    ref, past = [], None
    with torch.no_grad():
        for i, e in enumerate(embeds):
            o = m(inputs_embeds=torch.from_numpy(e), past_key_values=past, use_cache=True)
            past = o.past_key_values
            ref.append(o.logits[0].float().numpy())
    out = {"preset": a.preset, "layers": t["num_hidden_layers"], "prompt_tokens": S, "steps": a.steps, "torch": torch.__version__, "results": []}
    so = ort.SessionOptions()
    so.log_severity_level = 3
    for d in a.dirs:
        sess = ort.InferenceSession(os.path.join(d, "onnx", "decoder_model_merged.onnx"), so, providers=["CPUExecutionProvider"])
        names = [i.name for i in sess.get_inputs()]
        L, Hkv, D = t["num_hidden_layers"], t["num_key_value_heads"], t["head_dim"]
        pastd = {f"past_key_values.{i}.{k}": np.zeros((1, Hkv, 0, D), np.float32) for i in range(L) for k in ("key", "value")}
        total, diffs = 0, []
        for i, e in enumerate(embeds):
            n = e.shape[1]
            feed = {"inputs_embeds": e, "attention_mask": np.ones((1, total + n), np.int64), **pastd}
            if "position_ids" in names:
                feed["position_ids"] = np.arange(total, total + n, dtype=np.int64)[None]
            outs = sess.run(None, feed)
            total += n
            diffs.append(float(np.abs(outs[0][0] - ref[i]).max()))
            pastd = {o.name.replace("present.", "past_key_values."): v for o, v in zip(sess.get_outputs()[1:], outs[1:])}
        out["results"].append({"dir": d, "max_abs_prefill": diffs[0], "max_abs_steps": diffs[1:],
                               "logit_absmax": float(np.abs(ref[0]).max())})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
