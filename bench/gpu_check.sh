#!/usr/bin/env bash
# The offline GPU check (docs/gpu.md, issue 31): on a bare GPU machine with no network and no
# MLflow/DVC/Prefect (torch + CUDA, torchvision, numpy, PyYAML, onnx, onnxruntime and pytest are
# enough), run from the repository root with no set-up:
#
#   bench/gpu_check.sh [LOG_DIR]          # default gpu_check/; about 8 minutes, under 9
#
# 1. tests:    the CUDA-marked tests and the device / GAN-step tests           (timeout 150 s)
# 2. speed:    GAN it/s at the GPU profile's shape (batch 256, width 24): eager fp32, bf16 +
#              compile, bf16 + compile + CUDA graphs (bench/train_speed.py)    (timeout 210 s)
# 3. pipeline: a shortened GPU-profile pipeline (classification), each stage timed
#                                                                               (timeout 150 s)
# Every log goes to LOG_DIR; LOG_DIR/summary.txt has one line per step (exit code, seconds) and
# the script exits non-zero when a step failed. GPU_CHECK_DEVICE=cpu runs the same steps on the
# CPU (a smoke test of the script itself: CUDA tests skip, CUDA graphs are left out).
set -u
cd "$(dirname "$0")/.."
LOG=${1:-gpu_check}
PY=${PYTHON:-python3}
DEVICE=${GPU_CHECK_DEVICE:-cuda}
export CGANKD_TRACKING=off PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$LOG"
: > "$LOG/summary.txt"

if [ "$DEVICE" = cuda ] && ! $PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    echo "gpu_check: no usable CUDA GPU here (torch.cuda.is_available() is False); GPU_CHECK_DEVICE=cpu runs the steps on the CPU" >&2
    exit 2
fi

$PY - > "$LOG/machine.txt" 2>&1 <<'EOF'
import platform, torch
print("python", platform.python_version(), "| torch", torch.__version__, "| CUDA", torch.version.cuda)
if torch.cuda.is_available():
    print("GPU", torch.cuda.get_device_name(0), "| bf16", torch.cuda.is_bf16_supported())
try:
    import onnxruntime as ort
    print("onnxruntime", ort.__version__, ort.get_available_providers())
except ImportError:
    print("onnxruntime: not installed")
EOF
cat "$LOG/machine.txt"

failed=0
step() {  # step NAME SECONDS COMMAND...: run under a timeout, log to LOG/NAME.log, one summary line
    local name=$1 limit=$2 start rc
    shift 2
    start=$(date +%s)
    timeout --kill-after=10 "$limit" "$@" > "$LOG/$name.log" 2>&1
    rc=$?
    [ $rc -eq 124 ] && echo "gpu_check: $name stopped at its ${limit} s limit" >> "$LOG/$name.log"
    [ $rc -ne 0 ] && failed=1
    echo "$name: exit $rc, $(( $(date +%s) - start )) s (log: $LOG/$name.log)" | tee -a "$LOG/summary.txt"
    tail -n 3 "$LOG/$name.log"
}

step tests 150 $PY -m pytest -q -p no:cacheprovider -m "cuda or not cuda" \
    tests/test_runtime_e2e.py tests/test_devices.py tests/test_gan_step.py

paths=no-sync,fast,graphs
[ "$DEVICE" = cpu ] && paths=no-sync,compile
step speed 210 $PY bench/train_speed.py --device "$DEVICE" --paths $paths --gan-configs 256x24 --roles gan \
    --warmup 30 --gan-steps 100 --cpu-warmup 2 --cpu-gan-steps 3 --out "$LOG/train_speed"

step pipeline 150 $PY - "$DEVICE" "$LOG/pipeline" <<'EOF'
"""A shortened GPU-profile pipeline, every stage timed (stage functions, tracking off)."""
import sys, time
from cgankd.config import load_config
from cgankd.pipeline.runner import run_stage
from cgankd.pipeline.spec import stage_calls, stage_label

device, out = sys.argv[1], sys.argv[2]
cfg = load_config("params.yaml", [
    "profile=gpu", f"device={device}", f"out_dir={out}", "teacher.steps=600", "teacher.eval_every=300",
    "extractor.steps=300", "extractor.eval_every=300", "gan.iterations=1000", "gan.ema_start=200",
    "gan.score_every=500", "gan.checkpoint_every=500", "fakes.n_per_class=300", "filter.burn_in=500",
    "subsample.dre_steps=300", "subsample.n_fake_train=3000", "quality.n_fakes=1000",
    "student.steps=600", "student.eval_every=300", "student.finetune_steps=300"])
total = time.time()
for name, kwargs in stage_calls(cfg):
    t0 = time.time()
    run_stage(cfg, name, **kwargs)
    print(f"stage {stage_label(name, kwargs)}: {time.time() - t0:.1f} s", flush=True)
print(f"pipeline: {time.time() - total:.1f} s", flush=True)
EOF

grep -h "^stage \|^pipeline:" "$LOG/pipeline.log" > "$LOG/stage_times.txt" 2>/dev/null
echo "gpu_check: logs in $LOG/ (summary.txt, train_speed.md, stage_times.txt)"
exit $failed
