"""The published SmolVLM sizes (sources in docs/smolvlm-onnx-format.md). One place for every number."""

# SigLIP base-patch16-512 vision tower, shared by 256M and 500M.
VISION = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
              image_size=512, patch_size=16, layer_norm_eps=1e-6, hidden_act="gelu_pytorch_tanh")

PRESETS = {
    # SmolVLM-256M-Instruct: text model shaped like SmolLM2-135M (issue 13; vlm-onnx-layout.md).
    "smolvlm-256m": dict(
        text=dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                  num_key_value_heads=3, head_dim=64, rope_theta=100000.0, rms_norm_eps=1e-5,
                  max_position_embeddings=8192, vocab_size=49280),
        vision=VISION, scale_factor=4, longest_edge=2048),
    # SmolVLM-500M-Instruct: text model shaped like SmolLM2-360M (ColSmolVLM-Instruct-500M-base config.json,
    # SmolLM2-360M config.json).
    "smolvlm-500m": dict(
        text=dict(hidden_size=960, intermediate_size=2560, num_hidden_layers=32, num_attention_heads=15,
                  num_key_value_heads=5, head_dim=64, rope_theta=100000.0, rms_norm_eps=1e-5,
                  max_position_embeddings=8192, vocab_size=49280),
        vision=VISION, scale_factor=4, longest_edge=2048),
}

# Base BPE vocabulary of SmolLM2 and the added tokens at the ids the real tokenizer gives them.
BASE_VOCAB = 49152
ENDOFTEXT, IM_START, IM_END = 0, 1, 2


def added_tokens():
    """Content -> id for SmolVLM's added tokens (49152..49279)."""
    t = {"<global-img>": 49152}
    for r in range(1, 7):
        for c in range(1, 7):
            t[f"<row_{r}_col_{c}>"] = 49153 + (r - 1) * 6 + (c - 1)
    t["<fake_token_around_image>"] = 49189
    t["<image>"] = 49190
    for i in range(88):
        t[f"<|reserved_special_token_{i}|>"] = 49191 + i
    t["<end_of_utterance>"] = 49279
    return t


IMAGE_TOKEN_ID = 49190
END_OF_UTTERANCE = 49279


def preset(name, layers=None):
    import copy
    if name not in PRESETS:
        raise SystemExit(f"error: unknown preset {name} (known: {', '.join(PRESETS)})")
    p = copy.deepcopy(PRESETS[name])
    if layers:
        p["text"]["num_hidden_layers"] = layers
    p["name"] = name
    return p
