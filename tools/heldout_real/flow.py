"""flow scenes as graphviz dot source: one chain of nodes in meta["labels"] order joined by arrows; "row" is
rankdir=LR, "column" rankdir=TB, "snake" two rows (the first left to right, the second right to left below it)."""
import render
from colors import darker, hex_of, shade
from fonts import family

NODE_STYLES = [("box", "filled"), ("box", "filled,rounded"), ("ellipse", "filled"), ("box", "rounded"),
               ("box", "filled"), ("oval", "filled"), ("box", "filled,rounded")]
FILLS = ["#dae8fc", "#d5e8d4", "#fff2cc", "#f8cecc", "#e1d5e7", "#ffffff", "#eeeeee", "#cfe2f3"]
BACKS = [("white", "#222222"), ("#fafafa", "#333333"), ("#f4f1ea", "#333333"), ("#1e1e1e", "#dddddd")]


def _q(s):
    return '"' + s.replace('"', '\\"') + '"'


def source(meta, rng):
    """dot source text (its graph line holds pad="0.25", which draw() may widen)."""
    labels, direction = meta["labels"], meta["direction"]
    shape, style = rng.choice(NODE_STYLES)
    bg, ink = rng.choice(BACKS)
    dark = bg == "#1e1e1e"
    if dark:
        fill, ink_node = rng.choice(["#2d4a6b", "#3c3c3c", "#264d3b"]), ink
    elif rng.random() < 0.2:  # saturated fill, white text
        fill, ink_node = hex_of(shade(rng, rng.choice(["blue", "green", "purple"]))), "#ffffff"
    else:
        fill, ink_node = rng.choice(FILLS), "#111111"
    line = rng.choice([ink, ink if dark else darker(fill)])
    fs = rng.randint(16, 20)
    font = family(rng)
    arrow = rng.choice(["normal", "vee", "open", "empty", "normal"])
    rankdir = "TB" if direction == "column" else "LR"
    ranksep, margin = rng.choice([0.35, 0.45, 0.6]), "0.2,0.08"
    if direction == "row" and len(labels) >= 5:  # a long strip: tight, boxed and large, to stay legible at 512 px
        shape, ranksep, margin, fs, arrow = "box", 0.35, "0.1,0.06", 20, rng.choice(["normal", "vee"])
    out = [f"digraph flow {{", f'  graph [rankdir={rankdir} bgcolor="{bg}" pad="0.25" nodesep="{rng.choice([0.3, 0.4, 0.5])}"'
           f' ranksep="{ranksep}" dpi={rng.choice([72, 72, 96])}]',
           f'  node [shape={shape} style="{style}" fillcolor="{fill}" color="{line}" fontcolor="{ink_node}"'
           f' fontname="{font}" fontsize={fs} margin="{margin}" penwidth={rng.choice([1, 1.5, 2])}]',
           f'  edge [color="{ink}" arrowhead={arrow} penwidth={rng.choice([1, 1.5, 2])}]']
    ids = [f"n{i}" for i in range(len(labels))]
    for i, lab in enumerate(labels):
        out.append(f"  {ids[i]} [label={_q(lab)}]")
    if direction == "snake":
        # TB ranks are rows: row 1 = first half, row 2 = second half drawn right to left
        out[1] = out[1].replace("rankdir=LR", "rankdir=TB")
        k = (len(labels) + 1) // 2
        top, bottom = ids[:k], ids[k:]
        out.append("  { rank=same; " + " ".join(top) + " }")
        out.append("  { rank=same; " + " ".join(bottom) + " }")
        for a, b in zip(top, top[1:]):
            out.append(f"  {a} -> {b}")
        out.append(f"  {top[-1]} -> {bottom[0]}")
        for a, b in zip(bottom, bottom[1:]):  # drawn tail-left: b <- a, so the arrow points left
            out.append(f"  {b} -> {a} [dir=back]")
    else:
        out.append("  " + " -> ".join(ids))
    out.append("}")
    return "\n".join(out) + "\n"


MAX_ASPECT = 3.0


def draw(meta, rng):
    """dot's picture, drawn again with a wider margin when it is a strip longer than MAX_ASPECT : 1."""
    src = source(meta, rng)
    im = render.dot(src)
    w, h = im.size
    if max(w, h) <= MAX_ASPECT * min(w, h):
        return im
    dpi = int(src.split(" dpi=", 1)[1].split("]", 1)[0])
    grow = (max(w, h) / MAX_ASPECT - min(w, h)) / 2 / dpi  # inches on each side
    px, py = (0.25, 0.25 + grow) if w > h else (0.25 + grow, 0.25)
    return render.dot(src.replace('pad="0.25"', f'pad="{px:.2f},{py:.2f}"', 1))
