"""What a "real tools" image shows, apart from how it is drawn: the scene content, its questions and its
description, for the four families (shapes, bars, ui, flow).

data.py draws its own fixed style and keeps its content inline (data/heldout regenerates from it byte for byte).
This module is the content for images drawn the way real tools draw them: train/styles.py draws a scene with
Pillow in many themes and with matplotlib (training), tools/heldout_real/ draws it with Chromium, graphviz and
gnuplot (the held-out set "heldout-real", never trained on). One scene, any renderer: the answers and the
description come from here, so every renderer is asked the same things in the same words.

A scene is a dict: family, qa [(task, question, answer)], describe (str), meta (what a renderer needs:
labels, values, positions in [0, 1], ...). Sample i of split s is seeded by sha256("scene-s:i").
"""
import hashlib
import random

import data

# Label vocabularies of real interfaces, charts and diagrams (each kept to its role, as real ones are).
UI_TITLES = ["Sign in", "Settings", "Preferences", "Export", "Print", "Options", "Account", "Login", "Update",
             "Share", "New project", "Save as", "Open file", "Network", "Privacy", "Display"]
BUTTONS = ["OK", "Cancel", "Apply", "Save", "Submit", "Log in", "Next", "Back", "Close", "Delete", "Retry",
           "Help", "Yes", "No", "Continue", "Reset", "Send", "Open"]
OPTIONS = ["Remember me", "Dark mode", "Auto save", "Show hints", "Notifications", "Send report", "Sync files",
           "Wrap lines", "Spell check", "Line numbers", "Autoplay", "Offline mode", "Beta features", "Sound",
           "Location", "Backups"]
CHART_TITLES = ["Sales", "Revenue", "Users", "Errors", "Latency", "Downloads", "Signups", "Orders", "Traffic",
                "Quarterly sales", "Monthly users", "Build times"]
# (labels, ordered): an ordered set is shown as a consecutive run, as a real axis would
BAR_LABEL_SETS = [
    (["Q1", "Q2", "Q3", "Q4"], True),
    (["Mon", "Tue", "Wed", "Thu", "Fri", "Sat"], True),
    (["Jan", "Feb", "Mar", "Apr", "May", "Jun"], True),
    (["North", "South", "East", "West", "Central"], False),
    (["Apples", "Pears", "Plums", "Grapes", "Kiwis", "Lemons"], False),
    (["Chrome", "Firefox", "Safari", "Edge", "Opera"], False),
    (["Alice", "Bob", "Carol", "Dave", "Eve", "Frank"], False),
]
FLOW_STEPS = ["Start", "Read config", "Validate", "Run job", "Show error", "Done", "Fetch data", "Parse", "Build",
              "Test", "Review", "Merge", "Deploy", "Notify", "Login", "Retry", "Upload", "Sign up", "Checkout",
              "Pay", "Ship", "Archive", "Report", "Clean up"]
# data.py's 28 words stay in the mix (a share of scenes labels with them), so the old skill carries over
OLD_WORDS = list(data.WORDS)
LABELS = sorted(set(UI_TITLES + BUTTONS + OPTIONS + CHART_TITLES + FLOW_STEPS + OLD_WORDS
                    + [w for ws, _ in BAR_LABEL_SETS for w in ws]))
OLD_WORDS_P = 0.3
SCALES = [(1, 0.6), (10, 0.3), (100, 0.1)]  # bar values are v * scale, v in 1..9, axis 0..10 * scale
FAMILIES = data.FAMILIES
TASKS = data.SHORT_TASKS + ["bars_title", "describe"]


def seed_for(split, index):
    return int.from_bytes(hashlib.sha256(f"scene-{split}:{index}".encode()).digest()[:8], "little")


def _pick(rng, pool, n, old_p=OLD_WORDS_P):
    src = OLD_WORDS if rng.random() < old_p else pool
    return rng.sample(src, n)


def shapes_scene(rng):
    n = rng.randint(3, 6)
    combos = [(c, s) for c in data.COLORS for s in data.SHAPES]
    rng.shuffle(combos)
    chosen = combos[:n]
    if rng.random() < 0.6:  # repeated kinds / colours, so counts go above 1
        data.share_kind_or_colour(rng, chosen)
    objs = []
    for c, s in chosen:  # centres in [0.1, 0.9], at least 0.2 apart
        for _ in range(400):
            x, y = rng.uniform(0.1, 0.9), rng.uniform(0.12, 0.88)
            if all((x - o["x"]) ** 2 + (y - o["y"]) ** 2 > 0.2 ** 2 for o in objs):
                objs.append({"color": c, "shape": s, "x": round(x, 3), "y": round(y, 3)})
                break
    qa = data.shapes_questions(rng, objs, 0.12)
    order = sorted(objs, key=lambda o: (o["x"], o["y"]))
    parts = [f"{data.article(o['color'])} {o['color']} {o['shape']} at the {data.region_name(o['x'], o['y'], 1, 1)}"
             for o in order]
    counts = {s: sum(o["shape"] == s for o in objs) for s in data.SHAPES}
    kind_counts = [f"{k} {data.PLURAL[s] if k > 1 else s}" for s, k in counts.items() if k]
    col_counts = [f"{sum(o['color'] == c for o in objs)} {c}" for c in data.COLORS if any(o["color"] == c for o in objs)]
    top = min(objs, key=lambda o: o["y"])
    desc = [f"The image shows {data.NUM_WORDS[len(objs)]} shapes.",
            "From left to right there is " + data.join_list(parts) + ".",
            "In total there are " + data.join_list(kind_counts) + ".",
            "By color there are " + data.join_list(col_counts) + ".",
            f"The highest shape is the {top['color']} {top['shape']}."]
    return qa, " ".join(desc), {"objects": objs}


def bars_scene(rng):
    n = rng.randint(3, 6)
    if rng.random() < OLD_WORDS_P:
        labels = rng.sample(OLD_WORDS, n)
    else:
        pool, ordered = rng.choice(BAR_LABEL_SETS)
        n = min(n, len(pool))
        if ordered:
            s0 = rng.randint(0, len(pool) - n)
            labels = pool[s0:s0 + n]
        else:
            labels = rng.sample(pool, n)
    while True:
        vs = [rng.randint(1, 9) for _ in range(n)]
        s = sorted(vs)
        if s[-1] > s[-2] and s[1] > s[0]:
            break
    scale = rng.choices([k for k, _ in SCALES], weights=[p for _, p in SCALES])[0]
    values = [v * scale for v in vs]
    title = _pick(rng, CHART_TITLES, 1)[0]
    color = rng.choice(list(data.COLORS))
    tallest, shortest = labels[values.index(max(values))], labels[values.index(min(values))]
    k = rng.randrange(n)
    qa = [("bars_extreme", "Which bar is the tallest?", tallest) if rng.random() < 0.5
          else ("bars_extreme", "Which bar is the shortest?", shortest),
          ("bars_value", f"What is the value of {labels[k]}?", str(values[k])),
          ("bars_count", "How many bars are there?", str(n)),
          ("bars_title", "What is the title of the chart?", title)]
    desc = [f"This is a bar chart titled {title} with {data.NUM_WORDS[n]} {color} bars.",
            "From left to right the bars are "
            + data.join_list([f"{lab} with value {v}" for lab, v in zip(labels, values)]) + ".",
            f"The tallest bar is {tallest} and the shortest bar is {shortest}."]
    meta = {"title": title, "labels": labels, "values": values, "steps": vs, "scale": scale, "color": color,
            "show_values": rng.random() < 0.5}
    return qa, " ".join(desc), meta


def ui_scene(rng):
    old = rng.random() < OLD_WORDS_P
    words = rng.sample(OLD_WORDS, 8) if old else None
    title = words[0] if old else rng.choice(UI_TITLES)
    n_opt, n_btn = rng.randint(2, 4), rng.randint(2, 3)
    options = words[1:1 + n_opt] if old else rng.sample(OPTIONS, n_opt)
    buttons = words[1 + n_opt:1 + n_opt + n_btn] if old else rng.sample(BUTTONS, n_btn)
    checked, radio = rng.randrange(n_opt), rng.random() < 0.4
    pos = ["left", "right"] if n_btn == 2 else ["left", "middle", "right"]
    k = rng.randrange(n_btn)
    qa = [("ui_title", "What is the window title?", title),
          ("ui_button", f"What does the {pos[k]} button say?", buttons[k]),
          ("ui_checked", "Which option is selected?" if radio else "Which option is checked?", options[checked])]
    kind = "radio buttons" if radio else "check boxes"
    desc = [f"This is a screenshot of a window titled {title}.",
            f"It shows {data.NUM_WORDS[n_opt]} options with {kind}: {data.join_list(options)}.",
            f"The option {options[checked]} is {'selected' if radio else 'checked'} and the others are not.",
            f"At the bottom there are {data.NUM_WORDS[n_btn]} buttons: {data.join_list(buttons)}."]
    meta = {"title": title, "options": options, "checked": checked, "radio": radio, "buttons": buttons,
            "button_positions": pos}
    return qa, " ".join(desc), meta


def flow_scene(rng):
    n = rng.randint(3, 6)
    labels = _pick(rng, FLOW_STEPS, n)
    ks = list(range(n - 1))
    rng.shuffle(ks)
    qa = [("flow_next", f"What follows {labels[k]}?", labels[k + 1]) for k in ks[:2]]
    desc = [f"This is a flow diagram with {data.NUM_WORDS[n]} boxes connected by arrows.",
            "The boxes in order are " + data.join_list(labels) + ".", f"It starts at {labels[0]}."]
    desc += [f"{labels[i][0].upper() + labels[i][1:]} leads to {labels[i + 1]}." for i in range(n - 1)]
    desc.append(f"The process ends at {labels[-1]}.")
    return qa, " ".join(desc), {"labels": labels,
                                "direction": rng.choice(["row", "column", "snake"] if n >= 4 else ["row", "column"])}


SCENES = {"shapes": shapes_scene, "bars": bars_scene, "ui": ui_scene, "flow": flow_scene}


def make_scene(split, index, family=None):
    rng = random.Random(seed_for(split, index))
    fam = family or FAMILIES[rng.randrange(len(FAMILIES))]
    qa, desc, meta = SCENES[fam](rng)
    # the renderer's own random choices (theme, size, font) come from this seed, not from the content's
    return {"family": fam, "qa": qa, "describe": desc, "meta": meta, "split": split, "seed_index": index,
            "style_seed": seed_for(split + "-style", index)}


if __name__ == "__main__":
    for i in range(8):
        s = make_scene("preview", i)
        print(s["family"], s["qa"])
        print("   ", s["describe"])
    print(len(LABELS), "labels")
