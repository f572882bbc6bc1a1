"""ui scenes as HTML pages for Chromium: a dialog, card or web form whose title (title bar or heading) is
meta["title"], one native <input type=checkbox|radio> per option (only meta["checked"] checked) and the
buttons in one row at the bottom, in meta order from left to right."""
import html as _html

from fonts import css_stack

SIZES = [(480, 360), (560, 420), (640, 480), (720, 540), (800, 600), (900, 700), (420, 600), (480, 720),
         (600, 800), (540, 540), (760, 480)]
DESKTOPS = ["#3a6ea5", "linear-gradient(135deg,#5b7fa6,#a7bcd4)", "#d6d9de", "linear-gradient(160deg,#2b5876,#4e4376)",
            "#008080", "#e9e4dc", "linear-gradient(120deg,#c9d6ff,#e2e2e2)"]

BASE = """*{box-sizing:border-box}html,body{margin:0;padding:0;width:100%;height:100%;overflow:hidden}
body{font-family:FONT;font-size:FSpx;display:flex;align-items:center;justify-content:center}
input[type=checkbox],input[type=radio]{font-size:inherit;width:.95em;height:.95em;margin:0 .55em 0 0;vertical-align:middle;flex:none}
.opt{display:flex;align-items:center;margin:.45em 0}.opts{margin:.4em 0 .9em}
.row{display:flex;gap:.6em;margin-top:.4em}button{font:inherit;cursor:default;white-space:nowrap}"""

THEMES = {
    # each: extra CSS, and a function of (title, body, buttons) -> window HTML
    "mac": """body{background:DESK}.win{background:#ececec;border-radius:10px;box-shadow:0 12px 40px rgba(0,0,0,.35);
overflow:hidden;width:WINpx;color:#1d1d1f;border:1px solid #b9b9b9}
.tb{height:1.9em;display:flex;align-items:center;justify-content:center;position:relative;
background:linear-gradient(#e8e6e8,#d1cfd1);border-bottom:1px solid #b1b1b1;font-weight:600;font-size:.92em}
.dots{position:absolute;left:.7em;display:flex;gap:.45em}.dots i{width:.75em;height:.75em;border-radius:50%;display:block}
.body{padding:.9em 1.3em 1.1em}.row{justify-content:flex-end}
button{background:#fff;border:1px solid #c4c4c4;border-radius:6px;padding:.25em 1em;color:#1d1d1f}
button.default{background:#0a84ff;border-color:#0a6fd8;color:#fff}input{accent-color:#0a84ff}""",
    "win": """body{background:DESK}.win{background:#f0f0f0;width:WINpx;border:1px solid #7a7a7a;box-shadow:0 6px 24px rgba(0,0,0,.3);color:#000}
.tb{height:1.9em;display:flex;align-items:center;padding:0 0 0 .6em;background:#fff;font-size:.92em}
.tb .t{flex:1}.tb .c{width:2.6em;text-align:center;color:#333}
.body{padding:.8em 1.2em 1em}.row{justify-content:flex-end}
button{background:#e1e1e1;border:1px solid #adadad;padding:.2em .6em;min-width:5.2em;color:#000}
button.default{border:2px solid #0078d7}""",
    "bootstrap": """body{background:#f8f9fa}.win{background:#fff;border:1px solid rgba(0,0,0,.175);border-radius:.375rem;width:WINpx;color:#212529}
.tb{padding:.6em 1em;background:rgba(0,0,0,.03);border-bottom:1px solid rgba(0,0,0,.175);font-size:1.2em;font-weight:500}
.body{padding:.8em 1em 1em}.row{justify-content:flex-start;border-top:1px solid #dee2e6;padding-top:.8em}
button{border:1px solid #6c757d;background:#6c757d;color:#fff;border-radius:.375rem;padding:.3em .8em}
button.default{background:#0d6efd;border-color:#0d6efd}input{accent-color:#0d6efd}""",
    "material": """body{background:#9e9e9e}.win{background:#fff;border-radius:4px;width:WINpx;box-shadow:0 11px 15px -7px rgba(0,0,0,.2),0 24px 38px 3px rgba(0,0,0,.14);color:rgba(0,0,0,.87)}
.tb{padding:1em 1.2em .3em;font-size:1.3em;font-weight:500}
.body{padding:.2em 1.2em .7em}.row{justify-content:flex-end;gap:.3em}
button{background:none;border:none;color:#6200ee;font-weight:600;letter-spacing:.04em;text-transform:uppercase;padding:.45em .7em}
input{accent-color:#6200ee}""",
    "dark": """body{background:#1e1e1e}.win{background:#252526;border:1px solid #454545;width:WINpx;color:#cccccc}
.tb{padding:.55em 1em;background:#333333;font-size:1.05em;color:#e7e7e7}
.body{padding:.8em 1.1em 1em}.row{justify-content:flex-end}
button{background:#3a3d41;border:1px solid #3a3d41;color:#fff;padding:.25em .9em;border-radius:2px}
button.default{background:#0e639c;border-color:#0e639c}input{accent-color:#3794ff;color-scheme:dark}""",
    "webform": """body{background:#ffffff;align-items:flex-start;justify-content:flex-start}.win{width:WINpx;margin:1.2em 1.6em;color:#222}
.tb{font-size:1.6em;font-weight:bold;margin-bottom:.2em}.body{padding:0}.row{justify-content:flex-start}
button{padding:.3em 1em}input{accent-color:#2a6ebb}""",
    "card": """body{background:DESK}.win{background:#fff;border-radius:14px;box-shadow:0 4px 18px rgba(0,0,0,.18);width:WINpx;color:#2d3436;padding:1.2em 1.4em}
.tb{font-size:1.45em;font-weight:700;margin-bottom:.3em}.body{padding:0}.row{justify-content:space-between}
button{flex:1;background:#f1f2f6;border:1px solid #dfe4ea;border-radius:8px;padding:.45em .6em;color:#2d3436}
button.default{background:#2d3436;color:#fff;border-color:#2d3436}input{accent-color:#e17055}""",
}


def page(meta, rng):
    """(html, width, height)."""
    w, h = rng.choice(SIZES)
    theme = rng.choice(list(THEMES))
    # 15-24 px, and at least ~13 px once the longest edge is shrunk to 512 (what the model sees)
    hi = min(24, w // 20)
    fs = rng.randint(min(hi, max(15, round(max(w, h) * 0.027))), hi)
    font = css_stack(rng)
    win = round(w * rng.uniform(0.72, 0.9)) if theme != "webform" else round(w * 0.8)
    desk = rng.choice(DESKTOPS)
    css = (BASE + THEMES[theme]).replace("FONT", font).replace("FS", str(fs)).replace("WIN", str(win)) \
        .replace("DESK", desk)
    esc = _html.escape
    kind = "radio" if meta["radio"] else "checkbox"
    opts = "".join(
        f'<label class="opt"><input type="{kind}" name="g"{" checked" if i == meta["checked"] else ""}>'
        f'<span>{esc(o)}</span></label>' for i, o in enumerate(meta["options"]))
    default = rng.choice([0, len(meta["buttons"]) - 1, None])
    btns = "".join(f'<button{" class=default" if i == default else ""}>{esc(b)}</button>'
                   for i, b in enumerate(meta["buttons"]))
    title = esc(meta["title"])
    if theme == "mac":
        bar = ('<div class="tb"><span class="dots"><i style="background:#ff5f57"></i><i style="background:#febc2e">'
               f'</i><i style="background:#28c840"></i></span>{title}</div>')
    elif theme == "win":
        bar = f'<div class="tb"><span class="t">{title}</span><span class="c">&#8211;</span><span class="c">&#9633;</span><span class="c">&#10005;</span></div>'
    else:
        bar = f'<div class="tb">{title}</div>'
    body = f'<div class="win">{bar}<div class="body"><div class="opts">{opts}</div><div class="row">{btns}</div></div></div>'
    doc = (f'<!doctype html><html><head><meta charset="utf-8"><title>{title}</title><style>{css}</style></head>'
           f'<body>{body}</body></html>')
    return doc, w, h
