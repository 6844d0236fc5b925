#!/usr/bin/env bash
# One GPU session's measurements, run at once (a session has 15 device minutes, 10 per command).
#
#   here:   make gpu-pack                 # slayer's source + Fashion-MNIST in build/gpu-pack
#   device: bash benchmarks/gpu_session.sh     # with build/gpu-pack carried; results land in $OUT
#
# The GPU machine has Python 3.12, torch, numpy 2, h5py, click, nvcc and no lava-nc (FACTS.md):
# tna's training, export and emulator never import lava-nc, so they run from the working tree.
# In parallel, each cut off after LIMIT_S seconds (what it wrote so far still comes back):
#   1. benchmarks/gpu_train.py: TNA training samples/s per dynamics path, conv-small and CIFARNet
#      (goals: >= 10,000 and >= 1,500 on one H100/H200);
#   2. benchmarks/time_to_accuracy.py --config fmnist-gpu: base test accuracy against GPU minutes,
#      then the exported ternary net on all 10k test images, reference = emulator (goal 94%);
#   3. tna bench --config fmnist-gpu: the grid, its cells sharing the GPU.
# Smoke test of the wiring on CPU (tried: every part starts from the pack and writes under $OUT;
# fmnist-gpu's wide net is slow on 2 cores, so its parts are cut at LIMIT_S):
#   PY=.venv/bin/python OUT=runs/gpu-smoke \
#   GPU_TRAIN_ARGS="--device cpu --batches 2 --batch-size 16" \
#   TTA_ARGS="--device cpu --epochs 2 --ternary-after 1 --train-limit 256 --limit 256" \
#   BENCH_ARGS="--set device=cpu --set epochs=2 --set ternary_after=1 --set train_limit=256
#     --methods single --weights ternary --seeds 1 --deploy-limit 100" bash benchmarks/gpu_session.sh
set -u
cd "$(dirname "$0")/.."
PY=${PY:-python3}
OUT=${OUT:-runs/gpu-session}
LIMIT_S=${LIMIT_S:-540}
PACK=${PACK:-build/gpu-pack}
mkdir -p "$OUT"
if [ ! -d "$PACK/fashion-mnist" ]; then
  echo "error: $PACK/fashion-mnist is missing; run 'make gpu-pack' here and carry build/gpu-pack" >&2
  exit 2
fi
export PYTHONPATH="$PWD/$PACK:$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
DATA="$PACK/fashion-mnist"

{ nvidia-smi || true; "$PY" -c 'import sys, torch; print(sys.version, torch.__version__,
  torch.cuda.is_available() and torch.cuda.get_device_name(0))'; } > "$OUT/machine.txt" 2>&1

# shellcheck disable=SC2086  # the *_ARGS are word lists on purpose
timeout "$LIMIT_S" "$PY" benchmarks/gpu_train.py ${GPU_TRAIN_ARGS:-} > "$OUT/gpu_train.txt" 2>&1 &
# shellcheck disable=SC2086
timeout "$LIMIT_S" "$PY" benchmarks/time_to_accuracy.py --config fmnist-gpu --data-dir "$DATA" \
  --out "$OUT/tta" ${TTA_ARGS:-} > "$OUT/tta.log" 2>&1 &
# shellcheck disable=SC2086
timeout "$LIMIT_S" "$PY" -c 'from tna.cli import main; main()' bench --config fmnist-gpu \
  --set "data_dir=$DATA" --out "$OUT/bench" ${BENCH_ARGS:-} > "$OUT/bench.log" 2>&1 &
wait
# Checkpoints stay on the machine: only tables, logs, CSVs, JSON and plots come back.
find "$OUT" \( -name '*.pt' -o -name '*.net' \) -delete
tail -n 3 "$OUT"/*.txt "$OUT"/*.log
