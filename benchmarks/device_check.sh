#!/usr/bin/env bash
# The device check (issue 14, item 7): GPU figures for chapters 4-6 from one unattended run.
#
#   benchmarks/device_check.sh OUT_DIR [--parts mfu,gpu_model,pretrain,humaneval] [--allow-cpu]
#
# On one H100/H200-class GPU, with the project's .venv carried over (and runs/tiny/tokenizer,
# runs/tiny/tokens_codetextbook for the pretraining part), it finishes within 8 minutes: the
# time limit interrupts the part then running, and every finished part's figures stay in
# OUT_DIR/device_check.json. Without a GPU each part is skipped with its reason.
set -euo pipefail
usage="usage: $0 OUT_DIR [--parts mfu,gpu_model,pretrain,humaneval] [--allow-cpu]"
if [[ $# -lt 1 || "$1" == -* ]]; then
  echo "$usage" >&2
  exit 2
fi
out="$1"
shift
cd "$(dirname "$0")/.."
python="${PHI1_PYTHON:-.venv/bin/python}"
limit="${DEVICE_CHECK_LIMIT_S:-470}"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
exec timeout --signal=INT --kill-after=20 "$limit" "$python" benchmarks/device_check.py --out "$out" "$@"
