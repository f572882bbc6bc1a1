#!/usr/bin/env bash
# The evaluation tables in docs/eval: the paper's method and baselines, then Elastic's variants.
# usage: bash bench/eval-docs.sh [N]   (the first N samples of every task, default all samples)
set -euo pipefail
cd "$(dirname "$0")/.."
L=${1:+--per-task $1}
E="node --import tsx runtime/cli/eval.ts $L --docs docs/eval --json"
$E --keep 0.1,0.2,0.3,0.5,0.7,0.9,1 > /dev/null   # full, elastic (the product's), h2o, streaming, snapkv
$E --policy elastic --variant paper --keep 0.1,0.2,0.3,0.5,0.7,0.9 > /dev/null
$E --multi-turn --policy full,elastic,h2o,streaming,snapkv --keep 0.2,0.3,0.5 > /dev/null
$E --policy elastic --variant paper --keep 0.1,0.2,0.3,0.5,0.7,0.9 --importance mean --merge off > /dev/null
$E --policy elastic --variant paper --keep 0.1,0.2,0.5,0.9 --importance mean > /dev/null
$E --policy elastic --variant released --keep 0.2,0.5 > /dev/null
$E --policy elastic --variant paper --keep 0.2,0.5 --positions compressed > /dev/null
