"""Checks data/heldout-real/ against train/scenes.py and draws a contact sheet to look at.

    /usr/bin/python3 tools/heldout_real/check.py [--dir DIR] [--sheet OUT.png] [--first K]

Every line of samples.jsonl has image/question/answer/task; every image exists, is at most 900 px and is listed
in sources.json; every (question, answer) is the one scenes.py gives for that image's scene, and every answer is
one of that scene's labels / values (a title, a button, an option, a bar label or value, a step, a colour, a count,
a direction). Prints the counts per task; exits 1 on the first inconsistency."""
import argparse
import collections
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "train"))
import data  # noqa: E402
import scenes  # noqa: E402
from PIL import Image  # noqa: E402

MAX_SIDE = 900


def allowed(task, scene):
    """The answers a scene can have for a task: its labels, values or words."""
    m = scene["meta"]
    return {
        "ui_title": {m.get("title")}, "ui_button": set(m.get("buttons", [])), "ui_checked": set(m.get("options", [])),
        "bars_extreme": set(m.get("labels", [])), "bars_value": {str(v) for v in m.get("values", [])},
        "bars_count": {str(len(m.get("labels", [])))}, "bars_title": {m.get("title")},
        "flow_next": set(m.get("labels", [])[1:]), "shapes_color": set(data.COLORS),
        "shapes_count": {str(k) for k in range(1, 7)},
        "shapes_relation": {"left", "right", "above", "below"},
    }.get(task)


def check(folder):
    rows = [json.loads(l) for l in open(os.path.join(folder, "samples.jsonl")) if l.strip()]
    sources = json.load(open(os.path.join(folder, "sources.json")))["images"]
    pngs = sorted(f for f in os.listdir(folder) if f.endswith(".png"))
    if sorted(sources) != pngs:
        raise SystemExit(f"sources.json lists {len(sources)} images, the folder has {len(pngs)}")
    for n, r in enumerate(rows, 1):
        where = f"samples.jsonl:{n}"
        if set(r) != {"image", "question", "answer", "task"} or not all(isinstance(v, str) and v for v in r.values()):
            raise SystemExit(f"{where}: not image/question/answer/task strings: {r}")
        if r["image"] not in sources:
            raise SystemExit(f"{where}: image {r['image']} is missing")
        split, i, fam = sources[r["image"]]["scene"]
        scene = scenes.make_scene(split, i, fam)
        if not r["image"].endswith(f"_{scene['family']}.png"):
            raise SystemExit(f"{where}: {r['image']} is not a {scene['family']} image")
        if r["task"] == "describe":
            if r["question"] != data.DESCRIBE_QUESTION or r["answer"] != scene["describe"]:
                raise SystemExit(f"{where}: not the scene's description")
            continue
        if (r["task"], r["question"], r["answer"]) not in [tuple(x) for x in scene["qa"]]:
            raise SystemExit(f"{where}: not one of the scene's questions: {r}")
        ok = allowed(r["task"], scene)
        if ok is None or r["answer"] not in ok:
            raise SystemExit(f"{where}: answer {r['answer']!r} is not one of {sorted(ok or [])}")
    for f in pngs:
        with Image.open(os.path.join(folder, f)) as im:
            if max(im.size) > MAX_SIDE or im.mode != "RGB":
                raise SystemExit(f"{f}: {im.size} {im.mode}")
    return rows, pngs


def sheet(folder, pngs, out, first, cell=384, cols=4):
    """The first `first` images, each shrunk to a cell (as the model would see them, smaller)."""
    pick = pngs[:first]
    rows = (len(pick) + cols - 1) // cols
    canvas = Image.new("RGB", (cols * cell, rows * cell), (128, 128, 128))
    for k, f in enumerate(pick):
        with Image.open(os.path.join(folder, f)) as im:
            im = im.convert("RGB")
            im.thumbnail((cell - 4, cell - 4), Image.LANCZOS)
            canvas.paste(im, ((k % cols) * cell + 2, (k // cols) * cell + 2))
    canvas.save(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default=os.path.join(ROOT, "data", "heldout-real"))
    ap.add_argument("--sheet")
    ap.add_argument("--first", type=int, default=16)
    args = ap.parse_args()
    rows, pngs = check(args.dir)
    counts = collections.Counter(r["task"] for r in rows)
    size = sum(os.path.getsize(os.path.join(args.dir, f)) for f in os.listdir(args.dir))
    print(f"ok: {len(rows)} samples ({len(rows) - counts['describe']} short, {counts['describe']} describe), "
          f"{len(pngs)} images, {size / 1e6:.2f} MB")
    for t in sorted(counts):
        print(f"  {t:16s} {counts[t]}")
    if args.sheet:
        sheet(args.dir, pngs, args.sheet, args.first)


if __name__ == "__main__":
    main()
