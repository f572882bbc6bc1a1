"""Issue 15 probe: what would keeping the attention mass of dropped entries be worth on the short answers?

A research tool, not the product: the PyTorch twin of the default model (train/from_onnx.py), the product Elastic's
stage 1 re-computed from the twin's attention (the question's queries, pooling 5, sinks / question / global image
protected, top-k), then one of several ways to fold the dropped entries into the kept ones, and greedy answers with a
per-layer additive attention bias on the kept entries (what a `log count` would need from the decoder graph).

  python tools/mass_probe/probe.py --keep 0.3,0.2 --variants product,evict,count,count_v,mass,mass_v [--tasks a,b]
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "train"))
sys.path.insert(0, os.path.join(ROOT, "tools", "kvpress_check"))

import torch  # noqa: E402
from compare import avg_pool, budget_ours, top_keep  # noqa: E402  (the kvpress check's copies of scores.ts)

BIAS = {}      # layer -> 1-D tensor added to the attention logits of the first len(bias) cache entries
CAPTURE = {}   # layer -> probabilities [heads, q, T] of the last run, when CAPTURE["on"]


def biased_attention(module, query, key, value, attention_mask, scaling, dropout=0.0, **kw):
    rep = query.shape[1] // key.shape[1]
    k = key.repeat_interleave(rep, 1)
    v = value.repeat_interleave(rep, 1)
    s = (query @ k.transpose(-1, -2)) * scaling
    q, T = query.shape[2], k.shape[2]
    if not hasattr(module, "layer_idx"):  # the vision encoder: bidirectional, its own mask
        if attention_mask is not None:
            s = s + attention_mask
        p = s.softmax(-1)
        return (p @ v).transpose(1, 2).contiguous(), p
    if q > 1:  # causal: query i sits at T - q + i
        i = torch.arange(q)[:, None] + (T - q)
        s = s.masked_fill(torch.arange(T)[None, :] > i, float("-inf"))
    b = BIAS.get(module.layer_idx)
    if b is not None:
        s[..., : b.shape[0]] += b
    p = s.softmax(-1)
    if CAPTURE.get("on"):
        CAPTURE[module.layer_idx] = p[0].detach()
    return (p @ v).transpose(1, 2).contiguous(), p


def stage1(att, ids, image_id, keep, start=4, kernel=int(os.environ.get("PROBE_KERNEL", "5"))):
    """Per layer: kept positions (sorted) and the window score, as elasticQuestion.ts afterPrefill (first turn)."""
    T = len(ids)
    img = np.array(ids) == image_id
    last = int(np.flatnonzero(img)[-1])
    question = T - 1 - last
    q = min(question, 64)
    protect = np.zeros(T, bool)
    protect[:start] = True
    protect[T - question:] = True
    j = last
    while j >= 0 and img[j] and os.environ.get("PROBE_GLOBAL", "1") == "1":
        protect[j] = True
        j -= 1
    B = budget_ours(keep, T, start + 1)
    out = []
    for l in sorted(att):
        w = att[l][:, -q:, :].double().mean(dim=(0, 1)).numpy()
        pooled = avg_pool(w, kernel, start, T - question)
        out.append((top_keep(pooled, B, protect), w))
    return out, img


def fold(keys, vals, kept, w, img, variant):
    """One layer: -> (K, V, bias) for the kept entries. keys/vals [1, kvh, T, d]."""
    T = keys.shape[2]
    K = keys[0].clone()
    V = vals[0].clone()
    kept_set = np.zeros(T, bool)
    kept_set[kept] = True
    dropped = np.flatnonzero(~kept_set)
    bias = torch.zeros(len(kept))
    if variant == "evict":
        return K[:, kept], V[:, kept], None
    if variant == "product":  # adjacent same-modality merge, radius 1, plain mean (runtime's default)
        slot = -np.ones(T, int)
        slot[kept] = np.arange(len(kept))
        groups = {s: [int(kept[s])] for s in range(len(kept))}
        for j in dropped:
            if not img[j]:
                continue
            for a in (j - 1, j + 1):
                if 0 <= a < T and kept_set[a] and img[a]:
                    groups[slot[a]].append(int(j))
                    break
        Kn = torch.stack([K[:, g].mean(1) for g in groups.values()], 1)
        Vn = torch.stack([V[:, g].mean(1) for g in groups.values()], 1)
        return Kn, Vn, None
    # similarity clusters: each dropped image entry joins the kept image entry most similar to it (cosine over all KV
    # heads; of the keys, of the values or of both by the variant's `_sim` suffix); text is only evicted.
    base, _, sim_of = variant.partition("@")
    if base == "count_kv_lloyd":  # count_kv, then each dropped entry moves to the nearest cluster mean, once
        Kn, Vn, bias = fold(keys, vals, kept, w, img, "count_kv")
        return lloyd(K, V, kept, img, Kn)
    if base == "count_kvt":  # text merges too, into the most similar kept text entry (past the sinks)
        return fold_text(K, V, kept, img, fold(keys, vals, kept, w, img, "count_kv"))
    kimg = [s for s, p in enumerate(kept) if img[p] or base.endswith("_any")]
    feats = {"k": [K], "v": [V], "kv": [K, V]}[sim_of or "k"]
    flat = torch.cat([f.permute(1, 0, 2).reshape(T, -1) for f in feats], 1)
    fn = flat / flat.norm(dim=1, keepdim=True)
    groups = {s: [int(kept[s])] for s in range(len(kept))}
    di = [j for j in dropped if img[j] or base.endswith("_any")]
    if di and kimg:
        sim = fn[di] @ fn[kept[kimg]].T
        best = sim.argmax(1).numpy()
        for j, b in zip(di, best):
            groups[kimg[b]].append(int(j))
    Kn = K[:, kept].clone()
    Vn = V[:, kept].clone()
    wt = torch.tensor(w, dtype=torch.float32)
    base = base.removesuffix("_any")
    for s, g in groups.items():
        if len(g) == 1:
            continue
        ww = wt[g]
        if base.startswith("count"):
            bias[s] = float(os.environ.get("PROBE_ALPHA", "1")) * math.log(len(g))
        elif base.startswith("mass"):
            bias[s] = math.log(float(ww.sum() / max(ww[0], 1e-12)))
        if base in ("count_v", "mass_v", "count_kv"):
            Vn[:, s] = V[:, g].mean(1)
        if base == "mean_kv":
            Vn[:, s] = V[:, g].mean(1)
        if base in ("count_kv", "mean_kv"):
            Kn[:, s] = K[:, g].mean(1)
        if base == "count_vw":
            Vn[:, s] = (V[:, g] * (ww / ww.sum())[None, :, None]).sum(1)
    return Kn, Vn, bias


def lloyd(K, V, kept, img, Kc):
    """One k-means step from count_kv's clusters: every dropped image entry joins the kept image slot whose merged key
    (the cluster mean) is the most similar; anchors stay in their own slot; keys, values and counts recomputed."""
    T = K.shape[1]
    kept_set = np.zeros(T, bool)
    kept_set[kept] = True
    kimg = [s for s, p in enumerate(kept) if img[p]]
    di = [j for j in range(T) if not kept_set[j] and img[j]]
    Kn = K[:, kept].clone()
    Vn = V[:, kept].clone()
    bias = torch.zeros(len(kept))
    if not di or not kimg:
        return Kn, Vn, bias
    flat = K.permute(1, 0, 2).reshape(T, -1)
    fn = flat / flat.norm(dim=1, keepdim=True)
    cen = Kc[:, kimg].permute(1, 0, 2).reshape(len(kimg), -1)
    cen = cen / cen.norm(dim=1, keepdim=True)
    best = (fn[di] @ cen.T).argmax(1).numpy()
    groups = {s: [int(kept[s])] for s in kimg}
    for j, b in zip(di, best):
        groups[kimg[b]].append(j)
    for s, g in groups.items():
        Kn[:, s] = K[:, g].mean(1)
        Vn[:, s] = V[:, g].mean(1)
        bias[s] = math.log(len(g))
    return Kn, Vn, bias


def fold_text(K, V, kept, img, done, start=4):
    """count_kv, then every dropped text entry past the sinks joins the kept text entry (past the sinks) with the most
    similar key."""
    Kn, Vn, bias = done
    T = K.shape[1]
    kept_set = np.zeros(T, bool)
    kept_set[kept] = True
    flat = K.permute(1, 0, 2).reshape(T, -1)
    fn = flat / flat.norm(dim=1, keepdim=True)
    kt = [s for s, p in enumerate(kept) if not img[p] and p >= start]
    dt = [j for j in range(start, T) if not kept_set[j] and not img[j]]
    if not kt or not dt:
        return Kn, Vn, bias
    best = (fn[dt] @ fn[kept[kt]].T).argmax(1).numpy()
    groups = {}
    for j, b in zip(dt, best):
        groups.setdefault(kt[b], []).append(j)
    for s, g in groups.items():
        c = math.exp(float(bias[s]))  # what the slot already stands for (text: 1)
        n = c + len(g)
        Kn[:, s] = (Kn[:, s] * c + K[:, g].sum(1)) / n
        Vn[:, s] = (Vn[:, s] * c + V[:, g].sum(1)) / n
        bias[s] = math.log(n)
    return Kn, Vn, bias


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.join(ROOT, "models/default"))
    ap.add_argument("--data", default=os.path.join(ROOT, "data/heldout"))
    ap.add_argument("--keep", default="0.3,0.2")
    ap.add_argument("--variants", default="product,count,count_v,mass,mass_v")
    ap.add_argument("--tasks", default="")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--max-new", type=int, default=12)
    ap.add_argument("--out", default="")
    a = ap.parse_args()
    torch.set_num_threads(2)
    from tokenizers import Tokenizer
    from transformers import AttentionInterface, DynamicCache
    import model as M
    import from_onnx
    from compare import read_samples, sample_inputs, normalize_answer
    AttentionInterface.register("biased", biased_attention)
    m, _ = from_onnx.rebuild(a.model, impl="eager")
    M.set_attn(m, "biased")
    m = m.float().eval()
    tok = Tokenizer.from_file(os.path.join(a.model, "tokenizer.json"))
    enc = M.Encoder(tok, "default")
    stop = {tok.token_to_id("<end_of_utterance>")}
    image_id = tok.token_to_id("<image>")
    samples = read_samples(a.data)
    if a.limit:
        samples = samples[: a.limit]
    tasks = set(a.tasks.split(",")) if a.tasks else None
    samples = [s for s in samples if s["task"] != "describe" and (tasks is None or s["task"] in tasks)]
    keeps = [float(k) for k in a.keep.split(",")]
    variants = a.variants.split(",")
    hits = {}
    t0 = time.time()
    L_layers = m.config.text_config.num_hidden_layers

    def greedy(first_logits, cache, T, biases):
        BIAS.clear()
        if biases:
            BIAS.update({l: b for l, b in enumerate(biases) if b is not None})
        toks, nxt = [], int(first_logits.argmax())
        for t in range(a.max_new):
            if nxt in stop:
                break
            toks.append(nxt)
            with torch.no_grad():
                o = m(input_ids=torch.tensor([[nxt]]), past_key_values=cache, use_cache=True,
                      position_ids=torch.tensor([[T + t]]))
            nxt = int(o.logits[0, -1].argmax())
        BIAS.clear()
        return tok.decode(toks, skip_special_tokens=True).strip()

    for n, s in enumerate(samples):
        x = sample_inputs(s, "cpu")
        ids = enc.enc(enc.prompt_text(x["rows"], x["cols"], s["question"]))
        T = len(ids)
        cache = DynamicCache()
        CAPTURE.clear()
        CAPTURE["on"] = True
        with torch.no_grad():
            out = m(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, T, dtype=torch.long),
                    pixel_values=x["pv"], pixel_attention_mask=x["pam"], position_ids=torch.arange(T)[None],
                    past_key_values=cache, use_cache=True)
        CAPTURE["on"] = False
        att = {l: CAPTURE[l] for l in range(L_layers)}
        logits = out.logits[0, -1]
        keys = [cache.layers[l].keys.clone() for l in range(L_layers)]
        vals = [cache.layers[l].values.clone() for l in range(L_layers)]

        def fresh(kv=None):
            c = DynamicCache()
            for l in range(L_layers):
                k, v = (keys[l], vals[l]) if kv is None else kv[l]
                c.update(k, v, l)
            return c

        want = normalize_answer(s["answer"])
        full = greedy(logits, fresh(), T, None)
        hits.setdefault(("full", 1.0), []).append(int(normalize_answer(full) == want))
        for keep in keeps:
            plan, img = stage1(att, ids, image_id, keep)
            for var in variants:
                kv, biases = [], []
                for l in range(L_layers):
                    Kn, Vn, b = fold(keys[l], vals[l], plan[l][0], plan[l][1], img, var)
                    kv.append((Kn[None].contiguous(), Vn[None].contiguous()))
                    biases.append(b)
                ans = greedy(logits, fresh(kv), T, biases)
                hits.setdefault((var, keep), []).append(int(normalize_answer(ans) == want))
        if (n + 1) % 20 == 0:
            print(f"{n + 1}/{len(samples)} {time.time() - t0:.0f}s", file=sys.stderr, flush=True)
    tasks_of = [s["task"] for s in samples]
    rows = []
    for (var, keep), h in hits.items():
        h = np.array(h)
        per = {t: float(h[[i for i, tt in enumerate(tasks_of) if tt == t]].mean()) for t in sorted(set(tasks_of))}
        rows.append({"variant": var, "keep": keep, "acc": float(h.mean()), "n": len(h), "per_task": per, "hits": h.tolist()})
        print(f"{var:10s} {keep:.1f} acc {h.mean():.3f} (n {len(h)}) " + " ".join(f"{t}:{v:.2f}" for t, v in per.items()))
    if a.out:
        json.dump({"rows": rows, "tasks": tasks_of}, open(a.out, "w"))


if __name__ == "__main__":
    main()
