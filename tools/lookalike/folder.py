"""The json files of a SmolVLM model folder, and a tokenizer of exactly the model's vocabulary with SmolVLM's
added tokens at their real ids (presets.added_tokens)."""
import json
import os

import presets as P

HERE = os.path.dirname(os.path.abspath(__file__))
# SmolVLM's chat template; the project's own model was saved with the same one.
TEMPLATE_SOURCE = os.path.join(HERE, "..", "..", "models", "default", "tokenizer_config.json")


def chat_template():
    with open(TEMPLATE_SOURCE) as f:
        return json.load(f)["chat_template"]


def _bytes_alphabet():
    # GPT-2's byte-to-unicode table (what the ByteLevel pre-tokenizer produces).
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def tokenizer_json(vocab_size):
    """Byte-level BPE: 3 reserved tokens, the 256 byte symbols, merges of symbol pairs up to the base vocabulary,
    then the added tokens up to vocab_size. Pre-tokenizer and decoder as SmolLM2's (digits split, byte level)."""
    added = P.added_tokens()
    if vocab_size != max(added.values()) + 1:
        raise SystemExit(f"error: vocab_size {vocab_size} does not end at <end_of_utterance> {P.END_OF_UTTERANCE}")
    vocab = {"<|endoftext|>": P.ENDOFTEXT, "<|im_start|>": P.IM_START, "<|im_end|>": P.IM_END}
    alpha = _bytes_alphabet()
    for ch in alpha:
        vocab[ch] = len(vocab)
    merges = []
    # Pairs of the printable symbols first (letters, space 'Ġ', punctuation), so ordinary text merges a little.
    order = sorted(alpha, key=lambda ch: (not ch.isalnum() and ch != "Ġ", ch))
    for a in order:
        for b in order:
            if len(vocab) >= P.BASE_VOCAB:
                break
            if a + b in vocab:
                continue
            vocab[a + b] = len(vocab)
            merges.append(f"{a} {b}")
    assert len(vocab) == P.BASE_VOCAB
    specials = [{"id": i, "content": c, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False,
                 "special": True} for c, i in [("<|endoftext|>", 0), ("<|im_start|>", 1), ("<|im_end|>", 2)] + sorted(added.items(), key=lambda kv: kv[1])]
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": specials, "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": True},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": merges},
    }


def write_folder(out, p, template_in=("tokenizer_config.json", "chat_template.json"), generation_config=True, image_splitting=True):
    t, v = p["text"], p["vision"]
    tile = v["image_size"]
    seq_len = (tile // v["patch_size"]) ** 2 // (p["scale_factor"] ** 2)
    dump = lambda name, obj: json.dump(obj, open(os.path.join(out, name), "w"), indent=2, ensure_ascii=False)  # noqa: E731
    text_cfg = {"model_type": "llama", "architectures": ["VLlama3ForCausalLM"], "hidden_act": "silu",
                "tie_word_embeddings": True, "bos_token_id": P.IM_START, "eos_token_id": P.END_OF_UTTERANCE,
                "pad_token_id": P.IM_END, **t}
    dump("config.json", {
        "architectures": ["Idefics3ForConditionalGeneration"], "model_type": "idefics3", "image_token_id": P.IMAGE_TOKEN_ID,
        "scale_factor": p["scale_factor"], "tie_word_embeddings": True, "vocab_size": t["vocab_size"],
        "bos_token_id": P.IM_START, "eos_token_id": P.END_OF_UTTERANCE, "pad_token_id": P.IM_END,
        "text_config": text_cfg, "vision_config": {"model_type": "idefics3_vision", "num_channels": 3, **v},
        "lookalike": {"preset": p["name"], "note": "random weights at the published sizes (tools/lookalike)"}})
    dump("preprocessor_config.json", {
        "processor_class": "Idefics3Processor", "image_processor_type": "Idefics3ImageProcessor",
        "do_convert_rgb": True, "do_resize": True, "size": {"longest_edge": p["longest_edge"]},
        "max_image_size": {"longest_edge": tile}, "do_image_splitting": image_splitting, "resample": 1,
        "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True, "image_mean": [0.5] * 3,
        "image_std": [0.5] * 3, "do_pad": True})
    dump("processor_config.json", {"image_seq_len": seq_len, "processor_class": "Idefics3Processor"})
    if generation_config:
        dump("generation_config.json", {"bos_token_id": P.IM_START, "eos_token_id": [P.END_OF_UTTERANCE, P.IM_END],
                                        "pad_token_id": P.IM_END, "do_sample": False, "max_new_tokens": 256})
    dump("tokenizer.json", tokenizer_json(t["vocab_size"]))
    added = P.added_tokens()
    decoder = {str(i): {"content": c, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False,
                        "special": True} for c, i in [("<|endoftext|>", 0), ("<|im_start|>", 1), ("<|im_end|>", 2)] + sorted(added.items(), key=lambda kv: kv[1])}
    tok_cfg = {"add_prefix_space": False, "added_tokens_decoder": decoder,
               "additional_special_tokens": ["<fake_token_around_image>", "<image>", "<end_of_utterance>"],
               "bos_token": "<|im_start|>", "eos_token": "<end_of_utterance>", "pad_token": "<|im_end|>",
               "unk_token": "<|endoftext|>", "clean_up_tokenization_spaces": False, "legacy": False,
               "model_max_length": 8192, "processor_class": "Idefics3Processor", "tokenizer_class": "GPT2Tokenizer",
               "truncation_side": "left"}
    template = chat_template()
    if "tokenizer_config.json" in template_in:
        tok_cfg["chat_template"] = template
    dump("tokenizer_config.json", tok_cfg)
    if "chat_template.json" in template_in:
        dump("chat_template.json", {"chat_template": template})
    if "chat_template.jinja" in template_in:
        with open(os.path.join(out, "chat_template.jinja"), "w") as f:
            f.write(template)
    dump("special_tokens_map.json", {"bos_token": "<|im_start|>", "eos_token": "<end_of_utterance>",
                                     "pad_token": "<|im_end|>", "unk_token": "<|endoftext|>",
                                     "additional_special_tokens": ["<fake_token_around_image>", "<image>", "<end_of_utterance>"]})
    dump("added_tokens.json", added)
