"""npm run lookalike -- --preset smolvlm-256m|smolvlm-500m --format fused|torch [--dtypes fp32,q4,...] [--layers N]
[--seed S] [--template-in tokenizer_config.json,chat_template.json,chat_template.jinja] [--no-generation-config]
[--no-position-ids] --out DIR

Writes a SmolVLM model folder with seeded random weights at the published sizes (see docs/smolvlm-onnx-format.md).
No PyTorch: the graphs are written with onnx.helper, the dtypes with onnxruntime's quantization tools."""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import onnx  # noqa: E402

import decoder_fused  # noqa: E402
import decoder_torch  # noqa: E402
import dtypes as DT  # noqa: E402
import folder  # noqa: E402
import presets as P  # noqa: E402
import vision_embed  # noqa: E402
import weights as W  # noqa: E402

TWO_GB = 2 ** 31 - 2 ** 24  # protobuf's limit, with headroom


def save(model, path):
    big = model.ByteSize() > TWO_GB
    onnx.save(model, path, save_as_external_data=big, all_tensors_to_one_file=True,
              location=os.path.basename(path) + "_data" if big else None)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", required=True, choices=sorted(P.PRESETS))
    ap.add_argument("--format", required=True, choices=["fused", "torch"])
    ap.add_argument("--dtypes", default="fp32")
    ap.add_argument("--layers", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--template-in", default="tokenizer_config.json,chat_template.json")
    ap.add_argument("--no-generation-config", action="store_true")
    ap.add_argument("--no-image-splitting", action="store_true", help="one 512 tile per image (fast CI fixtures)")
    ap.add_argument("--no-position-ids", action="store_true", help="fused only: drop position_ids as the genai builder does")
    ap.add_argument("--parts", default="decoder_model_merged,vision_encoder,embed_tokens",
                    help="which onnx files to write (the json files are always written)")
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    dts = [d for d in a.dtypes.split(",") if d]
    for d in dts:
        if d not in DT.DTYPES:
            ap.error(f"unknown dtype {d} (known: {', '.join(DT.DTYPES)})")
    p = P.preset(a.preset, a.layers)
    t, v = p["text"], p["vision"]
    os.makedirs(os.path.join(a.out, "onnx"), exist_ok=True)
    t0 = time.time()
    folder.write_folder(a.out, p, template_in=a.template_in.split(","), generation_config=not a.no_generation_config,
                       image_splitting=not a.no_image_splitting)
    want = a.parts.split(",")
    tw = W.text_weights(t, a.seed)
    parts = {}
    if "decoder_model_merged" in want:
        parts["decoder_model_merged"] = (decoder_fused.build(t, tw, keep_position_ids=not a.no_position_ids)
                                         if a.format == "fused" else decoder_torch.build(t, tw))
    if "vision_encoder" in want:
        parts["vision_encoder"] = vision_embed.build_vision(v, t["hidden_size"], p["scale_factor"],
                                                            W.vision_weights(v, t["hidden_size"], p["scale_factor"], a.seed))
    if "embed_tokens" in want:
        parts["embed_tokens"] = vision_embed.build_embed(tw["embed"])
    del tw
    report = {"preset": a.preset, "format": a.format, "layers": t["num_hidden_layers"], "seed": a.seed, "files": {}}
    for part, model in parts.items():
        for d in dts:
            m = DT.convert(model, d, part)
            name = f"{part}{DT.suffix(d)}.onnx"
            save(m, os.path.join(a.out, "onnx", name))
            ops = {}
            for n in m.graph.node:
                ops[n.op_type] = ops.get(n.op_type, 0) + 1
            report["files"][name] = {"bytes": os.path.getsize(os.path.join(a.out, "onnx", name)), "ops": ops}
            print(f"[lookalike] onnx/{name} {report['files'][name]['bytes'] / 1e6:.1f} MB", flush=True)
    report["seconds"] = round(time.time() - t0, 1)
    rp = os.path.join(a.out, "lookalike.json")
    if os.path.exists(rp):  # several runs into one folder (one dtype each, in parallel) add to one report
        try:
            old = json.load(open(rp))
            report["files"] = {**old.get("files", {}), **report["files"]}
        except ValueError:
            pass
    json.dump(report, open(rp, "w"), indent=1)
    print(f"[lookalike] {a.out} in {report['seconds']} s", flush=True)


if __name__ == "__main__":
    main()
