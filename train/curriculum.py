"""Reading curriculum for continued training: dense supervision for reading the label words.

The first training run (train/README.md) taught colours and counts but not reading: the tasks that need a word
read off the image (ui_title, ui_button, ui_checked, flow_next, bars_extreme) stayed at chance. This module adds
training-only questions whose answers are the words themselves, in two forms:

  * reading questions about the ordinary family images (same generator, same fonts and layout, so the held-out
    images stay exactly in distribution): "What is the label of the second bar?", "What is the title of the
    chart?", "What is the third option?", "What is the label of the first button?", "Is delta checked?",
    "What is in the second box?", "What comes before sort?", "Where does the process end?" ...
  * word images (family "words"): one to four words of the label vocabulary on a plain background, in a stack,
    a row or a 2x2 grid of boxes, with font sizes from the families' 16-22 px up to 40 px:
    "What word is written?", "What is the top word?", "Which word is at the top left?", "Read all the words." ...

None of these questions is an evaluation question, and none of them is in data/heldout/ (which stays exactly as
committed). Seeds: word images use split "words" (sha256("words:i")); family images come from the training
split; neither can meet a held-out seed (split "heldout").
"""
import random

from PIL import Image, ImageDraw

import data

ORD = ["first", "second", "third", "fourth", "fifth", "sixth"]
SIZES = [(512, 384), (512, 512), (384, 512), (512, 256)]


# ------------------------------------------------------------------------------------ questions on family images
# reading questions true of data.py's drawing only (its primary button is always the blue one on the right)
DATA_PY_ONLY = {"read_ui_button_blue"}

def family_reading_qa(sample, rng):
    """Reading questions (task, question, answer) about a family image from its layout meta."""
    fam, m = sample["family"], sample["meta"]
    qa = []
    if fam == "bars":
        labels, values = m["labels"], m["values"]
        n = len(labels)
        qa.append(("read_chart_title", "What is the title of the chart?", m["title"]))
        for i in range(n):
            qa.append(("read_bar_label", f"What is the label of the {ORD[i]} bar?", labels[i]))
        qa.append(("read_bar_label", "What is the label of the last bar?", labels[-1]))
        i = rng.randrange(n - 1)
        qa.append(("read_bar_next", f"Which bar is right of {labels[i]}?", labels[i + 1]))
        qa.append(("read_bar_next", f"Which bar is left of {labels[i + 1]}?", labels[i]))
        uniq = [k for k in range(n) if values.count(values[k]) == 1]
        if uniq:
            k = rng.choice(uniq)
            qa.append(("read_bar_by_value", f"Which bar has the value {values[k]}?", labels[k]))
        k = rng.randrange(n)
        qa.append(("read_bar_value_ord", f"What is the value of the {ORD[k]} bar?", str(values[k])))
        hi = values.index(max(values))
        lo = values.index(min(values))
        qa.append(("read_bar_extreme_ord", "Which position has the tallest bar?", ORD[hi]))
        qa.append(("read_bar_extreme_ord", "Which position has the shortest bar?", ORD[lo]))
        # run 5: more of the task's own question forms on fresh training images (both extremes, every value)
        qa.append(("read_bar_extreme", "Which bar is the tallest?", labels[hi]))
        qa.append(("read_bar_extreme", "Which bar is the shortest?", labels[lo]))
        for k in rng.sample(range(n), min(n, 3)):
            qa.append(("read_bar_value", f"What is the value of {labels[k]}?", str(values[k])))
    elif fam == "ui":
        opts, btns = m["options"], m["buttons"]
        qa.append(("read_ui_titlebar", "What is written in the title bar?", m["title"]))
        for i, o in enumerate(opts):
            qa.append(("read_ui_option", f"What is the {ORD[i]} option?", o))
        for i, b in enumerate(btns):
            qa.append(("read_ui_button_ord", f"What is the label of the {ORD[i]} button?", b))
        qa.append(("read_ui_button_blue", "What does the blue button say?", btns[-1]))
        word = "selected" if m["radio"] else "checked"
        k = rng.randrange(len(opts))
        qa.append(("read_ui_is_checked", f"Is {opts[k]} {word}?", "yes" if k == m["checked"] else "no"))
        qa.append(("read_ui_checked_ord", f"Which position is the {word} option?", ORD[m["checked"]]))
        k = rng.randrange(len(opts) - 1)
        qa.append(("read_ui_below", f"Which option is below {opts[k]}?", opts[k + 1]))
        qa.append(("read_ui_count", "How many options are there?", str(len(opts))))
    elif fam == "flow":
        labels = m["labels"]
        n = len(labels)
        for i in range(n):
            qa.append(("read_flow_box", f"What is in the {ORD[i]} box?", labels[i]))
        qa.append(("read_flow_start", "Where does the process start?", labels[0]))
        qa.append(("read_flow_end", "Where does the process end?", labels[-1]))
        k = rng.randrange(1, n)
        qa.append(("read_flow_before", f"What comes before {labels[k]}?", labels[k - 1]))
        qa.append(("read_flow_count", "How many boxes are there?", str(n)))
    elif fam == "shapes":
        objs = m["objects"]
        qa.append(("read_shapes_total", "How many shapes are there?", str(len(objs))))
        top = min(objs, key=lambda o: o["y"])
        qa.append(("read_shapes_top", "What color is the highest shape?", top["color"]))
        left = min(objs, key=lambda o: o["x"])
        qa.append(("read_shapes_left", "What shape is furthest left?", left["shape"]))
        # run 5: more relation questions of the task's own form, on other pairs of the same training image
        pairs = [(a, b) for a in objs for b in objs if a is not b]
        rng.shuffle(pairs)
        for a, b in pairs[:4]:
            if abs(a["x"] - b["x"]) >= 40 and (rng.random() < 0.5 or abs(a["y"] - b["y"]) < 40):
                qa.append(("read_shapes_relation", f"Is the {a['color']} {a['shape']} left or right of the "
                           f"{b['color']} {b['shape']}?", "left" if a["x"] < b["x"] else "right"))
            elif abs(a["y"] - b["y"]) >= 40:
                qa.append(("read_shapes_relation", f"Is the {a['color']} {a['shape']} above or below the "
                           f"{b['color']} {b['shape']}?", "above" if a["y"] < b["y"] else "below"))
    rng.shuffle(qa)
    return qa


# ------------------------------------------------------------------------------------------------ word images
def _light_bg(rng):
    return rng.choice([(255, 255, 255), (245, 245, 240), (235, 240, 248), (250, 250, 250), (225, 245, 225),
                       (255, 240, 210), (220, 235, 255)])


def _canvas(rng, dark_p):
    """A blank word image: a size, a light background (or with probability dark_p a title-bar colour), and the
    text colour that goes with it. -> (image, its ImageDraw, text colour)."""
    w, h = rng.choice(SIZES)
    dark = rng.random() < dark_p
    bg = rng.choice([(40, 90, 220), (60, 60, 70), (40, 140, 120)]) if dark else _light_bg(rng)
    fg = (255, 255, 255) if dark else rng.choice([(20, 20, 20), (20, 20, 20), (40, 40, 40), (30, 30, 90)])
    img = Image.new("RGB", (w, h), bg)
    return img, ImageDraw.Draw(img), fg


def gen_words(rng):
    """An image with 1-4 vocabulary words and reading questions about them."""
    img, d, fg = _canvas(rng, dark_p=0.15)
    w, h = img.size
    layout = rng.choice(["single", "stack", "stack", "row", "grid"])
    size = rng.choice([16, 18, 19, 20, 22, 22, 24, 26, 28, 32, 36, 40])
    bold = rng.random() < 0.85
    f = data.font(size, bold)
    qa = []
    if layout == "single":
        word = rng.choice(data.WORDS)
        tw, th, _, _ = data.text_size(d, word, f)
        cx = rng.uniform(tw / 2 + 8, w - tw / 2 - 8)
        cy = rng.uniform(th / 2 + 8, h - th / 2 - 8)
        data.draw_text_centered(d, cx, cy, word, f, fg)
        qa.append(("read_word", "What word is written?", word))
        qa.append(("read_word_region", "Where is the word?", data.region_name(cx, cy, w, h)))
        words = [word]
    elif layout == "stack":
        n = rng.randint(2, 4)
        words = rng.sample(data.WORDS, n)
        slot = h / n
        ys = [slot * (i + 0.5) + rng.uniform(-slot * 0.15, slot * 0.15) for i in range(n)]
        for wd, y in zip(words, ys):
            tw, th, _, _ = data.text_size(d, wd, f)
            cx = rng.uniform(tw / 2 + 8, w - tw / 2 - 8)
            data.draw_text_centered(d, cx, y, wd, f, fg)
        qa.append(("read_stack", "What is the top word?", words[0]))
        qa.append(("read_stack", "What is the bottom word?", words[-1]))
        for i in range(n):
            qa.append(("read_stack", f"What is the {ORD[i]} word from the top?", words[i]))
        k = rng.randrange(n - 1)
        qa.append(("read_stack_rel", f"Which word is below {words[k]}?", words[k + 1]))
        qa.append(("read_stack_rel", f"Which word is above {words[k + 1]}?", words[k]))
        qa.append(("read_count", "How many words are there?", str(n)))
    elif layout == "row":
        n = rng.randint(2, 3)
        words = rng.sample(data.WORDS, n)
        cy = rng.uniform(h * 0.25, h * 0.75)
        slot = w / n
        for i, wd in enumerate(words):
            data.draw_text_centered(d, slot * (i + 0.5), cy + rng.uniform(-6, 6), wd, data.font(min(size, 26), bold), fg)
        qa.append(("read_row", "What is the left word?", words[0]))
        qa.append(("read_row", "What is the right word?", words[-1]))
        if n == 3:
            qa.append(("read_row", "What is the middle word?", words[1]))
        k = rng.randrange(n - 1)
        qa.append(("read_row_rel", f"Which word is right of {words[k]}?", words[k + 1]))
        qa.append(("read_count", "How many words are there?", str(n)))
    else:  # 2x2 grid of boxes like the flow diagrams
        words = rng.sample(data.WORDS, 4)
        names = ["top left", "top right", "bottom left", "bottom right"]
        box_fill = rng.choice([(220, 235, 255), (255, 240, 210), (225, 245, 225), (225, 225, 230)])
        fb = data.font(min(size, 24), bold)
        for i, wd in enumerate(words):
            cx = w * (0.25 + 0.5 * (i % 2)) + rng.randint(-6, 6)
            cy = h * (0.25 + 0.5 * (i // 2)) + rng.randint(-6, 6)
            bw, bh = min(130, w / 2 - 24), 48
            d.rounded_rectangle([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], radius=6, fill=box_fill,
                                outline=(40, 40, 40), width=2)
            data.draw_text_centered(d, cx, cy, wd, fb, (20, 20, 20))
        for i, nm in enumerate(names):
            qa.append(("read_grid", f"Which word is at the {nm}?", words[i]))
        k = rng.randrange(4)
        qa.append(("read_grid_where", f"Where is {words[k]}?", names[k]))
    qa.append(("read_all", "Read all the words.", data.join_list(words)))
    rng.shuffle(qa)
    return img, qa, words


BIG_SIZES = [28, 30, 32, 34, 36, 38, 40, 44, 48]
ANY_SIZES = [15, 16, 17, 18, 19, 20, 20, 22, 22, 24, 26, 28, 32, 36, 40]


def gen_single_word(rng, big):
    """One vocabulary word, alone, at a random place: big (28-48 px, the bootstrap stage of run 3) or any size
    (15-40 px, the families use 15-22 px). Light or dark background (the UI title bar is white on colour)."""
    img, d, fg = _canvas(rng, dark_p=0.2)
    w, h = img.size
    size = rng.choice(BIG_SIZES if big else ANY_SIZES)
    f = data.font(size, rng.random() < 0.85)
    word = rng.choice(data.WORDS)
    tw, th, _, _ = data.text_size(d, word, f)
    cx = rng.uniform(tw / 2 + 10, w - tw / 2 - 10)
    cy = rng.uniform(th / 2 + 10, h - th / 2 - 10)
    data.draw_text_centered(d, cx, cy, word, f, fg)
    return img, [("read_word", "What word is written?", word)], [word]


def make_word_sample(index, split="words", mode="mixed"):
    """mode: "mixed" (gen_words: 1-4 words in a stack / row / grid, 16-40 px), "single_big", "single"."""
    rng = random.Random(data.seed_for(split if mode == "mixed" else f"{split}-{mode}", index))
    data.take_records()
    if mode == "mixed":
        img, qa, words = gen_words(rng)
    else:
        img, qa, words = gen_single_word(rng, big=(mode == "single_big"))
    meta = {"boxes": data.take_records()}  # the drawn words' boxes, for the dense token labels (train/dense.py)
    return {"image": img, "family": "words", "qa": qa, "describe": None, "meta": meta, "words": list(words),
            "seed_index": index, "split": split}


# ------------------------------------------------------------------------------- words present (auxiliary loss)
WORD_INDEX = {w: k for k, w in enumerate(data.WORDS)}


def family_words(sample):
    """The vocabulary words drawn on a family image (from its layout meta); shapes scenes have none."""
    fam, m = sample["family"], sample["meta"]
    if fam == "bars":
        return [m["title"]] + list(m["labels"])
    if fam == "ui":
        return [m["title"]] + list(m["options"]) + list(m["buttons"])
    if fam == "flow":
        return list(m["labels"])
    return []


# ------------------------------------------------------------------------------------------ run-3 schedule
def schedule_mix(name, el, budget):
    """Sample-kind probabilities [(kind, p)] at `el` seconds of a `budget`-second run.
    kinds: single_big / single / words (word images), family (family image + its own questions + 3-6 reading
    questions), normal (the ordinary task mix).
    "dense": see below. "read3": 0-13% of the run single big words only; 13-26% single words of any size 45%, 1-4 word layouts 40%,
    family reading 15%; then the normal share rises linearly from 25% to 65% at the end, the rest being family
    reading 60% / word layouts 30% / single words 10%."""
    f = min(1.0, el / max(budget, 1e-6))
    if name == "dense":  # run 4 (dense token labels, train/dense.py): no word-only warm-up; the normal mix
        normal = 0.4 + 0.3 * f  # rises from 40% to 70%, the rest family reading 80% / word layouts 20%
        return [("normal", normal), ("family", (1 - normal) * 0.8), ("words", (1 - normal) * 0.2)]
    if name == "real":  # issue 16: real tools' styles (train/styles.py) most of the time, data.py's world kept
        return [("styled", 0.6), ("normal", 0.25), ("family", 0.1), ("words", 0.05)]
    if name != "read3":
        raise ValueError(f"unknown schedule {name}")
    if f < 0.13:
        return [("single_big", 1.0)]
    if f < 0.26:
        return [("single", 0.45), ("words", 0.40), ("family", 0.15)]
    g = min(1.0, (f - 0.26) / 0.74)
    normal = 0.25 + 0.40 * g
    rest = 1.0 - normal
    return [("normal", normal), ("family", rest * 0.6), ("words", rest * 0.3), ("single", rest * 0.1)]


if __name__ == "__main__":
    import os
    import sys
    out = sys.argv[1] if len(sys.argv) > 1 else "/tmp/curriculum_preview"
    os.makedirs(out, exist_ok=True)
    for i in range(12):
        for mode in ("mixed", "single_big", "single"):
            s = make_word_sample(i, "preview-words", mode)
            s["image"].save(os.path.join(out, f"w{i:02d}_{mode}.png"))
            print("words", mode, i, s["image"].size, s["qa"], s["words"])
    for i in range(8):
        s = data.make_sample("preview", i)
        print(s["family"], family_words(s), family_reading_qa(s, random.Random(i)))
    for name in ("read3",):
        for t in (0, 30, 61, 100, 122, 200, 300, 400, 468):
            print(name, t, schedule_mix(name, t, 468))
