"""Export an Idefics3 model to the SmolVLM ONNX layout and verify onnxruntime (CPU) against PyTorch.

onnx/vision_encoder.onnx   pixel_values [batch_size, num_images, 3, T, T], pixel_attention_mask bool [batch_size,
                           num_images, T, T] -> image_features [num_images, tokens, text_hidden] (connector included)
onnx/embed_tokens.onnx     input_ids int64 [batch_size, sequence_length] -> inputs_embeds
onnx/decoder_model_merged.onnx  inputs_embeds, attention_mask int64 [batch_size, total_sequence_length],
                           position_ids int64 [batch_size, sequence_length], past_key_values.{i}.key/value
                           [batch_size, kv_heads, past_sequence_length, head_dim] -> logits, present.{i}.key/value
The wrappers below re-express the HF modules with plain tensor ops (no unfold / bucketize / data-dependent
indexing, one Softmax per decoder layer) and use the HF weights; verification compares against the stock HF
forward. *_fp16 variants: float16 weights and float16 for every float input/output (incl. the KV cache);
arithmetic inside is float32 (weights are Cast on use) so every execution provider can run them.
Usage: python train/export.py --pt DIR --tok DIR --out DIR --preset default [--fp16]
"""
import argparse
import json
import os
import shutil
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model as M  # noqa: E402
import tokenizer as T  # noqa: E402


def W(t):
    return None if t is None else t.to(torch.float32)


def lin(x, mod):
    return F.linear(x, W(mod.weight), W(getattr(mod, "bias", None)))


class VisionExport(nn.Module):
    def __init__(self, m, io_dtype=torch.float32):
        super().__init__()
        self.vm = m.model.vision_model
        self.conn = m.model.connector
        vc = m.config.vision_config
        self.p = vc.patch_size
        self.n = vc.image_size // vc.patch_size
        self.D = vc.hidden_size
        self.heads = vc.num_attention_heads
        self.hd = self.D // self.heads
        self.eps = vc.layer_norm_eps
        self.s = m.config.scale_factor
        self.io = io_dtype
        self.register_buffer("boundaries", torch.arange(1 / self.n, 1.0, 1 / self.n), persistent=False)

    def forward(self, pixel_values, pixel_attention_mask):
        x = pixel_values.flatten(0, 1).to(torch.float32)
        m = pixel_attention_mask.flatten(0, 1)
        pmf = F.max_pool2d(m.unsqueeze(1).to(torch.float32), self.p, self.p).squeeze(1)  # [T, nh, nw] 0/1
        pm = pmf > 0
        emb_mod = self.vm.embeddings
        e = F.conv2d(x, W(emb_mod.patch_embedding.weight), W(emb_mod.patch_embedding.bias), stride=self.p)
        e = e.flatten(2).transpose(1, 2)
        nb_h = pmf[:, :, 0].sum(1)
        nb_w = pmf[:, 0, :].sum(1)
        hi = torch.cumsum(torch.ones_like(pmf[0, :, 0]), 0) - 1
        wi = torch.cumsum(torch.ones_like(pmf[0, 0, :]), 0) - 1
        fh = torch.clamp(hi[None, :] * (1.0 / nb_h)[:, None], max=1 - 1e-6)
        fw = torch.clamp(wi[None, :] * (1.0 / nb_w)[:, None], max=1 - 1e-6)
        bh = (fh.unsqueeze(-1) >= self.boundaries).to(torch.int64).sum(-1)
        bw = (fw.unsqueeze(-1) >= self.boundaries).to(torch.int64).sum(-1)
        pos = (bh[:, :, None] * self.n + bw[:, None, :]).flatten(1)
        flat = pm.flatten(1)
        pos = torch.where(flat, pos, torch.zeros_like(pos))
        h = e + F.embedding(pos, W(emb_mod.position_embedding.weight))
        mask = ((1.0 - pmf.flatten(1)) * torch.finfo(torch.float32).min)[:, None, None, :]
        for layer in self.vm.encoder.layers:
            r = h
            x = F.layer_norm(h, (self.D,), W(layer.layer_norm1.weight), W(layer.layer_norm1.bias), self.eps)
            a = layer.self_attn
            q = lin(x, a.q_proj).unflatten(-1, (self.heads, self.hd)).transpose(1, 2)
            k = lin(x, a.k_proj).unflatten(-1, (self.heads, self.hd)).transpose(1, 2)
            v = lin(x, a.v_proj).unflatten(-1, (self.heads, self.hd)).transpose(1, 2)
            sc = torch.matmul(q, k.transpose(-1, -2)) * (self.hd ** -0.5) + mask
            pr = torch.softmax(sc, dim=-1)
            o = torch.matmul(pr, v).transpose(1, 2).flatten(2)
            h = r + lin(o, a.out_proj)
            r = h
            x = F.layer_norm(h, (self.D,), W(layer.layer_norm2.weight), W(layer.layer_norm2.bias), self.eps)
            x = lin(F.gelu(lin(x, layer.mlp.fc1), approximate="tanh"), layer.mlp.fc2)
            h = r + x
        h = F.layer_norm(h, (self.D,), W(self.vm.post_layernorm.weight), W(self.vm.post_layernorm.bias), self.eps)
        n, s, D = self.n, self.s, self.D
        x = h.reshape(-1, n, n, D)
        x = x.reshape(-1, n, n // s, D * s)
        x = x.permute(0, 2, 1, 3)
        x = x.reshape(-1, n // s, n // s, D * s * s)
        x = x.permute(0, 2, 1, 3)
        x = x.reshape(-1, (n * n) // (s * s), D * s * s)
        x = lin(x, self.conn.modality_projection.proj)
        return x.to(self.io)


class EmbedExport(nn.Module):
    def __init__(self, m, io_dtype=torch.float32):
        super().__init__()
        self.emb = m.model.text_model.get_input_embeddings()
        self.io = io_dtype

    def forward(self, input_ids):
        w = self.emb.weight
        return F.embedding(input_ids, w).to(self.io)


def rms(x, mod):
    var = x.pow(2).mean(-1, keepdim=True)
    return W(mod.weight) * (x * torch.rsqrt(var + mod.variance_epsilon))


def rot_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], dim=-1)


class DecoderExport(nn.Module):
    def __init__(self, m, io_dtype=torch.float32):
        super().__init__()
        tc = m.config.text_config
        self.tm = m.model.text_model
        self.lm_head = m.lm_head
        self.L = tc.num_hidden_layers
        self.Hq = tc.num_attention_heads
        self.Hkv = tc.num_key_value_heads
        self.hd = getattr(tc, "head_dim", None) or tc.hidden_size // self.Hq
        self.io = io_dtype
        re = self.tm.rotary_emb
        inv = re.inv_freq.detach().clone()
        if inv.dtype != torch.float32:  # e.g. after model.half(): recompute the default RoPE frequencies
            rp = getattr(tc, "rope_parameters", None) or {}
            theta = float(rp.get("rope_theta", getattr(tc, "rope_theta", 10000.0)))
            inv = 1.0 / (theta ** (torch.arange(0, self.hd, 2, dtype=torch.int64).to(torch.float32) / self.hd))
        self.register_buffer("inv_freq", inv.to(torch.float32), persistent=False)
        self.rope_scale = float(getattr(re, "attention_scaling", 1.0))

    def forward(self, inputs_embeds, attention_mask, position_ids, *past):
        h = inputs_embeds.to(torch.float32)
        freqs = position_ids.to(torch.float32)[:, :, None] * self.inv_freq[None, None, :]
        e = torch.cat([freqs, freqs], dim=-1)
        cos = (e.cos() * self.rope_scale)[:, None]
        sin = (e.sin() * self.rope_scale)[:, None]
        ones_k = torch.ones_like(attention_mask[0])
        ones_q = torch.ones_like(position_ids[0])
        kidx = torch.cumsum(ones_k, 0) - 1
        qidx = torch.cumsum(ones_q, 0) - 1 + (ones_k.sum() - ones_q.sum())
        allowed = (kidx[None, :] <= qidx[:, None])[None, None] & (attention_mask[:, None, None, :] != 0)
        rep = self.Hq // self.Hkv
        presents = []
        for i, layer in enumerate(self.tm.layers):
            a = layer.self_attn
            r = h
            x = rms(h, layer.input_layernorm)
            q = lin(x, a.q_proj).unflatten(-1, (self.Hq, self.hd)).transpose(1, 2)
            k = lin(x, a.k_proj).unflatten(-1, (self.Hkv, self.hd)).transpose(1, 2)
            v = lin(x, a.v_proj).unflatten(-1, (self.Hkv, self.hd)).transpose(1, 2)
            q = q * cos + rot_half(q) * sin
            k = k * cos + rot_half(k) * sin
            k = torch.cat([past[2 * i].to(torch.float32), k], dim=2)
            v = torch.cat([past[2 * i + 1].to(torch.float32), v], dim=2)
            presents += [k.to(self.io), v.to(self.io)]
            kk = k[:, :, None].expand(-1, -1, rep, -1, -1).flatten(1, 2)
            vv = v[:, :, None].expand(-1, -1, rep, -1, -1).flatten(1, 2)
            sc = torch.matmul(q, kk.transpose(-1, -2)) * (self.hd ** -0.5)
            sc = sc.masked_fill(~allowed, torch.finfo(torch.float32).min)
            pr = torch.softmax(sc, dim=-1)
            o = torch.matmul(pr, vv).transpose(1, 2).flatten(2)
            h = r + lin(o, a.o_proj)
            r = h
            x = rms(h, layer.post_attention_layernorm)
            x = lin(F.silu(lin(x, layer.mlp.gate_proj)) * lin(x, layer.mlp.up_proj), layer.mlp.down_proj)
            h = r + x
        h = rms(h, self.tm.norm)
        logits = lin(h, self.lm_head)
        return (logits.to(self.io), *presents)


def export_onnx(m, out_dir, fp16=False):
    """m: Idefics3ForConditionalGeneration (fp32 or half weights, on CPU)."""
    os.makedirs(os.path.join(out_dir, "onnx"), exist_ok=True)
    io = torch.float16 if fp16 else torch.float32
    suf = "_fp16" if fp16 else ""
    cfg = m.config
    T_ = cfg.vision_config.image_size
    tc = cfg.text_config
    hd = getattr(tc, "head_dim", None) or tc.hidden_size // tc.num_attention_heads
    common = dict(opset_version=17, do_constant_folding=not fp16, dynamo=False)
    paths = {}
    # vision
    v = VisionExport(m, io).eval()
    pv = torch.randn(1, 2, 3, T_, T_).to(io)
    pm = torch.ones(1, 2, T_, T_, dtype=torch.bool)
    p = os.path.join(out_dir, "onnx", f"vision_encoder{suf}.onnx")
    torch.onnx.export(v, (pv, pm), p, input_names=["pixel_values", "pixel_attention_mask"],
                      output_names=["image_features"],
                      dynamic_axes={"pixel_values": {0: "batch_size", 1: "num_images"},
                                    "pixel_attention_mask": {0: "batch_size", 1: "num_images"},
                                    "image_features": {0: "num_images"}}, **common)
    paths["vision"] = p
    # embed
    e = EmbedExport(m, io).eval()
    p = os.path.join(out_dir, "onnx", f"embed_tokens{suf}.onnx")
    torch.onnx.export(e, (torch.tensor([[1, 2, 3]], dtype=torch.long),), p, input_names=["input_ids"],
                      output_names=["inputs_embeds"],
                      dynamic_axes={"input_ids": {0: "batch_size", 1: "sequence_length"},
                                    "inputs_embeds": {0: "batch_size", 1: "sequence_length"}}, **common)
    paths["embed"] = p
    # decoder
    d = DecoderExport(m, io).eval()
    B, S, P = 1, 3, 5
    args = [torch.randn(B, S, tc.hidden_size).to(io), torch.ones(B, P + S, dtype=torch.long),
            torch.arange(P, P + S).unsqueeze(0)]
    in_names = ["inputs_embeds", "attention_mask", "position_ids"]
    out_names = ["logits"]
    dyn = {"inputs_embeds": {0: "batch_size", 1: "sequence_length"},
           "attention_mask": {0: "batch_size", 1: "total_sequence_length"},
           "position_ids": {0: "batch_size", 1: "sequence_length"},
           "logits": {0: "batch_size", 1: "sequence_length"}}
    for i in range(tc.num_hidden_layers):
        for kv in ("key", "value"):
            args.append(torch.randn(B, tc.num_key_value_heads, P, hd).to(io))
            n = f"past_key_values.{i}.{kv}"
            in_names.append(n)
            dyn[n] = {0: "batch_size", 2: "past_sequence_length"}
            o = f"present.{i}.{kv}"
            out_names.append(o)
            dyn[o] = {0: "batch_size", 2: "total_sequence_length"}
    p = os.path.join(out_dir, "onnx", f"decoder_model_merged{suf}.onnx")
    torch.onnx.export(d, tuple(args), p, input_names=in_names, output_names=out_names, dynamic_axes=dyn, **common)
    paths["decoder"] = p
    return paths


def describe_onnx(path):
    import onnx
    mdl = onnx.load(path, load_external_data=False)
    def fmt(vi):
        t = vi.type.tensor_type
        dims = [d.dim_param if d.dim_param else d.dim_value for d in t.shape.dim]
        return {"name": vi.name, "dtype": onnx.TensorProto.DataType.Name(t.elem_type).lower(), "shape": dims}
    ops = {}
    for n in mdl.graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    return {"file": os.path.basename(path), "bytes": os.path.getsize(path),
            "inputs": [fmt(i) for i in mdl.graph.input], "outputs": [fmt(o) for o in mdl.graph.output],
            "softmax_nodes": ops.get("Softmax", 0), "opset": [o.version for o in mdl.opset_import]}


def write_jsons(m, out_dir, preset, tok_dir):
    cfg_path = os.path.join(out_dir, "config.json")
    m.config.architectures = ["Idefics3ForConditionalGeneration"]
    m.config.save_pretrained(out_dir)
    c = json.load(open(cfg_path))
    c["image_token_id"] = m.config.image_token_id
    c["model_type"] = "idefics3"
    c["scale_factor"] = m.config.scale_factor
    c.setdefault("vocab_size", m.config.text_config.vocab_size)
    json.dump(c, open(cfg_path, "w"), indent=2)
    tok = json.load(open(os.path.join(tok_dir, "tokenizer_config.json")))
    ids = json.load(open(os.path.join(tok_dir, "added_tokens.json")))
    gen = {"bos_token_id": ids["<|im_start|>"], "eos_token_id": [ids["<end_of_utterance>"], ids["<|im_end|>"]],
           "pad_token_id": ids["<|im_end|>"], "do_sample": False, "max_new_tokens": 256}
    json.dump(gen, open(os.path.join(out_dir, "generation_config.json"), "w"), indent=2)
    ip = M.build_image_processor(preset)
    pc = json.loads(ip.to_json_string())
    pc["processor_class"] = "Idefics3Processor"
    pc.setdefault("image_processor_type", "Idefics3ImageProcessor")
    json.dump(pc, open(os.path.join(out_dir, "preprocessor_config.json"), "w"), indent=2)
    json.dump({"image_seq_len": M.image_seq_len(preset), "processor_class": "Idefics3Processor"},
              open(os.path.join(out_dir, "processor_config.json"), "w"), indent=2)
    for f in T.TOKENIZER_FILES:
        shutil.copy(os.path.join(tok_dir, f), os.path.join(out_dir, f))
    # also keep what the processor itself saves, for reference
    try:
        proc = M.build_processor(preset, tok_dir)
        tmp = os.path.join(out_dir, "..", os.path.basename(out_dir.rstrip("/")) + "_processor_saved")
        proc.save_pretrained(tmp)
        print("processor.save_pretrained wrote:", sorted(os.listdir(tmp)))
        for f in sorted(os.listdir(tmp)):
            if f.endswith(".json") and "token" not in f:
                print("  ", f, open(os.path.join(tmp, f)).read()[:1500])
        shutil.rmtree(tmp, ignore_errors=True)
    except Exception as ex:
        print("processor.save_pretrained failed:", repr(ex))


# ------------------------------------------------------------------------------------------- verification
def hf_image_features(m, pv, pam):
    r = m.model.get_image_features(pixel_values=pv, pixel_attention_mask=pam)
    if isinstance(r, torch.Tensor):
        return r
    if hasattr(r, "pooler_output") and r.pooler_output is not None:
        return r.pooler_output
    return r[0] if isinstance(r, (tuple, list)) else r


def ort_sessions(out_dir, suf=""):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.log_severity_level = 3
    mk = lambda n: ort.InferenceSession(os.path.join(out_dir, "onnx", f"{n}{suf}.onnx"), so,
                                        providers=["CPUExecutionProvider"])
    return mk("vision_encoder"), mk("embed_tokens"), mk("decoder_model_merged")


def ort_generate(sess, cfg, input_ids, pixel_values, pixel_attention_mask, n_new, fp16=False, stop_ids=None):
    """Greedy generation through the three ONNX sessions. Returns dict(tokens, logits list (np float32))."""
    vis, emb, dec = sess
    ft = np.float16 if fp16 else np.float32
    tc = cfg.text_config
    hd = getattr(tc, "head_dim", None) or tc.hidden_size // tc.num_attention_heads
    feats = vis.run(None, {"pixel_values": pixel_values.astype(ft), "pixel_attention_mask": pixel_attention_mask})[0]
    e = emb.run(None, {"input_ids": input_ids})[0]
    mask = input_ids[0] == cfg.image_token_id
    e[0, mask] = feats.reshape(-1, feats.shape[-1]).astype(e.dtype)
    past = {}
    for i in range(tc.num_hidden_layers):
        for kv in ("key", "value"):
            past[f"past_key_values.{i}.{kv}"] = np.zeros((1, tc.num_key_value_heads, 0, hd), ft)
    L = input_ids.shape[1]
    toks, logits_list = [], []
    inp = {"inputs_embeds": e, "attention_mask": np.ones((1, L), np.int64),
           "position_ids": np.arange(L, dtype=np.int64)[None]}
    total = L
    all_prefill = None
    for step in range(n_new):
        outs = dec.run(None, {**inp, **past})
        lg = outs[0].astype(np.float32)
        if all_prefill is None:
            all_prefill = lg[0]
        logits_list.append(lg[0, -1])
        nxt = int(lg[0, -1].argmax())
        toks.append(nxt)
        names = [o.name for o in dec.get_outputs()]
        for nme, val in zip(names[1:], outs[1:]):
            past[nme.replace("present.", "past_key_values.")] = val
        ne = emb.run(None, {"input_ids": np.array([[nxt]], np.int64)})[0]
        total += 1
        inp = {"inputs_embeds": ne, "attention_mask": np.ones((1, total), np.int64),
               "position_ids": np.array([[total - 1]], np.int64)}
    return {"tokens": toks, "last_logits": logits_list, "prefill_logits": all_prefill, "image_features": feats}


def err(a, b):
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    d = np.abs(a - b).max()
    return {"max_abs": float(d), "rel": float(d / max(np.abs(b).max(), 1e-12))}


@torch.no_grad()
def hf_reference(m, proc, img, question, n_steps, preset):
    """Stock HF forward. input_ids come from the Idefics3Processor; pixel_values from the PIL LANCZOS path
    (model.preprocess_uint8: the classic PIL Idefics3ImageProcessor steps, also used in training), because
    transformers 5.17's default Idefics3ImageProcessor is torchvision-based and falls back to BICUBIC."""
    prompt = "<|im_start|>User:<image>" + question + "<end_of_utterance>\nAssistant:"
    inputs = proc(text=[prompt], images=[[img]], return_tensors="pt")
    ids = inputs["input_ids"]
    tiles, _, _ = M.preprocess_uint8(img, preset)
    pv = M.normalize(tiles)[None]
    pam = torch.ones(pv.shape[0], pv.shape[1], pv.shape[3], pv.shape[4], dtype=torch.bool)
    ppv = inputs["pixel_values"].float()
    proc_diff = float((ppv - pv).abs().max()) if ppv.shape == pv.shape else f"shape {tuple(ppv.shape)}"
    feats = hf_image_features(m, pv, pam)
    out = m(input_ids=ids, attention_mask=torch.ones_like(ids), pixel_values=pv, pixel_attention_mask=pam,
            use_cache=True)
    logits = [out.logits[0, -1].float().numpy()]
    prefill = out.logits[0].float().numpy()
    past = out.past_key_values
    toks = []
    nxt = int(out.logits[0, -1].argmax())
    am = torch.ones_like(ids)
    for s in range(n_steps):
        toks.append(nxt)
        am = torch.cat([am, torch.ones(1, 1, dtype=am.dtype)], 1)
        o = m(input_ids=torch.tensor([[nxt]]), attention_mask=am, past_key_values=past, use_cache=True)
        past = o.past_key_values
        logits.append(o.logits[0, -1].float().numpy())
        nxt = int(o.logits[0, -1].argmax())
    toks.append(nxt)
    return {"prompt": prompt, "input_ids": ids.numpy(), "pixel_values": pv.numpy(), "pixel_attention_mask": pam.numpy(),
            "image_features": feats.float().numpy(), "prefill_logits": prefill, "step_logits": logits,
            "tokens": toks, "processor_pixel_values_max_abs_diff_vs_pil": proc_diff,
            "processor_pixel_values_stats": {"mean": float(ppv.mean()), "std": float(ppv.std())}}


def verify(m, out_dir, preset, tok_dir, img, question, tol_rel=1e-4, n_steps=3):
    """Compare ORT fp32 against the stock HF forward on CPU; raise on mismatch."""
    from tokenizers import Tokenizer
    m = m.float().cpu().eval()
    proc = M.build_processor(preset, tok_dir)
    ref = hf_reference(m, proc, img, question, n_steps, preset)
    report = {}
    # our fast input path vs the processor
    enc = M.Encoder(Tokenizer.from_file(os.path.join(tok_dir, "tokenizer.json")), preset)
    tiles, rows, cols = M.preprocess_uint8(img, preset)
    my_pv = M.normalize(tiles).numpy()
    my_ids = enc.enc(enc.prompt_text(rows, cols, question))
    report["processor_pixel_values_max_abs_diff_vs_pil"] = ref["processor_pixel_values_max_abs_diff_vs_pil"]
    report["fastpath_ids_equal"] = my_ids == ref["input_ids"][0].tolist()
    sess = ort_sessions(out_dir)
    o = ort_generate(sess, m.config, ref["input_ids"].astype(np.int64), ref["pixel_values"],
                     ref["pixel_attention_mask"], n_steps + 1)
    report["vision"] = err(o["image_features"], ref["image_features"])
    report["prefill_logits"] = err(o["prefill_logits"], ref["prefill_logits"])
    report["decode_logits"] = [err(a, b) for a, b in zip(o["last_logits"][1:], ref["step_logits"][1:])]
    report["tokens_equal"] = o["tokens"] == ref["tokens"][:len(o["tokens"])]
    report["tokens"] = o["tokens"]
    bad = [report["vision"]["rel"], report["prefill_logits"]["rel"]] + [d["rel"] for d in report["decode_logits"]]
    report["worst_rel"] = max(bad)
    report["ok"] = bool(max(bad) < tol_rel and report["tokens_equal"])
    print("VERIFY", json.dumps(report), flush=True)
    if not report["ok"]:
        raise SystemExit(f"ONNX verification FAILED for {out_dir}: {report}")
    return report


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pt", required=True)
    ap.add_argument("--tok", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--preset", default="default")
    ap.add_argument("--fp16", action="store_true")
    ap.add_argument("--verify-image", default=None)
    ap.add_argument("--verify-question", default="What is the window title?")
    a = ap.parse_args()
    from transformers import Idefics3ForConditionalGeneration
    from PIL import Image
    t0 = time.time()
    m = Idefics3ForConditionalGeneration.from_pretrained(a.pt)
    M.set_attn(m, "eager")
    m = m.float().cpu().eval()
    write_jsons(m, a.out, a.preset, a.tok)
    export_onnx(m, a.out, fp16=False)
    info = {"files": [describe_onnx(os.path.join(a.out, "onnx", f)) for f in sorted(os.listdir(os.path.join(a.out, "onnx")))]}
    img = Image.open(a.verify_image).convert("RGB") if a.verify_image else None
    if img is None:
        import data
        img = data.make_sample("verify", 0, "ui")["image"]
    info["verify"] = verify(m, a.out, a.preset, a.tok, img, a.verify_question)
    info["export_seconds"] = time.time() - t0
    json.dump(info, open(os.path.join(a.out, "export_report.json"), "w"), indent=1)
    print(json.dumps(info["files"], indent=1))


if __name__ == "__main__":
    main()
