"""Writes data/heldout-real/: the held-out set drawn by renderers that training never uses (issue #16).

    /usr/bin/python3 tools/heldout_real/make.py [--out DIR]

The content of every image (what it shows, its questions, answers and description) is train/scenes.py's
make_scene("heldout-real", i, family); the pictures come from headless Chromium (ui, shapes and half of the
bar charts: HTML, CSS and SVG), graphviz dot (flow) and gnuplot's pngcairo terminal (the other bar charts).
Pillow only reads, shrinks (to at most 900 px) and saves what those tools drew. Never used for training.
"""
import argparse
import json
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "train"))
sys.path.insert(0, HERE)
import data  # noqa: E402
import scenes  # noqa: E402
import bars  # noqa: E402
import flow  # noqa: E402
import render  # noqa: E402
import shapes  # noqa: E402
import ui  # noqa: E402

SPLIT = "heldout-real"
PER_FAMILY = 25
DESCRIBE_EVERY = (10, 4)  # "Describe this image." for images i with i % 10 < 4: 40 of 100


def draw(scene, k):
    """(image, renderer) of a scene; k is its rank within its family (bars alternate Chromium / gnuplot)."""
    rng = random.Random(scene["style_seed"])
    fam, meta = scene["family"], scene["meta"]
    if fam == "flow":
        return flow.draw(meta, rng), "graphviz dot"
    if fam == "bars" and k % 2:
        return render.gnuplot(bars.gnuplot_script(meta, rng)), "gnuplot pngcairo"
    page = {"shapes": shapes.page, "bars": bars.svg_page, "ui": ui.page}[fam]
    return render.chromium(*page(meta, rng)), "chromium"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(ROOT, "data", SPLIT))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for f in os.listdir(args.out):  # a rerun leaves no stale image behind
        if f.endswith(".png"):
            os.remove(os.path.join(args.out, f))
    rows, sources = [], {}
    for i in range(PER_FAMILY * len(data.FAMILIES)):
        fam = data.FAMILIES[i % len(data.FAMILIES)]
        scene = scenes.make_scene(SPLIT, i, fam)
        im, renderer = draw(scene, i // len(data.FAMILIES))
        name = f"{i:04d}_{fam}.png"
        render.save(im, os.path.join(args.out, name))
        sources[name] = {"renderer": renderer, "scene": [SPLIT, i, fam]}
        for task, q, a in scene["qa"]:
            rows.append({"image": name, "question": q, "answer": a, "task": task})
        if i % DESCRIBE_EVERY[0] < DESCRIBE_EVERY[1]:
            rows.append({"image": name, "question": data.DESCRIBE_QUESTION, "answer": scene["describe"],
                         "task": "describe"})
        print(f"{name} {renderer}", file=sys.stderr)
    with open(os.path.join(args.out, "samples.jsonl"), "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    with open(os.path.join(args.out, "sources.json"), "w") as f:
        json.dump({"versions": render.versions(), "images": sources}, f, indent=1)
        f.write("\n")
    print(f"{len(rows)} samples, {len(sources)} images in {args.out}")


if __name__ == "__main__":
    main()
