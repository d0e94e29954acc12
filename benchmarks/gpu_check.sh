#!/usr/bin/env bash
# Every GPU check in one pass, for a session that has a CUDA machine for a few minutes:
#   1. the CUDA tests (pytest -m gpu);
#   2. the per-gene profile of the median reference candidate, with and without the depthwise
#      autotuner (which gene is slow on this card, and whether the tuner fixes it);
#   3. the training-throughput benchmark (small, median, large; 12 epochs of CIFAR-10-sized data),
#      and the median again with the autotuner off: a baseline from the same run on the same card.
# Usage: benchmarks/gpu_check.sh [OUT_DIR]   (pyevonas with the train extra installed; not yet run: last session's H200 timings suggest ~5 min)
set -uo pipefail
out=${1:-gpu_results}
mkdir -p "$out"
here=$(cd "$(dirname "$0")" && pwd)
py=${PYTHON:-python}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"
$py -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version())" | tee -a "$out/gpu.txt"

timeout 240 $py -m pytest -m gpu -q -p no:cacheprovider "$here/../tests" 2>&1 | tail -n 30 | tee "$out/pytest_gpu.txt"

$py - "$here/train_throughput_archs.json" "$out/median.json" <<'PY'
import json, sys
archs = json.load(open(sys.argv[1]))["architectures"]
json.dump(next(a for a in archs if a["tag"] == "median")["chromosome"], open(sys.argv[2], "w"))
PY
$py -m pyevonas profile "$out/median.json" --dataset cifar10 --device cuda --json > "$out/profile_median.json"
$py -m pyevonas profile "$out/median.json" --dataset cifar10 --device cuda --no-autotune --json > "$out/profile_median_no_autotune.json"
$py -m pyevonas profile "$out/median.json" --dataset cifar10 --device cuda --no-autotune

$py "$here/train_throughput.py" --device cuda --json "$out/throughput.json" 2>&1 | tee "$out/throughput.txt"
$py "$here/train_throughput.py" --device cuda --archs median --set autotune=false \
    --json "$out/throughput_median_no_autotune.json" 2>&1 | tee "$out/throughput_median_no_autotune.txt"
