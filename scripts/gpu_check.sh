#!/usr/bin/env bash
# GPU check (run it when a GPU machine is lent): trains the default TCN and the paper-size ST-GCN with bf16
# for a fixed number of steps, measures the batch data pipeline on the GPU, runs the real training app with
# trainer=gpu (bf16-mixed) for two short epochs, and prints GPU throughput beside the CPU figure.
#   OUT=gpu_out scripts/gpu_check.sh          (figures land in $OUT: *.json, *.log, summary.txt)
# Environment: PY (python with torch; default .venv/bin/python, else python3), SECONDS_PER (default 4),
# BATCH (GPU batch, default 1024), CPU_THREADS (threads for the CPU figure, default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-./gpu_out}
mkdir -p "$OUT"
if [[ -z "${PY:-}" ]]; then
  if [[ -x .venv/bin/python ]]; then PY=.venv/bin/python; else PY=python3; fi
fi
SECONDS_PER=${SECONDS_PER:-4}  # timing budget per measurement
BATCH=${BATCH:-1024}
CPU_THREADS=${CPU_THREADS:-2}
DEVICE=$($PY -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')")
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
(nvidia-smi || true) > "$OUT/nvidia-smi.txt" 2>&1
echo "device: $DEVICE"

# 1. training-step throughput, bf16 on the GPU, every model config (paper-size ST-GCN included), eager and
#    compiled (the compiled run also compiles BatchAugment, which the GPU recipes do: data.compile_augment)
$PY scripts/bench_models.py --device "$DEVICE" --bf16 --batch "$BATCH" --seconds "$SECONDS_PER" \
  --models tcn gru transformer stgcn stgcn_paper --json "$OUT/gpu_bench.json" 2>&1 | tee "$OUT/gpu_bench.log"
$PY scripts/bench_models.py --device "$DEVICE" --bf16 --compile --batch "$BATCH" --seconds "$SECONDS_PER" \
  --models tcn stgcn_paper --json "$OUT/gpu_bench_compiled.json" 2>&1 | tee "$OUT/gpu_bench_compiled.log"

# 2. the CPU figure beside it: fp32, batch 64, $CPU_THREADS threads
$PY scripts/bench_models.py --device cpu --batch 64 --seconds 3 --threads "$CPU_THREADS" --no-pipeline \
  --models tcn stgcn_paper --json "$OUT/cpu_bench.json" 2>&1 | tee "$OUT/cpu_bench.log"

# 3. the training app itself on the GPU (trainer=gpu → bf16-mixed): data generation, cache, 2 epochs, test
if [[ "$DEVICE" == cuda ]]; then
  APP_ROOT=$(mktemp -d)
  start=$(date +%s)
  $PY -m valgusml.train experiment=tcn_gpu data.n_athletes=${APP_ATHLETES:-300} trainer.max_epochs=2 \
    paths.root_dir="$APP_ROOT" logger=csv export=false callbacks.rich_progress_bar=null \
    trainer.enable_progress_bar=false > "$OUT/app.log" 2>&1 || echo "training app FAILED (see app.log)"
  echo "training app wall time: $(( $(date +%s) - start )) s" | tee -a "$OUT/app.log"
  tail -n 30 "$OUT/app.log"
fi

# 4. side by side
$PY - "$OUT" <<'PY' | tee "$OUT/summary.txt"
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
gpu = json.loads((out / "gpu_bench.json").read_text())
compiled = json.loads((out / "gpu_bench_compiled.json").read_text())
cpu = json.loads((out / "cpu_bench.json").read_text())
cpu_by = {r["model"]: r for r in cpu["training"]}
comp_by = {r["model"]: r for r in compiled["training"]}
print(f"GPU: {gpu['device']}, bf16, batch {gpu['batch']}; CPU: {cpu['device']}, fp32, batch {cpu['batch']}")
print(f"{'model':<12} {'params':>10} {'GPU seq/s':>11} {'compiled':>10} {'CPU seq/s':>10} {'speed-up':>9}")
for r in gpu["training"]:
    c, k = cpu_by.get(r["model"]), comp_by.get(r["model"])
    cs = f"{c['seq_per_s']:.1f}" if c else "-"
    ks = f"{k['seq_per_s']:.0f}" if k else "-"
    up = f"{r['seq_per_s'] / c['seq_per_s']:.0f}x" if c else "-"
    print(f"{r['model']:<12} {r['params']:>10,} {r['seq_per_s']:>11.0f} {ks:>10} {cs:>10} {up:>9}")
for name, result in (("eager", gpu), ("compiled", compiled)):
    tcn = next(r for r in result["training"] if r["model"] == "tcn")
    for p in result["pipeline"]:
        if p["stage"].startswith("per-epoch"):
            print(f"{name} pipeline {p['stage']}: {p['seq_per_s']:.0f} seq/s = "
                  f"{p['seq_per_s'] / tcn['seq_per_s']:.1f}x the default model's {name} training step")
PY
