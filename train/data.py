"""Deterministic synthetic "diagrams and screenshots" generator (Pillow only).

Four families of images, each with short questions (exact one-word / one-number answers) and one long
"Describe this image." question whose answer lists every element in reading order:

  shapes : shapes_count, shapes_color, shapes_relation
  bars   : bars_extreme, bars_value, bars_count
  ui     : ui_title, ui_button, ui_checked
  flow   : flow_next
  every image: describe

Sample i of split s is drawn from a random generator seeded by sha256(f"{s}:{i}"), so a split name
partitions the seed space: the held-out split ("heldout") never shares a seed with training ("train").
Only Pillow and the Python standard library are needed (numpy is optional, used for augmentation).
"""
import hashlib
import io
import math
import os
import random

from PIL import Image, ImageDraw, ImageFilter, ImageFont

HERE = os.path.dirname(os.path.abspath(__file__))
FONT_REGULAR = os.path.join(HERE, "fonts", "DejaVuSans.ttf")
FONT_BOLD = os.path.join(HERE, "fonts", "DejaVuSans-Bold.ttf")

WORDS = [
    "alpha", "beta", "gamma", "delta", "sigma", "omega", "start", "load", "parse", "build", "test",
    "merge", "deploy", "fetch", "save", "print", "sort", "scan", "sync", "clean", "check", "send",
    "read", "write", "train", "plot", "query", "cache",
]
COLORS = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 90, 220),
    "yellow": (235, 200, 30),
    "purple": (140, 60, 190),
    "orange": (245, 130, 20),
}
SHAPES = ["circle", "square", "triangle", "diamond"]
PLURAL = {"circle": "circles", "square": "squares", "triangle": "triangles", "diamond": "diamonds"}
NUM_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]

SHORT_TASKS = [
    "shapes_count", "shapes_color", "shapes_relation",
    "bars_extreme", "bars_value", "bars_count",
    "ui_title", "ui_button", "ui_checked",
    "flow_next",
]
TASKS = SHORT_TASKS + ["describe"]
FAMILIES = ["shapes", "bars", "ui", "flow"]
DESCRIBE_QUESTION = "Describe this image."

_FONT_CACHE = {}

# Layout records for the training-only dense token labels (train/dense.py): each drawn text, shape, bar, option
# row, button and flow box is recorded with its pixel box and its classes (head name -> class). Recording only
# measures (textbbox), so no random draw and no pixel changes: the held-out set still regenerates byte for byte.
_REC = []


def record(box, **classes):
    _REC.append((tuple(float(v) for v in box), classes))


def take_records():
    global _REC
    r, _REC = _REC, []
    return r


def put_text(draw, xy, text, fnt, fill, **classes):
    """draw.text that also records the text's box (its text class is added by train/dense.py from the string);
    returns that box."""
    draw.text(xy, text, font=fnt, fill=fill)
    box = draw.textbbox(xy, text, font=fnt)
    record(box, text=text, **classes)
    return box


def font(size, bold=True):
    key = (size, bold)
    f = _FONT_CACHE.get(key)
    if f is None:
        f = ImageFont.truetype(FONT_BOLD if bold else FONT_REGULAR, size)
        _FONT_CACHE[key] = f
    return f


def seed_for(split, index):
    h = hashlib.sha256(f"{split}:{index}".encode()).digest()
    return int.from_bytes(h[:8], "little")


def text_size(draw, text, fnt):
    x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=fnt)
    return x1 - x0, y1 - y0, x0, y0


def draw_text_centered(draw, cx, cy, text, fnt, fill, **classes):
    w, h, ox, oy = text_size(draw, text, fnt)
    put_text(draw, (round(cx - w / 2 - ox), round(cy - h / 2 - oy)), text, fnt, fill, **classes)


def join_list(items):
    items = list(items)
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " and " + items[-1]


def article(word):
    return "an" if word[0] in "aeiou" else "a"


def region_name(cx, cy, w, h):
    col = 0 if cx < w / 3 else (1 if cx < 2 * w / 3 else 2)
    row = 0 if cy < h / 3 else (1 if cy < 2 * h / 3 else 2)
    names = [["top left", "top", "top right"], ["left", "center", "right"],
             ["bottom left", "bottom", "bottom right"]]
    return names[row][col]


# ----------------------------------------------------------------------------------------------- shapes
def draw_shape(draw, kind, cx, cy, r, fill):
    outline = (30, 30, 30)
    if kind == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill, outline=outline, width=2)
    elif kind == "square":
        s = r * 0.88
        draw.rectangle([cx - s, cy - s, cx + s, cy + s], fill=fill, outline=outline, width=2)
    elif kind == "triangle":
        pts = [(cx, cy - r), (cx + r * 0.95, cy + r * 0.8), (cx - r * 0.95, cy + r * 0.8)]
        draw.polygon(pts, fill=fill, outline=outline)
    elif kind == "diamond":
        pts = [(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)]
        draw.polygon(pts, fill=fill, outline=outline)


def share_kind_or_colour(rng, chosen):
    """Make some of the chosen (colour, shape) pairs share the first one's kind or colour, so that counting
    questions have answers above 1 (pairs stay unique). Also used by scenes.py: same draws, same order."""
    base_c, base_s = chosen[0]
    for k in range(1, len(chosen)):
        if rng.random() < 0.35:
            c, s = chosen[k]
            cand = (c, base_s) if rng.random() < 0.5 else (base_c, s)
            if cand not in chosen:
                chosen[k] = cand


def shapes_questions(rng, objs, gap):
    """The shape tasks' questions about objects [{color, shape, x, y}]: a count, the colour of a kind that occurs
    once, and a left/right or above/below relation between two objects at least `gap` apart on that axis (pixels
    here, a fraction of the image in scenes.py)."""
    qa = []
    if rng.random() < 0.5:
        s = rng.choice(sorted({o["shape"] for o in objs}))
        cnt = sum(o["shape"] == s for o in objs)
        qa.append(("shapes_count", f"How many {PLURAL[s]} are there?", str(cnt)))
    else:
        c = rng.choice(sorted({o["color"] for o in objs}))
        cnt = sum(o["color"] == c for o in objs)
        qa.append(("shapes_count", f"How many {c} shapes are there?", str(cnt)))
    kinds = [s for s in SHAPES if sum(o["shape"] == s for o in objs) == 1]
    if kinds:
        s = rng.choice(kinds)
        o = [o for o in objs if o["shape"] == s][0]
        qa.append(("shapes_color", f"What color is the {s}?", o["color"]))
    # colour + shape combinations are unique in a scene, so a pair names two objects
    pairs = [(a, b) for a in objs for b in objs if a is not b]
    rng.shuffle(pairs)
    for a, b in pairs:
        if rng.random() < 0.5 and abs(a["x"] - b["x"]) >= gap:
            ans = "left" if a["x"] < b["x"] else "right"
            qa.append(("shapes_relation", f"Is the {a['color']} {a['shape']} left or right of the {b['color']} {b['shape']}?", ans))
            break
        if abs(a["y"] - b["y"]) >= gap:
            ans = "above" if a["y"] < b["y"] else "below"
            qa.append(("shapes_relation", f"Is the {a['color']} {a['shape']} above or below the {b['color']} {b['shape']}?", ans))
            break
    return qa


def gen_shapes(rng):
    w, h = rng.choice([(512, 384), (512, 512), (384, 512), (512, 256)])
    bg = rng.choice([(255, 255, 255), (245, 245, 240), (235, 240, 248)])
    img = Image.new("RGB", (w, h), bg)
    d = ImageDraw.Draw(img)
    n = rng.randint(3, 6)
    combos = [(c, s) for c in COLORS for s in SHAPES]
    rng.shuffle(combos)
    # bias towards repeated shapes / colours so counting questions have answers > 1
    chosen = []
    for c, s in combos:
        if len(chosen) >= n:
            break
        chosen.append((c, s))
    if rng.random() < 0.6 and n >= 3:
        share_kind_or_colour(rng, chosen)
    objs = []
    r = 30 if min(w, h) <= 256 else rng.choice([30, 36])
    tries = 0
    for c, s in chosen:
        while tries < 400:
            tries += 1
            cx = rng.randint(r + 14, w - r - 14)
            cy = rng.randint(r + 14, h - r - 14)
            if all((cx - o["x"]) ** 2 + (cy - o["y"]) ** 2 > (2 * r + 16) ** 2 for o in objs):
                objs.append({"color": c, "shape": s, "x": cx, "y": cy})
                break
    for o in objs:
        draw_shape(d, o["shape"], o["x"], o["y"], r, COLORS[o["color"]])
        record((o["x"] - r, o["y"] - r, o["x"] + r, o["y"] + r), obj=(o["color"], o["shape"]))

    qa = shapes_questions(rng, objs, 40)

    order = sorted(objs, key=lambda o: (o["x"], o["y"]))
    parts = [f"{article(o['color'])} {o['color']} {o['shape']} at the {region_name(o['x'], o['y'], w, h)}"
             for o in order]
    desc = [f"The image shows {NUM_WORDS[len(objs)]} shapes on a light background."]
    desc.append("From left to right there is " + join_list(parts) + ".")
    kind_counts = [f"{sum(o['shape'] == s for o in objs)} {PLURAL[s] if sum(o['shape'] == s for o in objs) > 1 else s}"
                   for s in SHAPES if any(o["shape"] == s for o in objs)]
    desc.append("In total there are " + join_list(kind_counts) + ".")
    col_counts = [f"{sum(o['color'] == c for o in objs)} {c}" for c in COLORS if any(o["color"] == c for o in objs)]
    desc.append("By color there are " + join_list(col_counts) + ".")
    top = min(objs, key=lambda o: o["y"])
    desc.append(f"The highest shape is the {top['color']} {top['shape']}.")
    meta = {"objects": objs, "size": (w, h)}
    return img, qa, " ".join(desc), meta


# ----------------------------------------------------------------------------------------------- bars
def gen_bars(rng):
    w, h = rng.choice([(512, 384), (512, 512), (384, 512)])
    img = Image.new("RGB", (w, h), (255, 255, 255))
    d = ImageDraw.Draw(img)
    n = rng.randint(3, 5) if w < 500 else rng.randint(3, 6)
    labels = rng.sample(WORDS, n)
    while True:
        values = [rng.randint(1, 9) for _ in range(n)]
        s = sorted(values)
        if s[-1] - s[-2] >= 1 and s[1] - s[0] >= 1:
            break
    title = rng.choice(WORDS)
    color_name = rng.choice(list(COLORS))
    color = COLORS[color_name]
    show_values = rng.random() < 0.5
    tf = font(22)
    draw_text_centered(d, w / 2, 22, title, tf, (20, 20, 20), role="chart_title")
    left, right, top, bottom = 48, w - 16, 52, h - 46
    unit = (bottom - top) / 10.0
    tick_font = font(15, bold=False)
    for v in range(0, 11):
        y = round(bottom - v * unit)
        d.line([(left, y), (right, y)], fill=(215, 215, 215) if v else (60, 60, 60), width=1)
        if v % 2 == 0:
            tw, th, ox, oy = text_size(d, str(v), tick_font)
            put_text(d, (left - 8 - tw - ox, y - th / 2 - oy), str(v), tick_font, (40, 40, 40))
    d.line([(left, top), (left, bottom)], fill=(60, 60, 60), width=2)
    slot = (right - left) / n
    bw = min(60, slot * 0.6)
    lf = font(16)
    for i, (lab, v) in enumerate(zip(labels, values)):
        cx = left + slot * (i + 0.5)
        y = round(bottom - v * unit)
        d.rectangle([round(cx - bw / 2), y, round(cx + bw / 2), bottom], fill=color, outline=(30, 30, 30))
        record((round(cx - bw / 2), y, round(cx + bw / 2), bottom), obj=("bar", v))
        role = "bar_tallest" if v == max(values) else ("bar_shortest" if v == min(values) else "bar_other")
        draw_text_centered(d, cx, bottom + 18, lab, lf, (20, 20, 20), role=role, link=v)
        if show_values:
            draw_text_centered(d, cx, y - 11, str(v), font(15), (20, 20, 20))
    qa = []
    if rng.random() < 0.5:
        qa.append(("bars_extreme", "Which bar is the tallest?", labels[values.index(max(values))]))
    else:
        qa.append(("bars_extreme", "Which bar is the shortest?", labels[values.index(min(values))]))
    k = rng.randrange(n)
    qa.append(("bars_value", f"What is the value of {labels[k]}?", str(values[k])))
    qa.append(("bars_count", "How many bars are there?", str(n)))
    desc = [f"This is a bar chart titled {title} with {NUM_WORDS[n]} {color_name} bars.",
            "The y axis goes from 0 to 10 with a grid line at every step."]
    desc.append("From left to right the bars are " +
                join_list([f"{lab} with value {v}" for lab, v in zip(labels, values)]) + ".")
    desc.append(f"The tallest bar is {labels[values.index(max(values))]} and the shortest bar is "
                f"{labels[values.index(min(values))]}.")
    if show_values:
        desc.append("Each bar has its value written above it.")
    meta = {"title": title, "labels": labels, "values": values, "color": color_name, "show_values": show_values}
    return img, qa, " ".join(desc), meta


# ----------------------------------------------------------------------------------------------- ui
def gen_ui(rng):
    w, h = rng.choice([(512, 384), (384, 512), (512, 512)])
    bg = (200, 200, 205)
    img = Image.new("RGB", (w, h), bg)
    d = ImageDraw.Draw(img)
    m = 14
    d.rectangle([m, m, w - m, h - m], fill=(250, 250, 250), outline=(90, 90, 90), width=2)
    bar_col = rng.choice([(40, 90, 220), (60, 60, 70), (40, 140, 120)])
    d.rectangle([m, m, w - m, m + 40], fill=bar_col)
    title = rng.choice(WORDS)
    tfont = font(22)
    put_text(d, (m + 14, m + 8), title, tfont, (255, 255, 255), role="ui_title")
    # window buttons
    for k in range(3):
        cx = w - m - 20 - k * 26
        d.ellipse([cx - 8, m + 12, cx + 8, m + 28], fill=[(230, 80, 80), (230, 190, 60), (80, 190, 90)][k])
    words = rng.sample(WORDS, 8)
    words = [x for x in words if x != title][:7]
    n_opt = rng.randint(3, 4)
    options = words[:n_opt]
    checked = rng.randrange(n_opt)
    radio = rng.random() < 0.5
    ofont = font(20)
    y = m + 64
    for i, opt in enumerate(options):
        x0 = m + 24
        if radio:
            d.ellipse([x0, y, x0 + 22, y + 22], fill=(255, 255, 255), outline=(50, 50, 50), width=2)
            if i == checked:
                d.ellipse([x0 + 6, y + 6, x0 + 16, y + 16], fill=(30, 30, 30))
        else:
            d.rectangle([x0, y, x0 + 22, y + 22], fill=(255, 255, 255), outline=(50, 50, 50), width=2)
            if i == checked:
                d.line([(x0 + 4, y + 11), (x0 + 9, y + 17), (x0 + 18, y + 4)], fill=(30, 30, 30), width=4)
        tb = put_text(d, (x0 + 34, y - 1), opt, ofont, (20, 20, 20))
        record((x0, min(y, tb[1]), tb[2], max(y + 22, tb[3])), role="ui_checked" if i == checked else "ui_unchecked")
        y += 44
    n_btn = rng.randint(2, 3)
    buttons = words[n_opt:n_opt + n_btn]
    bfont = font(20)
    bw, bh = (110 if w >= 500 else 96), 40
    gap = 16
    total = n_btn * bw + (n_btn - 1) * gap
    x = (w - total) // 2
    yb = h - m - bh - 18
    for i, b in enumerate(buttons):
        fill = (40, 90, 220) if i == n_btn - 1 else (225, 225, 230)
        tc = (255, 255, 255) if i == n_btn - 1 else (20, 20, 20)
        d.rounded_rectangle([x, yb, x + bw, yb + bh], radius=8, fill=fill, outline=(80, 80, 80), width=2)
        record((x, yb, x + bw, yb + bh), role="ui_button_" + ("left" if i == 0 else ("right" if i == n_btn - 1 else "middle")))
        draw_text_centered(d, x + bw / 2, yb + bh / 2, b, bfont, tc)
        x += bw + gap
    qa = [("ui_title", "What is the window title?", title)]
    pos_names = ["left", "right"] if n_btn == 2 else ["left", "middle", "right"]
    k = rng.randrange(n_btn)
    qa.append(("ui_button", f"What does the {pos_names[k]} button say?", buttons[k]))
    qa.append(("ui_checked", "Which option is checked?" if not radio else "Which option is selected?",
               options[checked]))
    kind = "radio buttons" if radio else "check boxes"
    desc = [f"This is a screenshot of a window titled {title}.",
            f"The window shows {NUM_WORDS[n_opt]} options with {kind}: {join_list(options)}.",
            f"The option {options[checked]} is {'selected' if radio else 'checked'} and the others are not.",
            f"At the bottom there are {NUM_WORDS[n_btn]} buttons: {join_list(buttons)}.",
            f"The {pos_names[-1]} button {buttons[-1]} is blue and the other buttons are gray.",
            "The title bar has a red, a yellow and a green dot on the right."]
    meta = {"title": title, "options": options, "checked": checked, "radio": radio, "buttons": buttons,
            "button_positions": pos_names}
    return img, qa, " ".join(desc), meta


# ----------------------------------------------------------------------------------------------- flow
def arrow(draw, p0, p1, col=(40, 40, 40)):
    draw.line([p0, p1], fill=col, width=3)
    ang = math.atan2(p1[1] - p0[1], p1[0] - p0[0])
    L = 12
    a1 = (p1[0] - L * math.cos(ang - 0.45), p1[1] - L * math.sin(ang - 0.45))
    a2 = (p1[0] - L * math.cos(ang + 0.45), p1[1] - L * math.sin(ang + 0.45))
    draw.polygon([p1, a1, a2], fill=col)


def gen_flow(rng):
    layout = rng.choice(["row", "snake", "column"])
    if layout == "row":
        w, h = 512, 256
        n = rng.randint(3, 4)
        cells = [(i, 0) for i in range(n)]
        ncols, nrows = n, 1
    elif layout == "snake":
        w, h = 512, 512
        n = rng.randint(4, 6)
        ncols, nrows = 3, 2
        cells = [(0, 0), (1, 0), (2, 0), (2, 1), (1, 1), (0, 1)][:n]
    else:
        w, h = 384, 512
        n = rng.randint(3, 4)
        cells = [(0, i) for i in range(n)]
        ncols, nrows = 1, n
    img = Image.new("RGB", (w, h), (255, 255, 255))
    d = ImageDraw.Draw(img)
    labels = rng.sample(WORDS, n)
    box_fill = rng.choice([(220, 235, 255), (255, 240, 210), (225, 245, 225)])
    cw, ch = w / ncols, h / nrows
    bw = min(108, cw - 24)
    bh = 44
    centers = []
    f = font(19)
    for (cx_i, cy_i) in cells:
        cx = cw * (cx_i + 0.5) + rng.randint(-4, 4)
        cy = ch * (cy_i + 0.5) + rng.randint(-4, 4)
        centers.append((cx, cy))
    for i in range(n - 1):
        (x0, y0), (x1, y1) = centers[i], centers[i + 1]
        if abs(x1 - x0) > abs(y1 - y0):
            sgn = 1 if x1 > x0 else -1
            arrow(d, (x0 + sgn * bw / 2, y0), (x1 - sgn * bw / 2, y1))
        else:
            sgn = 1 if y1 > y0 else -1
            arrow(d, (x0, y0 + sgn * bh / 2), (x1, y1 - sgn * bh / 2))
    for k, ((cx, cy), lab) in enumerate(zip(centers, labels)):
        d.rounded_rectangle([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], radius=6, fill=box_fill,
                            outline=(40, 40, 40), width=2)
        record((cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2), role=f"flow_{k}",
               link=labels[k + 1] if k + 1 < n else "end")
        draw_text_centered(d, cx, cy, lab, f, (20, 20, 20))
    qa = []
    ks = list(range(n - 1))
    rng.shuffle(ks)
    for k in ks[:2]:
        qa.append(("flow_next", f"What follows {labels[k]}?", labels[k + 1]))
    desc = [f"This is a flow diagram with {NUM_WORDS[n]} boxes connected by arrows.",
            f"The boxes are arranged {dict(row='in one row from left to right', snake='in two rows, the second row going from right to left', column='in one column from top to bottom')[layout]}.",
            "The boxes in order are " + join_list(labels) + ".",
            f"It starts at {labels[0]}."]
    for i in range(n - 1):
        desc.append(f"{labels[i].capitalize()} leads to {labels[i + 1]}.")
    desc.append(f"The process ends at {labels[-1]}.")
    meta = {"labels": labels, "layout": layout}
    return img, qa, " ".join(desc), meta


GENERATORS = {"shapes": gen_shapes, "bars": gen_bars, "ui": gen_ui, "flow": gen_flow}


def make_sample(split, index, family=None):
    """Return dict(image=PIL.Image, family, qa=[(task, question, answer)], describe=str, meta=dict).
    meta holds the drawn layout (labels, options, ...) for the reading curriculum (train/curriculum.py); it is
    derived from values already drawn, so adding it did not change any random draw (the held-out set
    regenerates byte for byte)."""
    rng = random.Random(seed_for(split, index))
    fam = family or FAMILIES[rng.randrange(len(FAMILIES))]
    take_records()
    img, qa, desc, meta = GENERATORS[fam](rng)
    meta["boxes"] = take_records()
    return {"image": img, "family": fam, "qa": qa, "describe": desc, "meta": meta, "seed_index": index,
            "split": split}


# ----------------------------------------------------------------------------------------------- augmentation
def augment(img, rng, with_shift=False):
    """Small photometric/geometric changes so that resampling differences between libraries do not matter.
    with_shift: also return the shift (dx, dy); the rescale is undone by the processor's resize to the longest
    edge, so a point (x, y) of the original lands at ((x + dx) * W / w, (y + dy) * H / h) of the processed image."""
    w, h = img.size
    dx = dy = 0
    if rng.random() < 0.5:  # small shift, refilled with the corner colour
        dx, dy = rng.randint(-6, 6), rng.randint(-6, 6)
        canvas = Image.new("RGB", (w, h), img.getpixel((0, 0)))
        canvas.paste(img, (dx, dy))
        img = canvas
    r = rng.random()
    if r < 0.35:  # rescale: the processor resizes back to the longest edge
        s = rng.uniform(0.6, 1.0)
        resample = rng.choice([Image.BILINEAR, Image.BICUBIC, Image.LANCZOS, Image.BOX])
        img = img.resize((max(8, round(w * s)), max(8, round(h * s))), resample=resample)
    elif r < 0.45:
        s = rng.uniform(1.0, 1.5)
        img = img.resize((round(w * s), round(h * s)), resample=rng.choice([Image.BILINEAR, Image.BICUBIC]))
    if rng.random() < 0.15:
        img = img.filter(ImageFilter.GaussianBlur(radius=rng.uniform(0.3, 0.9)))
    if rng.random() < 0.15:
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=rng.randint(55, 90))
        buf.seek(0)
        img = Image.open(buf).convert("RGB")
    if rng.random() < 0.4:  # colour jitter (brightness / contrast), via point tables
        a = rng.uniform(0.85, 1.15)
        b = rng.uniform(-18, 18)
        lut = [max(0, min(255, round(a * v + b))) for v in range(256)] * 3
        img = img.point(lut)
    return (img, (dx, dy)) if with_shift else img


if __name__ == "__main__":
    import sys
    out = sys.argv[1] if len(sys.argv) > 1 else "/tmp/gen_preview"
    os.makedirs(out, exist_ok=True)
    import time
    t = time.time()
    for i in range(40):
        s = make_sample("preview", i)
        s["image"].save(os.path.join(out, f"{i:03d}_{s['family']}.png"))
        print(i, s["family"], s["image"].size, s["qa"], len(s["describe"].split()), "words")
        print("   ", s["describe"])
    print("time per sample", (time.time() - t) / 40)
