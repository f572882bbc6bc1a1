"""Markdown tables from `npm run eval -- --json` files (one set or several): policy, keep, accuracy / ROUGE-L /
perplexity with their 95 % intervals, and the per-task accuracy of the tasks named with --tasks.

  python3 tools/mass_probe/table.py docs/eval/mass/done-when.json [--tasks bars_value,shapes_count]
"""
import argparse
import json


def sets_of(path):
    d = json.load(open(path))
    return d["sets"] if "sets" in d else [d]


def cell(r, m, fmt="{:.3f}"):
    ci = (r.get("ci") or {}).get(m)
    v = fmt.format(r[m])
    return f"{v} [{fmt.format(ci['lo'])}, {fmt.format(ci['hi'])}]" if ci else v


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="+")
    ap.add_argument("--tasks", default="")
    a = ap.parse_args()
    tasks = [t for t in a.tasks.split(",") if t]
    for f in a.files:
        for st in sets_of(f):
            print(f"\n{st['data']} ({st['samples']} samples; {f})\n")
            print("| policy | keep | accuracy [95 %] | ROUGE-L vs full | perplexity |" + "".join(f" {t} |" for t in tasks))
            print("|---|---|---|---|---|" + "---|" * len(tasks))
            for r in st["rows"]:
                if r["keep"] == 1 and r["policy"] != "full":
                    continue  # the same cell as the full cache's
                label = r["policy"] + (f" ({r['variant']})" if r.get("variant") else "")
                print(f"| {label} | {r['keep']} | {cell(r, 'accuracy')} | {cell(r, 'rougeL')} | {cell(r, 'ppl')} |"
                      + "".join(f" {r['perTask'].get(t, float('nan')):.2f} |" for t in tasks))


if __name__ == "__main__":
    main()
