"""Train the default Idefics3 model on the synthetic generator (bf16 autocast; one GPU, or one process per GPU under
torchrun with the gradients averaged every step): from scratch, or
continued from a model folder in the ONNX layout (--init-onnx, weights rebuilt by train/from_onnx.py and checked
against onnxruntime first; if that check fails the run logs it and trains from scratch instead).

Data is generated on the fly by DataLoader workers (Pillow drawing + augmentation + the processor-identical
uint8 tiling of model.preprocess_uint8); normalisation happens on the GPU. Each training sequence is one image
followed by a few question/answer turns (the first turn is exactly the evaluation prompt format); the loss covers
the assistant answer tokens and their <end_of_utterance>. The learning-rate schedule runs on wall-clock time:
linear warm-up, then cosine decay over --budget seconds.

Reading curriculum (train/curriculum.py, --curriculum P0,P1): a sample is a curriculum sample with probability
going linearly (wall clock) from P0 to P1 over the run; a curriculum sample is a word image (--words-frac of them)
or an ordinary family image carrying 3-6 extra reading questions besides its own. Training seeds come from the
splits "train" and "words" only (never "heldout").

Usage: python train/train.py --tok DIR --out DIR [--budget 420] [--batch 128] [--workers 15]
       continue: python train/train.py --tok models/default --init-onnx models/default --lr 5e-4 \
                 --curriculum 0.45,0.15 --seed 1 --out DIR --heldout data/heldout --eval-before
"""
import argparse
import functools
import json
import math
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import curriculum as C  # noqa: E402
import data  # noqa: E402
import dense as D  # noqa: E402
import model as M  # noqa: E402
import styles as S  # noqa: E402

KIND_NAMES = {1: "short", 2: "read", 3: "describe", 4: "words"}
N_WORDS = len(data.WORDS)


class Stream(torch.utils.data.IterableDataset):
    def __init__(self, tok_path, preset, split, start, max_len, describe_p=0.25, augment=True,
                 curriculum=(0.0, 0.0), words_frac=0.3, schedule=None):
        self.tok_path, self.preset, self.split, self.start = tok_path, preset, split, start
        self.max_len, self.describe_p, self.augment = max_len, describe_p, augment
        self.curriculum, self.words_frac, self.schedule = curriculum, words_frac, schedule
        self.family_weights = None  # {family: weight} for the family images, or None (uniform, as generated)
        self.t0, self.budget = None, 1.0  # set just before the workers fork (wall-clock curriculum schedule)

    def mix(self):
        """Sample-kind probabilities now (--schedule), or None for the linear --curriculum share."""
        if not self.schedule:
            return None
        el = 0.0 if self.t0 is None else time.time() - self.t0
        return C.schedule_mix(self.schedule, el, self.budget)

    def cur_p(self):
        p0, p1 = self.curriculum
        if self.t0 is None:
            return p0
        frac = min(1.0, max(0.0, (time.time() - self.t0) / max(self.budget, 1e-6)))
        return p0 + (p1 - p0) * frac

    def __iter__(self):
        from tokenizers import Tokenizer
        info = torch.utils.data.get_worker_info()
        wid, nw = (info.id, info.num_workers) if info else (0, 1)
        enc = M.Encoder(Tokenizer.from_file(self.tok_path), self.preset)
        i = self.start + wid
        while True:
            yield make_train_example(enc, self.preset, self.split, i, self.describe_p, self.augment, self.max_len,
                                     self.cur_p(), self.words_frac, self.mix(), self.family_weights)
            i += nw


def make_train_example(enc, preset, split, i, describe_p, augment, max_len, cur_p=0.0, words_frac=0.3, mix=None,
                       family_weights=None):
    """-> (uint8 tiles, ids, loss weights, answer kinds, multi-hot of the vocabulary words drawn on the image,
    dense token labels [tiles, tokens per tile, heads] (train/dense.py)).
    mix (--schedule): [(kind, p)] with kind in single_big / single / words / family / normal; without it a sample
    is a curriculum sample with probability cur_p (a word image with probability words_frac, else family)."""
    rng = random.Random(data.seed_for(split + "-aug", i))
    if mix is None:
        cur = cur_p > 0 and rng.random() < cur_p
        kind = ("words" if rng.random() < words_frac else "family") if cur else "normal"
    else:
        r, acc, kind = rng.random(), 0.0, mix[-1][0]
        for k, p in mix:
            acc += p
            if r < acc:
                kind = k
                break
    cur = kind not in ("normal", "styled")
    if kind in ("words", "single_big", "single"):  # word image: all of its reading questions
        s = C.make_word_sample(i, mode="mixed" if kind == "words" else kind)
        img, shift = data.augment(s["image"], rng, with_shift=True) if augment else (s["image"], (0, 0))
        turns = [(q, a, 4) for _, q, a in s["qa"]]
        present = s["words"]
    else:
        fam = None
        if family_weights:  # oversample the families of the weakest tasks (run 5)
            fam = rng.choices(data.FAMILIES, weights=[family_weights[f] for f in data.FAMILIES])[0]
        styled = kind == "styled"  # a scene drawn the way real tools draw it (train/styles.py)
        s = S.make_styled_sample(split, i, fam) if styled else data.make_sample(split, i, fam)
        img, shift = data.augment(s["image"], rng, with_shift=True) if augment else (s["image"], (0, 0))
        present = [] if styled else C.family_words(s)  # the word-presence loss knows data.py's words only
        short = [(q, a, 1) for _, q, a in s["qa"]]
        rng.shuffle(short)
        if styled and rng.random() < 0.5:  # half of them also get reading questions
            cur = True
        if cur:  # all own questions + 3-6 reading questions, shuffled
            reading = [(q, a, 2) for t, q, a in C.family_reading_qa(s, rng) if not (styled and t in C.DATA_PY_ONLY)]
            reading = reading[:rng.randint(3, 6)]
            turns = short + reading
            rng.shuffle(turns)
        else:
            turns = short[:rng.randint(1, max(1, len(short)))]
        if rng.random() < describe_p:
            d = (data.DESCRIBE_QUESTION, s["describe"], 3)
            if rng.random() < 0.5:
                turns.insert(0, d)
            else:
                turns.append(d)
    tiles, rows, cols = M.preprocess_uint8(img, preset)
    p = M.PRESETS[preset]
    grid = p["tile"] // (p["patch"] * p["scale_factor"])
    labels = D.token_labels(s["meta"]["boxes"], s["image"].size, shift, rows, cols, p["tile"], grid)
    ids, wts, kinds = enc.conversation_kinds(rows, cols, turns, describe_weight=0.3)
    ids, wts, kinds = ids[:max_len], wts[:max_len], kinds[:max_len]
    words = torch.zeros(N_WORDS, dtype=torch.float32)
    for wd in present:
        words[C.WORD_INDEX[wd]] = 1.0
    return (torch.from_numpy(tiles), torch.tensor(ids, dtype=torch.long), torch.tensor(wts, dtype=torch.float32),
            torch.tensor(kinds, dtype=torch.int8), words,
            torch.from_numpy(labels).view(tiles.shape[0], grid * grid, len(D.HEADS)))


def collate(batch, pad_id=2):
    """-> tiles, ids, weights, attention mask, kinds, words present [B, N_WORDS], tiles per sample [B],
    dense token labels [all tiles, tokens per tile, heads] (CPU)."""
    tiles = torch.cat([b[0] for b in batch], 0)
    L = max(len(b[1]) for b in batch)
    ids = torch.full((len(batch), L), pad_id, dtype=torch.long)
    wts = torch.zeros((len(batch), L), dtype=torch.float32)
    kinds = torch.zeros((len(batch), L), dtype=torch.int8)
    am = torch.zeros((len(batch), L), dtype=torch.long)
    for k, (_, i, w, kd, _, _) in enumerate(batch):
        ids[k, :len(i)] = i
        wts[k, :len(w)] = w
        kinds[k, :len(kd)] = kd
        am[k, :len(i)] = 1
    words = torch.stack([b[4] for b in batch])
    ntiles = torch.tensor([b[0].shape[0] for b in batch], dtype=torch.long)
    labels = torch.cat([b[5] for b in batch], 0)
    return tiles, ids, wts, am, kinds, words, ntiles, labels


def aux_word_loss(head, feats, words, ntiles):
    """Training-only auxiliary loss (the head is not part of the model and is never exported): a linear head on
    every image token the decoder sees (connector output) scores the vocabulary words; per sample the token scores
    are pooled by log-mean-exp over all its tiles' tokens (a soft max: "this word is somewhere") and trained with
    binary cross-entropy against the words drawn on the image (summed over the words, mean over samples)."""
    with torch.autocast(feats.device.type, enabled=False):  # float32 throughout
        lg = head(feats.float())                                   # [T, S, W]
        tile = torch.logsumexp(lg, dim=1)                          # [T, W]
        counts = ntiles.tolist()
        pooled = torch.stack([torch.logsumexp(x, dim=0) for x in torch.split(tile, counts)])  # [B, W]
        pooled = pooled - torch.log(ntiles.to(pooled.device).float() * feats.shape[1]).unsqueeze(1)
        y = words.to(pooled.device).float()
        loss = F.binary_cross_entropy_with_logits(pooled, y, reduction="none").sum(1).mean()
    with torch.no_grad():
        pred = pooled > 0
        exact = (pred == (y > 0.5)).all(1).float().mean()
    return loss, exact


def embed_with_images(model, ids, pixel_values, return_feats=False):
    """inputs_embeds with the <image> rows replaced by the connector output of all tiles (in order)."""
    inner = model.model
    emb = inner.text_model.get_input_embeddings()(ids)
    if pixel_values is not None and pixel_values.shape[0] > 0:
        vis = inner.vision_model(pixel_values=pixel_values).last_hidden_state
        feats = inner.connector(vis)
        mask = (ids == model.config.image_token_id).unsqueeze(-1)
        n_img = int(mask.sum().item())
        assert n_img == feats.shape[0] * feats.shape[1], (n_img, tuple(feats.shape))
        emb = emb.masked_scatter(mask.expand_as(emb), feats.to(emb.dtype).reshape(-1, emb.shape[-1]))
    else:
        feats = None
    return (emb, feats) if return_feats else emb


def loss_fn(model, tiles_u8, ids, wts, am, kinds=None, aux=None, dense=None):
    """aux: (head, words, ntiles, weight) adds aux_word_loss * weight; then returns loss, acc, per, aux_stats.
    dense: (heads, labels, weight) adds D.dense_loss * weight; its stats go in per["dense"]."""
    px = M.normalize(tiles_u8)
    emb, feats = embed_with_images(model, ids, px, return_feats=True)
    h = model.model.text_model(inputs_embeds=emb, attention_mask=am).last_hidden_state
    w = wts[:, 1:]
    sel = w > 0
    logits = model.lm_head(h[:, :-1][sel]).float()
    tgt = ids[:, 1:][sel]
    ce = F.cross_entropy(logits, tgt, reduction="none")
    ww = w[sel]
    loss = (ce * ww).sum() / ww.sum()
    hit = (logits.argmax(-1) == tgt).float()
    acc = hit.mean()
    if kinds is None:
        return loss, acc
    kd = kinds[:, 1:][sel]
    per = {}
    for k, name in KIND_NAMES.items():
        mk = kd == k
        per[name] = (hit[mk].sum(), mk.sum())
    if dense is not None:
        heads, labels, weight = dense
        dl, dacc = D.dense_loss(heads, feats, labels)
        loss = loss + weight * dl
        per["dense"] = (dl.detach(), dacc)
    if aux is None:
        return loss, acc, per
    head, words, ntiles, weight = aux
    al, exact = aux_word_loss(head, feats, words, ntiles)
    return loss + weight * al, acc, per, (al.detach(), exact)


@torch.no_grad()
def greedy_generate(model, enc, items, preset, device, max_new=8, batch=48):
    """items: list of (PIL image, question). Returns list of decoded answers (greedy, full KV cache)."""
    model.eval()
    eou = enc.tok.token_to_id("<end_of_utterance>")
    stops = {eou, enc.tok.token_to_id("<|im_end|>"), enc.tok.token_to_id("<|endoftext|>")}
    prepared = []
    for k, (img, q) in enumerate(items):
        tiles, rows, cols = M.preprocess_uint8(img, preset)
        ids = enc.enc(enc.prompt_text(rows, cols, q))
        prepared.append((k, tiles, ids))
    groups = {}
    for p in prepared:
        groups.setdefault(len(p[2]), []).append(p)
    out = [None] * len(items)
    for L, g in groups.items():
        for j in range(0, len(g), batch):
            chunk = g[j:j + batch]
            ids = torch.tensor([c[2] for c in chunk], device=device)
            tiles = torch.cat([torch.from_numpy(c[1]) for c in chunk]).to(device)
            emb = embed_with_images(model, ids, M.normalize(tiles))
            am = torch.ones_like(ids)
            o = model.model.text_model(inputs_embeds=emb, attention_mask=am, use_cache=True)
            past = o.past_key_values
            nxt = model.lm_head(o.last_hidden_state[:, -1]).argmax(-1)
            gen = [[] for _ in chunk]
            done = torch.zeros(len(chunk), dtype=torch.bool, device=device)
            for t in range(max_new):
                for b in range(len(chunk)):
                    if not done[b]:
                        gen[b].append(int(nxt[b]))
                done |= torch.tensor([int(x) in stops for x in nxt.tolist()], device=device)
                if bool(done.all()) or t == max_new - 1:
                    break
                am = torch.cat([am, torch.ones_like(am[:, :1])], 1)
                e = model.model.text_model.get_input_embeddings()(nxt[:, None])
                o = model.model.text_model(inputs_embeds=e, attention_mask=am, past_key_values=past, use_cache=True)
                past = o.past_key_values
                nxt = model.lm_head(o.last_hidden_state[:, -1]).argmax(-1)
            for b, c in enumerate(chunk):
                toks = [x for x in gen[b] if x not in stops]
                out[c[0]] = enc.tok.decode(toks, skip_special_tokens=True).strip()
    return out


def norm_answer(s):
    return s.strip().strip(".").strip().lower()


def rouge_l(a, b):
    x, y = a.split(), b.split()
    if not x or not y:
        return 0.0
    dp = [0] * (len(y) + 1)
    for i in range(1, len(x) + 1):
        prev = 0
        for j in range(1, len(y) + 1):
            cur = dp[j]
            dp[j] = prev + 1 if x[i - 1] == y[j - 1] else max(dp[j], dp[j - 1])
            prev = cur
    lcs = dp[-1]
    p, r = lcs / len(x), lcs / len(y)
    return 0.0 if lcs == 0 else 2 * p * r / (p + r)


def evaluate_heldout(model, enc, preset, device, heldout_dir, limit=None):
    from PIL import Image
    rows = [json.loads(l) for l in open(os.path.join(heldout_dir, "samples.jsonl"))]
    if limit:
        rows = rows[:limit]
    imgs = {}
    for r in rows:
        if r["image"] not in imgs:
            imgs[r["image"]] = Image.open(os.path.join(heldout_dir, r["image"])).convert("RGB")
    short = [r for r in rows if r["task"] != "describe"]
    desc = [r for r in rows if r["task"] == "describe"]
    t0 = time.time()
    preds_s = greedy_generate(model, enc, [(imgs[r["image"]], r["question"]) for r in short], preset, device, 16)
    preds_d = greedy_generate(model, enc, [(imgs[r["image"]], r["question"]) for r in desc], preset, device, 256)
    per = {}
    examples = []
    for r, p in zip(short, preds_s):
        ok = norm_answer(p) == norm_answer(r["answer"])
        per.setdefault(r["task"], []).append(ok)
        if len(examples) < 40 and not ok:
            examples.append({"q": r["question"], "a": r["answer"], "pred": p, "image": r["image"]})
    rl = [rouge_l(p, r["answer"]) for r, p in zip(desc, preds_d)]
    em_d = [norm_answer(p) == norm_answer(r["answer"]) for r, p in zip(desc, preds_d)]
    res = {
        "samples": len(rows),
        "short_samples": len(short),
        "accuracy_short": float(np.mean([x for v in per.values() for x in v])) if short else None,
        "per_task": {k: float(np.mean(v)) for k, v in sorted(per.items())},
        "per_task_n": {k: len(v) for k, v in sorted(per.items())},
        "describe_exact": float(np.mean(em_d)) if desc else None,
        "describe_rougeL": float(np.mean(rl)) if desc else None,
        "describe_example": {"pred": preds_d[0], "ref": desc[0]["answer"]} if desc else None,
        "wrong_examples": examples,
        "eval_seconds": time.time() - t0,
    }
    return res


def dist_setup():
    """(rank, world size, device). Under torchrun (WORLD_SIZE > 1) one process per GPU joins an NCCL group."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, torch.device("cuda" if torch.cuda.is_available() else "cpu")  # cpu: a local smoke run
    import torch.distributed as dist
    local = int(os.environ["LOCAL_RANK"])
    torch.cuda.set_device(local)
    dist.init_process_group("nccl")
    return dist.get_rank(), world, torch.device("cuda", local)


def sync_scalar(x, world, dev):
    """Rank 0's value of x on every rank (the wall-clock schedule must give every rank the same lr and stop)."""
    if world == 1:
        return x
    import torch.distributed as dist
    t = torch.tensor([x], dtype=torch.float64, device=dev)
    dist.broadcast(t, 0)
    return float(t.item())


def allreduce_grads(params, world):
    """Average the gradients over the ranks in one flat buffer (7.8 M parameters: ~31 MB a step); parameters
    without a gradient this step count as zero, so every rank takes the same optimizer step."""
    import torch.distributed as dist
    from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    grads = [p.grad for p in params]
    flat = _flatten_dense_tensors(grads)
    dist.all_reduce(flat)
    flat.div_(world)
    for g, v in zip(grads, _unflatten_dense_tensors(flat, grads)):
        g.copy_(v)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tok", required=True, help="tokenizer dir")
    ap.add_argument("--out", required=True)
    ap.add_argument("--preset", default="default")
    ap.add_argument("--budget", type=float, default=420.0, help="seconds of training")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--workers", type=int, default=15)
    ap.add_argument("--max-len", type=int, default=768)
    ap.add_argument("--heldout", default=None)
    ap.add_argument("--eval-limit", type=int, default=None)
    ap.add_argument("--heldout-real", default=None, help="a second held-out set (data/heldout-real), after training")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--warmup", type=int, default=100, help="warm-up steps")
    ap.add_argument("--lr-floor", type=float, default=0.05, help="cosine ends at this fraction of --lr")
    ap.add_argument("--curriculum", default="0,0", help="P0,P1: share of reading-curriculum samples, start,end")
    ap.add_argument("--words-frac", type=float, default=0.3, help="share of curriculum samples that are word images")
    ap.add_argument("--schedule", default=None,
                    help="named sample-kind schedule from curriculum.schedule_mix (e.g. read3); replaces --curriculum")
    ap.add_argument("--vision-lr-mult", type=float, default=1.0,
                    help="peak lr of the vision tower + connector = --lr times this")
    ap.add_argument("--aux-weight", type=float, default=0.0,
                    help="weight of the training-only word-presence loss on the image tokens (0: off)")
    ap.add_argument("--dense-weight", type=float, default=0.0,
                    help="weight of the training-only dense token-label loss (train/dense.py; 0: off)")
    ap.add_argument("--family-weights", default=None,
                    help="e.g. shapes=0.3,bars=0.4,ui=0.1,flow=0.2: family mix of the family images (default uniform)")
    ap.add_argument("--init-onnx", default=None, help="continue from this ONNX model folder (train/from_onnx.py)")
    ap.add_argument("--scratch-lr", type=float, default=1e-3, help="peak lr if --init-onnx fails its check")
    ap.add_argument("--verify-image", default=None, help="image for the ONNX-vs-PyTorch check of --init-onnx")
    ap.add_argument("--eval-before", action="store_true", help="held-out eval of the initial model first")
    ap.add_argument("--deadline", type=float, default=None,
                    help="unix time by which training must stop (the budget shrinks to fit, 40 s kept for eval)")
    ap.add_argument("--progress", default=None, help="also write the log here every minute")
    a = ap.parse_args()
    rank, world, dev = dist_setup()
    main0 = rank == 0
    if not main0:  # one log, one checkpoint, one evaluation: rank 0's
        a.heldout, a.progress, a.eval_before = None, None, False
        a.out = os.path.join(a.out, f"rank{rank}")
    os.makedirs(a.out, exist_ok=True)
    torch.manual_seed(a.seed)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    from tokenizers import Tokenizer
    tok_path = os.path.join(a.tok, "tokenizer.json")
    tok = Tokenizer.from_file(tok_path)
    enc = M.Encoder(tok, a.preset)
    init = {"mode": "scratch"}
    model = None
    if a.init_onnx:
        t0 = time.time()
        try:
            import from_onnx
            m0, info = from_onnx.rebuild(a.init_onnx, a.preset, impl="eager")
            rep = from_onnx.verify_against_onnx(m0, a.init_onnx, a.verify_image, preset=a.preset)
            init = {"mode": "onnx" if rep.get("ok") else "scratch (ONNX rebuild did not verify)",
                    "from": a.init_onnx, "rebuild": info, "verify": rep}
            if rep.get("ok"):
                model = M.set_attn(m0, "sdpa").to(dev)
        except Exception as ex:  # never waste the run: fall back to scratch
            import traceback
            traceback.print_exc()
            init = {"mode": "scratch (ONNX rebuild failed)", "from": a.init_onnx, "error": repr(ex)[:2000]}
        init["seconds"] = round(time.time() - t0, 1)
        print("INIT", json.dumps(init, default=str)[:4000], flush=True)
        if model is None:
            a.lr = a.scratch_lr
            print(f"WARNING: continuing from {a.init_onnx} failed; training from scratch at lr {a.lr}", flush=True)
    if model is None:
        model = M.build_model(a.preset, tok, impl="sdpa").to(dev)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"params {n_params/1e6:.2f}M  attn={model.config.text_config._attn_implementation}", flush=True)
    log = {"config": vars(a), "params": n_params, "steps": [], "card": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
           "gpus": world, "init": init}

    def save_log():
        json.dump(log, open(os.path.join(a.out, "train_log.json"), "w"), indent=1, default=str)
        if a.progress:
            json.dump(log, open(a.progress, "w"), indent=1, default=str)

    if a.eval_before and a.heldout and init["mode"] == "onnx":
        res = evaluate_heldout(model, enc, a.preset, dev, a.heldout, a.eval_limit)
        log["heldout_before"] = res
        print("HELDOUT_BEFORE", json.dumps({k: v for k, v in res.items() if k not in ("wrong_examples",)}),
              flush=True)
    save_log()

    vis_ids = {id(p) for p in model.model.vision_model.parameters()} | {id(p) for p in model.model.connector.parameters()}
    groups = {}
    for n, p in model.named_parameters():
        vis = id(p) in vis_ids
        dec = p.ndim >= 2 and "embed" not in n
        g = groups.setdefault((vis, dec), {"params": [], "weight_decay": 0.05 if dec else 0.0,
                                           "lr_scale": a.vision_lr_mult if vis else 1.0,
                                           "name": ("vision" if vis else "text") + ("_decay" if dec else "_nodecay")})
        g["params"].append(p)
    head = None
    if a.aux_weight > 0:  # training-only word-presence head on the connector output (never exported)
        head = torch.nn.Linear(model.config.text_config.hidden_size, N_WORDS).to(dev)
        torch.nn.init.zeros_(head.weight)
        torch.nn.init.constant_(head.bias, -2.2)
        groups["aux"] = {"params": list(head.parameters()), "weight_decay": 0.0, "lr_scale": a.vision_lr_mult,
                         "name": "aux_head"}
    heads = None
    if a.dense_weight > 0:  # training-only dense token-label heads on the connector output (never exported)
        hid = model.config.text_config.hidden_size
        heads = torch.nn.ModuleDict({n: torch.nn.Linear(hid, c) for n, c in D.HEADS.items()}).to(dev)
        for m_ in heads.values():
            torch.nn.init.zeros_(m_.weight)
            torch.nn.init.zeros_(m_.bias)
        groups["dense"] = {"params": list(heads.parameters()), "weight_decay": 0.0, "lr_scale": a.vision_lr_mult,
                           "name": "dense_heads"}
    print("param groups", {g["name"]: (sum(p.numel() for p in g["params"]), g["lr_scale"]) for g in groups.values()},
          flush=True)
    opt = torch.optim.AdamW(list(groups.values()), lr=a.lr, betas=(0.9, 0.98), eps=1e-8, fused=True)
    clip_params = (list(model.parameters()) + (list(head.parameters()) if head is not None else [])
                   + (list(heads.parameters()) if heads is not None else []))
    if world > 1:  # same start everywhere (the rebuild is deterministic; this makes it certain)
        import torch.distributed as dist
        for p_ in clip_params:
            dist.broadcast(p_.data, 0)
    pad_id = tok.token_to_id("<|im_end|>")
    cur = tuple(float(x) for x in a.curriculum.split(","))
    ds = Stream(tok_path, a.preset, "train", start=a.seed * 100_000_000 + rank * 10_000_000, max_len=a.max_len,
                curriculum=cur,
                words_frac=a.words_frac, schedule=a.schedule)
    if a.family_weights:
        ds.family_weights = {k: float(v) for k, v in (x.split("=") for x in a.family_weights.split(","))}
    dl = torch.utils.data.DataLoader(ds, batch_size=a.batch, num_workers=a.workers, pin_memory=True,
                                     prefetch_factor=4, persistent_workers=False, multiprocessing_context="fork",
                                     collate_fn=functools.partial(collate, pad_id=pad_id))
    if a.deadline:
        fit = a.deadline - time.time() - 40
        if fit < a.budget:
            print(f"budget {a.budget:.0f}s -> {fit:.0f}s to meet the deadline", flush=True)
            a.budget = max(30.0, fit)
    a.budget = sync_scalar(a.budget, world, dev)  # every rank stops at the same step
    log["budget_used"] = a.budget
    warm = a.warmup
    step, t_start, t_wait, samples = 0, None, 0.0, 0
    last_ckpt = last_prog = time.time()
    kacc = {n: [0.0, 0.0] for n in KIND_NAMES.values()}
    aux_acc = [0.0, 0.0, 0]
    def fresh_dense():  # dense-head sums since the last record
        return dict({n_: 0.0 for n_ in D.HEAD_NAMES}, loss=0.0, n=0)

    dense_acc = fresh_dense()
    ds.t0, ds.budget = time.time(), a.budget
    it = iter(dl)
    t_first = time.time()
    ema = None
    while True:
        t0 = time.time()
        tiles, ids, wts, am, kinds, words, ntiles, labels = next(it)
        tw = time.time() - t0
        if t_start is None:
            t_start = time.time()
            print(f"first batch after {t_start - t_first:.1f}s", flush=True)
        else:
            t_wait += tw
        el = sync_scalar(time.time() - t_start, world, dev)  # rank 0's clock: one lr and one last step for all
        frac = min(1.0, el / a.budget)
        fl = a.lr_floor
        lr = a.lr * min(1.0, (step + 1) / warm) * (fl + (1 - fl) * 0.5 * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = lr * g.get("lr_scale", 1.0)
        tiles, ids, wts, am, kinds, words, labels = (x.to(dev, non_blocking=True)
                                                     for x in (tiles, ids, wts, am, kinds, words, labels))
        dense = (heads, labels, a.dense_weight) if heads is not None else None
        model.train()
        aux_stats = None
        with torch.autocast(dev.type, dtype=torch.bfloat16):
            if head is not None:
                try:
                    loss, acc, per, aux_stats = loss_fn(model, tiles, ids, wts, am, kinds,
                                                        aux=(head, words, ntiles, a.aux_weight), dense=dense)
                except Exception:  # never waste the run: drop the auxiliary loss
                    import traceback
                    traceback.print_exc()
                    print("WARNING: auxiliary word loss failed; continuing without it", flush=True)
                    head = None
                    log["aux_failed_at_step"] = step
            if head is None:
                loss, acc, per = loss_fn(model, tiles, ids, wts, am, kinds, dense=dense)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if world > 1:
            allreduce_grads(clip_params, world)
        gn = torch.nn.utils.clip_grad_norm_(clip_params, 1.0)
        opt.step()
        step += 1
        samples += ids.shape[0] * world
        dstats = per.pop("dense", None)
        if step % 5 == 0 or step == 1:
            if dstats is not None:
                dense_acc["loss"] += float(dstats[0])
                for n_, v_ in dstats[1].items():
                    dense_acc[n_] += float(v_)
                dense_acc["n"] += 1
            for n, (h_, c_) in per.items():
                kacc[n][0] += float(h_)
                kacc[n][1] += float(c_)
            if aux_stats is not None:
                aux_acc[0] += float(aux_stats[0])
                aux_acc[1] += float(aux_stats[1])
                aux_acc[2] += 1
        if step % 25 == 0 or step == 1:
            lv = float(loss)
            ema = lv if ema is None else 0.9 * ema + 0.1 * lv
            rec = {"step": step, "t": round(el, 1), "loss": round(lv, 4), "tok_acc": round(float(acc), 4),
                   "lr": lr, "grad_norm": round(float(gn), 3), "samples": samples,
                   "samples_per_s": round(samples / max(el, 1e-6), 1), "data_wait_s": round(t_wait, 1),
                   "seq_len": ids.shape[1], "curriculum_p": round(ds.cur_p(), 3)}
            mix = ds.mix()
            if mix is not None:
                rec["mix"] = {k: round(p, 3) for k, p in mix}
            for n, (h_, c_) in kacc.items():  # answer-token accuracy by kind since the last record
                rec[f"acc_{n}"] = round(h_ / c_, 4) if c_ else None
            kacc = {n: [0.0, 0.0] for n in KIND_NAMES.values()}
            if aux_acc[2]:  # word-presence loss and exact-set accuracy since the last record
                rec["aux_loss"] = round(aux_acc[0] / aux_acc[2], 4)
                rec["aux_exact"] = round(aux_acc[1] / aux_acc[2], 4)
            aux_acc = [0.0, 0.0, 0]
            if dense_acc["n"]:  # dense-label loss and per-head accuracy on labelled tokens since the last record
                rec["dense_loss"] = round(dense_acc["loss"] / dense_acc["n"], 4)
                rec["dense_acc"] = {n_: round(dense_acc[n_] / dense_acc["n"], 4) for n_ in D.HEAD_NAMES}
            dense_acc = fresh_dense()
            log["steps"].append(rec)
            if main0:
                print(json.dumps(rec), flush=True)
        if main0 and time.time() - last_prog > 60:
            save_log()
            last_prog = time.time()
        if main0 and time.time() - last_ckpt > 120:
            model.save_pretrained(os.path.join(a.out, "pt"))
            last_ckpt = time.time()
        if el >= a.budget:
            break
    train_s = time.time() - t_start
    log["train_seconds"] = train_s
    log["total_steps"] = step
    log["total_samples"] = samples
    log["data_wait_seconds"] = t_wait
    print(f"[rank {rank}] trained {step} steps, {samples} samples in {train_s:.1f}s (data wait {t_wait:.1f}s)",
          flush=True)
    del it, dl
    if world > 1:
        import torch.distributed as dist
        dist.destroy_process_group()
    if not main0:
        return
    model.save_pretrained(os.path.join(a.out, "pt"))
    save_log()
    if a.heldout:
        res = evaluate_heldout(model.float(), enc, a.preset, dev, a.heldout, a.eval_limit)
        log["heldout_pytorch"] = res
        print(json.dumps({k: v for k, v in res.items() if k != "wrong_examples"}, indent=1), flush=True)
        save_log()
    if a.heldout_real:  # measured once, after training: never a training or selection signal
        res = evaluate_heldout(model.float(), enc, a.preset, dev, a.heldout_real)
        log["heldout_real_pytorch"] = res
        print("HELDOUT_REAL", json.dumps({k: v for k, v in res.items() if k != "wrong_examples"}), flush=True)
        save_log()


if __name__ == "__main__":
    main()
