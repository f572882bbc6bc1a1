"""Rebuild the PyTorch Idefics3ForConditionalGeneration weights from a model folder in the ONNX layout.

The committed default model (models/default/) exists only as ONNX (vision_encoder / embed_tokens /
decoder_model_merged) written by train/export.py. Its initializers carry anonymous names (`onnx::MatMul_1513`,
constant folding renamed them), so the mapping back to the HF parameters follows the graph instead of names:

  vision_encoder.onnx   Conv (patch_embedding W, b) -> Gather (position_embedding, [num_patches, D]) ->
                        per layer: LayerNormalization (layer_norm1), MatMul+Add q, k, v, out_proj,
                        LayerNormalization (layer_norm2), MatMul+Add fc1, fc2 -> LayerNormalization (post_layernorm)
                        -> MatMul (connector.modality_projection.proj, no bias)
  embed_tokens.onnx     Gather (embed_tokens, [vocab, hidden])
  decoder_model_merged  per layer: Mul (input_layernorm), MatMul q, k, v, o, Mul (post_attention_layernorm),
                        MatMul gate (its output feeds the Sigmoid of SiLU), up, down -> Mul (norm) -> MatMul lm_head

F.linear was exported as MatMul against the folded transpose, so every MatMul initializer is W^T ([in, out]);
biases are the 1-D initializer of the Add that consumes the MatMul output. The export emits nodes in program
order (q before k before v ...), which fixes the order inside a layer; gate/up are told apart by the Sigmoid.
lm_head is tied to embed_tokens (checked: the decoder's [hidden, vocab] initializer equals the embedding^T).

Graphs are read with the `onnx` package (GPU machine) or, where it is missing, from a dump written by
train/onnx_dump.js (Node + the npm package onnx-proto): NAME.graph.json + NAME.bin next to each other.

Usage (GPU machine): python train/from_onnx.py --model models/default --out DIR [--verify-image PNG]
  writes DIR/pt (save_pretrained) and DIR/from_onnx_report.json; exit 0 when the rebuilt model's stock HF
  forward matches onnxruntime on the committed ONNX (rel < 1e-4, same greedy tokens), 3 when it does not.
"""
import argparse
import json
import os
import sys
from collections import OrderedDict, defaultdict

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

FILES = {"vision": "vision_encoder", "embed": "embed_tokens", "decoder": "decoder_model_merged"}


# ------------------------------------------------------------------------------------------- graph loading
def load_graph(path):
    """-> (nodes [(op, inputs, outputs)], inits {name: np.ndarray float32}) for an .onnx file (or its dump)."""
    base = path[:-5] if path.endswith(".onnx") else path
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        onnx = None
    if onnx is not None and os.path.exists(path):
        m = onnx.load(path)
        nodes = [(n.op_type, list(n.input), list(n.output)) for n in m.graph.node]
        inits = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
        return nodes, inits
    dump = base + ".graph.json"
    if not os.path.exists(dump):
        raise FileNotFoundError(f"no onnx package and no dump {dump} (write one with train/onnx_dump.js)")
    g = json.load(open(dump))
    raw = open(base + ".bin", "rb").read()
    nodes = [(n["op"], list(n["inputs"]), list(n["outputs"])) for n in g["nodes"]]
    inits = {}
    for t in g["inits"]:
        if t.get("skip"):
            continue
        a = np.frombuffer(raw, dtype="<f4", count=t["bytes"] // 4, offset=t["offset"])
        inits[t["name"]] = a.reshape(t["dims"]).copy()
    return nodes, inits


def load_model_dir(model_dir, dump_dir=None):
    out = {}
    for k, stem in FILES.items():
        p = os.path.join(model_dir, "onnx", stem + ".onnx")
        if dump_dir:
            p = os.path.join(dump_dir, stem)
        out[k] = load_graph(p)
    return out


# ------------------------------------------------------------------------------------------- graph tracing
def _consumers(nodes):
    c = defaultdict(list)
    for i, (_, ins, _) in enumerate(nodes):
        for x in ins:
            c[x].append(i)
    return c


def _float_init(inits, name, ndim=None):
    a = inits.get(name)
    if a is None or a.dtype.kind != "f":
        return None
    if ndim is not None and a.ndim != ndim:
        return None
    return a


def linears(nodes, inits):
    """MatMul nodes with a 2-D float initializer operand, in node order: [dict(node, w (HF layout), b, out)]."""
    cons = _consumers(nodes)
    res = []
    for i, (op, ins, outs) in enumerate(nodes):
        if op != "MatMul" or len(ins) != 2:
            continue
        w = _float_init(inits, ins[1], 2)
        if w is None:
            continue
        b = None
        for j in cons[outs[0]]:
            op2, ins2, _ = nodes[j]
            if op2 == "Add":
                for x in ins2:
                    if x != outs[0] and _float_init(inits, x, 1) is not None:
                        b = inits[x]
        follow = {nodes[j][0] for j in cons[outs[0]]}
        res.append({"node": i, "w": np.ascontiguousarray(w.T), "b": b, "out": outs[0], "follow": follow,
                    "name": ins[1]})
    return res


def map_weights(graphs, cfg):
    """graphs: {"vision"|"embed"|"decoder": (nodes, inits)}; cfg: dict with vision/text sizes.
    Returns OrderedDict HF-state-dict-name -> np.float32 array (lm_head left out: tied to the embedding)."""
    sd = OrderedDict()
    Lv, Lt = cfg["vision_layers"], cfg["text_layers"]
    Dv, Dt = cfg["vision_hidden"], cfg["text_hidden"]
    # ---------------- vision
    nodes, inits = graphs["vision"]
    pre = "model.vision_model."
    convs = [n for n in nodes if n[0] == "Conv"]
    assert len(convs) == 1, f"{len(convs)} Conv nodes"
    sd[pre + "embeddings.patch_embedding.weight"] = inits[convs[0][1][1]]
    sd[pre + "embeddings.patch_embedding.bias"] = inits[convs[0][1][2]]
    pos = [n for n in nodes if n[0] == "Gather" and _float_init(inits, n[1][0], 2) is not None]
    assert len(pos) == 1, f"{len(pos)} position-embedding Gathers"
    sd[pre + "embeddings.position_embedding.weight"] = inits[pos[0][1][0]]
    lns = [n for n in nodes if n[0] == "LayerNormalization"]
    assert len(lns) == 2 * Lv + 1, f"{len(lns)} LayerNormalization nodes, expected {2 * Lv + 1}"
    lin = linears(nodes, inits)
    assert len(lin) == 6 * Lv + 1, f"{len(lin)} vision MatMuls, expected {6 * Lv + 1}"
    for i in range(Lv):
        p = f"{pre}encoder.layers.{i}."
        for k, ln in zip(("layer_norm1", "layer_norm2"), lns[2 * i:2 * i + 2]):
            sd[p + k + ".weight"] = inits[ln[1][1]]
            sd[p + k + ".bias"] = inits[ln[1][2]]
        for k, l in zip(("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj",
                         "mlp.fc1", "mlp.fc2"), lin[6 * i:6 * i + 6]):
            assert l["b"] is not None, f"no bias for {p + k}"
            sd[p + k + ".weight"] = l["w"]
            sd[p + k + ".bias"] = l["b"]
    sd[pre + "post_layernorm.weight"] = inits[lns[-1][1][1]]
    sd[pre + "post_layernorm.bias"] = inits[lns[-1][1][2]]
    assert lin[-1]["b"] is None, "connector projection has no bias in Idefics3"
    sd["model.connector.modality_projection.proj.weight"] = lin[-1]["w"]
    # ---------------- embedding
    nodes, inits = graphs["embed"]
    g = [n for n in nodes if n[0] == "Gather" and _float_init(inits, n[1][0], 2) is not None]
    assert len(g) == 1
    emb = inits[g[0][1][0]]
    sd["model.text_model.embed_tokens.weight"] = emb
    # ---------------- decoder
    nodes, inits = graphs["decoder"]
    pre = "model.text_model."
    norms = []
    for op, ins, _ in nodes:
        if op == "Mul":
            for x in ins:
                a = _float_init(inits, x, 1)
                if a is not None and a.shape == (Dt,):
                    norms.append(a)
    assert len(norms) == 2 * Lt + 1, f"{len(norms)} RMSNorm Muls, expected {2 * Lt + 1}"
    lin = linears(nodes, inits)
    assert len(lin) == 7 * Lt + 1, f"{len(lin)} decoder MatMuls, expected {7 * Lt + 1}"
    for i in range(Lt):
        p = f"{pre}layers.{i}."
        sd[p + "input_layernorm.weight"] = norms[2 * i]
        sd[p + "post_attention_layernorm.weight"] = norms[2 * i + 1]
        q, k, v, o, g1, g2, down = lin[7 * i:7 * i + 7]
        if "Sigmoid" not in g1["follow"] and "Sigmoid" in g2["follow"]:
            g1, g2 = g2, g1
        assert "Sigmoid" in g1["follow"], f"layer {i}: no gate projection feeding a Sigmoid"
        for k_, l in zip(("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                          "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"), (q, k, v, o, g1, g2, down)):
            assert l["b"] is None, f"unexpected bias for {p + k_}"
            sd[p + k_ + ".weight"] = l["w"]
    sd[pre + "norm.weight"] = norms[-1]
    head = lin[-1]["w"]  # [vocab, hidden]
    tied_err = float(np.abs(head - emb).max())
    assert tied_err == 0.0, f"lm_head is not the tied embedding (max diff {tied_err})"
    return OrderedDict((k, np.ascontiguousarray(v, dtype=np.float32)) for k, v in sd.items())


def cfg_from_json(config):
    vc, tc = config["vision_config"], config["text_config"]
    return {"vision_layers": vc["num_hidden_layers"], "text_layers": tc["num_hidden_layers"],
            "vision_hidden": vc["hidden_size"], "text_hidden": tc["hidden_size"]}


# ------------------------------------------------------------------------------------------- torch side
def rebuild(model_dir, preset="default", impl="eager", dump_dir=None):
    """-> (Idefics3ForConditionalGeneration float32 on CPU, info dict). The model is built from train/model.py's
    preset with the folder's tokenizer and checked against the folder's config.json."""
    import torch
    from tokenizers import Tokenizer
    import model as M
    config = json.load(open(os.path.join(model_dir, "config.json")))
    tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    m = M.build_model(preset, tok, impl=impl).float().eval()
    mine = m.config.to_dict()
    diffs = {}
    for sect in ("vision_config", "text_config"):
        for k, v in config[sect].items():
            if k in ("dtype", "transformers_version", "_name_or_path", "architectures"):
                continue
            if mine[sect].get(k) != v:
                diffs[f"{sect}.{k}"] = [mine[sect].get(k), v]
    for k in ("image_token_id", "scale_factor", "vocab_size"):
        if k in config and mine.get(k, config[k]) != config[k]:
            diffs[k] = [mine.get(k), config[k]]
    sd = map_weights(load_model_dir(model_dir, dump_dir), cfg_from_json(config))
    model_sd = m.state_dict()
    norm = {k[len("model."):] if k.startswith("model.") else k: k for k in model_sd}
    done, problems = set(), []
    with torch.no_grad():
        for k, v in sd.items():
            key = k if k in model_sd else norm.get(k[len("model."):] if k.startswith("model.") else k)
            if key is None:
                problems.append(f"no parameter {k}")
                continue
            if tuple(model_sd[key].shape) != v.shape:
                problems.append(f"{key}: model {tuple(model_sd[key].shape)} onnx {v.shape}")
                continue
            model_sd[key].copy_(torch.from_numpy(v))
            done.add(key)
    # every parameter (lm_head is tied: same tensor as the embedding) must have been written
    missing = []
    for n, p in m.named_parameters():
        if n not in done and not any(p.data_ptr() == model_sd[d].data_ptr() for d in done):
            missing.append(n)
    if not m.config.tie_word_embeddings or m.lm_head.weight.data_ptr() != m.model.text_model.embed_tokens.weight.data_ptr():
        m.lm_head.weight.data.copy_(m.model.text_model.embed_tokens.weight.data)
    info = {"mapped_tensors": len(sd), "params": sum(p.numel() for p in m.parameters()),
            "config_differences": diffs, "problems": problems, "unwritten_parameters": missing}
    if problems or missing:
        raise RuntimeError(f"ONNX -> PyTorch mapping incomplete: {info}")
    return m, info


def verify_against_onnx(m, model_dir, image_path=None, question="What is the window title?", preset="default"):
    """Stock HF forward of m vs onnxruntime on model_dir's ONNX (export.verify: vision features, prefill logits,
    3 decode steps, greedy tokens; rel < 1e-4). Returns the report (report["ok"])."""
    import export as X
    from PIL import Image
    if image_path:
        img = Image.open(image_path).convert("RGB")
    else:
        import data
        img = data.make_sample("verify", 0, "ui")["image"]
    try:
        rep = X.verify(m, model_dir, preset, model_dir, img, question)
    except SystemExit as e:  # export.verify raises SystemExit with the report on mismatch
        rep = {"ok": False, "error": str(e)[:2000]}
    return rep


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="models/default")
    ap.add_argument("--out", required=True)
    ap.add_argument("--preset", default="default")
    ap.add_argument("--verify-image", default=None)
    ap.add_argument("--verify-question", default="What is the window title?")
    ap.add_argument("--dump-dir", default=None, help="read graph dumps (onnx_dump.js) instead of .onnx files")
    ap.add_argument("--map-only", action="store_true", help="numpy only: print the mapping, no torch")
    a = ap.parse_args()
    if a.map_only:
        config = json.load(open(os.path.join(a.model, "config.json")))
        sd = map_weights(load_model_dir(a.model, a.dump_dir), cfg_from_json(config))
        for k, v in sd.items():
            print(k, v.shape)
        print(len(sd), "tensors", sum(v.size for v in sd.values()), "values (lm_head tied)")
        return
    os.makedirs(a.out, exist_ok=True)
    m, info = rebuild(a.model, a.preset, dump_dir=a.dump_dir)
    rep = verify_against_onnx(m, a.model, a.verify_image, a.verify_question, a.preset)
    info["verify"] = rep
    json.dump(info, open(os.path.join(a.out, "from_onnx_report.json"), "w"), indent=1, default=str)
    m.save_pretrained(os.path.join(a.out, "pt"))
    print("FROM_ONNX", "verified" if rep.get("ok") else "NOT VERIFIED", json.dumps(info, default=str)[:3000])
    sys.exit(0 if rep.get("ok") else 3)


if __name__ == "__main__":
    main()
