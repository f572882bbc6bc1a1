"""The font families the held-out renderers choose among (all installed system fonts: fonts-liberation,
fonts-dejavu, fonts-noto-core)."""

CSS_STACKS = ["'Liberation Sans', Arial, sans-serif", "'DejaVu Sans', Verdana, sans-serif",
              "'Noto Sans', 'Helvetica Neue', sans-serif", "'Liberation Serif', 'Times New Roman', serif",
              "'DejaVu Serif', Georgia, serif", "system-ui, sans-serif"]
# graphviz (fontconfig names) and gnuplot pngcairo (fontconfig names too)
FAMILIES = ["Liberation Sans", "DejaVu Sans", "Noto Sans", "Liberation Serif", "DejaVu Serif"]


def css_stack(rng, serif_ok=True):
    pool = CSS_STACKS if serif_ok else [s for s in CSS_STACKS if "serif" not in s.replace("sans-serif", "")]
    return rng.choice(pool)


def family(rng):
    return rng.choice(FAMILIES)
