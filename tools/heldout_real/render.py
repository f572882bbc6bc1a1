"""Runs the held-out renderers (headless Chromium, graphviz dot, gnuplot) and saves what they drew.

Each function takes the renderer's source text and returns a PIL image of the tool's own output; Pillow is used
only to read the PNG, convert it to RGB, shrink it to at most MAX_SIDE and save it (no drawing).
"""
import io
import os
import shutil
import subprocess
import tempfile

from PIL import Image

MAX_SIDE = 900
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Fixed rendering: one device pixel per CSS pixel, no scrollbars, no LCD (subpixel) text, no font hinting,
# software rendering, and a fresh profile each time (nothing cached between images).
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                  "--force-device-scale-factor=1", "--font-render-hinting=none", "--disable-lcd-text",
                  "--disable-font-subpixel-positioning", "--disable-extensions", "--no-first-run",
                  "--mute-audio", "--disable-background-networking", "--default-background-color=ffffffff"]


def _run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, **kw)
    if r.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({r.returncode}): {r.stderr.decode(errors='replace')[-800:]}")
    return r


def chromium(html, width, height):
    """A screenshot of `html` in a width x height viewport."""
    with tempfile.TemporaryDirectory(prefix="heldout-real-") as tmp:
        page, shot = os.path.join(tmp, "page.html"), os.path.join(tmp, "shot.png")
        with open(page, "w", encoding="utf-8") as f:
            f.write(html)
        _run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={os.path.join(tmp, 'profile')}",
              f"--window-size={width},{height}", f"--screenshot={shot}", "file://" + page], timeout=120)
        with Image.open(shot) as im:
            return im.convert("RGB")


def dot(source):
    """graphviz dot's PNG of `source`."""
    r = _run(["dot", "-Tpng"], input=source.encode(), timeout=60)
    with Image.open(io.BytesIO(r.stdout)) as im:
        return im.convert("RGB")


def gnuplot(script):
    """gnuplot's PNG: `script` must set its terminal; the output goes to stdout."""
    r = _run(["gnuplot"], input=script.encode(), timeout=60)
    with Image.open(io.BytesIO(r.stdout)) as im:
        return im.convert("RGB")


def shrink(im, max_side=MAX_SIDE):
    """At most max_side pixels on the longest edge (Lanczos), else unchanged."""
    w, h = im.size
    if max(w, h) <= max_side:
        return im
    k = max_side / max(w, h)
    return im.resize((max(1, round(w * k)), max(1, round(h * k))), Image.LANCZOS)


def save(im, path):
    """A small, byte-stable PNG (no metadata, optimized)."""
    shrink(im).save(path, format="PNG", optimize=True)


def versions():
    """The renderers' version lines, for the README."""
    def first(cmd):
        r = subprocess.run(cmd, capture_output=True, text=True)
        lines = [l for l in (r.stdout + r.stderr).splitlines() if l.strip() and "unexpected operator" not in l]
        return lines[0].strip() if lines else "?"
    return {"chromium": first([CHROMIUM, "--version"]), "dot": first(["dot", "-V"]),
            "gnuplot": first(["gnuplot", "--version"])}
