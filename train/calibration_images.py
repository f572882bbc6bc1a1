"""Write N in-domain calibration images for the familiarity statistics (npm run familiarity).

usage: /usr/bin/python3 train/calibration_images.py OUT N [--styled] [--augment P]

Images come from the training generators with seeds of their own split ("calib"), never from data/heldout:
image i is data.make_sample("calib", i)["image"]. With --styled, and when train/styles.py exists and has
make_styled_sample(split, index), every second image (odd i) is drawn by it instead (the real-tools styles the
model is trained on as well); without that module the flag is noted and ignored. --augment P (default 0.5) passes a
share P of the images through data.augment, the training augmentation (shift, rescale, blur, JPEG, contrast), so
the statistics cover what the model saw in training, not only clean drawings. Deterministic: the same arguments
write the same files, and OUT/calibration.json says how they were made (npm run familiarity records it in the
model's familiarity.json). Needs only Pillow (Debian's python3-pil will do).
"""
import argparse
import importlib
import json
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import data  # noqa: E402

SPLIT = "calib"


def styled_maker():
    """styles.make_styled_sample when train/styles.py provides it, else None (with the reason on stderr)."""
    if not os.path.exists(os.path.join(HERE, "styles.py")):
        print("calibration_images: --styled: train/styles.py does not exist yet; all images from data.py",
              file=sys.stderr)
        return None
    try:
        styles = importlib.import_module("styles")
    except Exception as e:  # a module being written may not import yet
        print(f"calibration_images: --styled: train/styles.py does not import ({e}); all images from data.py",
              file=sys.stderr)
        return None
    fn = getattr(styles, "make_styled_sample", None)
    if not callable(fn):
        print("calibration_images: --styled: train/styles.py has no make_styled_sample; all images from data.py",
              file=sys.stderr)
        return None
    return fn


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("n", type=int)
    ap.add_argument("--styled", action="store_true", help="draw half of the images with train/styles.py")
    ap.add_argument("--augment", type=float, default=0.5, help="share of images passed through data.augment")
    a = ap.parse_args(argv)
    if a.n < 1:
        ap.error("N must be at least 1")
    if not 0 <= a.augment <= 1:
        ap.error("--augment must be in [0, 1]")
    styled = styled_maker() if a.styled else None
    os.makedirs(a.out, exist_ok=True)
    counts = {"data": 0, "styled": 0, "augmented": 0}
    for i in range(a.n):
        if styled is not None and i % 2 == 1:
            img, kind = styled(SPLIT, i)["image"], "styled"
        else:
            img, kind = data.make_sample(SPLIT, i)["image"], "data"
        counts[kind] += 1
        rng = random.Random(f"{SPLIT}-augment:{i}")
        if rng.random() < a.augment:
            img = data.augment(img.convert("RGB"), rng)
            counts["augmented"] += 1
        img.convert("RGB").save(os.path.join(a.out, f"calib_{i:05d}.png"), optimize=False)
    with open(os.path.join(a.out, "calibration.json"), "w") as f:
        json.dump({"generator": "train/calibration_images.py", "split": SPLIT, "images": a.n,
                   "styled_requested": a.styled, "styled": counts["styled"], "augment": a.augment,
                   "augmented": counts["augmented"]}, f)
        f.write("\n")
    print(f"calibration_images: wrote {a.n} images to {a.out} ({counts['data']} data.py, {counts['styled']} "
          f"styles.py, {counts['augmented']} augmented)")


if __name__ == "__main__":
    main()
