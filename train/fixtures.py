"""Tiny random Idefics3 test model (SmolVLM ONNX layout, fp32 + fp16 variants) and PyTorch reference fixtures.

Writes
  OUT/tiny-model/                       the model folder (json + onnx/*.onnx, *_fp16.onnx)
  OUT/reference/<image-stem>.json       per fixture image: processor outputs, prompt ids, logits, greedy tokens,
                                        per-layer attention importance (see README in that folder)
  OUT/reference/<image-stem>.pixel_values.f32.bin, .pixel_attention_mask.u8.bin
  OUT/reference/elastic.json            independent Elastic Cache stage-1 reference (keep 0.5, start_size 1)
Usage: python train/fixtures.py --tok DIR --images test/fixtures/images --out DIR
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export as X  # noqa: E402
import model as M  # noqa: E402

QUESTIONS = {
    "gradient": "What is in this image?",
    "diagram": "What color is the circle?",
    "exact": "What is the window title?",
}


def cache_kv(past, i):
    if hasattr(past, "layers"):
        return past.layers[i].keys, past.layers[i].values
    if hasattr(past, "key_cache"):
        return past.key_cache[i], past.value_cache[i]
    return past[i][0], past[i][1]


def margins(logit_rows):
    out = []
    for r in logit_rows:
        s = np.sort(np.asarray(r, np.float64))
        out.append(float(s[-1] - s[-2]))
    return out


@torch.no_grad()
def reference_for(m, proc, img, question, stem, ref_dir):
    r = X.hf_reference(m, proc, img, question, n_steps=19, preset="tiny")
    ids = r["input_ids"]
    pv, pam = r["pixel_values"], r["pixel_attention_mask"]
    pv.astype("<f4").tofile(os.path.join(ref_dir, f"{stem}.pixel_values.f32.bin"))
    pam.astype(np.uint8).tofile(os.path.join(ref_dir, f"{stem}.pixel_attention_mask.u8.bin"))
    # attention importance, prefill + first decode step (eager, output_attentions)
    t_ids = torch.from_numpy(ids)
    out = m(input_ids=t_ids, attention_mask=torch.ones_like(t_ids), pixel_values=torch.from_numpy(pv),
            pixel_attention_mask=torch.from_numpy(pam), use_cache=True, output_attentions=True)
    col_sums = [a[0].float().mean(0).sum(0).numpy().tolist() for a in out.attentions]
    nxt = int(out.logits[0, -1].argmax())
    am = torch.ones(1, ids.shape[1] + 1, dtype=torch.long)
    o2 = m(input_ids=torch.tensor([[nxt]]), attention_mask=am, past_key_values=out.past_key_values, use_cache=True,
           output_attentions=True)
    dec_rows = [a[0].float().mean(0)[0].numpy().tolist() for a in o2.attentions]
    n_img = int((ids[0] == m.config.image_token_id).sum())
    per_tile = []
    for t in range(pv.shape[1]):
        x = pv[0, t]
        per_tile.append({"mean": float(x.mean()), "std": float(x.std()), "min": float(x.min()), "max": float(x.max())})
    stats = {"mean": float(pv.mean()), "std": float(pv.std()), "min": float(pv.min()), "max": float(pv.max()),
             "per_tile": per_tile}
    tiles_n = pv.shape[1]
    rows = cols = None
    T_ = m.config.vision_config.image_size
    p = M.PRESETS["tiny"]
    w, h = img.size
    h1, w1 = M.resize_longest(h, w, p["longest_edge"])
    h2, w2 = M.resize_multiple(h1, w1, p["tile"])
    rows, cols = (math.ceil(h2 / T_), math.ceil(w2 / T_)) if (h2 > T_ or w2 > T_) else (0, 0)
    res = {
        "image": f"../images/{stem}.png",
        "image_size": [w, h],
        "question": question,
        "prompt_text": r["prompt"],
        "expanded_prompt_text": proc.tokenizer.decode(ids[0].tolist(), skip_special_tokens=False),
        "input_ids": ids[0].tolist(),
        "num_image_tokens": n_img,
        "resized_size_hw": [h1, w1],
        "resized_for_tiles_hw": [h2, w2],
        "rows": rows, "cols": cols, "num_tiles": tiles_n,
        "pixel_values": {"file": f"{stem}.pixel_values.f32.bin", "dtype": "float32", "byte_order": "little",
                         "shape": list(pv.shape), "stats": stats,
                         "source": "PIL LANCZOS on uint8 (classic PIL Idefics3ImageProcessor steps; train/model.py "
                                   "preprocess_uint8), then x/255, (x-0.5)/0.5",
                         "transformers_5_17_default_processor_max_abs_diff": r["processor_pixel_values_max_abs_diff_vs_pil"]},
        "pixel_attention_mask": {"file": f"{stem}.pixel_attention_mask.u8.bin", "dtype": "uint8(bool)",
                                 "shape": list(pam.shape), "sum": int(pam.sum())},
        "prefill_last_logits": r["step_logits"][0].tolist(),
        "decode_logits": [x.tolist() for x in r["step_logits"][1:6]],
        "decode_logits_note": "decode_logits[k] = logits after feeding greedy token k (k=0..4) with the full cache",
        "greedy_tokens": r["tokens"][:20],
        "greedy_text": proc.tokenizer.decode(r["tokens"][:20], skip_special_tokens=False),
        "greedy_note": "20 greedy tokens from PyTorch pixel_values; EOS is NOT a stop here (random weights)",
        "greedy_top1_top2_margins": margins(r["step_logits"][:20]),
        "attention": {
            "prefill_column_sums": col_sums,
            "decode_step0_row": dec_rows,
            "note": "per layer: attn.mean(over all query heads).sum(over prompt queries) of the prefill softmax; "
                    "decode_step0_row: head-averaged softmax row of the first decode step (length N+1)",
        },
    }
    return res, r


@torch.no_grad()
def elastic_reference(m, ref, col_sums, keep=0.5, start_size=1):
    """Elastic Cache stage 1 (instruction encoding), written from the method description."""
    ids = torch.from_numpy(ref["input_ids"])
    out = m(input_ids=ids, attention_mask=torch.ones_like(ids), pixel_values=torch.from_numpy(ref["pixel_values"]),
            pixel_attention_mask=torch.from_numpy(ref["pixel_attention_mask"]), use_cache=True)
    N = ids.shape[1]
    first = int(out.logits[0, -1].argmax())
    kept_n = int(math.floor(keep * N + 0.5))
    F_ = N - kept_n
    layers = []
    comp_k, comp_v = [], []
    for i in range(m.config.text_config.num_hidden_layers):
        K, V = cache_kv(out.past_key_values, i)
        K, V = K.float(), V.float()
        score = np.asarray(col_sums[i], np.float64)
        cand = np.arange(start_size, N - 1)
        order = np.argsort(score[cand], kind="stable")
        dropped = np.sort(cand[order[:F_]])
        anchors = np.sort(cand[order[F_:]])
        assign = {}
        for t in dropped:
            d = np.abs(anchors - t)
            j = int(np.argmin(d))  # argmin returns the first minimum -> ties go to the earlier anchor
            assign[int(t)] = int(anchors[j])
        groups = {int(a): [int(a)] for a in anchors}
        for t, a in assign.items():
            groups[a].append(t)
        kk = [K[:, :, :start_size]]
        vv = [V[:, :, :start_size]]
        for a in anchors:
            g = groups[int(a)]
            kk.append(K[:, :, g].mean(dim=2, keepdim=True))
            vv.append(V[:, :, g].mean(dim=2, keepdim=True))
        kk.append(K[:, :, N - 1:N])
        vv.append(V[:, :, N - 1:N])
        ck, cv = torch.cat(kk, 2), torch.cat(vv, 2)
        comp_k.append(ck)
        comp_v.append(cv)
        kept_positions = list(range(start_size)) + [int(a) for a in anchors] + [N - 1]
        layers.append({"kept_positions": kept_positions, "dropped": [int(t) for t in dropped],
                       "merge_assignment": {str(t): a for t, a in assign.items()},
                       "compressed_key_sum": float(ck.sum()), "compressed_value_sum": float(cv.sum())})
    C = comp_k[0].shape[2]
    # next decode step on the compressed cache: position id = N (true count), mask length C + 1
    dec = X.DecoderExport(m).eval()
    e = m.model.text_model.get_input_embeddings()(torch.tensor([[first]]))
    past = []
    for k, v in zip(comp_k, comp_v):
        past += [k, v]
    outs = dec(e, torch.ones(1, C + 1, dtype=torch.long), torch.tensor([[N]]), *past)
    logits = outs[0][0, -1].numpy()
    # cross-check with the stock HF forward on a DynamicCache holding the compressed tensors
    hf_diff = None
    try:
        from transformers import DynamicCache
        try:
            cache = DynamicCache(config=m.config.text_config)
        except Exception:
            cache = DynamicCache()
        for i, (k, v) in enumerate(zip(comp_k, comp_v)):
            cache.update(k.clone(), v.clone(), i)
        o = m(input_ids=torch.tensor([[first]]), attention_mask=torch.ones(1, C + 1, dtype=torch.long),
              position_ids=torch.tensor([[N]]), past_key_values=cache, use_cache=True)
        hf_diff = X.err(o.logits[0, -1].numpy(), logits)
    except Exception as ex:
        hf_diff = f"failed: {ex!r}"
    return {
        "method": "Elastic Cache stage 1 (importance-driven merging) only",
        "keep_ratio": keep, "start_size": start_size,
        "prompt_length": N, "kept_length": C, "dropped_count": F_,
        "rounding": "kept = floor(keep * N + 0.5); F = N - kept",
        "score": "per layer: prefill attention mean over all query heads, summed over query rows (column sum); "
                 "values in the per-image fixture's attention.prefill_column_sums",
        "selection": "candidates [start_size, N-1); drop the F lowest scores (stable ascending sort, ties: lower "
                     "index dropped first); position N-1 and the prefix are always kept",
        "merge": "each dropped position -> nearest anchor by position (ties to the earlier anchor); anchor K/V = "
                 "mean of itself and its assigned positions (fp32); prefix and last token are not merge targets",
        "cache_layout": "[prefix, anchors in original order, last token]",
        "first_token": first,
        "next_step": {"input_token": first, "position_id": N, "attention_mask_length": C + 1,
                      "logits": logits.tolist(), "argmax": int(logits.argmax())},
        "hf_dynamic_cache_crosscheck": hf_diff,
        "layers": layers,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tok", required=True)
    ap.add_argument("--images", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    from tokenizers import Tokenizer
    from PIL import Image
    t0 = time.time()
    torch.manual_seed(1234)
    tok = Tokenizer.from_file(os.path.join(a.tok, "tokenizer.json"))
    m = M.build_model("tiny", tok, impl="eager").float().eval()
    mdir = os.path.join(a.out, "tiny-model")
    ref_dir = os.path.join(a.out, "reference")
    os.makedirs(ref_dir, exist_ok=True)
    X.write_jsons(m, mdir, "tiny", a.tok)
    X.export_onnx(m, mdir, fp16=False)
    m16 = M.build_model("tiny", tok, impl="eager")
    m16.load_state_dict(m.state_dict())
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    m16 = m16.to(dev).half().cpu().eval()  # fp16 weights converted on the GPU
    X.export_onnx(m16, mdir, fp16=True)
    files = [X.describe_onnx(os.path.join(mdir, "onnx", f)) for f in sorted(os.listdir(os.path.join(mdir, "onnx")))]
    proc = M.build_processor("tiny", a.tok)
    summary = {"files": files, "images": {}}
    sess32 = X.ort_sessions(mdir)
    sess16 = X.ort_sessions(mdir, "_fp16")
    elastic = None
    for fn in sorted(os.listdir(a.images)):
        if not fn.endswith(".png"):
            continue
        stem = fn[:-4]
        img = Image.open(os.path.join(a.images, fn)).convert("RGB")
        q = QUESTIONS.get(stem, "Describe this image.")
        res, r = reference_for(m, proc, img, q, stem, ref_dir)
        ids = r["input_ids"].astype(np.int64)
        o32 = X.ort_generate(sess32, m.config, ids, r["pixel_values"], r["pixel_attention_mask"], 20)
        o16 = X.ort_generate(sess16, m.config, ids, r["pixel_values"], r["pixel_attention_mask"], 20, fp16=True)
        res["onnx_fp32_check"] = {
            "greedy_tokens_equal_pytorch": o32["tokens"] == res["greedy_tokens"],
            "prefill_last_logits": X.err(o32["last_logits"][0], r["step_logits"][0]),
            "decode_logits": [X.err(x, y) for x, y in zip(o32["last_logits"][1:6], r["step_logits"][1:6])],
        }
        res["fp16_onnxruntime"] = {
            "note": "onnxruntime CPU on the *_fp16.onnx files, fed float16(pixel_values above); float16 KV cache",
            "input_ids": ids[0].tolist(),
            "greedy_tokens": o16["tokens"],
            "prefill_last_logits": o16["last_logits"][0].tolist(),
            "vs_fp32_pytorch_prefill": X.err(o16["last_logits"][0], r["step_logits"][0]),
            "greedy_top1_top2_margins": margins(o16["last_logits"]),
        }
        json.dump(res, open(os.path.join(ref_dir, f"{stem}.json"), "w"))
        summary["images"][stem] = {"tokens": res["num_image_tokens"], "prompt_len": len(res["input_ids"]),
                                   "onnx_fp32_check": res["onnx_fp32_check"],
                                   "fp16_tokens_equal_fp32": o16["tokens"] == res["greedy_tokens"],
                                   "min_margin": min(res["greedy_top1_top2_margins"])}
        if not res["onnx_fp32_check"]["greedy_tokens_equal_pytorch"] or \
                res["onnx_fp32_check"]["prefill_last_logits"]["rel"] > 1e-4:
            raise SystemExit(f"tiny ONNX fp32 mismatch on {stem}: {res['onnx_fp32_check']}")
        if elastic is None and stem == "diagram":
            elastic = elastic_reference(m, r, res["attention"]["prefill_column_sums"])
            elastic["fixture"] = f"{stem}.json"
            json.dump(elastic, open(os.path.join(ref_dir, "elastic.json"), "w"))
            summary["elastic"] = {"N": elastic["prompt_length"], "C": elastic["kept_length"],
                                  "crosscheck": elastic["hf_dynamic_cache_crosscheck"]}
    summary["seconds"] = time.time() - t0
    json.dump(summary, open(os.path.join(ref_dir, "summary.json"), "w"), indent=1)
    print("FIXTURES", json.dumps(summary, indent=1), flush=True)


if __name__ == "__main__":
    main()
