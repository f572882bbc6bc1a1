"""Dense token labels: a training-only auxiliary signal for the vision tower (never exported).

Runs 1-3 taught reading only through the answer tokens: one word of supervision per question, credited to the
vision tower through the whole decoder. Here every image token the decoder sees (the connector output: one token
per 32 x 32 px of a tile, row-major, tiles then the global image) gets classes from the generator's layout
records (data.record), and small linear heads on those tokens learn them with cross-entropy:

  text : the word or number drawn there (28 vocabulary words, numbers 0-10)
  obj  : the shape there (colour x kind), or the bar there with its value
  role : what the element is for (window title, checked / unchecked option row, left / middle / right button,
         chart title, tallest / shortest / other bar label, flow box at position 0-5)
  link : what it points to (a flow box: the word in the next box, or "end"; a bar label: its bar's value)

so that "the title", "the tallest bar's label" or "what follows X" is one attention hop for the decoder.
The heads live only in train.py; the exported model has exactly the Idefics3 layout and files as before.
"""
import numpy as np

import data
import scenes

# the text classes: every label word of data.py and of the real-tools scenes (scenes.LABELS includes data.WORDS)
WORD_INDEX = {w: k for k, w in enumerate(scenes.LABELS)}
N_WORDS = len(scenes.LABELS)
N_NUM = 11  # numbers 0..10
COLOR_NAMES = list(data.COLORS)

ROLES = (["ui_title", "ui_checked", "ui_unchecked", "ui_button_left", "ui_button_middle", "ui_button_right",
          "chart_title", "bar_tallest", "bar_shortest", "bar_other"] + [f"flow_{k}" for k in range(6)])
HEADS = {  # head -> number of classes (0 = nothing of this kind here)
    "text": 1 + N_WORDS + N_NUM,
    "obj": 1 + len(COLOR_NAMES) * len(data.SHAPES) + N_NUM,
    "role": 1 + len(ROLES),
    "link": 1 + N_WORDS + 1 + N_NUM,
}
HEAD_NAMES = list(HEADS)


def _word_or_number(v, words_at=1, numbers_at=None):
    if isinstance(v, str) and v in WORD_INDEX:
        return words_at + WORD_INDEX[v]
    if numbers_at is not None and (isinstance(v, int) or (isinstance(v, str) and v.isdigit())) and 0 <= int(v) <= 10:
        return numbers_at + int(v)
    return 0


def classes_of(rec_classes):
    """A record's {head: value} -> {head index: class id} (unknown values are dropped)."""
    out = {}
    for head, v in rec_classes.items():
        c = 0
        if head == "text":
            c = _word_or_number(v, 1, 1 + N_WORDS)
        elif head == "obj":
            kind, what = v
            if kind == "bar":
                c = 1 + len(COLOR_NAMES) * len(data.SHAPES) + int(what)
            else:
                c = 1 + COLOR_NAMES.index(kind) * len(data.SHAPES) + data.SHAPES.index(what)
        elif head == "role":
            c = 1 + ROLES.index(v) if v in ROLES else 0
        elif head == "link":
            if v == "end":
                c = 1 + N_WORDS
            else:
                c = _word_or_number(v, 1, 2 + N_WORDS)
        if c:
            out[HEAD_NAMES.index(head)] = c
    return out


def token_cells(rows, cols, tile, grid):
    """Boxes [n_tiles * grid^2, 4] (x0, y0, x1, y1) in processed-image pixels of every image token, in the order
    the prompt carries them: the rows x cols tiles row-major, then the global image (the whole processed image
    resized to one tile). An image that needed no splitting (rows = cols = 0) is one tile-sized image."""
    W, H = (cols * tile, rows * tile) if rows else (tile, tile)
    cells = []
    step = tile / grid
    for r in range(rows):
        for c in range(cols):
            for i in range(grid):
                for j in range(grid):
                    x0, y0 = c * tile + j * step, r * tile + i * step
                    cells.append((x0, y0, x0 + step, y0 + step))
    gx, gy = W / grid, H / grid  # the global image's token covers W/grid x H/grid processed pixels
    for i in range(grid):
        for j in range(grid):
            cells.append((j * gx, i * gy, (j + 1) * gx, (i + 1) * gy))
    return np.asarray(cells, dtype=np.float64), W, H


def token_labels(boxes, size, shift, rows, cols, tile=256, grid=8, min_frac=0.3):
    """-> int64 [n_tokens, len(HEADS)]: for every image token and head, the class of the recorded box of that head
    overlapping the token most, if on each axis the overlap covers at least min_frac of the shorter extent; else 0.
    boxes: data.record entries in original-image pixels; size: original (w, h); shift: augment's (dx, dy)."""
    cells, W, H = token_cells(rows, cols, tile, grid)
    out = np.zeros((len(cells), len(HEADS)), dtype=np.int64)
    if not boxes:
        return out
    w, h = size
    sx, sy = W / w, H / h
    dx, dy = shift
    b = np.asarray([bx for bx, _ in boxes], dtype=np.float64)
    b = np.stack([(b[:, 0] + dx) * sx, (b[:, 1] + dy) * sy, (b[:, 2] + dx) * sx, (b[:, 3] + dy) * sy], 1)
    iw = np.clip(np.minimum(cells[:, None, 2], b[None, :, 2]) - np.maximum(cells[:, None, 0], b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(cells[:, None, 3], b[None, :, 3]) - np.maximum(cells[:, None, 1], b[None, :, 1]), 0, None)
    bw, bh = np.maximum(b[:, 2] - b[:, 0], 1e-6), np.maximum(b[:, 3] - b[:, 1], 1e-6)
    cw, ch = cells[:, 2] - cells[:, 0], cells[:, 3] - cells[:, 1]
    # per axis: the overlap covers min_frac of the shorter of the two extents (a word across three tokens still
    # labels each of them; a sliver of a neighbouring box does not)
    ok_x = iw >= min_frac * np.minimum(bw[None, :], cw[:, None])
    ok_y = ih >= min_frac * np.minimum(bh[None, :], ch[:, None])
    inter = np.where(ok_x & ok_y, iw * ih, 0.0)                                # [cells, boxes]
    cls = [classes_of(c) for _, c in boxes]
    for hd in range(len(HEADS)):
        has = np.asarray([hd in c for c in cls])
        if not has.any():
            continue
        score = np.where(has[None, :], inter, 0.0)
        best = score.argmax(1)
        ok = score[np.arange(len(cells)), best] > 0
        ids = np.asarray([c.get(hd, 0) for c in cls])
        out[ok, hd] = ids[best[ok]]
    return out


def dense_loss(heads, feats, labels, none_weight=0.1):
    """heads: torch ModuleDict name -> Linear(hidden, classes); feats [T, S, hidden] (connector output);
    labels [T, S, n_heads] int64. Cross-entropy per head, the "nothing here" class weighted none_weight (most tokens
    are empty), summed over heads. Returns (loss, {head: accuracy on labelled tokens})."""
    import torch
    import torch.nn.functional as F
    x = feats.reshape(-1, feats.shape[-1]).float()
    y = labels.reshape(-1, labels.shape[-1])
    total, acc = 0.0, {}
    with torch.autocast(x.device.type, enabled=False):
        for hd, name in enumerate(HEAD_NAMES):
            lg = heads[name](x)
            t = y[:, hd]
            wt = torch.ones(lg.shape[-1], device=x.device)
            wt[0] = none_weight
            total = total + F.cross_entropy(lg, t, weight=wt)
            with torch.no_grad():
                m = t > 0
                acc[name] = ((lg.argmax(-1) == t) & m).sum().float() / m.sum().clamp(min=1)
    return total, acc


if __name__ == "__main__":  # draw the labels over a few samples for a visual check
    import os
    import random
    import sys

    from PIL import Image, ImageDraw

    import model as M
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    out = args[0] if args else "/tmp/dense_preview"
    os.makedirs(out, exist_ok=True)
    import styles
    for i in range(8):
        s = styles.make_styled_sample("preview", i) if "--styled" in sys.argv else data.make_sample("preview", i)
        rng = random.Random(i)
        img, shift = data.augment(s["image"], rng, with_shift=True)
        tiles, rows, cols = M.preprocess_uint8(img, "default")
        lab = token_labels(s["meta"]["boxes"], s["image"].size, shift, rows, cols)
        cells, W, H = token_cells(rows, cols, 256, 8)
        canvas = Image.new("RGB", (W, H))
        for t in range(rows * cols):
            r, c = divmod(t, cols)
            canvas.paste(Image.fromarray(tiles[t].transpose(1, 2, 0)), (c * 256, r * 256))
        d = ImageDraw.Draw(canvas)
        n_tile_tokens = rows * cols * 64
        for k in range(n_tile_tokens):
            x0, y0, x1, y1 = cells[k]
            if lab[k].any():
                d.rectangle([x0, y0, x1 - 1, y1 - 1], outline=(255, 0, 255))
                d.text((x0 + 2, y0 + 2), ",".join(str(v) for v in lab[k]), fill=(255, 0, 255))
        canvas.save(os.path.join(out, f"{i}_{s['family']}.png"))
        print(i, s["family"], shift, {h: int((lab[:, k] > 0).sum()) for k, h in enumerate(HEAD_NAMES)})
