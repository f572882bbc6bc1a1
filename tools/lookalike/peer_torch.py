"""A PyTorch peer for `npm run bench`'s describe scenario, text decoder only: transformers' Llama with a look-alike's
seeded weights (the same as its ONNX files, parity_torch.py checks them to 1e-6) generates greedily from a prompt of
random embeddings as long as the bench's (1,153), 512 new tokens forced, full cache. Times each new token with a
streamer, as bench/peer.ts does for transformers.js. The vision encoder is not part of it.
Needs torch and transformers (the GPU machine has them).
Usage: python peer_torch.py --preset smolvlm-256m [--device cpu|cuda] [--dtype fp32|fp16] [--prompt 1153] [--new 512]
-> one JSON line"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np  # noqa: E402

import presets as P  # noqa: E402
import weights as W  # noqa: E402
from parity_torch import hf_model  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="fp32", choices=["fp32", "fp16"])
    ap.add_argument("--attn", default="sdpa", choices=["sdpa", "eager"])
    ap.add_argument("--prompt", type=int, default=1153)
    ap.add_argument("--new", type=int, default=512)
    a = ap.parse_args()
    import torch
    import transformers
    from transformers.generation.streamers import BaseStreamer

    t = P.preset(a.preset, None)["text"]
    m = hf_model(t, W.text_weights(t, a.seed))
    m.config._attn_implementation = a.attn
    m = m.to(device=a.device, dtype=torch.float16 if a.dtype == "fp16" else torch.float32)
    rng = np.random.default_rng(123)
    embeds = torch.from_numpy(rng.standard_normal((1, a.prompt, t["hidden_size"]), dtype=np.float32)).to(m.device, m.dtype)

    stamps = []

    class Clock(BaseStreamer):
        def put(self, value):
            if a.device == "cuda":
                torch.cuda.synchronize()
            stamps.append(time.perf_counter())

        def end(self):
            pass

    def run(n):
        stamps.clear()
        t0 = time.perf_counter()
        with torch.no_grad():
            m.generate(inputs_embeds=embeds, attention_mask=torch.ones(1, a.prompt, dtype=torch.long, device=m.device),
                       max_new_tokens=n, min_new_tokens=n, do_sample=False, streamer=Clock(), pad_token_id=0)
        return time.perf_counter() - t0

    run(8)  # warm-up: kernels, allocator
    wall = run(a.new)
    # generate() puts the (empty) prompt first, then the first token after the prefill, then one token a step
    gaps = sorted(np.diff(stamps[1:]) * 1000)
    out = {"peer": "pytorch", "torch": torch.__version__, "transformers": transformers.__version__, "device": a.device,
           "dtype": a.dtype, "attn": a.attn, "threads": torch.get_num_threads(), "promptTokens": a.prompt, "newTokens": a.new,
           "stepMsMedian": gaps[len(gaps) // 2], "decodeTokensPerSecond": 1000 / gaps[len(gaps) // 2],
           "stepMsEnd": float(np.median(np.diff(stamps[-17:]) * 1000)), "prefillMs": (stamps[1] - stamps[0]) * 1000,
           "wallS": wall}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
