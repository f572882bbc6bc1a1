"""Training images drawn the way real tools draw them: a train/scenes.py scene rendered with Pillow in many themes
(anti-aliased by drawing at twice the size, several real fonts, light and dark, web forms and desktop dialogs,
sizes and aspect ratios) or with matplotlib (its own chart styles, patches and annotations).

make_styled_sample(split, index) returns the same dict as data.make_sample (image, family, qa, describe, meta with
the dense-label boxes of train/dense.py), so train.py treats both alike. The held-out set "heldout-real" is drawn
by other renderers (Chromium, graphviz, gnuplot: tools/heldout_real/) and never by this module.
"""
import colorsys
import math
import os
import random

from PIL import Image, ImageDraw, ImageFont

import data
import scenes

HERE = os.path.dirname(os.path.abspath(__file__))
FONTS = {  # family -> (regular, bold); only fonts committed under train/fonts (never the held-out set's Noto)
    "dejavu": ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf"),
    "dejavu-serif": ("DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf"),
    "liberation": ("LiberationSans-Regular.ttf", "LiberationSans-Bold.ttf"),
    "liberation-serif": ("LiberationSerif-Regular.ttf", "LiberationSerif-Bold.ttf"),
}
SS = 2  # drawn at twice the size, then reduced: anti-aliased edges and text as real renderers give
MATPLOTLIB_P = 0.08  # matplotlib is 5x slower to draw than Pillow; the data workers must keep up
_FONTS = {}


def font(family, size, bold=False):
    key = (family, int(size), bold)
    if key not in _FONTS:
        # sizes are output pixels; the canvas is SS times larger
        _FONTS[key] = ImageFont.truetype(os.path.join(HERE, "fonts", FONTS[family][1 if bold else 0]), int(size * SS))
    return _FONTS[key]


def shade(rng, name, spread=0.12):
    """A shade of a named colour, as another palette would draw it (hue kept, lightness and saturation moved)."""
    r, g, b = (v / 255 for v in data.COLORS[name])
    h, l, s = colorsys.rgb_to_hls(r, g, b)
    l = min(0.75, max(0.3, l + rng.uniform(-spread, spread)))
    s = min(1.0, max(0.45, s + rng.uniform(-0.25, 0.1)))
    return tuple(round(v * 255) for v in colorsys.hls_to_rgb(h + rng.uniform(-0.02, 0.02), l, s))


class Canvas:
    """A Pillow canvas drawn at SS x the output size; boxes are recorded in output pixels for dense.py."""

    def __init__(self, w, h, bg):
        self.w, self.h = w, h
        self.img = Image.new("RGB", (w * SS, h * SS), bg)
        self.d = ImageDraw.Draw(self.img)
        self.boxes = []

    def s(self, v):
        return v * SS

    def rect(self, box, radius=0, **kw):
        b = [self.s(v) for v in box]
        if "width" in kw:
            kw["width"] = max(1, round(kw["width"] * SS))
        if radius:
            self.d.rounded_rectangle(b, radius=self.s(radius), **kw)
        else:
            self.d.rectangle(b, **kw)

    def ellipse(self, box, **kw):
        if "width" in kw:
            kw["width"] = max(1, round(kw["width"] * SS))
        self.d.ellipse([self.s(v) for v in box], **kw)

    def polygon(self, pts, **kw):
        self.d.polygon([(self.s(x), self.s(y)) for x, y in pts], **kw)

    def line(self, pts, width=1, **kw):
        self.d.line([(self.s(x), self.s(y)) for x, y in pts], width=max(1, round(width * SS)), **kw)

    def text_size(self, text, fnt):
        x0, y0, x1, y1 = self.d.textbbox((0, 0), text, font=fnt)
        return (x1 - x0) / SS, (y1 - y0) / SS, x0 / SS, y0 / SS

    def text(self, xy, text, fnt, fill, anchor="lt", **classes):
        """Draw text with its ink box's corner (anchor l/c/r x t/m/b) at xy; record its box; return the box."""
        w, h, ox, oy = self.text_size(text, fnt)
        x = xy[0] - {"l": 0, "c": w / 2, "r": w}[anchor[0]]
        y = xy[1] - {"t": 0, "m": h / 2, "b": h}[anchor[1]]
        self.d.text((self.s(x - ox), self.s(y - oy)), text, font=fnt, fill=fill)
        box = (x, y, x + w, y + h)
        self.record(box, text=text, **classes)
        return box

    def record(self, box, **classes):
        self.boxes.append((tuple(float(v) for v in box), classes))

    def result(self):
        return self.img.reduce(SS)  # a box filter: the anti-aliasing of a 2x2 supersample, and fast


def pick_size(rng, choices):
    """An output size of one of the aspect ratios, its longest edge 448-680 px (the processor resizes it to 512)."""
    aw, ah = rng.choice(choices)
    long = rng.randint(448, 680)
    return (long, round(long * ah / aw)) if aw >= ah else (round(long * aw / ah), long)


def start(rng, ratios):
    """What every Pillow drawing picks first, in this order: its size, theme and font family; and k, the scale of
    a 512 px image (sizes below are given at that scale)."""
    w, h = pick_size(rng, ratios)
    th = theme(rng)
    fam = rng.choice(list(FONTS))
    return w, h, th, fam, max(w, h) / 512


def theme(rng):
    dark = rng.random() < 0.25
    accent = shade(rng, rng.choice(["blue", "green", "purple", "orange", "red"]), 0.08)
    if dark:
        bg = tuple(rng.randint(22, 45) for _ in range(3))
        return {"dark": True, "bg": bg, "panel": tuple(min(255, v + rng.randint(8, 20)) for v in bg),
                "fg": (rng.randint(215, 245),) * 3, "muted": (150, 150, 155), "line": (90, 90, 95), "accent": accent}
    bg = rng.choice([(255, 255, 255), (246, 246, 248), (240, 242, 245), (250, 250, 245), (228, 230, 235)])
    return {"dark": False, "bg": bg, "panel": (255, 255, 255) if bg != (255, 255, 255) else (248, 248, 250),
            "fg": (rng.randint(10, 50),) * 3, "muted": (110, 110, 115), "line": (rng.randint(150, 200),) * 3,
            "accent": accent}


# ------------------------------------------------------------------------------------------------ Pillow
def pil_shapes(sc, rng):
    w, h = pick_size(rng, [(4, 3), (1, 1), (3, 4), (16, 9), (2, 1)])
    th = theme(rng)
    c = Canvas(w, h, th["bg"])
    r = min(w, h) * rng.uniform(0.055, 0.085)
    outline = rng.choice([None, th["fg"], (40, 40, 40)])
    ow = rng.choice([1, 1.5, 2, 3])
    for o in sc["meta"]["objects"]:
        cx, cy, fill = o["x"] * w, o["y"] * h, shade(rng, o["color"])
        kw = {"fill": fill, "outline": outline, "width": ow} if outline else {"fill": fill}
        if o["shape"] == "circle":
            c.ellipse([cx - r, cy - r, cx + r, cy + r], **kw)
        elif o["shape"] == "square":
            q = r * 0.88
            c.rect([cx - q, cy - q, cx + q, cy + q], radius=rng.choice([0, 0, r * 0.15]), **kw)
        else:
            pts = ([(cx, cy - r), (cx + r * 0.95, cy + r * 0.8), (cx - r * 0.95, cy + r * 0.8)]
                   if o["shape"] == "triangle" else [(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)])
            c.polygon(pts, fill=fill, outline=outline, width=max(1, round(ow * SS)) if outline else 0)
        c.record((cx - r, cy - r, cx + r, cy + r), obj=(o["color"], o["shape"]))
    return c


def _axis_steps(rng, scale):
    return rng.choice([1, 2, 2, 5]) * scale if scale > 1 else rng.choice([1, 2])


def pil_bars(sc, rng):
    m = sc["meta"]
    w, h, th, fam, k = start(rng, [(4, 3), (16, 10), (1, 1), (3, 2), (16, 9)])
    c = Canvas(w, h, th["bg"])
    tf = font(fam, rng.randint(18, 26) * k, bold=rng.random() < 0.7)
    centred = rng.random() < 0.7  # matplotlib centres the title; many dashboards put it on the left
    tb = c.text((w / 2 if centred else 20 * k, 12 * k), m["title"], tf, th["fg"], "ct" if centred else "lt",
                role="chart_title")
    lf, nf = font(fam, rng.randint(13, 18) * k), font(fam, rng.randint(11, 15) * k)
    top, bottom = tb[3] + 26 * k, h - 40 * k
    left, right = 30 * k + c.text_size(str(10 * m["scale"]), nf)[0], w - 16 * k
    unit = (bottom - top) / (10 * m["scale"])
    step = _axis_steps(rng, m["scale"])
    grid = rng.random() < 0.7
    for v in range(0, 10 * m["scale"] + 1, step):
        y = bottom - v * unit
        if grid and v:
            c.line([(left, y), (right, y)], fill=th["line"], width=1)
        c.line([(left - 5 * k, y), (left, y)], fill=th["fg"], width=1)
        c.text((left - 8 * k, y), str(v), nf, th["fg"], "rm")
    c.line([(left, top), (left, bottom), (right, bottom)] if rng.random() < 0.6 else [(left, bottom), (right, bottom)],
           fill=th["fg"], width=1.5)
    n = len(m["labels"])
    slot = (right - left) / n
    bw = slot * rng.uniform(0.45, 0.8)
    col = shade(rng, m["color"])
    for i, (lab, v, st) in enumerate(zip(m["labels"], m["values"], m["steps"])):
        cx = left + slot * (i + 0.5)
        y = bottom - v * unit
        c.rect([cx - bw / 2, y, cx + bw / 2, bottom], fill=col, outline=None if rng.random() < 0.6 else th["fg"])
        c.record((cx - bw / 2, y, cx + bw / 2, bottom), obj=("bar", st))
        role = "bar_tallest" if v == max(m["values"]) else ("bar_shortest" if v == min(m["values"]) else "bar_other")
        c.text((cx, bottom + 8 * k), lab, lf, th["fg"], "ct", role=role, link=st)
        if m["show_values"]:
            c.text((cx, y - 4 * k), str(v), nf, th["fg"], "cb")
    return c


def pil_ui(sc, rng):
    m = sc["meta"]
    w, h, th, fam, k = start(rng, [(4, 3), (1, 1), (3, 4), (16, 10), (5, 4)])
    c = Canvas(w, h, th["bg"] if rng.random() < 0.5 else tuple(max(0, v - 25) for v in th["bg"]))
    mg = rng.uniform(0, 0.08) * min(w, h)
    win = (mg, mg, w - mg, h - mg)
    rad = rng.choice([0, 4, 8, 12]) * k
    c.rect(win, radius=rad, fill=th["panel"], outline=th["line"], width=1)
    chrome = rng.choice(["titlebar", "titlebar", "heading", "mac"])
    tsz = rng.randint(17, 24) * k
    if chrome == "heading":  # a web form: the title is a heading inside the card
        tb = c.text((win[0] + 24 * k, win[1] + 22 * k), m["title"], font(fam, tsz * 1.15, True), th["fg"],
                    role="ui_title")
        y = tb[3] + 22 * k
    else:
        bar_h = tsz + 18 * k
        bar = th["accent"] if rng.random() < 0.4 else (th["line"] if th["dark"] else (225, 226, 230))
        c.rect((win[0], win[1], win[2], win[1] + bar_h), fill=bar)
        tc = (255, 255, 255) if bar == th["accent"] else th["fg"]
        if chrome == "mac":
            for j, dot in enumerate([(236, 95, 90), (244, 190, 80), (98, 196, 84)]):
                x = win[0] + (14 + 20 * j) * k
                c.ellipse((x, win[1] + bar_h / 2 - 6 * k, x + 12 * k, win[1] + bar_h / 2 + 6 * k), fill=dot)
            c.text(((win[0] + win[2]) / 2, win[1] + bar_h / 2), m["title"], font(fam, tsz, True), tc, "cm",
                   role="ui_title")
        else:
            c.text((win[0] + 14 * k, win[1] + bar_h / 2), m["title"], font(fam, tsz, rng.random() < 0.6), tc, "lm",
                   role="ui_title")
            x, yc = win[2] - 22 * k, win[1] + bar_h / 2
            c.line([(x - 5 * k, yc - 5 * k), (x + 5 * k, yc + 5 * k)], fill=tc, width=1.5)
            c.line([(x - 5 * k, yc + 5 * k), (x + 5 * k, yc - 5 * k)], fill=tc, width=1.5)
            if rng.random() < 0.5:  # minimise and maximise, as Windows and GNOME draw them
                c.rect((x - 40 * k, yc - 5 * k, x - 30 * k, yc + 5 * k), outline=tc, width=1)
                c.line([(x - 70 * k, yc + 4 * k), (x - 60 * k, yc + 4 * k)], fill=tc, width=1.5)
        y = win[1] + bar_h + 20 * k
    of = font(fam, rng.randint(15, 21) * k)
    if rng.random() < 0.3:  # a text field above the options, as login and settings forms have
        lab = rng.choice(["Email", "Name", "Password", "Folder", "Username"])
        c.text((win[0] + 24 * k, y), lab, font(fam, 14 * k), th["muted"])
        y += 20 * k
        c.rect((win[0] + 24 * k, y, win[2] - 24 * k, y + 30 * k), radius=4 * k, fill=th["bg"], outline=th["line"],
               width=1)
        y += 44 * k
    box = rng.randint(15, 22) * k
    gap = max(box, of.size / SS) + rng.randint(10, 20) * k
    for i, opt in enumerate(m["options"]):
        x0 = win[0] + 26 * k
        on = i == m["checked"]
        if m["radio"]:
            c.ellipse((x0, y, x0 + box, y + box), fill=th["bg"], outline=th["accent"] if on else th["muted"], width=1.5)
            if on:
                q = box * 0.28
                c.ellipse((x0 + q, y + q, x0 + box - q, y + box - q), fill=th["accent"])
        else:
            filled = on and rng.random() < 0.7
            c.rect((x0, y, x0 + box, y + box), radius=rng.choice([0, 3]) * k, fill=th["accent"] if filled else th["bg"],
                   outline=th["accent"] if on else th["muted"], width=1.5)
            if on:
                tick = (255, 255, 255) if filled else th["fg"]
                c.line([(x0 + box * 0.2, y + box * 0.52), (x0 + box * 0.42, y + box * 0.75), (x0 + box * 0.8, y + box * 0.25)],
                       fill=tick, width=max(1.5, box / 8))
        tbx = c.text((x0 + box + 10 * k, y + box / 2), opt, of, th["fg"], "lm")
        c.record((x0, min(y, tbx[1]), tbx[2], max(y + box, tbx[3])), role="ui_checked" if on else "ui_unchecked")
        y += gap
    bf = font(fam, rng.randint(15, 20) * k, rng.random() < 0.4)
    bh = bf.size / SS + rng.randint(14, 22) * k
    widths = [c.text_size(b, bf)[0] + rng.randint(24, 40) * k for b in m["buttons"]]
    if rng.random() < 0.5:
        widths = [max(widths)] * len(widths)
    gapb = rng.randint(8, 16) * k
    total = sum(widths) + gapb * (len(widths) - 1)
    align = rng.choice(["right", "center", "left"])
    x = {"right": win[2] - 20 * k - total, "center": (w - total) / 2, "left": win[0] + 24 * k}[align]
    yb = max(y + 10 * k, win[3] - bh - 18 * k)
    primary = rng.choice([len(widths) - 1, 0]) if rng.random() < 0.8 else -1
    brad = rng.choice([0, 4, 6, bh / 2])
    flat = rng.random() < 0.12
    if flat and rng.random() < 0.5:
        m = dict(m, buttons=[b.upper() for b in m["buttons"]])  # drawn in capitals; the answer keeps its case
    for i, (b, bw) in enumerate(zip(m["buttons"], widths)):
        fill, tc, ol = ((th["accent"], (255, 255, 255), None) if i == primary else
                        (th["panel"] if rng.random() < 0.5 else th["bg"], th["fg"], th["muted"]))
        if flat:  # text-only buttons (material dialogs): the label in the accent colour, no box
            fill, tc, ol = None, th["accent"], None
        c.rect((x, yb, x + bw, yb + bh), radius=brad, fill=fill, outline=ol, width=1)
        pos = "left" if i == 0 else ("right" if i == len(widths) - 1 else "middle")
        c.record((x, yb, x + bw, yb + bh), role="ui_button_" + pos)
        c.text((x + bw / 2, yb + bh / 2), b, bf, tc, "cm")
        x += bw + gapb
    return c


def _flow_cells(direction, n):
    if direction == "row":
        return [(i, 0) for i in range(n)], n, 1
    if direction == "column":
        return [(0, i) for i in range(n)], 1, n
    cols = math.ceil(n / 2)
    return [(i, 0) if i < cols else (2 * cols - 1 - i, 1) for i in range(n)], cols, 2


def pil_flow(sc, rng):
    m = sc["meta"]
    labels = m["labels"]
    cells, ncols, nrows = _flow_cells(m["direction"], len(labels))
    asp = {"row": [(2, 1), (16, 9), (3, 1), (4, 1)], "column": [(3, 4), (2, 3), (1, 1), (1, 2), (1, 3)],
           "snake": [(4, 3), (16, 10), (1, 1), (2, 1)]}
    w, h, th, fam, k = start(rng, asp[m["direction"]])
    c = Canvas(w, h, th["bg"])
    cw, ch = w / ncols, h / nrows
    f = font(fam, min(rng.randint(14, 20) * k, cw / 7.5), rng.random() < 0.5)
    tw = max(c.text_size(lab, f)[0] for lab in labels)
    bw = min(cw * 0.86, tw + rng.randint(18, 34) * k)
    bh = min(ch * 0.6, f.size / SS + rng.randint(16, 28) * k)
    fill = th["panel"] if rng.random() < 0.4 else (shade(rng, rng.choice(["blue", "green", "yellow", "orange"]), 0.05)
                                                  if th["dark"] else tuple(min(255, 200 + v // 5) for v in shade(rng, rng.choice(["blue", "green", "yellow", "orange"]))))
    shape = rng.choice(["rect", "round", "round", "pill", "ellipse"])
    centers = [(cw * (i + 0.5), ch * (j + 0.5)) for i, j in cells]
    lc = th["fg"] if rng.random() < 0.6 else th["muted"]
    lw = rng.choice([1, 1.5, 2, 2.5])
    for i in range(len(labels) - 1):
        (x0, y0), (x1, y1) = centers[i], centers[i + 1]
        if abs(x1 - x0) > abs(y1 - y0):
            sg = 1 if x1 > x0 else -1
            p0, p1 = (x0 + sg * bw / 2, y0), (x1 - sg * bw / 2, y1)
        else:
            sg = 1 if y1 > y0 else -1
            p0, p1 = (x0, y0 + sg * bh / 2), (x1, y1 - sg * bh / 2)
        c.line([p0, p1], fill=lc, width=lw)
        ang, L = math.atan2(p1[1] - p0[1], p1[0] - p0[0]), (7 + 2 * lw) * k
        c.polygon([p1, (p1[0] - L * math.cos(ang - 0.4), p1[1] - L * math.sin(ang - 0.4)),
                   (p1[0] - L * math.cos(ang + 0.4), p1[1] - L * math.sin(ang + 0.4))], fill=lc)
    for j, ((cx, cy), lab) in enumerate(zip(centers, labels)):
        b = (cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2)
        if shape == "ellipse":
            c.ellipse(b, fill=fill, outline=lc, width=lw)
        else:
            c.rect(b, radius={"rect": 0, "round": 8 * k, "pill": bh / 2}[shape], fill=fill, outline=lc, width=lw)
        c.record(b, role=f"flow_{j}", link=labels[j + 1] if j + 1 < len(labels) else "end")
        c.text((cx, cy), lab, f, th["fg"] if fill == th["panel"] or th["dark"] else (20, 20, 20), "cm")
    return c


PIL_RENDER = {"shapes": pil_shapes, "bars": pil_bars, "ui": pil_ui, "flow": pil_flow}


# ------------------------------------------------------------------------------------------------ matplotlib
def mpl_render(sc, rng):
    """Bars, shapes and flows drawn by matplotlib (Agg), boxes read back from its renderer."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import font_manager, patches
    m, fam = sc["meta"], sc["family"]
    style = rng.choice(["default", "default", "ggplot", "seaborn-v0_8-whitegrid", "bmh", "classic", "dark_background",
                        "fivethirtyeight", "seaborn-v0_8-darkgrid"])
    w, h = pick_size(rng, [(4, 3), (16, 10), (1, 1), (3, 2)] if fam != "flow" else
                     {"row": [(2, 1), (16, 9)], "column": [(3, 4), (1, 1)], "snake": [(4, 3)]}[m["direction"]])
    dpi = rng.choice([72, 80, 100])
    fp = font_manager.FontProperties(fname=os.path.join(HERE, "fonts", FONTS[rng.choice(list(FONTS))][0]))
    k = max(w, h) / 512 * 72 / dpi  # font points that give the same pixels at this dpi and size
    boxes = []
    with plt.style.context(style):
        fig = plt.figure(figsize=(w / dpi, h / dpi), dpi=dpi)
        ax = fig.add_axes([0.12, 0.14, 0.84, 0.74]) if fam == "bars" else fig.add_axes([0, 0, 1, 1])
        texts = []
        if fam == "bars":
            n = len(m["labels"])
            col = tuple(v / 255 for v in shade(rng, m["color"]))
            bars = ax.bar(range(n), m["values"], color=col, width=rng.uniform(0.5, 0.8),
                          edgecolor="black" if rng.random() < 0.3 else None)
            ax.set_xticks(range(n), m["labels"], fontproperties=fp, fontsize=rng.randint(13, 17) * k)
            ax.set_ylim(0, 10 * m["scale"])
            ax.set_yticks(range(0, 10 * m["scale"] + 1, _axis_steps(rng, m["scale"])))
            for t in ax.get_yticklabels():
                t.set_fontsize(12 * k)
            t = ax.set_title(m["title"], fontproperties=fp, fontsize=rng.randint(18, 24) * k)
            texts.append((t, {"text": m["title"], "role": "chart_title"}))
            if m["show_values"]:
                ax.bar_label(bars, fontsize=12 * k)
            fig.canvas.draw()
            for lab, v, st, tl in zip(m["labels"], m["values"], m["steps"], ax.get_xticklabels()):
                role = "bar_tallest" if v == max(m["values"]) else ("bar_shortest" if v == min(m["values"]) else "bar_other")
                texts.append((tl, {"text": lab, "role": role, "link": st}))
            for b, st in zip(bars, m["steps"]):
                boxes.append((b.get_window_extent(), {"obj": ("bar", st)}))
        elif fam == "shapes":
            ax.set_xlim(0, w)
            ax.set_ylim(h, 0)
            ax.axis("off")
            r = min(w, h) * rng.uniform(0.055, 0.085)
            ec = "black" if rng.random() < 0.5 else "none"
            for o in m["objects"]:
                cx, cy, fc = o["x"] * w, o["y"] * h, tuple(v / 255 for v in shade(rng, o["color"]))
                p = {"circle": lambda: patches.Circle((cx, cy), r),
                     "square": lambda: patches.Rectangle((cx - r * 0.88, cy - r * 0.88), r * 1.76, r * 1.76),
                     "triangle": lambda: patches.RegularPolygon((cx, cy), 3, radius=r, orientation=math.pi),
                     "diamond": lambda: patches.RegularPolygon((cx, cy), 4, radius=r)}[o["shape"]]()
                p.set_facecolor(fc)
                p.set_edgecolor(ec)
                ax.add_patch(p)
                boxes.append(((cx - r, cy - r, cx + r, cy + r), {"obj": (o["color"], o["shape"])}))
        else:
            cells, ncols, nrows = _flow_cells(m["direction"], len(m["labels"]))
            ax.set_xlim(0, ncols)
            ax.set_ylim(nrows, 0)
            ax.axis("off")
            bstyle = rng.choice(["round,pad=0.5", "square,pad=0.5", "round4,pad=0.5", "roundtooth,pad=0.4"])
            fc = rng.choice(["#dbe8fb", "#fde9c8", "#dff2df", "white", "#eeeeee"])
            fs = rng.randint(13, 18) * k
            nodes = []
            for (i, j), lab in zip(cells, m["labels"]):
                nodes.append(ax.text(i + 0.5, j + 0.5, lab, ha="center", va="center", fontproperties=fp, fontsize=fs,
                                     color="black", bbox=dict(boxstyle=bstyle, fc=fc, ec="black")))
            for a, b in zip(nodes, nodes[1:]):
                ax.annotate("", xy=b.get_position(), xytext=a.get_position(),
                            arrowprops=dict(arrowstyle=rng.choice(["->", "-|>", "simple"]), color="black",
                                            patchA=a.get_bbox_patch(), patchB=b.get_bbox_patch(), shrinkA=2, shrinkB=2))
            fig.canvas.draw()
            for j, (t, lab) in enumerate(zip(nodes, m["labels"])):
                nxt = m["labels"][j + 1] if j + 1 < len(m["labels"]) else "end"
                boxes.append((t.get_bbox_patch().get_window_extent(), {"role": f"flow_{j}", "link": nxt}))
                texts.append((t, {"text": lab}))
        fig.canvas.draw()
        rend = fig.canvas.get_renderer()
        for t, cl in texts:
            boxes.append((t.get_window_extent(rend), cl))
        img = Image.frombuffer("RGBA", fig.canvas.get_width_height(), fig.canvas.buffer_rgba()).convert("RGB")
        plt.close(fig)
    H = img.size[1]
    out = []
    for b, cl in boxes:  # display coordinates (origin bottom left) -> image pixels
        if isinstance(b, tuple):
            out.append((b, cl))
        else:
            out.append(((b.x0, H - b.y1, b.x1, H - b.y0), cl))
    return img, out


def tight_crop(img, boxes, rng):
    """Crop to the drawn content plus a small margin, as graphviz and matplotlib's bbox_inches='tight' do."""
    from PIL import ImageChops
    bg = img.getpixel((0, 0))
    bb = ImageChops.difference(img, Image.new("RGB", img.size, bg)).getbbox()
    if not bb:
        return img, boxes
    m = rng.randint(4, 24)
    x0, y0 = max(0, bb[0] - m), max(0, bb[1] - m)
    x1, y1 = min(img.size[0], bb[2] + m), min(img.size[1], bb[3] + m)
    return img.crop((x0, y0, x1, y1)), [((b[0] - x0, b[1] - y0, b[2] - x0, b[3] - y0), c) for b, c in boxes]


def on_backdrop(img, boxes, rng, smallest=0.5):
    """The image as a window or figure inside a larger screenshot: a solid, gradient or noisy desktop around it,
    sometimes a drop shadow; the content becomes smaller once the processor reduces the whole to 512 px."""
    frac = rng.uniform(smallest, 0.92)
    W, H = round(img.size[0] / frac), round(img.size[1] / rng.uniform(max(0.5, frac - 0.1), min(0.95, frac + 0.1)))
    a, b = (tuple(rng.randint(30, 230) for _ in range(3)) for _ in range(2))
    kind = rng.choice(["solid", "vgrad", "hgrad"])
    if kind == "solid":
        back = Image.new("RGB", (W, H), a)
    else:
        ramp = Image.linear_gradient("L").resize((W, H) if kind == "vgrad" else (H, W))
        ramp = ramp if kind == "vgrad" else ramp.rotate(90, expand=True)
        back = Image.composite(Image.new("RGB", (W, H), b), Image.new("RGB", (W, H), a), ramp)
    x, y = rng.randint(0, W - img.size[0]), rng.randint(0, H - img.size[1])
    if rng.random() < 0.5:  # drop shadow
        from PIL import ImageFilter
        sh = Image.new("L", (W, H), 0)
        sh.paste(90, (x + 3, y + 5, x + img.size[0] + 3, y + img.size[1] + 5))
        back = Image.composite(Image.new("RGB", (W, H), (0, 0, 0)), back, sh.filter(ImageFilter.GaussianBlur(6)))
    back.paste(img, (x, y))
    return back, [((bx[0] + x, bx[1] + y, bx[2] + x, bx[3] + y), c) for bx, c in boxes]


BACKDROP_P = {"ui": 0.45, "bars": 0.15, "flow": 0.1, "shapes": 0.0}
TIGHT_P = {"ui": 0.0, "bars": 0.2, "flow": 0.5, "shapes": 0.0}


def make_styled_sample(split, index, family=None):
    """A scene of scenes.py drawn in a real tool's style: the same dict as data.make_sample."""
    sc = scenes.make_scene(split, index, family)
    rng = random.Random(sc["style_seed"])
    if rng.random() < MATPLOTLIB_P and sc["family"] != "ui":
        img, boxes = mpl_render(sc, rng)
        renderer = "matplotlib"
    else:
        c = PIL_RENDER[sc["family"]](sc, rng)
        img, boxes, renderer = c.result(), c.boxes, "pillow"
    fam = sc["family"]
    if rng.random() < TIGHT_P[fam]:
        img, boxes = tight_crop(img, boxes, rng)
    if rng.random() < BACKDROP_P[fam]:
        img, boxes = on_backdrop(img, boxes, rng, 0.5 if fam == "ui" else 0.7)
    meta = dict(sc["meta"])
    if sc["family"] == "shapes":  # pixel positions, as data.py's meta has them (the reading curriculum uses them)
        meta["objects"] = [dict(o, x=o["x"] * img.size[0], y=o["y"] * img.size[1]) for o in meta["objects"]]
    meta["boxes"] = boxes
    meta["renderer"] = renderer
    return {"image": img, "family": sc["family"], "qa": sc["qa"], "describe": sc["describe"], "meta": meta,
            "seed_index": index, "split": split, "styled": True}


if __name__ == "__main__":
    import sys
    import time
    out = sys.argv[1] if len(sys.argv) > 1 else "/tmp/styled_preview"
    os.makedirs(out, exist_ok=True)
    t = time.time()
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 24
    for i in range(n):
        s = make_styled_sample("preview", i)
        s["image"].save(os.path.join(out, f"{i:03d}_{s['family']}_{s['meta']['renderer']}.png"))
        print(i, s["family"], s["meta"]["renderer"], s["image"].size, s["qa"][:2], len(s["meta"]["boxes"]), "boxes")
    print("seconds per sample", (time.time() - t) / n)
