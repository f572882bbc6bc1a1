"""shapes scenes as an SVG page for Chromium: each object of meta["objects"] at its normalized centre."""
import math

from colors import darker, shade

BACKGROUNDS = [("#ffffff", False), ("#f5f5f5", False), ("#fbf8f0", False), ("#eef2f7", False),
               ("#1e1e1e", True), ("#23272e", True), ("#2d3748", True), ("#fafafa", False)]
SIZES = [(480, 360), (640, 480), (600, 600), (800, 500), (720, 540), (420, 600), (540, 720), (900, 600),
         (560, 420), (500, 500)]


def _shape(kind, cx, cy, r, fill, stroke, sw):
    common = f'fill="{fill}"' + (f' stroke="{stroke}" stroke-width="{sw}" stroke-linejoin="round"' if stroke else "")
    if kind == "circle":
        return f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{r:.1f}" {common}/>'
    if kind == "square":
        s = r * 1.7
        return f'<rect x="{cx - s / 2:.1f}" y="{cy - s / 2:.1f}" width="{s:.1f}" height="{s:.1f}" {common}/>'
    if kind == "triangle":
        h = r * 1.1
        pts = [(cx, cy - h), (cx + h * math.sin(math.radians(60)), cy + h / 2),
               (cx - h * math.sin(math.radians(60)), cy + h / 2)]
    else:  # diamond
        pts = [(cx, cy - r * 1.15), (cx + r * 0.95, cy), (cx, cy + r * 1.15), (cx - r * 0.95, cy)]
    return f'<polygon points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in pts)}" {common}/>'


def page(meta, rng):
    """(html, width, height)."""
    w, h = rng.choice(SIZES)
    bg, dark = rng.choice(BACKGROUNDS)
    outline = rng.choice(["none", "none", "darker", "ink"])
    grid = rng.random() < 0.25
    r = rng.uniform(0.06, 0.08) * min(w, h)
    sw = rng.choice([1.5, 2, 3])
    body = []
    if grid:
        line = "#ffffff14" if dark else "#00000012"
        body.append(f'<defs><pattern id="g" width="24" height="24" patternUnits="userSpaceOnUse">'
                    f'<path d="M24 0H0V24" fill="none" stroke="{line}" stroke-width="1"/></pattern></defs>'
                    f'<rect width="100%" height="100%" fill="url(#g)"/>')
    for o in meta["objects"]:
        fill = shade(rng, o["color"])
        stroke = None if outline == "none" else (darker(fill) if outline == "darker" else
                                                 ("#e8e8e8" if dark else "#222222"))
        body.append(_shape(o["shape"], o["x"] * w, o["y"] * h, r, fill, stroke, sw))
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}">'
           + "".join(body) + "</svg>")
    html = (f'<!doctype html><html><head><meta charset="utf-8"><style>html,body{{margin:0;padding:0;'
            f'background:{bg};overflow:hidden}}svg{{display:block}}</style></head><body>{svg}</body></html>')
    return html, w, h
