"""CSS-style shades of the six colour names (as web chart libraries, design systems and plotting tools spell
them), so that a named colour is drawn in a shade other than train/data.py's RGB triple."""

SHADES = {
    "red": ["#d62728", "#e53935", "#c62828", "#dc3545", "#f44336", "crimson"],
    "green": ["#2ca02c", "#43a047", "#28a745", "#2e7d32", "#4caf50", "forestgreen"],
    "blue": ["#1f77b4", "#1e88e5", "#007bff", "#1565c0", "#2196f3", "royalblue"],
    "yellow": ["#fdd835", "#ffeb3b", "#f4d03f", "#ffd60a", "gold", "#f1c40f"],
    "purple": ["#9467bd", "#8e24aa", "#6f42c1", "#7b1fa2", "#9c27b0", "rebeccapurple"],
    "orange": ["#ff7f0e", "#fb8c00", "#fd7e14", "#ef6c00", "#ff9800", "darkorange"],
}
# the CSS keywords above as hex, for the tools that only take hex (gnuplot, graphviz take names too, but not all)
HEX = {"crimson": "#dc143c", "forestgreen": "#228b22", "royalblue": "#4169e1", "gold": "#ffd700",
       "rebeccapurple": "#663399", "darkorange": "#ff8c00"}


def shade(rng, name):
    """One CSS shade of colour `name`."""
    return rng.choice(SHADES[name])


def hex_of(css):
    return HEX.get(css, css)


def darker(css, k=0.65):
    """A darker hex of a shade (outlines)."""
    h = hex_of(css).lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return "#%02x%02x%02x" % (int(r * k), int(g * k), int(b * k))
