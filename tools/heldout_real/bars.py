"""bars scenes: an SVG chart page for Chromium (the look of web chart libraries) or a gnuplot script (boxes).

Both draw meta's title on top, one bar per label in meta order, a value axis from 0 to 10 * scale with ticks
every one or two steps (every step when the values are not written on the bars), and the values on the bars
when meta["show_values"]."""
from colors import darker, hex_of, shade
from fonts import css_stack, family

SVG_SIZES = [(560, 400), (640, 420), (720, 480), (800, 500), (900, 600), (520, 520), (600, 450), (480, 600),
             (700, 700), (840, 520)]
GNUPLOT_SIZES = [(560, 400), (640, 480), (720, 480), (800, 560), (600, 500), (500, 600), (900, 600), (760, 520)]
THEMES = {  # background, text, grid, axis
    "light": ("#ffffff", "#333333", "#e5e5e5", "#888888"),
    "paper": ("#f7f7f7", "#222222", "#dddddd", "#555555"),
    "dark": ("#1f1f1f", "#dddddd", "#3a3a3a", "#aaaaaa"),
    "slate": ("#263238", "#eceff1", "#37474f", "#90a4ae"),
    "warm": ("#fffdf7", "#3b3024", "#ece4d4", "#8a7a66"),
}


def _tick_every(meta, rng):
    return rng.choice([1, 2]) if meta["show_values"] else 1


def svg_page(meta, rng):
    """(html, width, height): an SVG bar chart."""
    w, h = rng.choice(SVG_SIZES)
    bg, ink, gridc, axis = THEMES[rng.choice(list(THEMES))]
    font = css_stack(rng)
    fs = max(15, round(max(w, h) * rng.uniform(0.025, 0.03)))
    tfs = round(fs * rng.uniform(1.25, 1.5))
    title_left = rng.random() < 0.35
    bold = rng.random() < 0.6
    gridlines = rng.random() < 0.7
    every = _tick_every(meta, rng)
    scale, labels, values, steps = meta["scale"], meta["labels"], meta["values"], meta["steps"]
    fill = shade(rng, meta["color"])
    radius = rng.choice([0, 0, 2, 4])
    left = fs * (0.7 * len(str(10 * scale)) + 1.4)
    top = tfs * 2.2 + (fs if meta["show_values"] else 0)
    bottom, right = fs * 2.4, fs * 1.2
    pw, ph = w - left - right, h - top - bottom
    y_of = lambda k: top + ph * (1 - k / 10)  # noqa: E731
    out = [f'<rect width="{w}" height="{h}" fill="{bg}"/>']
    tx, anchor = (left, "start") if title_left else (w / 2, "middle")
    out.append(f'<text x="{tx:.1f}" y="{tfs * 1.3:.1f}" font-size="{tfs}" text-anchor="{anchor}" fill="{ink}"'
               f' font-weight="{"bold" if bold else "normal"}">{meta["title"]}</text>')
    for k in range(0, 11, every):
        y = y_of(k)
        if gridlines and k:
            out.append(f'<line x1="{left:.1f}" x2="{left + pw:.1f}" y1="{y:.1f}" y2="{y:.1f}" stroke="{gridc}"/>')
        out.append(f'<line x1="{left - 5:.1f}" x2="{left:.1f}" y1="{y:.1f}" y2="{y:.1f}" stroke="{axis}"/>')
        out.append(f'<text x="{left - 8:.1f}" y="{y + fs * 0.35:.1f}" font-size="{fs}" text-anchor="end"'
                   f' fill="{ink}">{k * scale}</text>')
    out.append(f'<line x1="{left:.1f}" x2="{left:.1f}" y1="{top:.1f}" y2="{top + ph:.1f}" stroke="{axis}"/>')
    slot = pw / len(labels)
    bw = slot * rng.uniform(0.5, 0.75)
    inside = meta["show_values"] and rng.random() < 0.3
    on_bar = "#222222" if meta["color"] in ("yellow", "orange") else "#ffffff"
    for i, (lab, v, k) in enumerate(zip(labels, values, steps)):
        cx = left + slot * (i + 0.5)
        y = y_of(k)
        out.append(f'<rect x="{cx - bw / 2:.1f}" y="{y:.1f}" width="{bw:.1f}" height="{top + ph - y:.1f}"'
                   f' rx="{radius}" fill="{fill}"/>')
        out.append(f'<text x="{cx:.1f}" y="{top + ph + fs * 1.4:.1f}" font-size="{fs}" text-anchor="middle"'
                   f' fill="{ink}">{lab}</text>')
        if meta["show_values"]:
            if inside and k >= 2:
                out.append(f'<text x="{cx:.1f}" y="{y + fs * 1.2:.1f}" font-size="{fs}" text-anchor="middle"'
                           f' fill="{on_bar}" font-weight="bold">{v}</text>')
            else:
                out.append(f'<text x="{cx:.1f}" y="{y - fs * 0.4:.1f}" font-size="{fs}" text-anchor="middle"'
                           f' fill="{ink}">{v}</text>')
    out.append(f'<line x1="{left:.1f}" x2="{left + pw:.1f}" y1="{top + ph:.1f}" y2="{top + ph:.1f}" stroke="{axis}"/>')
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}"'
           f' font-family="{font}">' + "".join(out) + "</svg>")
    html = ('<!doctype html><html><head><meta charset="utf-8"><style>html,body{margin:0;padding:0;'
            f'overflow:hidden;background:{bg}}}svg{{display:block}}</style></head><body>{svg}</body></html>')
    return html, w, h


def gnuplot_script(meta, rng):
    """A gnuplot script (pngcairo, output on stdout) drawing the chart with boxes."""
    w, h = rng.choice(GNUPLOT_SIZES)
    bg, ink, gridc, axis = THEMES[rng.choice(["light", "light", "paper", "dark", "warm"])]
    fs = max(14, round(max(w, h) * rng.uniform(0.022, 0.027)))
    every = _tick_every(meta, rng)
    scale, n = meta["scale"], len(meta["labels"])
    fill = hex_of(shade(rng, meta["color"]))
    solid = rng.choice([1.0, 0.9])  # lighter densities turn red into pink
    border = rng.choice(["noborder", f'border lc rgb "{darker(fill)}"', 'border lc rgb "#000000"'])
    lines = [f'set terminal pngcairo size {w},{h} enhanced font "{family(rng)},{fs}" background rgb "{bg}"',
             f'set title "{meta["title"]}" font ",{round(fs * rng.uniform(1.2, 1.45))}" textcolor rgb "{ink}"',
             "unset key",
             f'set border 3 lc rgb "{axis}"' if rng.random() < 0.6 else f'set border 15 lc rgb "{axis}"',
             f'set style fill solid {solid} {border}',
             f"set boxwidth {rng.choice([0.5, 0.6, 0.7, 0.8])}",
             f"set yrange [0:{10 * scale}]", f"set xrange [-0.6:{n - 0.4}]",
             f'set ytics 0,{every * scale} nomirror textcolor rgb "{ink}"',
             f'set xtics nomirror scale 0 textcolor rgb "{ink}"']
    if rng.random() < 0.6:
        lines.append(f'set grid ytics lc rgb "{gridc}" lw 1 dt {rng.choice([1, 2])}')
    data = "\n".join(f'"{lab}" {v}' for lab, v in zip(meta["labels"], meta["values"])) + "\ne\n"
    plot = f"plot '-' using 0:2:xtic(1) with boxes lc rgb \"{fill}\""
    if meta["show_values"]:
        plot += f" , '-' using 0:2:(sprintf(\"%d\",$2)) with labels offset 0,0.9 textcolor rgb \"{ink}\""
        data += data
    lines.append(plot)
    return "\n".join(lines) + "\n" + data
