"""Train a small byte-level BPE tokenizer on the generator's text and save it in the SmolVLM layout.

Pre-tokenizer: digits split individually, then byte-level (GPT-2 regex), like SmolVLM. Special tokens come
first in the vocabulary (ids 0..). No BOS is added automatically (no post-processor template).
Usage: python train/tokenizer.py OUT_DIR [--samples N]
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402

CHAT_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}"
    "{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>\n"
    "{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<end_of_utterance>", "<fake_token_around_image>",
           "<image>", "<global-img>"]
SPECIAL += [f"<row_{r}_col_{c}>" for r in range(1, 7) for c in range(1, 7)]
UNK, BOS, PAD, EOS = "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<end_of_utterance>"


def corpus(n):
    extra = ["User:", "Assistant:", "User: ", "Assistant: ", "\n", "\n\n", "What is in this image?",
             "What is shown here?", "Answer with one word.", "0123456789", data.DESCRIBE_QUESTION]
    for i in range(n):
        s = data.make_sample("tokenizer", i)
        for _, q, a in s["qa"]:
            yield f"User:{q}\nAssistant: {a}\n"
        yield f"User: {data.DESCRIBE_QUESTION}\nAssistant: {s['describe']}\n"
    for _ in range(20):
        yield from extra


def train(out_dir, n_samples=800, vocab_size=1024):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers, AddedToken

    tok = Tokenizer(models.BPE(unk_token=None, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=SPECIAL,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(corpus(n_samples), trainer=trainer)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL])
    os.makedirs(out_dir, exist_ok=True)
    tok.save(os.path.join(out_dir, "tokenizer.json"))
    write_configs(out_dir, tok)
    return tok


def write_configs(out_dir, tok):
    ids = {t: tok.token_to_id(t) for t in SPECIAL}
    added_decoder = {str(ids[t]): {"content": t, "lstrip": False, "normalized": False, "rstrip": False,
                                   "single_word": False, "special": True} for t in SPECIAL}
    cfg = {
        "add_bos_token": False,
        "add_eos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": added_decoder,
        "additional_special_tokens": ["<fake_token_around_image>", "<image>", "<end_of_utterance>"],
        "bos_token": BOS,
        "eos_token": EOS,
        "pad_token": PAD,
        "unk_token": UNK,
        "chat_template": CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "legacy": False,
        "model_max_length": 2048,
        "processor_class": "Idefics3Processor",
        "tokenizer_class": "GPT2Tokenizer",
        "truncation_side": "left",
        "vocab_size": tok.get_vocab_size(),
    }
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    stm = {
        "additional_special_tokens": [
            {"content": t, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False}
            for t in ["<fake_token_around_image>", "<image>", "<end_of_utterance>"]],
        "bos_token": {"content": BOS, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False},
        "eos_token": {"content": EOS, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False},
        "pad_token": {"content": PAD, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False},
        "unk_token": {"content": UNK, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False},
    }
    with open(os.path.join(out_dir, "special_tokens_map.json"), "w") as f:
        json.dump(stm, f, indent=2)
    with open(os.path.join(out_dir, "added_tokens.json"), "w") as f:
        json.dump({t: ids[t] for t in SPECIAL}, f, indent=2)
    with open(os.path.join(out_dir, "chat_template.jinja"), "w") as f:
        f.write(CHAT_TEMPLATE)


TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json"]


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--samples", type=int, default=800)
    a = ap.parse_args()
    t = train(a.out, a.samples)
    print("vocab", t.get_vocab_size())
    enc = t.encode("<|im_start|>User:<image>What is the value of gamma?<end_of_utterance>\nAssistant: 17")
    print(enc.tokens)
