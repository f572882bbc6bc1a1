"""Make data/unfamiliar/: images unlike anything the embedded model was trained on (photos, artwork, document
pages, code and terminal screenshots), for measuring the unfamiliar-image warning (docs/familiarity.md).

usage: /usr/bin/python3 tools/unfamiliar/make.py [OUT]      (default OUT: data/unfamiliar)

Photos and artwork come from Debian packages (downloaded with `apt-get download` into a temporary folder and
unpacked with `dpkg -x`; nothing is installed) and from matplotlib's sample data on this machine; document pages are
texts of /usr/share/common-licenses laid out as HTML pages; code screenshots are this repository's own source files
with a small highlighter, light and dark; terminal screenshots are fixed shell sessions. The pages are rendered
by Chromium headless (/usr/bin/chromium --headless --screenshot). Every image is resized to at most 768 px on its
long side; photos are JPEG, screenshots PNG. SOURCES.md (written next to them) names each file's source and licence.
Needs Pillow (Debian's python3-pil), apt-get, dpkg and Chromium.
"""
import html
import os
import re
import shutil
import subprocess
import sys
import tempfile

from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAX_SIDE = 768
CHROMIUM = "/usr/bin/chromium"

# (output name, package or None for a path on this machine, path inside it, source, licence)
PHOTOS = [
    ("photo_grace_hopper.jpg", None, "/usr/share/matplotlib/mpl-data/sample_data/grace_hopper.jpg",
     "matplotlib sample data (Debian python-matplotlib-data); official U.S. Navy photograph", "public domain"),
    ("photo_kleiber.jpg", "lomiri-wallpapers-20.04", "usr/share/backgrounds/Kleiber_by_Lukas_Baubkus.jpg",
     "Debian lomiri-wallpapers-20.04, Kleiber by Lukas Baubkus", "CC-BY-SA-4.0"),
    ("photo_infinite_sea.jpg", "lomiri-wallpapers-20.04", "usr/share/backgrounds/Infinite-Sea_by_Aury88.jpg",
     "Debian lomiri-wallpapers-20.04, Infinite Sea by Aury88", "CC-BY-SA-4.0"),
] + [
    (f"photo_{n.lower()}.jpg", "mate-backgrounds", f"usr/share/backgrounds/mate/nature/{n}.jpg",
     f"Debian mate-backgrounds, nature/{n}.jpg", "GPL-2+")
    for n in ["Aqua", "Blinds", "Dune", "FreshFlower", "Garden", "GreenMeadow", "LadyBird", "RainDrops", "Storm",
              "TwoWings", "Wood", "YellowFlower"]
]
ARTWORK = [
    (f"art_{n}.jpg", "ukui-wallpapers", f"usr/share/backgrounds/{n}.{ext}", f"Debian ukui-wallpapers, {n}.{ext}",
     "CC-BY-SA-3.0")
    for n, ext in [("goldfish", "png"), ("calla", "png"), ("firstgeneration", "jpg")]
]

DOC_STYLES = {
    "plain": "body{font:15px/1.45 'DejaVu Serif',serif;margin:48px 56px;color:#111;background:#fff}"
             "h1{font-size:22px}",
    "twocol": "body{font:12px/1.35 'DejaVu Sans',sans-serif;margin:36px;color:#222;background:#fdfdf8}"
              ".text{column-count:2;column-gap:28px;text-align:justify}h1{font-size:18px;text-align:center}",
    "report": "body{font:13px/1.5 'Liberation Serif','DejaVu Serif',serif;margin:0;color:#000;background:#fff}"
              "header{background:#234;color:#fff;padding:18px 40px}header h1{margin:0;font-size:20px}"
              ".text{padding:20px 40px}p:first-letter{font-size:130%;font-weight:bold}",
    "memo": "body{font:14px/1.6 'DejaVu Sans Mono',monospace;margin:40px;color:#202020;background:#f4f1e8}"
            "h1{font-size:16px;border-bottom:2px solid #444;padding-bottom:6px}",
}
# (licence file, style, paragraph offset): twelve pages
DOCS = [
    ("GPL-3", "plain", 0), ("GPL-3", "twocol", 20), ("Apache-2.0", "report", 0), ("Apache-2.0", "plain", 12),
    ("MPL-2.0", "twocol", 0), ("MPL-2.0", "memo", 15), ("LGPL-2.1", "report", 5), ("Artistic", "plain", 0),
    ("GFDL-1.3", "twocol", 8), ("CC0-1.0", "memo", 0), ("BSD", "report", 0), ("GPL-2", "memo", 30),
]

CODE_THEMES = {
    "light": {"bg": "#ffffff", "fg": "#1f2328", "kw": "#cf222e", "str": "#0a3069", "com": "#6e7781",
              "num": "#0550ae", "gutter": "#8c959f"},
    "dark": {"bg": "#1e1e1e", "fg": "#d4d4d4", "kw": "#569cd6", "str": "#ce9178", "com": "#6a9955",
             "num": "#b5cea8", "gutter": "#858585"},
}
# (repository file, first line, theme)
CODE = [
    ("runtime/vlm.ts", 1, "light"), ("runtime/vlm.ts", 120, "dark"), ("runtime/worker/main.ts", 1, "dark"),
    ("runtime/cli/ask.ts", 60, "light"), ("extension/panel.ts", 180, "dark"), ("train/data.py", 141, "light"),
    ("train/data.py", 430, "dark"), ("runtime/cache/store.ts", 1, "light"), ("esbuild.mjs", 1, "dark"),
    ("webview/main.ts", 200, "light"),
]
KEYWORDS = set("""abstract as async await break case catch class const continue def default del elif else enum
export extends false finally for from function if import in interface is lambda let new None not null of or pass
private public raise readonly return static switch this throw True False true try type typeof undefined var void
while with yield""".split())

TERMINALS = [
    ("term_git_log", "#300a24", "#ffffff", [
        "$ git log --oneline -8",
        "9ecda79 train/scenes.py: renderer-agnostic scene content",
        "ef620fd One decoder I/O declaration for both look-alike formats",
        "9c076c7 Real-size doc: the 500M's uint8, quantized and bnb4 files",
        "d14af4f Benchmarks doc: issue 12's refactor against the code before it",
        "7fa541c e2e: the packaged copy's policy list has snapkv",
        "$ git status --short", " M runtime/vlm.ts", "?? notes.txt", "$ _"]),
    ("term_ls", "#000000", "#c0c0c0", [
        "user@host:~/project$ ls -l", "total 48",
        "-rw-r--r-- 1 user user  1067 Nov 26 10:02 LICENSE",
        "-rw-r--r-- 1 user user 12288 Nov 30 18:44 README.md",
        "drwxr-xr-x 4 user user  4096 Dec  1 09:13 docs",
        "drwxr-xr-x 2 user user  4096 Dec  1 09:13 extension",
        "-rw-r--r-- 1 user user  5120 Dec  1 12:30 package.json",
        "drwxr-xr-x 9 user user  4096 Dec  1 12:30 runtime",
        "drwxr-xr-x 6 user user  4096 Dec  2 08:01 test", "user@host:~/project$ du -sh .", "212M\t.",
        "user@host:~/project$ "]),
    ("term_npm_test", "#1d1f21", "#c5c8c6", [
        "$ npm run test:unit", "", "> elastic-vlm@0.1.0 test:unit", "> node --import tsx --test test/unit/*.test.ts", "",
        "✔ policies: elastic keeps the anchors (3.1ms)", "✔ compaction: two block copies per head (0.9ms)",
        "✔ preprocess: Idefics3 tiling of 512x384 (12.4ms)", "✖ settings: cacheKeep out of range (1.2ms)",
        "ℹ tests 212", "ℹ pass 211", "ℹ fail 1", "ℹ duration_ms 8123.4"]),
    ("term_top", "#002b36", "#93a1a1", [
        "top - 09:14:02 up 3 days,  2:11,  1 user,  load average: 1.02, 0.87, 0.66",
        "Tasks: 143 total,   1 running, 142 sleeping,   0 stopped,   0 zombie",
        "%Cpu(s): 12.5 us,  2.1 sy,  0.0 ni, 85.1 id,  0.2 wa,  0.0 hi,  0.1 si",
        "MiB Mem :  23952.1 total,  21022.4 free,    982.3 used,   1947.4 buff/cache", "",
        "    PID USER      PR  NI    VIRT    RES    SHR S  %CPU  %MEM     TIME+ COMMAND",
        "   4411 user      20   0 1214932 210444  48120 S  98.7   0.9   1:02.33 node",
        "   1020 root      20   0  231812  11204   8832 S   0.3   0.0   0:04.10 sshd",
        "      1 root      20   0  167404  12716   9344 S   0.0   0.1   0:02.71 systemd"]),
    ("term_python", "#ffffff", "#000000", [
        "$ python3", "Python 3.11.2 (main) [GCC 12.2.0] on linux",
        'Type "help", "copyright", "credits" or "license" for more information.',
        ">>> import math", ">>> [round(math.sin(x / 3), 3) for x in range(6)]",
        "[0.0, 0.327, 0.618, 0.841, 0.971, 0.996]", ">>> sum(range(101))", "5050",
        ">>> {'a': 1, 'b': 2}.items()", "dict_items([('a', 1), ('b', 2)])", ">>> "]),
]


def resized(img):
    img = img.convert("RGB")
    if max(img.size) > MAX_SIDE:
        s = MAX_SIDE / max(img.size)
        img = img.resize((max(1, round(img.width * s)), max(1, round(img.height * s))), Image.LANCZOS)
    return img


def unpack(packages, tmp):
    """apt-get download + dpkg -x of each package into tmp/x/PACKAGE; returns {package: folder}."""
    out = {}
    for p in sorted(packages):
        subprocess.run(["apt-get", "download", p], cwd=tmp, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        deb = next(f for f in os.listdir(tmp) if f.startswith(p + "_") and f.endswith(".deb"))
        dest = os.path.join(tmp, "x", p)
        os.makedirs(dest)
        subprocess.run(["dpkg", "-x", os.path.join(tmp, deb), dest], check=True)
        out[p] = dest
    return out


def screenshot(html_text, size, path, tmp):
    page = os.path.join(tmp, "page.html")
    with open(page, "w", encoding="utf-8") as f:
        f.write(html_text)
    shot = os.path.join(tmp, "shot.png")
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    "--force-device-scale-factor=1", f"--window-size={size[0]},{size[1]}",
                    f"--screenshot={shot}", "file://" + page],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
    # 64 colours: the text's anti-aliasing needs no more, and the files stay small
    resized(Image.open(shot)).quantize(colors=64).save(path, optimize=True)


def doc_page(name, style, offset):
    text = open(f"/usr/share/common-licenses/{name}", encoding="utf-8", errors="replace").read()
    paras = [re.sub(r"\s+", " ", p).strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    title, body = paras[0], paras[1 + offset:1 + offset + 14]
    ps = "".join(f"<p>{html.escape(p)}</p>" for p in body)
    head = f"<header><h1>{html.escape(title)}</h1></header>" if style == "report" else f"<h1>{html.escape(title)}</h1>"
    return f"<!DOCTYPE html><html><head><meta charset='utf-8'><style>{DOC_STYLES[style]}</style></head>" \
           f"<body>{head}<div class='text'>{ps}</div></body></html>"


TOKEN = re.compile(r"(//[^\n]*|#[^\n]*|/\*.*?\*/|\"(?:\\.|[^\"\\])*\"|'(?:\\.|[^'\\])*'|`[^`]*`|\b\d+(?:\.\d+)?\b|\b\w+\b)")


def highlight(line, theme, python):
    out, pos = [], 0
    for m in TOKEN.finditer(line):
        out.append(html.escape(line[pos:m.start()]))
        t = m.group(0)
        if t.startswith("//") and not python or t.startswith("#") and python or t.startswith("/*"):
            color = theme["com"]
        elif t[0] in "\"'`":
            color = theme["str"]
        elif t[0].isdigit():
            color = theme["num"]
        elif t in KEYWORDS:
            color = theme["kw"]
        else:
            color = None
        out.append(f"<span style='color:{color}'>{html.escape(t)}</span>" if color else html.escape(t))
        pos = m.end()
    out.append(html.escape(line[pos:]))
    return "".join(out)


def code_page(path, first, theme_name):
    theme = CODE_THEMES[theme_name]
    lines = open(os.path.join(ROOT, path), encoding="utf-8").read().split("\n")[first - 1:first - 1 + 34]
    python = path.endswith(".py")
    rows = "".join(f"<div><span class='g'>{first + k:4d}</span>  {highlight(l, theme, python)}</div>"
                   for k, l in enumerate(lines))
    css = (f"body{{margin:0;background:{theme['bg']};color:{theme['fg']};font:13px/1.45 'DejaVu Sans Mono',monospace}}"
           f".tab{{background:{theme['gutter']}33;padding:6px 14px;font-family:'DejaVu Sans',sans-serif;font-size:12px}}"
           f".g{{color:{theme['gutter']}}}pre{{margin:8px 10px;white-space:pre}}")
    return f"<!DOCTYPE html><html><head><meta charset='utf-8'><style>{css}</style></head><body>" \
           f"<div class='tab'>{html.escape(path)}</div><pre>{rows}</pre></body></html>"


def terminal_page(bg, fg, lines):
    css = f"body{{margin:0;background:{bg};color:{fg};font:14px/1.4 'DejaVu Sans Mono',monospace}}" \
          "pre{margin:14px 16px;white-space:pre}"
    return f"<!DOCTYPE html><html><head><meta charset='utf-8'><style>{css}</style></head><body>" \
           f"<pre>{html.escape(chr(10).join(lines))}</pre></body></html>"


def main():
    out = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "data", "unfamiliar"))
    os.makedirs(out, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="unfamiliar-")
    rows = []
    try:
        folders = unpack({p for _, p, *_ in PHOTOS + ARTWORK if p}, tmp)
        for name, pkg, src, source, licence in PHOTOS + ARTWORK:
            resized(Image.open(os.path.join(folders[pkg], src) if pkg else src)).save(os.path.join(out, name),
                                                                                      quality=85)
            rows.append((name, source, licence))
        for k, (lic, style, offset) in enumerate(DOCS):
            name = f"doc_{k:02d}_{lic.lower()}_{style}.png"
            screenshot(doc_page(lic, style, offset), (800, 1000), os.path.join(out, name), tmp)
            rows.append((name, f"/usr/share/common-licenses/{lic} (Debian base-files), laid out as a web page",
                         f"the licence text itself ({lic}; verbatim copies permitted)"))
        for k, (path, first, theme) in enumerate(CODE):
            name = f"code_{k:02d}_{theme}.png"
            screenshot(code_page(path, first, theme), (900, 680), os.path.join(out, name), tmp)
            rows.append((name, f"this repository's {path} from line {first}, {theme} theme", "MIT (this project)"))
        for name, bg, fg, lines in TERMINALS:
            screenshot(terminal_page(bg, fg, lines), (860, 420), os.path.join(out, name + ".png"), tmp)
            rows.append((name + ".png", "a shell session typed for this set", "MIT (this project)"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    write_sources(out, rows)
    print(f"make.py: {len(rows)} images in {out}")


def write_sources(out, rows):
    with open(os.path.join(out, "SOURCES.md"), "w", encoding="utf-8") as f:
        f.write("# data/unfamiliar: sources and licences\n\n"
                "Images unlike the embedded model's training data, for measuring the unfamiliar-image warning "
                "(docs/familiarity.md). Made by `/usr/bin/python3 tools/unfamiliar/make.py`: Debian packages "
                "fetched with `apt-get download` and unpacked with `dpkg -x` (their licences as in each package's "
                "`usr/share/doc/PACKAGE/copyright`), pages rendered by Chromium headless, every image resized to at "
                "most 768 px (screenshots to 64 colours). They are test data only: none is in the .vsix.\n\n"
                "| file | source | licence |\n|---|---|---|\n")
        for name, source, licence in rows:
            f.write(f"| {name} | {source} | {licence} |\n")


if __name__ == "__main__":
    main()
