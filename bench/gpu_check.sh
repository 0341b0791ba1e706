#!/usr/bin/env bash
# The offline GPU check (docs/gpu.md): on a bare GPU machine with no network and no MLflow/DVC/Prefect
# (torch + CUDA, torchvision, numpy, PyYAML, onnx, onnxruntime and pytest are enough), from the
# repository root, with no set-up:
#
#   bench/gpu_check.sh DIR          # everything it writes goes under DIR; about 9 minutes at most
#
# 0. preflight: DIR/machine.txt, written first: versions, the GPU, triton, a C compiler and Python.h
#               for Triton, onnx, onnxruntime's providers, Pillow; a line per missing piece and what
#               it disables (bench/gpu_preflight.py)
# 1. tests:     the CUDA-marked tests and the fast device / GAN-step / host-sync tests
#               (-m "cuda or not slow", verbose; DIR/tests.xml)
# 2. speed:     GAN it/s, eager fp32 | bf16 + compile | bf16 + compile + CUDA graphs, at width 24
#               (the GPU profile) and 64 (the paper's), batch 256 and 512 (bench/train_speed.py: each
#               row written as it finishes, a failing path recorded, not fatal; DIR/train_speed.md)
# 3. pipeline:  a shortened GPU-profile pipeline (classification), each stage's seconds appended to
#               DIR/stage_times.txt as it ends
#
# A step that fails or runs out of time leaves the others' results. DIR/summary.txt names every
# step's status (ok, failed with its exit code, timeout at its limit, skipped and why); the script
# exits non-zero when a step did not pass. Limits (seconds): GPU_CHECK_TESTS_S (150),
# GPU_CHECK_SPEED_S (240), GPU_CHECK_PIPELINE_S (130). GPU_CHECK_DEVICE=cpu runs every step on the
# CPU, a smoke test of the script itself (CUDA tests skip, CUDA graphs are left out, small shapes:
# GPU_CHECK_GAN_CONFIGS, GPU_CHECK_PATHS and GPU_CHECK_PIPELINE_SETS override the defaults).
set -u
cd "$(dirname "$0")/.."
if [ $# -ne 1 ] || [ -z "$1" ]; then
    echo "usage: bench/gpu_check.sh DIR   (every log and result goes under DIR)" >&2
    exit 2
fi
LOG=$1
PY=${PYTHON:-python3}
DEVICE=${GPU_CHECK_DEVICE:-cuda}
case "$DEVICE" in cuda|cpu) ;; *) echo "gpu_check: GPU_CHECK_DEVICE must be cuda or cpu, got '$DEVICE'" >&2; exit 2;; esac
export CGANKD_TRACKING=off PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$LOG" || exit 2
LOG=$(cd "$LOG" && pwd)
: > "$LOG/summary.txt"
: > "$LOG/stage_times.txt"

failed=()
status() {  # status NAME RC LIMIT SECONDS: one summary line
    local name=$1 rc=$2 limit=$3 secs=$4 what
    case $rc in
        0) what=ok ;;
        124|137) what="timeout at its ${limit} s limit"; failed+=("$name") ;;
        *) what="failed (exit $rc)"; failed+=("$name") ;;
    esac
    echo "$name: $what, ${secs} s (log: $LOG/$name.log)" | tee -a "$LOG/summary.txt"
}
step() {  # step NAME LIMIT COMMAND...: run under a timeout, log to LOG/NAME.log
    local name=$1 limit=$2 start rc
    shift 2
    start=$(date +%s)
    timeout --kill-after=10 "$limit" "$@" > "$LOG/$name.log" 2>&1
    rc=$?
    status "$name" $rc "$limit" $(( $(date +%s) - start ))
    tail -n 3 "$LOG/$name.log"
}

# 0. preflight, first: its file comes back even when nothing else can run
start=$(date +%s)
$PY bench/gpu_preflight.py "$DEVICE" > "$LOG/machine.txt" 2> "$LOG/preflight.log"
rc=$?
cat "$LOG/machine.txt" "$LOG/preflight.log"
status preflight $rc 0 $(( $(date +%s) - start ))
if [ $rc -ne 0 ]; then
    for name in tests speed pipeline; do
        echo "$name: skipped (preflight: $(tail -n 1 "$LOG/preflight.log"))" | tee -a "$LOG/summary.txt"
    done
    echo "gpu_check: did not run: $(tail -n 1 "$LOG/preflight.log")" | tee -a "$LOG/summary.txt"
    exit 2
fi

# 1. tests
step tests "${GPU_CHECK_TESTS_S:-150}" $PY -m pytest -v -p no:cacheprovider -m "cuda or not slow" \
    --junitxml "$LOG/tests.xml" tests/test_runtime_e2e.py tests/test_devices.py tests/test_gan_step.py \
    tests/test_host_syncs.py

# 2. speed
if [ "$DEVICE" = cuda ]; then
    paths=${GPU_CHECK_PATHS:-no-sync,fast,graphs} configs=${GPU_CHECK_GAN_CONFIGS:-256x24,512x64,256x64,512x24}
else
    paths=${GPU_CHECK_PATHS:-no-sync,bf16} configs=${GPU_CHECK_GAN_CONFIGS:-64x24}
fi
step speed "${GPU_CHECK_SPEED_S:-240}" $PY bench/train_speed.py --device "$DEVICE" --paths "$paths" \
    --gan-configs "$configs" --roles gan --warmup 30 --gan-steps 100 --cpu-warmup 2 --cpu-gan-steps 3 \
    --out "$LOG/train_speed"

# 3. pipeline
sets=${GPU_CHECK_PIPELINE_SETS:-"teacher.steps=600 teacher.eval_every=300 extractor.steps=300 extractor.eval_every=300
gan.iterations=1000 gan.ema_start=200 gan.score_every=500 gan.checkpoint_every=500 fakes.n_per_class=300
filter.burn_in=500 subsample.dre_steps=300 subsample.n_fake_train=3000 quality.n_fakes=1000 student.steps=600
student.eval_every=300 student.finetune_steps=300"}
# shellcheck disable=SC2086  # the overrides are words
step pipeline "${GPU_CHECK_PIPELINE_S:-130}" $PY - "$DEVICE" "$LOG/pipeline" "$LOG/stage_times.txt" $sets <<'EOF'
"""A shortened GPU-profile pipeline, every stage timed (the stage functions, tracking off)."""
import sys, time
from cgankd.config import load_config
from cgankd.pipeline.runner import run_stage
from cgankd.pipeline.spec import stage_calls, stage_label

device, out, times, sets = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
cfg = load_config("params.yaml", ["profile=gpu", f"device={device}", f"out_dir={out}", *sets])
total = time.time()
for name, kwargs in stage_calls(cfg):
    t0 = time.time()
    run_stage(cfg, name, **kwargs)
    line = f"stage {stage_label(name, kwargs)}: {time.time() - t0:.1f} s"
    print(line, flush=True)
    with open(times, "a") as f:
        f.write(line + "\n")
with open(times, "a") as f:
    f.write(f"pipeline: {time.time() - total:.1f} s\n")
EOF

if [ ${#failed[@]} -eq 0 ]; then
    echo "gpu_check: every step ok; results in $LOG/ (machine.txt, summary.txt, train_speed.md, stage_times.txt)" \
        | tee -a "$LOG/summary.txt"
    exit 0
fi
echo "gpu_check: not ok: ${failed[*]}; the other steps' results are in $LOG/" | tee -a "$LOG/summary.txt"
exit 1
