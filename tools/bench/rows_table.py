#!/usr/bin/env python3
"""Markdown tables from `npm run bench -- --rows FILE` JSON lines (scripts/device/tables-run.sh writes them).

usage: rows_table.py FILE [FILE ...]   (rows .jsonl files, or `npm run bench -- --json` output, labelled by file name)
One table per (model, provider), a row per scenario and cell: decode tok/s, end step ms, x floor, first token s,
peak RSS (x the weight files), policy share; then the transformers.js peers and their ratios, and failed cells.
"""
import json
import sys
from collections import defaultdict

SCENARIOS = ['short', 'describe', 'long']


def size_of(model: str) -> str:
    return model.rstrip('/').split('/')[-1]


def main(paths):
    rows, peers, failed = [], [], []
    for p in paths:
        text = open(p).read()
        if p.endswith('.json'):
            d = json.loads(text[text.index('{'):])
            label = p.split('/')[-1][:-5]
            dtype = d.get('floor', {}).get('dtype', 'fp32')
            rows += [{**r, 'model': label, 'dtype': dtype} for r in d['rows']]
            peers += [{**x, 'model': label} for x in d.get('peer', [])]
            failed += [{**x, 'model': label} for x in d.get('failed', [])]
            continue
        for line in text.splitlines():
            if not line.strip():
                continue
            r = json.loads(line)
            {'row': rows, 'peer': peers, 'failed': failed}[r.pop('kind')].append(r)
    # Cells in the order the bench measured them (its CELLS); a later row of the same cell replaces an earlier one.
    groups = defaultdict(dict)
    for r in rows:
        groups[(size_of(r['model']), r['provider'], r['dtype'])][(r['scenario'], r['policy'], r['keep'])] = r
    for (size, provider, dtype), cells in sorted(groups.items()):
        print(f'\n**{size}, {provider}, {dtype}**\n')
        print('| scenario | cell | decode tok/s | end step ms | x floor | first token s | peak RSS MiB (x files) | policy share | KV / full |')
        print('|---|---|---|---|---|---|---|---|---|')
        for s in SCENARIOS:
            for (scenario, pol, keep), r in cells.items():
                if scenario != s:
                    continue
                name = 'full' if pol == 'full' else f'{pol} {keep}'
                print(f"| {s} | {name} | {r['decodeTokensPerSecond']:.1f} | {r['decodeStepMsEnd']:.1f} | {r['floorRatio']:.2f} | "
                      f"{r['firstTokenMs'] / 1000:.2f} | {r['peakRssBytes'] / 2**20:,.0f} ({r['rssRatio']:.2f}) | "
                      f"{100 * r['policyOverheadShare']:.1f}% | {r['kvBytes'] / r['kvBytesFull']:.3f} |")
    if peers:
        print('\n| model | scenario | transformers.js tok/s | ours (full) | ratio | answers agree |')
        print('|---|---|---|---|---|---|')
        for p in peers:
            print(f"| {size_of(p['model'])} | {p['scenario']} | {p['decodeTokensPerSecond']:.1f} | {p['oursFullTokensPerSecond']:.1f} | "
                  f"{p['ratio']:.2f} | {p['answersAgree']} |")
    for f in failed:
        print(f"\nfailed: {size_of(f['model'])} {f['scenario']} {f['policy']} {f['keep']} {f['provider']}: {f['error']}")


if __name__ == '__main__':
    main(sys.argv[1:])
