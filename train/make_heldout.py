"""Write the fixed held-out evaluation set (data/heldout/), sample images (media/samples/) and the tiny model's
fixture images (test/fixtures/images/). Runs with Pillow only (no torch): python3 train/make_heldout.py
Seeds come from the split names "heldout" / "samples", which training (split "train") never uses."""
import json
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PER_TASK = 24
N_DESCRIBE = 60


def heldout():
    out = os.path.join(ROOT, "data", "heldout")
    os.makedirs(out, exist_ok=True)
    need = {t: PER_TASK for t in data.SHORT_TASKS}
    fam_desc = {f: N_DESCRIBE // 4 for f in data.FAMILIES}
    rows = []
    i = 0
    while any(v > 0 for v in need.values()) or any(v > 0 for v in fam_desc.values()):
        s = data.make_sample("heldout", i, data.FAMILIES[i % 4])
        i += 1
        useful = [(t, q, a) for t, q, a in s["qa"] if need.get(t, 0) > 0]
        take_desc = fam_desc[s["family"]] > 0
        if not useful and not take_desc:
            continue
        name = f"{i - 1:04d}_{s['family']}.png"
        s["image"].save(os.path.join(out, name), optimize=True)
        for t, q, a in useful[:2]:
            need[t] -= 1
            rows.append({"image": name, "question": q, "answer": a, "task": t})
        if take_desc:
            fam_desc[s["family"]] -= 1
            rows.append({"image": name, "question": data.DESCRIBE_QUESTION, "answer": s["describe"],
                         "task": "describe"})
    with open(os.path.join(out, "samples.jsonl"), "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    print("heldout", len(rows), "samples from", i, "seeds")


def samples():
    out = os.path.join(ROOT, "media", "samples")
    os.makedirs(out, exist_ok=True)
    qs = []
    for k, fam in enumerate(data.FAMILIES + ["bars"]):
        s = data.make_sample("samples", k, fam)
        name = f"{fam}{'' if k < 4 else '-2'}.png"
        s["image"].save(os.path.join(out, name), optimize=True)
        t, q, a = s["qa"][0]
        qs.append({"image": name, "question": q, "answer": a, "task": t, "describe": s["describe"]})
    json.dump(qs, open(os.path.join(out, "questions.json"), "w"), indent=2)


def fixture_images():
    out = os.path.join(ROOT, "test", "fixtures", "images")
    os.makedirs(out, exist_ok=True)
    # 100x80 photo-like gradient with soft blobs
    img = Image.new("RGB", (100, 80))
    px = img.load()
    for y in range(80):
        for x in range(100):
            px[x, y] = (int(255 * x / 99), int(255 * y / 79), int(128 + 100 * ((x + y) % 17) / 16) % 256)
    d = ImageDraw.Draw(img)
    d.ellipse([20, 15, 55, 50], fill=(250, 240, 200))
    img.save(os.path.join(out, "gradient.png"))
    # 128x96 diagram drawn by the generator, downsized
    s = data.make_sample("fixtures", 0, "shapes")
    s["image"].resize((128, 96), Image.LANCZOS).save(os.path.join(out, "diagram.png"))
    # 128x128: exact multiple of the tiny tile (64) -> tiles are exact crops
    s = data.make_sample("fixtures", 1, "ui")
    s["image"].resize((128, 128), Image.LANCZOS).save(os.path.join(out, "exact.png"))


if __name__ == "__main__":
    heldout()
    samples()
    fixture_images()
