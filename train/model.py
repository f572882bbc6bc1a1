"""Idefics3 (SmolVLM layout) configs, processor construction and a fast, processor-identical input path.

Two models:
  default : SigLIP-style vision (tile 256 px, patch 16, hidden 192, 6 layers), pixel shuffle 2 -> 64 tokens/tile,
            Llama decoder hidden 256, 8 query heads / 2 KV heads, head_dim 32, 6 layers. Processor: longest edge
            512, tiles of 256, splitting on.
  tiny    : same structure, tile 64 px -> 4 tokens/tile, text hidden 64, 4 q heads / 2 KV heads, 3 layers.
"""
import math
import os
import sys

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

PRESETS = {
    "default": dict(
        tile=256, longest_edge=512, patch=16, scale_factor=2,
        vision=dict(hidden_size=192, intermediate_size=768, num_hidden_layers=6, num_attention_heads=6),
        text=dict(hidden_size=256, intermediate_size=768, num_hidden_layers=6, num_attention_heads=8,
                  num_key_value_heads=2, head_dim=32),
        init_range=0.02,
    ),
    "tiny": dict(
        tile=64, longest_edge=128, patch=16, scale_factor=2,
        vision=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2),
        text=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=3, num_attention_heads=4,
                  num_key_value_heads=2, head_dim=16),
        init_range=0.2,
    ),
}


def image_seq_len(preset):
    p = PRESETS[preset]
    return (p["tile"] // p["patch"]) ** 2 // (p["scale_factor"] ** 2)


def make_config(preset, tok):
    from transformers import Idefics3Config
    p = PRESETS[preset]
    vocab = tok.get_vocab_size()
    ids = {t: tok.token_to_id(t) for t in ["<image>", "<|im_start|>", "<|im_end|>", "<end_of_utterance>"]}
    vision = dict(model_type="idefics3_vision", image_size=p["tile"], patch_size=p["patch"], num_channels=3,
                  hidden_act="gelu_pytorch_tanh", layer_norm_eps=1e-6, attention_dropout=0.0,
                  initializer_range=p["init_range"], **p["vision"])
    text = dict(model_type="llama", vocab_size=vocab, max_position_embeddings=4096, rms_norm_eps=1e-5,
                hidden_act="silu", rope_theta=10000.0, rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
                attention_bias=False, mlp_bias=False, tie_word_embeddings=True,
                initializer_range=p["init_range"], bos_token_id=ids["<|im_start|>"],
                eos_token_id=ids["<end_of_utterance>"], pad_token_id=ids["<|im_end|>"], **p["text"])
    cfg = Idefics3Config(vision_config=vision, text_config=text, scale_factor=p["scale_factor"],
                         image_token_id=ids["<image>"], tie_word_embeddings=True,
                         pad_token_id=ids["<|im_end|>"], bos_token_id=ids["<|im_start|>"],
                         eos_token_id=ids["<end_of_utterance>"])
    cfg.image_token_id = ids["<image>"]
    return cfg


def set_attn(model, impl):
    try:
        model.set_attn_implementation(impl)
    except Exception as e:  # older/newer API
        print("set_attn_implementation failed:", repr(e), "- setting configs directly")
        for c in [model.config, model.config.text_config, model.config.vision_config]:
            c._attn_implementation = impl
    return model


def build_model(preset, tok, impl="eager"):
    from transformers import Idefics3ForConditionalGeneration
    cfg = make_config(preset, tok)
    try:
        cfg._attn_implementation = impl
    except Exception:
        pass
    model = Idefics3ForConditionalGeneration(cfg)
    set_attn(model, impl)
    return model


def build_image_processor(preset):
    p = PRESETS[preset]
    try:
        from transformers import Idefics3ImageProcessor as IP
    except Exception:
        from transformers.models.idefics3.image_processing_idefics3 import Idefics3ImageProcessor as IP
    return IP(do_convert_rgb=True, do_resize=True, size={"longest_edge": p["longest_edge"]},
              resample=Image.LANCZOS, do_image_splitting=True, max_image_size={"longest_edge": p["tile"]},
              do_rescale=True, rescale_factor=1 / 255, do_normalize=True, image_mean=[0.5, 0.5, 0.5],
              image_std=[0.5, 0.5, 0.5], do_pad=True)


def build_processor(preset, tok_dir):
    from transformers import Idefics3Processor, PreTrainedTokenizerFast
    tokenizer = PreTrainedTokenizerFast.from_pretrained(tok_dir)
    ip = build_image_processor(preset)
    proc = Idefics3Processor(image_processor=ip, tokenizer=tokenizer, image_seq_len=image_seq_len(preset))
    return proc


# ------------------------------------------------------------------------ fast path identical to the processor
def resize_longest(h, w, longest):
    """transformers' _resize_output_size_rescale_to_max_len: truncate, then round an odd short side UP to even."""
    ar = w / h
    if w >= h:
        w = longest
        h = int(w / ar)
        if h % 2 != 0:
            h += 1
    else:
        h = longest
        w = int(h * ar)
        if w % 2 != 0:
            w += 1
    return max(h, 1), max(w, 1)


def resize_multiple(h, w, tile):
    ar = w / h
    if w >= h:
        w = math.ceil(w / tile) * tile
        h = int(w / ar)
        h = math.ceil(h / tile) * tile
    else:
        h = math.ceil(h / tile) * tile
        w = int(h * ar)
        w = math.ceil(w / tile) * tile
    return h, w


def preprocess_uint8(img, preset):
    """PIL image -> (tiles uint8 [n, 3, tile, tile], rows, cols). Same steps and PIL LANCZOS resizes as
    Idefics3ImageProcessor (do_image_splitting=True); normalisation (x/255-0.5)/0.5 is left to the caller."""
    p = PRESETS[preset]
    tile, longest = p["tile"], p["longest_edge"]
    img = img.convert("RGB")
    w, h = img.size
    h1, w1 = resize_longest(h, w, longest)
    if (w1, h1) != (w, h):
        img = img.resize((w1, h1), Image.LANCZOS)
    h2, w2 = resize_multiple(h1, w1, tile)
    if (w2, h2) != (w1, h1):
        img = img.resize((w2, h2), Image.LANCZOS)
    arr = np.asarray(img)  # H W 3
    tiles = []
    if h2 > tile or w2 > tile:
        rows, cols = math.ceil(h2 / tile), math.ceil(w2 / tile)
        oh, ow = math.ceil(h2 / rows), math.ceil(w2 / cols)
        for r in range(rows):
            for c in range(cols):
                tiles.append(arr[r * oh:min((r + 1) * oh, h2), c * ow:min((c + 1) * ow, w2)])
        g = img.resize((tile, tile), Image.LANCZOS) if (h2, w2) != (tile, tile) else img
        tiles.append(np.asarray(g))
    else:
        rows = cols = 0
        tiles.append(arr)
    out = np.stack([t.transpose(2, 0, 1) for t in tiles])
    return np.ascontiguousarray(out), rows, cols


def normalize(tiles_u8):
    """uint8 tensor/array -> float32 pixel values exactly as the processor computes them."""
    import torch
    x = tiles_u8.to(torch.float32) if hasattr(tiles_u8, "to") else torch.from_numpy(tiles_u8).float()
    return (x * (1 / 255) - 0.5) / 0.5


def image_prompt(rows, cols, seq_len):
    s = ""
    if rows == 0 and cols == 0:
        return "<fake_token_around_image><global-img>" + "<image>" * seq_len + "<fake_token_around_image>"
    for r in range(rows):
        for c in range(cols):
            s += f"<fake_token_around_image><row_{r + 1}_col_{c + 1}>" + "<image>" * seq_len
        s += "\n"
    s += "\n<fake_token_around_image><global-img>" + "<image>" * seq_len + "<fake_token_around_image>"
    return s


class Encoder:
    """Builds token ids + loss weights for a conversation about one image with a `tokenizers.Tokenizer`."""

    def __init__(self, tok, preset):
        self.tok = tok
        self.seq_len = image_seq_len(preset)
        self.cache = {}
        self.eou = tok.token_to_id("<end_of_utterance>")

    def enc(self, text):
        r = self.cache.get(text)
        if r is None:
            r = self.tok.encode(text, add_special_tokens=False).ids
            if len(self.cache) < 20000:
                self.cache[text] = r
        return r

    def prompt_text(self, rows, cols, question):
        return "<|im_start|>User:" + image_prompt(rows, cols, self.seq_len) + question + "<end_of_utterance>\nAssistant:"

    def conversation(self, rows, cols, turns, describe_weight=0.5):
        """turns: [(question, answer, is_describe)]. Returns ids, weights (loss weight of predicting ids[t])."""
        ids, wts, _ = self.conversation_kinds(rows, cols, [(q, a, 3 if d else 1) for q, a, d in turns],
                                              describe_weight)
        return ids, wts

    def conversation_kinds(self, rows, cols, turns, describe_weight=0.5):
        """turns: [(question, answer, kind)] with kind 1 = short answer, 2 = reading curriculum, 3 = describe.
        Returns ids, weights (loss weight of predicting ids[t]) and the kind of each answer token (0 elsewhere)."""
        ids, wts, kinds = [], [], []

        def add(text, w, kind=0):
            t = self.enc(text)
            ids.extend(t)
            wts.extend([w] * len(t))
            kinds.extend([kind] * len(t))

        for k, (q, a, kind) in enumerate(turns):
            if k == 0:
                add("<|im_start|>User:" + image_prompt(rows, cols, self.seq_len), 0.0)
                add(q + "<end_of_utterance>\nAssistant:", 0.0)
            else:
                add("User: " + q + "<end_of_utterance>\nAssistant:", 0.0)
            w = describe_weight if kind == 3 else 1.0
            add(" " + a, w, kind)
            ids.append(self.eou)
            wts.append(w)
            kinds.append(kind)
            add("\n", 0.0)
        return ids, wts, kinds
