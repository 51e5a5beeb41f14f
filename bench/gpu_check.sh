#!/usr/bin/env bash
# The GPU checks in one call, for a machine with a CUDA GPU (e.g. a lent device machine):
#
#   bash bench/gpu_check.sh          # from the repository root (it cds there anyway)
#
# Stages (each runs even when an earlier one failed; a summary closes the output):
#   env        choose the python (see below) and print what it has: torch, CUDA, the GPU
#   nvidia-smi the driver's view of the GPU(s)
#   pytest     python -m pytest -q -m gpu tests/test_gpu.py -rs -s  (-s shows measured diffs)
#   remove     one timed `remove --device cuda --engine lama` of samples/clip.mp4 with random
#              big-lama weights (the CLI needs a weights file: a seeded random state_dict is
#              saved to a temporary .pt); prints wall time and frames/s
#   compare    python bench/model_bench.py --compare-official: the default path (the generator's
#              inference form, bf16) against the eager fp32 generator (the official computation)
#              and eager bf16 autocast at 512x512, interleaved medians
#   forms      python bench/gpu_forms.py: the generator's forms (eager / folded, NCHW /
#              channels-last, fp32 / autocast / whole bf16) at batches of 1-8 and 512x512 to 1080p,
#              with cudnn.benchmark off (the engine's setting): the evidence for the CUDA defaults
#   bench      python bench/gpu_bench.py: the big-lama throughput table (the engine's and the
#              eager form, 256/512/1080p, fp32/fp16/bf16, batch 1-16, frames/s and peak memory);
#              it runs last because it fits itself into the time left
#
# Output goes to the terminal and to ${OUT:-/tmp}/gpu_check.log; the removed clip is written to
# ${OUT:-/tmp}/clip_gpu.mp4. Exit status 0 when every stage passed, else 1.
#
# The device machine's state is unknown: it gets a copy of the working tree, but not .venv (an
# ignored folder, and far too large to carry), it may or may not have a system python with a
# CUDA build of torch, and it has no internet, so `pip install torch` cannot fetch a CUDA build
# there. The python is therefore chosen in this order, and the choice is printed:
#   0. $PYTHON, when set;
#   1. the system python3, if it imports torch and torch.cuda.is_available();
#   2. .venv/bin/python, if it imports torch with CUDA;
#   3. .venv/bin/python or the system python3 with a CPU-only torch (the GPU stages then skip or
#      fail, and say so);
#   4. a new venv (.venv if missing, else .venv-gpu-check) with `pip install torch`, which needs
#      a package index.
# lama_video itself is imported from this checkout (PYTHONPATH=$PWD), so nothing is installed
# when its dependencies are present. When `from lama_video import ...` fails, the missing
# dependencies are installed, never into the system python's own site-packages:
#   a. from wheels in $GPU_CHECK_WHEELS (default .whl/), offline, into a temporary --target
#      folder put on PYTHONPATH;
#   b. else `pip install -e .[dev]` into a venv of ours (.venv / .venv-gpu-check), or the missing
#      packages with pip --target for the system python (needs a package index; bounded in time).
#
# On this workplace's lent nvidia-h200 machine (see the device notes, 2026-11), python3 is
# /opt/torch/.venv/bin/python3 (3.12, torch with CUDA, numpy, opencv, scipy, typer, pyyaml, tqdm,
# pytest) but has neither PyAV nor platformdirs: carry them as wheels (36 MB in all):
#   here:  echo /.whl/ >> .git/info/exclude
#          python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#              --implementation cp --platform manylinux_2_28_x86_64 -d .whl av==18.1.0 platformdirs
#   there: command "bash bench/gpu_check.sh", carry [".whl"]
#
# Knobs (environment): OUT (output folder, default /tmp), PYTHON (force an interpreter),
# GPU_CHECK_DEADLINE_S (default 540: later stages are cut so the script ends within it; one call
# on the device machine may last 600 s), GPU_BENCH_ARGS (extra bench arguments, e.g. "--quick").
# For a dry run of the script itself on a machine without a GPU:
#   GPU_CHECK_DEVICE=cpu GPU_CHECK_CLIP=tests/fixtures/media/odd_65x49.mp4 bash bench/gpu_check.sh
# (remove and bench then run on the CPU, the bench with --quick; the GPU stages still fail).

# The stage bodies are called indirectly (stage NAME FUNCTION), which shellcheck takes for dead code.
# shellcheck disable=SC2317
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
OUT="${OUT:-/tmp}"
mkdir -p "$OUT"
LOG="$OUT/gpu_check.log"
DEADLINE_S="${GPU_CHECK_DEADLINE_S:-540}"
DEVICE="${GPU_CHECK_DEVICE:-cuda}"
CLIP="${GPU_CHECK_CLIP:-samples/clip.mp4}"
WHEELS="${GPU_CHECK_WHEELS:-.whl}"
# lama_video from this checkout, whatever else is installed (also for `python -m lama_video`).
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 # a stage cut by its time limit still shows what it printed
TMPD=$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")
trap 'rm -rf "$TMPD"' EXIT

PY=""
SUMMARY=()
CUDA_OK=0

say() { printf '%s\n' "$*"; }

# Seconds left before the deadline, less a reserve for the stages after this one.
left() { echo $((DEADLINE_S - SECONDS - ${1:-0})); }

# A stage's time limit: at most $1 seconds, and never past the deadline (less reserve $2).
limit() {
    local cap=$1 reserve=${2:-0} l
    l=$(left "$reserve")
    ((l < cap)) && cap=$l
    ((cap < 10)) && cap=10
    echo "$cap"
}

# stage NAME FUNCTION: run FUNCTION, record PASS/FAIL with its duration; never stops the script.
# (errexit does not apply inside a function called from `||`: stage bodies check each step.)
stage() {
    local name=$1 fn=$2 start=$SECONDS rc=0
    say ""
    say "================ $name ($(date +%H:%M:%S), ${SECONDS}s in) ================"
    STAGE_NOTE=""
    "$fn" || rc=$?
    local took=$((SECONDS - start)) status=PASS
    ((rc != 0)) && status=FAIL
    ((rc == 124 || rc == 137)) && STAGE_NOTE="timed out; ${STAGE_NOTE}"
    SUMMARY+=("$(printf '%-4s  %-10s %4ss  exit %-3s %s' "$status" "$name" "$took" "$rc" "$STAGE_NOTE")")
    return 0
}

# probe_torch PYTHON: prints what torch it has; exit 0 = torch with CUDA, 3 = CPU-only, else none.
probe_torch() {
    "$1" - <<'EOF' 2>/dev/null
import torch
ok = torch.cuda.is_available()
print(f"torch {torch.__version__} (CUDA build {torch.version.cuda}), cuda available: {ok}")
raise SystemExit(0 if ok else 3)
EOF
}

# Which of lama_video's imports fail with python $1: prints their pip names (nothing = all fine).
missing_deps() {
    "$1" - <<'EOF' 2>/dev/null || echo "?"
import importlib
pip_names = {"torch": "torch", "numpy": "numpy", "cv2": "opencv-python-headless", "av": "av",
             "scipy": "scipy", "tqdm": "tqdm", "typer": "typer", "yaml": "pyyaml",
             "platformdirs": "platformdirs", "pytest": "pytest"}
missing = []
for module, name in pip_names.items():
    try:
        importlib.import_module(module)
    except Exception:
        missing.append(name)
print(" ".join(missing))
EOF
}

lama_video_importable() {
    "$1" -c 'from lama_video import Inpainter, RunConfig, remove_object
import lama_video.cli, lama_video.model, av, platformdirs, pytest' 2>&1
}

# Make lama_video importable with $PY (see the header); $1 = 1 when $PY is the system python.
ensure_lama_video() {
    local using_system=$1 err missing site="$TMPD/site"
    err=$(lama_video_importable "$PY") && return 0
    missing=$(missing_deps "$PY")
    say "lama_video does not import with $PY; missing: ${missing:-none found}; error:"
    say "$err" | tail -n 2
    if compgen -G "$WHEELS/*.whl" >/dev/null; then
        say "installing the wheels of $WHEELS/ (offline) into $site"
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target "$site" "$WHEELS"/*.whl || say "installing the wheels FAILED"
        export PYTHONPATH="$PYTHONPATH:$site"
        err=$(lama_video_importable "$PY") && return 0
    fi
    if ((using_system)); then
        [[ -n $missing && $missing != "?" ]] || missing="av platformdirs"
        say "pip install --target $site $missing (needs a package index)"
        # shellcheck disable=SC2086 # one word per package name
        timeout 180 "$PY" -m pip install -q --retries 1 --timeout 15 --target "$site" $missing ||
            say "pip install FAILED (no package index reachable?)"
        [[ :$PYTHONPATH: == *":$site:"* ]] || export PYTHONPATH="$PYTHONPATH:$site"
    else
        say "pip install -e .[dev] into $PY (needs a package index)"
        timeout 300 "$PY" -m pip install -q --retries 1 --timeout 15 -e ".[dev]" ||
            say "pip install -e .[dev] FAILED (no package index reachable?)"
    fi
    err=$(lama_video_importable "$PY") && return 0
    say "lama_video still does not import: $(tail -n 1 <<<"$err")"
    say "carry the missing packages as wheels in $WHEELS/ (see the header of this script)"
    return 1
}

# ------------------------------------------------------------------------------------ stages

stage_env() {
    local sys_py sys_out="" sys_rc=1 venv_out="" venv_rc=1 why
    sys_py=$(command -v python3 || true)
    if [[ -n $sys_py ]]; then
        sys_out=$(probe_torch "$sys_py") && sys_rc=0 || sys_rc=$?
        say "system python3:   $sys_py ($("$sys_py" --version 2>&1)): ${sys_out:-no torch}"
    else
        say "system python3:   none on PATH"
    fi
    if [[ -x .venv/bin/python ]]; then
        venv_out=$(probe_torch .venv/bin/python) && venv_rc=0 || venv_rc=$?
        say ".venv/bin/python: $(.venv/bin/python --version 2>&1): ${venv_out:-no torch (unusable)}"
    elif [[ -e .venv ]]; then
        say ".venv/bin/python: .venv exists but has no working python (unusable)"
    else
        say ".venv/bin/python: no .venv here"
    fi

    local using_system=0
    if [[ -n ${PYTHON:-} ]]; then
        PY=$PYTHON why="PYTHON is set"
    elif ((sys_rc == 0)); then
        PY=$sys_py why="the system python has torch with CUDA" using_system=1
    elif ((venv_rc == 0)); then
        PY=.venv/bin/python why=".venv has torch with CUDA"
    elif ((venv_rc == 3)); then
        PY=.venv/bin/python why=".venv has torch, but without CUDA: GPU stages will skip or fail"
    elif ((sys_rc == 3)); then
        PY=$sys_py why="the system python has torch, but without CUDA: GPU stages will skip or fail"
        using_system=1
    elif [[ -n $sys_py ]]; then
        local venv=.venv
        [[ -e .venv ]] && venv=.venv-gpu-check
        say "no python with torch found: creating $venv and installing torch (needs a package index)"
        if "$sys_py" -m venv "$venv" &&
            timeout 600 "$venv/bin/python" -m pip install -q --retries 1 --timeout 15 torch; then
            PY=$venv/bin/python why="new $venv with pip-installed torch"
        else
            say "FAILED to create $venv with torch (no package index reachable?)"
            PY=$sys_py why="nothing better: the system python without torch"
        fi
    else
        say "no python3 at all"
        return 1
    fi
    say "using:            $PY ($why)"

    if ! ensure_lama_video "$using_system"; then
        STAGE_NOTE="lama_video not importable with $PY"
        return 1
    fi
    say "lama_video imports from $ROOT with $PY"

    "$PY" - <<'EOF' || return 1
import platform, sys
import numpy, torch
import lama_video
print(f"python {platform.python_version()} at {sys.executable}; lama_video {lama_video.__version__} from {lama_video.__file__}")
print(f"torch {torch.__version__}, CUDA build {torch.version.cuda}, numpy {numpy.__version__}")
if torch.cuda.is_available():
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        print(f"cuda:{i} {p.name}, {p.total_memory / 2**30:.1f} GiB, compute capability {p.major}.{p.minor}")
    print(f"cuDNN {torch.backends.cudnn.version()}, bf16 supported: {torch.cuda.is_bf16_supported()}, "
          f"cudnn.allow_tf32 {torch.backends.cudnn.allow_tf32}, "
          f"matmul.allow_tf32 {torch.backends.cuda.matmul.allow_tf32}")
else:
    print("CUDA is NOT available to this torch: the gpu tests will be skipped, the GPU stages fail")
EOF
    if "$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)'; then
        CUDA_OK=1
        STAGE_NOTE="$PY"
    else
        STAGE_NOTE="$PY (no CUDA)"
        return 1
    fi
}

stage_nvidia_smi() {
    if ! command -v nvidia-smi >/dev/null; then
        say "nvidia-smi not found on PATH"
        return 1
    fi
    nvidia-smi --query-gpu=index,name,driver_version,memory.total,memory.used,utilization.gpu,temperature.gpu,power.draw,power.limit \
        --format=csv || return 1
    nvidia-smi || return 1
}

stage_pytest() {
    [[ -n $PY ]] || return 1
    local rc=0 last
    # -m gpu overrides pyproject's addopts (-m 'not gpu and not slow'): the last -m wins.
    timeout "$(limit 240 200)" \
        "$PY" -m pytest -q -m gpu tests/test_gpu.py -rs -s -p no:cacheprovider 2>&1 |
        tee "$TMPD/pytest.log" || rc=$? # pipefail: pytest's (or timeout's) status
    last=$(grep -E '(passed|failed|skipped|error|no tests ran)' "$TMPD/pytest.log" | tail -n 1 || true)
    STAGE_NOTE="${last//=/}"
    STAGE_NOTE="${STAGE_NOTE# }"
    if ((rc == 0)) && ! grep -qE '[0-9]+ passed' <<<"$last"; then
        STAGE_NOTE="nothing passed (all skipped?): $STAGE_NOTE"
        return 1
    fi
    return "$rc"
}

stage_remove() {
    [[ -n $PY ]] || return 1
    ((CUDA_OK)) || [[ $DEVICE != cuda* ]] || say "(no CUDA found: this fails with a one-line error)"
    local weights="$TMPD/big_lama_random.pt" out="$OUT/clip_gpu.mp4" rc=0
    # Random weights: the fill is meaningless, the cost is big-lama's (the released architecture).
    "$PY" -c '
import sys, torch
from lama_video.model import big_lama
torch.manual_seed(0)
torch.save(big_lama().state_dict(), sys.argv[1])
' "$weights" || { STAGE_NOTE="could not save random big-lama weights"; return 1; }
    local masks=(--box "8,8,24,16")
    if [[ $CLIP == samples/clip.mp4 && -d samples/clip_masks ]]; then
        masks=(--mask samples/clip_masks) # the sample's own masks: the pom-pom toy, every frame
    fi
    local cmd=("$PY" -m lama_video remove "$CLIP" "${masks[@]}" --engine lama
        --model "$weights" --device "$DEVICE" --overwrite -o "$out")
    say "\$ ${cmd[*]}"
    local t0 t1
    t0=$(date +%s.%N)
    timeout "$(limit 150 130)" "${cmd[@]}" \
        >"$TMPD/remove.log" 2>&1 || rc=$?
    t1=$(date +%s.%N)
    # Progress bars redraw with \r: print the other lines, then the bars' last state.
    tr '\r' '\n' <"$TMPD/remove.log" | grep -vE '^(remove|track):|^$' | tail -n 40 || true
    tr '\r' '\n' <"$TMPD/remove.log" | grep -E '^(remove|track):' | tail -n 1 || true
    local wall frames line
    wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
    line=$(grep -E '^wrote ' "$TMPD/remove.log" | tail -n 1 || true)
    frames=$(sed -nE 's/.*\(([0-9]+) frames.*/\1/p' <<<"$line")
    if ((rc == 0)) && [[ -n $frames ]]; then
        local fps
        fps=$(awk -v n="$frames" -v s="$wall" 'BEGIN { printf "%.2f", n / s }')
        local own=${line##*, }
        say "remove on $DEVICE: $frames frames in ${wall}s wall = $fps frames/s including start-up" \
            "and weights loading (the CLI's own figure, processing only: ${own%)})"
        say "output: $out ($(du -h "$out" | cut -f1))"
        STAGE_NOTE="$frames frames, ${wall}s wall, $fps frames/s"
    else
        STAGE_NOTE="exit $rc after ${wall}s"
        ((rc != 0)) || rc=1
    fi
    return "$rc"
}

stage_compare() {
    [[ -n $PY ]] || return 1
    if [[ $DEVICE != cpu ]] && ((!CUDA_OK)); then
        STAGE_NOTE="no CUDA"
        return 1
    fi
    local repeats=20
    [[ $DEVICE == cpu ]] && repeats=1
    timeout "$(limit 60 100)" "$PY" bench/model_bench.py --compare-official --device "$DEVICE" \
        --repeats "$repeats"
}

stage_forms() {
    [[ -n $PY ]] || return 1
    if [[ $DEVICE != cpu ]] && ((!CUDA_OK)); then
        STAGE_NOTE="no CUDA"
        return 1
    fi
    local args=(--device "$DEVICE" --no-benchmark-pass)
    [[ $DEVICE == cpu ]] && args+=(--cases 1x64x64 --repeats 1)
    timeout "$(limit 90 90)" "$PY" bench/gpu_forms.py "${args[@]}"
}

stage_bench() {
    [[ -n $PY ]] || return 1
    local device_args=(--device "$DEVICE")
    if [[ $DEVICE == cpu ]]; then
        device_args+=(--quick)
    elif ((!CUDA_OK)); then
        STAGE_NOTE="no CUDA"
        return 1
    fi
    local extra=() rc=0 t budget
    read -r -a extra <<<"${GPU_BENCH_ARGS:-}"
    t=$(limit 260 5)
    budget=$((t - 45)) # the bench's own cell budget: model set-up and the last cell fit in t
    ((budget < 20)) && budget=20
    timeout "$t" \
        "$PY" bench/gpu_bench.py "${device_args[@]}" --budget-s "$budget" ${extra[@]+"${extra[@]}"} ||
        rc=$?
    return "$rc"
}

main() {
    say "gpu_check: $(date -Is) on $(hostname), repository $ROOT"
    say "log: $LOG, deadline ${DEADLINE_S}s, device $DEVICE, clip $CLIP"
    stage env stage_env
    stage nvidia-smi stage_nvidia_smi
    stage pytest stage_pytest
    stage remove stage_remove
    stage compare stage_compare
    stage forms stage_forms
    stage bench stage_bench
    say ""
    say "================ summary (${SECONDS}s; log $LOG) ================"
    local line failed=0
    for line in "${SUMMARY[@]}"; do
        say "$line"
        [[ $line == FAIL* ]] && failed=1
    done
    return "$failed"
}

status=0
main 2>&1 | tee "$LOG" || status=$?
exit "$status"
