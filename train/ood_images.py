"""Images unlike the embedded model's training images, for fitting the unfamiliar-image check's logistic head
(npm run familiarity -- --negatives DIR; runtime/model/familiarity.ts).

usage: /usr/bin/python3 train/ood_images.py OUT N [--sources DIR]

Half are photos: random crops of the wallpapers of three Debian packages (gnome-backgrounds,
lomiri-wallpapers-16.04, plasma-workspace-wallpapers), fetched once with `apt-get download` into --sources
(default ~/.cache/elastic-vlm/ood-sources) and never committed. data/unfamiliar, the test set of the check, takes
its photos from other packages (mate-backgrounds, lomiri-wallpapers-20.04, ukui-wallpapers, matplotlib's sample
data), so no test image or source is fitted on. A quarter are text pages and a quarter code, drawn by Pillow from
Python's own standard library sources (data/unfamiliar's pages are licence texts and this repository's code,
drawn by Chromium). Image i is seeded by "ood:i": the same N images every run, given the same packages.
"""
import argparse
import glob
import os
import random
import subprocess
import sys
import textwrap

from PIL import Image, ImageDraw, ImageFont

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGES = ["gnome-backgrounds", "lomiri-wallpapers-16.04", "plasma-workspace-wallpapers"]
TEXT_FONTS = ["DejaVuSans.ttf", "DejaVuSerif.ttf", "LiberationSans-Regular.ttf", "LiberationSerif-Regular.ttf"]
MONO = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"


def fetch_photos(src):
    """The packages' wallpapers, one file per wallpaper (Plasma ships each in several sizes)."""
    root = os.path.join(src, "x")
    if not os.path.isdir(root):
        os.makedirs(src, exist_ok=True)
        subprocess.run(["apt-get", "download", *PACKAGES], cwd=src, check=True, stdout=subprocess.DEVNULL)
        for deb in sorted(glob.glob(os.path.join(src, "*.deb"))):
            subprocess.run(["dpkg", "-x", deb, root], check=True)
    files = sorted(f for ext in ("jpg", "jpeg", "png", "webp") for f in glob.glob(f"{root}/**/*.{ext}", recursive=True))
    one = {}
    for f in files:
        one.setdefault(f.split("/contents/images")[0], f)
    return sorted(one.values())


def texts():
    lib = os.path.dirname(os.__file__)
    out = []
    for f in sorted(glob.glob(os.path.join(lib, "*.py")))[:120]:
        with open(f, encoding="utf-8", errors="replace") as fh:
            out.append(fh.read())
    return out


def photo(rng, photos):
    im = Image.open(rng.choice(photos)).convert("RGB")
    w, h = im.size
    s = rng.uniform(0.3, 1.0)
    cw, ch = int(w * s), min(h, int(h * s * rng.uniform(0.6, 1.4)))
    x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
    im = im.crop((x, y, x + cw, y + ch))
    im.thumbnail((rng.randint(400, 900),) * 2)
    return im


def page(rng, sources, code):
    W, H = rng.choice([(600, 800), (800, 600), (900, 700), (700, 900), (1000, 650)])
    dark = code and rng.random() < 0.5
    bg = (rng.randint(20, 45),) * 3 if dark else rng.choice([(255, 255, 255), (250, 248, 240), (245, 245, 245)])
    im = Image.new("RGB", (W, H), bg)
    d = ImageDraw.Draw(im)
    path = MONO if code and os.path.exists(MONO) else os.path.join(HERE, "fonts", rng.choice(TEXT_FONTS))
    fnt = ImageFont.truetype(path, rng.randint(11, 17))
    lines = rng.choice(sources).splitlines()
    s0 = rng.randint(0, max(0, len(lines) - 80))
    lines = lines[s0:s0 + 80]
    if not code:  # prose: the words of the source, wrapped as a page of text
        words = " ".join(l.strip() for l in lines if l.strip()).split()
        lines = textwrap.wrap(" ".join(w for w in words if w.isalpha()), width=rng.randint(60, 110))
    y, x0, lh = rng.randint(10, 40), rng.randint(10, 50), fnt.size + rng.randint(2, 6)
    accents = [(200, 120, 40), (60, 140, 220), (150, 90, 200), (80, 170, 80)]
    for line in lines:
        if y > H - lh:
            break
        fg = (220, 220, 220) if dark else (30, 30, 30)
        if code and rng.random() < 0.3:  # a highlighted token colour, as editors show
            fg = rng.choice(accents)
        d.text((x0, y), line.expandtabs(4)[:140], font=fnt, fill=fg)
        y += lh
    return im


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("n", type=int)
    ap.add_argument("--sources", default=os.path.expanduser("~/.cache/elastic-vlm/ood-sources"))
    a = ap.parse_args(argv)
    photos, prose = fetch_photos(a.sources), texts()
    if not photos or not prose:
        sys.exit(f"ood_images: no photos under {a.sources} or no text sources")
    os.makedirs(a.out, exist_ok=True)
    kinds = {"photo": 0, "text": 0, "code": 0}
    for i in range(a.n):
        rng = random.Random(f"ood:{i}")
        r = rng.random()
        kind = "photo" if r < 0.5 else ("text" if r < 0.75 else "code")
        im = photo(rng, photos) if kind == "photo" else page(rng, prose, kind == "code")
        im.save(os.path.join(a.out, f"ood_{i:05d}.png"))
        kinds[kind] += 1
    print(f"ood_images: wrote {a.n} images to {a.out} ({kinds}; {len(photos)} wallpapers of {', '.join(PACKAGES)})")


if __name__ == "__main__":
    main()
