"""Peer check against NVIDIA kvpress (issue 15): its SnapKVPress, StreamingLLMPress and ObservedAttentionPress, run
from their source on the PyTorch twin of the default model (train/from_onnx.py), against our snapkv, streaming and
h2o policies (runtime/cache/policies/*.ts) on the same inputs.

Two parts:
  kept entries  for the samples of --ours (written by tools/kvpress_check/ours.ts: per sample the prompt ids, a
                checksum of the 8-bit tiles and, per policy, keep and layer, the positions our policy keeps right
                after the prefill), the positions each press keeps per layer and KV head, recovered from the
                compressed DynamicCache by matching its keys against the uncompressed prefill's keys. Agreement is
                the Jaccard index of the kept sets. A ladder of intermediate selections, recomputed from the twin's
                attention, changes one ingredient at a time (score, pooling, recent window, per-head selection,
                budget rounding) so that each difference is measured on its own.
  accuracy      greedy answers on the short-answer samples among the first --acc-limit held-out samples, with each
                press compressing the prompt at prefill (kvpress never compresses while decoding), scored by the
                exact match of runtime/eval/metrics.ts, next to ours from `npm run eval --json` (--ours-eval), with
                Wilson intervals and a paired bootstrap interval of the difference.

kvpress is imported from --kvpress SRC at run time (never vendored). Its package __init__ imports every press, and some
need packages (datasets, cachetools, fire) the GPU machine lacks, so the kvpress and kvpress.presses packages are
registered by path without running their __init__ and only the four modules used here are imported. kvpress pins
transformers < 5.3; with 5.x the attention modules no longer receive `cache_position`, which BasePress.forward_hook
reads, so a forward pre-hook adds it (past length + arange(q_len)) when it is missing; nothing else is changed.
Idefics3 keeps its Llama decoder at model.model.text_model, which BasePress.__call__ does not look for, so the press
is handed a small stand-in whose .model.language_model is that decoder.

Usage:
  python tools/kvpress_check/compare.py --kvpress .devcarry/kvpress --model models/default [--twin DIR/pt]
      --ours tools/kvpress_check/ours.json --ours-eval tools/kvpress_check/ours_eval.json --data data/heldout
      --out DIR [--device cuda] [--limit-kept N] [--acc-limit 120]
Without --twin the twin is rebuilt in-process from the ONNX files (from_onnx.rebuild, no onnxruntime check).
"""
import argparse
import base64
import hashlib
import importlib
import json
import math
import os
import subprocess
import sys
import time
import types
from contextlib import contextmanager, nullcontext

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "train"))

PRESS_OF = {"snapkv": "SnapKVPress", "streaming": "StreamingLLMPress", "h2o": "ObservedAttentionPress"}
MODULE_OF = {"SnapKVPress": "snapkv_press", "StreamingLLMPress": "streaming_llm_press",
             "ObservedAttentionPress": "observed_attention_press"}
DESCRIBE = "describe"


# ------------------------------------------------------------------------------------------------ kvpress import
def load_kvpress(src):
    """-> ({press name: class}, info). Registers kvpress / kvpress.presses by path (their __init__ not run)."""
    src = os.path.abspath(src)
    pkg = os.path.join(src, "kvpress")
    if not os.path.isdir(os.path.join(pkg, "presses")):
        raise SystemExit(f"--kvpress {src}: no kvpress/presses folder there")
    info = {"src": src}
    commit = os.path.join(src, "COMMIT")
    info["commit"] = open(commit).read().strip() if os.path.exists(commit) else None
    # Whether the package imports as a whole here (it is not needed; the answer goes in the report).
    r = subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {src!r}); import kvpress"],
                       capture_output=True, text=True, timeout=600)
    info["full_import"] = "ok" if r.returncode == 0 else (r.stderr.strip().splitlines() or ["failed"])[-1]
    for name, path in (("kvpress", pkg), ("kvpress.presses", os.path.join(pkg, "presses"))):
        m = types.ModuleType(name)
        m.__path__ = [path]
        sys.modules[name] = m
    classes = {}
    for cls, mod in MODULE_OF.items():
        classes[cls] = getattr(importlib.import_module(f"kvpress.presses.{mod}"), cls)
    import transformers
    import torch
    info["transformers"] = transformers.__version__
    info["torch"] = torch.__version__
    return classes, info


class PressTarget:
    """What BasePress.__call__ reads of a model: .model.language_model (its .layers and .rotary_emb)."""

    def __init__(self, m):
        self.model = types.SimpleNamespace(language_model=m.model.text_model)


ADAPTER = {"cache_position_added": 0}


@contextmanager
def cache_position_adapter(text_model):
    """transformers 5.x no longer passes cache_position to the attention modules; kvpress's hook reads it."""
    import torch

    def pre(module, args, kwargs):
        if "cache_position" not in kwargs:
            hs = kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]
            cache = kwargs.get("past_key_values")
            past = cache.get_seq_length(module.layer_idx) if cache is not None else 0
            kwargs["cache_position"] = torch.arange(past, past + hs.shape[1], device=hs.device)
            ADAPTER["cache_position_added"] += 1
        return args, kwargs

    hooks = [layer.self_attn.register_forward_pre_hook(pre, with_kwargs=True) for layer in text_model.layers]
    try:
        yield
    finally:
        for h in hooks:
            h.remove()


# ------------------------------------------------------------------------------------------------ inputs
def unpack_ids(s):
    out = []
    for part in s.split(","):
        if "*" in part:
            v, n = part.split("*")
            out.extend([int(v)] * int(n))
        else:
            out.append(int(part))
    return out


def unpack_mask(b64, n):
    bits = np.unpackbits(np.frombuffer(base64.b64decode(b64), dtype=np.uint8), bitorder="little")[:n]
    return np.flatnonzero(bits)


def read_samples(data):
    path = os.path.join(data, "samples.jsonl") if os.path.isdir(data) else data
    base = os.path.dirname(path)
    rows = [json.loads(l) for l in open(path) if l.strip()]
    for r in rows:
        r["image_path"] = os.path.join(base, r["image"])
    return rows


def normalize_answer(s):
    """runtime/eval/metrics.ts normalizeAnswer: lower-case, collapse spaces, trim, drop trailing . or !, trim."""
    import re
    s = re.sub(r"\s+", " ", s.lower()).strip()
    return re.sub(r"[.!]+$", "", s).strip()


# ------------------------------------------------------------------------------------------------ selections
def budget_ours(keep, n, minimum=1):
    """runtime/cache/policies/budget.ts: round half up, with a 1e-9 slack."""
    return max(minimum, math.floor(keep * n + 0.5 + 1e-9))


def budget_kvpress(keep, n):
    """ScorerPress.compress: int(k_len * (1 - compression_ratio)) with compression_ratio = 1 - keep."""
    return int(n * (1 - (1 - keep)))


def top_keep(score, n, protect=None):
    """runtime/cache/scores.ts topKeep: protected first (the latest), then the highest scores, ties keep the later."""
    L = len(score)
    protect = np.zeros(L, bool) if protect is None else protect
    prot = np.flatnonzero(protect)[::-1][:n]
    if len(prot) >= n:
        return np.sort(prot)
    free = np.flatnonzero(~protect)
    order = sorted(free.tolist(), key=lambda j: (-score[j], -j))
    return np.sort(np.concatenate([prot, np.array(order[: n - len(prot)], dtype=int)]))


def h2o_keep(score, budget, share=0.5):
    """runtime/cache/policies/h2o.ts at prefill: the newest `recent` entries, then the highest accumulated among the
    rest (the lowest go first, ties: the earlier position goes)."""
    L = len(score)
    if L <= budget:
        return np.arange(L)
    heavy = min(math.floor(budget * share), budget - 1)
    recent = budget - heavy
    cand = L - recent
    order = sorted(range(cand), key=lambda j: (score[j], j))  # lowest first: these go
    evict = set(order[: L - budget])
    return np.array([j for j in range(L) if j not in evict])


def window_score(att, w):
    """scores.ts windowScore: the last w queries' attention, averaged over them and over all query heads."""
    return att[:, -w:, :].astype(np.float64).mean(axis=(0, 1))


def avg_pool(score, kernel, lo, hi):
    """scores.ts avgPool1d over [lo, hi), zero padding counted in the divisor (torch avg_pool1d)."""
    out = score.copy()
    r = kernel // 2
    for j in range(lo, hi):
        a, b = max(lo, j - r), min(hi, j + r + 1)
        out[j] = score[a:b].sum() / kernel
    return out


def jac(a, b):
    a, b = set(np.asarray(a).tolist()), set(np.asarray(b).tolist())
    u = len(a | b)
    return 1.0 if u == 0 else len(a & b) / u


# ------------------------------------------------------------------------------------------------ model
def load_twin(args, device):
    import torch
    import model as M
    if args.twin:
        from transformers import Idefics3ForConditionalGeneration
        m = Idefics3ForConditionalGeneration.from_pretrained(args.twin, attn_implementation="eager", dtype=torch.float32)
        how = f"from_pretrained({args.twin})"
    else:
        import from_onnx
        m, _ = from_onnx.rebuild(args.model, impl="eager")
        how = f"from_onnx.rebuild({args.model}) in-process (no onnxruntime check)"
    M.set_attn(m, "eager")
    return m.float().eval().to(device), how


def sample_inputs(s, device):
    """Pixel values by train/model.py's PIL path (the processor's steps); the caller adds the prompt ids."""
    import torch
    from PIL import Image
    import model as M
    tiles, rows, cols = M.preprocess_uint8(Image.open(s["image_path"]), "default")
    pv = M.normalize(tiles)[None].to(device)
    pam = torch.ones(pv.shape[0], pv.shape[1], pv.shape[3], pv.shape[4], dtype=torch.bool, device=device)
    return {"pv": pv, "pam": pam, "tiles": tiles, "rows": rows, "cols": cols}


class AttnGrab:
    """Forward hooks on the decoder's attention modules: each layer's attention probabilities of the last run."""

    def __init__(self, text_model):
        self.att = {}
        self.hooks = [l.self_attn.register_forward_hook(self.hook) for l in text_model.layers]

    def hook(self, module, args, out):
        if out[1] is not None:
            self.att[module.layer_idx] = out[1][0].detach().float().cpu().numpy()

    def remove(self):
        for h in self.hooks:
            h.remove()


def prefill(m, x, press=None, capture=None):
    """One prompt prefill into a fresh DynamicCache, with `press` compressing it when given. -> (logits, cache)."""
    import torch
    from transformers import DynamicCache
    cache = DynamicCache()
    L = x["ids"].shape[1]
    ctx = press(PressTarget(m)) if press is not None else nullcontext()
    with torch.no_grad(), cache_position_adapter(m.model.text_model), ctx:
        out = m(input_ids=x["ids"], attention_mask=torch.ones_like(x["ids"]), pixel_values=x["pv"],
                pixel_attention_mask=x["pam"], position_ids=torch.arange(L, device=x["ids"].device)[None],
                past_key_values=cache, use_cache=True)
    return out.logits[0, -1], cache


def greedy(m, logits, cache, L, stop, max_new=24):
    """Greedy continuation as runtime/generate/conversation.ts runs it: the first token from the prefill's logits,
    then one token a step at its absolute position L + t (positions 'absolute'), no compression while decoding."""
    import torch
    toks = []
    nxt = int(logits.argmax())
    for t in range(max_new):
        if nxt in stop:
            break
        toks.append(nxt)
        if t == max_new - 1:
            break
        with torch.no_grad():
            o = m(input_ids=torch.tensor([[nxt]], device=logits.device), past_key_values=cache, use_cache=True,
                  position_ids=torch.tensor([[L + t]], device=logits.device))
        nxt = int(o.logits[0, -1].argmax())
    return toks


def kept_by_head(full_keys, comp_keys):
    """Positions of the compressed keys among the full keys, per KV head: [heads] sorted index arrays, match error."""
    import torch
    res, worst, margin = [], 0.0, float("inf")
    for h in range(full_keys.shape[0]):
        d = torch.cdist(comp_keys[h].double(), full_keys[h].double())
        v, idx = d.topk(2, dim=1, largest=False)
        worst = max(worst, float(v[:, 0].max()) if v.numel() else 0.0)
        margin = min(margin, float(v[:, 1].min()) if v.numel() else margin)
        res.append(np.sort(idx[:, 0].cpu().numpy()))
    return res, worst, margin


# ------------------------------------------------------------------------------------------------ statistics
def wilson(k, n, z=1.96):
    if n == 0:
        return [float("nan"), float("nan")]
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return [max(0.0, c - h), min(1.0, c + h)]


def paired_boot(a, b, reps=4000, seed=15):
    a, b = np.asarray(a, float), np.asarray(b, float)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), size=(reps, len(a)))
    d = a[idx].mean(1) - b[idx].mean(1)
    return [float(np.quantile(d, 0.025)), float(np.quantile(d, 0.975))]


# ------------------------------------------------------------------------------------------------ main
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kvpress", required=True, help="kvpress source folder (holding kvpress/presses)")
    ap.add_argument("--model", default=os.path.join(ROOT, "models/default"))
    ap.add_argument("--twin", default=None, help="save_pretrained folder of the twin (train/from_onnx.py's OUT/pt)")
    ap.add_argument("--ours", default=os.path.join(HERE, "ours.json"))
    ap.add_argument("--ours-eval", default=os.path.join(HERE, "ours_eval.json"))
    ap.add_argument("--data", default=os.path.join(ROOT, "data/heldout"))
    ap.add_argument("--out", required=True)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--limit-kept", type=int, default=None)
    ap.add_argument("--acc-limit", type=int, default=120)
    ap.add_argument("--max-new", type=int, default=24)
    a = ap.parse_args()
    t0 = time.time()
    import torch
    from tokenizers import Tokenizer
    import model as M
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 throughout, as onnxruntime on the CPU computes
    torch.backends.cudnn.allow_tf32 = False
    dev = a.device if (a.device != "cuda" or torch.cuda.is_available()) else "cpu"
    os.makedirs(a.out, exist_ok=True)
    classes, kvinfo = load_kvpress(a.kvpress)
    import logging
    logging.getLogger("kvpress").setLevel(logging.ERROR)  # "Model ... not tested" on every press(...): the stand-in
    m, how = load_twin(a, dev)
    tm = m.model.text_model
    tc = m.config.text_config
    tok = Tokenizer.from_file(os.path.join(a.model, "tokenizer.json"))
    enc = M.Encoder(tok, "default")
    gen = json.load(open(os.path.join(a.model, "generation_config.json")))
    stop = set(gen["eos_token_id"] if isinstance(gen["eos_token_id"], list) else [gen["eos_token_id"]])
    ours = json.load(open(a.ours))
    keeps = ours["keeps"]
    policies = ours["policies"]
    kept_rows = ours["rows"][: a.limit_kept] if a.limit_kept else ours["rows"]
    samples = read_samples(a.data)
    acc_idx = [i for i in range(min(a.acc_limit, len(samples))) if samples[i]["task"] != DESCRIBE]
    kept_by_i = {r["i"]: r for r in kept_rows}
    todo = sorted(set(kept_by_i) | set(acc_idx))
    report = {"kvpress": kvinfo, "twin": how, "device": str(dev), "torch_device_name":
              torch.cuda.get_device_name(0) if str(dev).startswith("cuda") else "cpu",
              "ours": {k: ours[k] for k in ("commit", "model", "data", "provider", "params", "what")},
              "samples_kept": len(kept_rows), "samples_acc": len(acc_idx)}
    checks = {"ids_equal_encoder": 0, "tiles_equal": 0, "feature_rel_err_max": 0.0, "match_err_max": 0.0,
              "tagged_equals_score_topk": 0, "tagged_checked": 0, "n": 0,
              "next_key_distance_min": float("inf"), "kept_unique": 0, "layers_checked": 0}
    # per (policy, keep): variant name -> list of (J vs ours, J vs kvpress per head mean, exact vs ours)
    ladders = {}
    perlayer = {}
    counts = {}
    imgshare = {}
    heads_j = {}
    qshare = {}
    byreg = {}
    lengths = {}
    acc = {}
    answers = {}
    ntok_full = []
    for i in todo:
        s = samples[i]
        row = kept_by_i.get(i)
        if row is not None:
            ids = unpack_ids(row["ids"])
        x = sample_inputs(s, dev)
        mine = enc.enc(enc.prompt_text(x["rows"], x["cols"], s["question"]))
        if row is None:
            ids = mine
        x["ids"] = torch.tensor([ids], device=dev)
        L = len(ids)
        want_kept = row is not None
        if want_kept:
            checks["n"] += 1
            checks["ids_equal_encoder"] += int(mine == ids)
            sha = hashlib.sha256(np.ascontiguousarray(x["tiles"]).tobytes()).hexdigest()
            checks["tiles_equal"] += int(sha == row["tiles"]["sha256"])
            with torch.no_grad():
                f = M_feats(m, x)
            head = np.array(row["features"]["head"])
            rel = float(np.abs(f[:8] - head).max() / max(1e-9, np.abs(head).max()))
            checks["feature_rel_err_max"] = max(checks["feature_rel_err_max"], rel,
                                                abs(float(np.abs(f).mean()) - row["features"]["absMean"]) / row["features"]["absMean"])
        # The uncompressed prefill: keys per layer and (for the ladders) the attention probabilities.
        grab = AttnGrab(tm) if want_kept else None
        logits_full, cache_full = prefill(m, x)
        if grab:
            grab.remove()
        full_keys = [cache_full.layers[l].keys[0] for l in range(tc.num_hidden_layers)]
        if i in acc_idx:
            toks = greedy(m, logits_full, cache_full, L, stop, a.max_new)
            ntok_full.append(len(toks))
            text = tok.decode(toks, skip_special_tokens=True).strip()
            acc.setdefault(("full", 1.0), {})[i] = int(normalize_answer(text) == normalize_answer(s["answer"]))
            answers.setdefault("full 1.0", {})[str(i)] = text
        is_img = np.array(ids) == ours["imageTokenId"]
        lengths[i] = L
        for pol in policies:
            for keep in keeps:
                press = classes[PRESS_OF[pol]](compression_ratio=1 - keep)
                got = {}
                orig = press.score

                def rec(module, *args, _orig=orig, _got=got, **kw):
                    sc = _orig(module, *args, **kw)
                    _got[module.layer_idx] = sc[0].detach().double().cpu().numpy()
                    return sc

                press.score = rec
                logits, cache = prefill(m, x, press)
                if want_kept:
                    key = f"{pol} {keep}"
                    lad = ladders.setdefault(key, {})
                    B, Bk = budget_ours(keep, L, 5 if pol == "streaming" else 1), budget_kvpress(keep, L)
                    counts.setdefault(key, []).append(Bk - B)
                    for l in range(tc.num_hidden_layers):
                        O = unpack_mask(row["kept"][pol][str(keep)][l], L)
                        K, err, margin = kept_by_head(full_keys[l], cache.layers[l].keys[0])
                        checks["match_err_max"] = max(checks["match_err_max"], err)
                        checks["next_key_distance_min"] = min(checks["next_key_distance_min"], margin)
                        checks["kept_unique"] += int(all(len(set(k.tolist())) == len(k) for k in K))
                        checks["layers_checked"] += 1
                        sc = got[l]  # [kv heads, L]
                        for h in range(len(K)):
                            checks["tagged_checked"] += 1
                            checks["tagged_equals_score_topk"] += int(is_top_set(sc[h], K[h], Bk))
                        att = grab.att[l]
                        variants = ladder(pol, att, sc, L, B, Bk, ours["params"])
                        variants.append(("kvpress as it runs (per KV head)", K))
                        for name, sel in variants:
                            heads = sel if isinstance(sel, list) else [sel]
                            jo = float(np.mean([jac(hs, O) for hs in heads]))
                            # per-head selections against kvpress's head by head; per-layer ones against each head
                            jk = float(np.mean([jac(hs, kh) for hs, kh in zip(heads, K)])) if isinstance(sel, list) else float(np.mean([jac(sel, kh) for kh in K]))
                            ex = float(np.mean([set(hs.tolist()) == set(O.tolist()) for hs in heads]))
                            lad.setdefault(name, []).append((jo, jk, ex))
                        perlayer.setdefault(key, {}).setdefault(l, []).append(float(np.mean([jac(O, kh) for kh in K])))
                        ish = imgshare.setdefault(key, {"ours": [], "kvpress": []})
                        ish["ours"].append(float(is_img[O].mean()))
                        ish["kvpress"].append(float(np.mean([is_img[kh].mean() for kh in K])))
                        # The text after the image (question, <end_of_utterance>, "Assistant:"): how much of it stays.
                        qs = int(np.flatnonzero(is_img).max()) + 1 if is_img.any() else 0
                        tail = set(range(qs, L))
                        qk = qshare.setdefault(key, {"ours": [], "kvpress": []})
                        qk["ours"].append(len(tail & set(O.tolist())) / max(1, len(tail)))
                        qk["kvpress"].append(float(np.mean([len(tail & set(kh.tolist())) / max(1, len(tail)) for kh in K])))
                        regime = "budget >= window (64)" if Bk >= 64 else "budget < window (64)"
                        byreg.setdefault(key, {}).setdefault(regime, []).append(float(np.mean([jac(O, kh) for kh in K])))
                        if len(K) > 1:
                            heads_j.setdefault(key, []).append(jac(K[0], K[1]))
                if i in acc_idx:
                    toks = greedy(m, logits, cache, L, stop, a.max_new)
                    text = tok.decode(toks, skip_special_tokens=True).strip()
                    acc.setdefault((pol, keep), {})[i] = int(normalize_answer(text) == normalize_answer(s["answer"]))
                    answers.setdefault(f"{pol} {keep}", {})[str(i)] = text
        print(f"sample {i} L={L} done ({time.time() - t0:.1f} s)", flush=True)
    report["checks"] = checks
    report["adapter"] = dict(ADAPTER)
    report["kept"] = {}
    for key, lad in ladders.items():
        d = {name: {"jaccard_vs_ours": float(np.mean([v[0] for v in vals])),
                    "jaccard_vs_kvpress": float(np.mean([v[1] for v in vals])),
                    "identical_to_ours": float(np.mean([v[2] for v in vals]))} for name, vals in lad.items()}
        cd = counts[key]
        report["kept"][key] = {"ladder": d, "per_layer_jaccard_ours_vs_kvpress": {str(l): float(np.mean(v)) for l, v in perlayer[key].items()},
                               "kept_count_kvpress_minus_ours": {str(v): cd.count(v) for v in sorted(set(cd))},
                               "image_share_of_kept": {k: float(np.mean(v)) for k, v in imgshare[key].items()},
                               "kvpress_head0_vs_head1_jaccard": float(np.mean(heads_j[key])) if heads_j.get(key) else None,
                               "text_after_image_kept_share": {k: float(np.mean(v)) for k, v in qshare[key].items()},
                               "jaccard_ours_vs_kvpress_by_budget": {k: {"jaccard": float(np.mean(v)), "layer_samples": len(v)}
                                                                     for k, v in sorted(byreg[key].items())}}
    report["accuracy"] = accuracy_table(acc, a.ours_eval, acc_idx, lengths)
    report["answer_tokens_full_cache"] = {str(k): ntok_full.count(k) for k in sorted(set(ntok_full))}
    report["kvpress_answers"] = answers
    report["seconds"] = round(time.time() - t0, 1)
    json.dump(report, open(os.path.join(a.out, "kvpress_check.json"), "w"), indent=1)
    md = markdown(report)
    open(os.path.join(a.out, "kvpress_check.md"), "w").write(md)
    print(md)


def is_top_set(score, kept, n):
    """Whether `kept` is a top-n set of `score` (whatever order topk broke ties in)."""
    if len(kept) != n:
        return False
    mask = np.zeros(len(score), bool)
    mask[kept] = True
    return bool(mask.all() or score[mask].min() >= score[~mask].max())


def M_feats(m, x):
    import export as X
    return X.hf_image_features(m, x["pv"], x["pam"]).float().cpu().numpy().ravel()


def ladder(pol, att, sc, L, B, Bk, params):
    """Selections between ours and kvpress's, one ingredient changed per step. att [heads, L, L]; sc the press's
    score [kv heads, L]."""
    v = []
    kvmean = sc.mean(0)
    if pol == "snapkv":
        w = min(params["snapkv"]["window"], L)
        prot = np.zeros(L, bool)
        prot[L - w:] = True
        ws = avg_pool(window_score(att, w), params["snapkv"]["kernel"], 0, L - w)
        v.append(("ours recomputed from the twin's attention", top_keep(ws, B, prot)))
        v.append(("kvpress's score averaged over KV heads, our budget", top_keep(kvmean, B)))
        v.append(("kvpress's score averaged over KV heads, kvpress's budget", top_keep(kvmean, Bk)))
        v.append(("kvpress's score per KV head, our budget", [top_keep(sc[h], B) for h in range(sc.shape[0])]))
    elif pol == "streaming":
        sinks = params["streaming"]["sinks"]
        v.append(("ours recomputed (4 sinks + newest), our budget", np.r_[np.arange(sinks), np.arange(L - (B - sinks), L)]))
        v.append(("the same, kvpress's budget", np.r_[np.arange(sinks), np.arange(L - (Bk - sinks), L)]))
    else:
        colsum = att.astype(np.float64).sum(axis=1)  # [heads, L]: column sums over the prefill's queries
        norm = (colsum / np.arange(L, 0, -1)[None, :]).mean(0)  # ObservedAttention's score, all heads averaged
        share = params["h2o"]["heavyShare"]
        v.append(("ours recomputed from the twin's attention (column sums, half the budget recent)", h2o_keep(colsum.mean(0), B, share)))
        v.append(("ObservedAttention's score (sum / queries that saw the key) in our split (half recent)", h2o_keep(norm, B, share)))
        v.append(("column sums, no recent window (top-k), our budget", top_keep(colsum.mean(0), B)))
        v.append(("ObservedAttention's score, no recent window, heads averaged, our budget", top_keep(norm, B)))
        v.append(("kvpress's score averaged over KV heads, kvpress's budget", top_keep(kvmean, Bk)))
        v.append(("kvpress's score per KV head, our budget", [top_keep(sc[h], B) for h in range(sc.shape[0])]))
    return v


def accuracy_table(acc, ours_eval_path, acc_idx, lengths):
    ours = {}
    if ours_eval_path and os.path.exists(ours_eval_path):
        doc = json.load(open(ours_eval_path))
        for r in doc.get("rows", []):
            ours[(r["policy"], float(r["keep"]))] = {it["i"]: it["hit"] for it in r.get("items", []) if "hit" in it}
    out = []
    for (pol, keep), hits in acc.items():
        idx = [i for i in acc_idx if i in hits]
        kv = [hits[i] for i in idx]
        row = {"policy": pol, "keep": keep, "n": len(idx), "kvpress_accuracy": float(np.mean(kv)) if kv else None,
               "kvpress_wilson95": wilson(sum(kv), len(kv))}
        o = ours.get((pol, float(keep)))
        if o is not None:
            both = [i for i in idx if i in o]
            ov = [o[i] for i in both]
            kb = [hits[i] for i in both]
            row.update({"paired_n": len(both), "ours_accuracy": float(np.mean(ov)) if ov else None,
                        "ours_wilson95": wilson(sum(ov), len(ov)),
                        "kvpress_accuracy_paired": float(np.mean(kb)) if kb else None,
                        "diff_ours_minus_kvpress": float(np.mean(ov) - np.mean(kb)) if ov else None,
                        "diff_boot95": paired_boot(ov, kb) if ov else None,
                        "same_hit_share": float(np.mean([x == y for x, y in zip(ov, kb)])) if ov else None})
            row["agree"] = bool(row["diff_boot95"] and row["diff_boot95"][0] <= 0 <= row["diff_boot95"][1])
            # Prompts whose kvpress budget is below SnapKV's 64-entry window: its padded window scores all tie there.
            small = [i for i in both if budget_kvpress(keep, lengths[i]) < 64]
            if small and pol != "full":
                row["budget_below_window"] = {"n": len(small), "ours": float(np.mean([o[i] for i in small])),
                                              "kvpress": float(np.mean([hits[i] for i in small]))}
                big = [i for i in both if i not in set(small)]
                row["budget_at_least_window"] = {"n": len(big), "ours": float(np.mean([o[i] for i in big])) if big else None,
                                                 "kvpress": float(np.mean([hits[i] for i in big])) if big else None}
        out.append(row)
    return out


def markdown(r):
    L = []
    k = r["kvpress"]
    L.append(f"kvpress {k.get('commit') or '(commit unknown)'} from {k['src']} (package import as a whole: {k['full_import']}); "
             f"torch {k['torch']}, transformers {k['transformers']}; twin: {r['twin']}; device {r['device']} ({r['torch_device_name']}); "
             f"{r['seconds']} s.")
    c = r["checks"]
    L.append("")
    L.append(f"Inputs, {c['n']} samples: prompt ids equal to train/model.py's Encoder {c['ids_equal_encoder']}/{c['n']}, "
             f"8-bit tiles equal {c['tiles_equal']}/{c['n']}, vision features max rel. error vs onnxruntime {c['feature_rel_err_max']:.2e}; "
             f"kept positions recovered from the cache keys (worst match distance {c['match_err_max']:.1e}, nearest other key "
             f"{c['next_key_distance_min']:.1e}; distinct in {c['kept_unique']}/{c['layers_checked']} layers), equal to the press's "
             f"own top-k in {c['tagged_equals_score_topk']}/{c['tagged_checked']} layer-heads; cache_position added by the adapter "
             f"{r['adapter']['cache_position_added']} times.")
    for key, d in r["kept"].items():
        L.append("")
        L.append(f"### {key}")
        hj = d["kvpress_head0_vs_head1_jaccard"]
        L.append(f"kept count kvpress - ours (samples): {d['kept_count_kvpress_minus_ours']}; image share of kept: ours {d['image_share_of_kept']['ours']:.3f}, "
                 f"kvpress {d['image_share_of_kept']['kvpress']:.3f}; kvpress's two KV heads agree (Jaccard) {'-' if hj is None else '%.3f' % hj}; per-layer Jaccard ours vs kvpress: "
                 + ", ".join(f"L{l} {v:.3f}" for l, v in d["per_layer_jaccard_ours_vs_kvpress"].items()))
        q = d["text_after_image_kept_share"]
        L.append(f"text after the image (question, end of turn, Assistant:) kept: ours {q['ours']:.3f}, kvpress {q['kvpress']:.3f}; "
                 "Jaccard ours vs kvpress by budget: " + ", ".join(f"{k} {v['jaccard']:.3f} ({v['layer_samples']} layer-samples)"
                                                                  for k, v in d["jaccard_ours_vs_kvpress_by_budget"].items()))
        L.append("")
        L.append("| selection | Jaccard vs ours | Jaccard vs kvpress (per head) | identical to ours |")
        L.append("|---|---|---|---|")
        for name, v in d["ladder"].items():
            L.append(f"| {name} | {v['jaccard_vs_ours']:.3f} | {v['jaccard_vs_kvpress']:.3f} | {v['identical_to_ours']:.2f} |")
    L.append("")
    L.append(f"### Accuracy (exact match, short answers among the first held-out samples; full-cache answer lengths in tokens: {r['answer_tokens_full_cache']})")
    L.append("")
    L.append("| policy | keep | n | ours [95% Wilson] | kvpress [95% Wilson] | ours - kvpress [paired bootstrap 95%] | same hit | agree | "
             "n: ours / kvpress, prompts with kvpress budget < 64; n: the others |")
    L.append("|---|---|---|---|---|---|---|---|---|")
    f = lambda v, ci: "-" if v is None else f"{v:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"
    for a in r["accuracy"]:
        d = a.get("diff_ours_minus_kvpress")
        diff = "-" if d is None else "%+.3f [%+.3f, %+.3f]" % (d, a["diff_boot95"][0], a["diff_boot95"][1])
        same = "-" if a.get("same_hit_share") is None else "%.2f" % a["same_hit_share"]
        sm, bg = a.get("budget_below_window"), a.get("budget_at_least_window")
        split = "-" if not sm else (f"{sm['n']}: {sm['ours']:.3f} / {sm['kvpress']:.3f}; " + (f"{bg['n']}: {bg['ours']:.3f} / {bg['kvpress']:.3f}" if bg and bg["n"] else ""))
        L.append(f"| {a['policy']} | {a['keep']} | {a.get('paired_n', a['n'])} | {f(a.get('ours_accuracy'), a.get('ours_wilson95') or [0, 0])} | "
                 f"{f(a['kvpress_accuracy'], a['kvpress_wilson95'])} | {diff} | {same} | {a.get('agree', '-')} | {split} |")
    return "\n".join(L) + "\n"


if __name__ == "__main__":
    main()
