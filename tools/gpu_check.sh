#!/usr/bin/env bash
# The one prepared GPU run (issue 16): on a machine with an NVIDIA GPU, from the
# repository root, in about 8 minutes:
#     bash tools/gpu_check.sh [WHEELS_DIR]
# 1. installs the wheels in WHEELS_DIR (default ./wheels, if present: e.g. jinja2,
#    cffi, cuda-python, cupy) without an index;
# 2. runs tests/gpu (the package launcher needs only the driver; kg.function's
#    tests need PyCUDA or cuda-python and skip, with the reason, without);
# 3. runs benchmarks/bench_gpu.py (W1/W2 at 1e8 elements beside the copy
#    bandwidth, the MLP step beside CuPy, nvcc and load times).
# Each part has its own time limit; the exit status is the first failure's.
# The record goes to RESULTS ($KGEN_GPU_RESULTS, else $OUT where the device
# machine collects files, else ./gpu_check_results): gpu_check.log (all of the
# output), pytest.xml (every test's outcome) and bench_gpu.json (the numbers).
set -u
cd "$(dirname "$0")/.."
WHEELS=${1:-wheels}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
export KGEN_CACHE_DIR=${KGEN_CACHE_DIR:-/tmp/kgen-gpu-check-cache}
RESULTS=${KGEN_GPU_RESULTS:-${OUT:-gpu_check_results}}
mkdir -p "$RESULTS"
exec > >(tee "$RESULTS/gpu_check.log") 2>&1
status=0

echo "== $(date -u +%H:%M:%S) GPU"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
command -v nvcc >/dev/null || export PATH=/usr/local/cuda/bin:$PATH
nvcc --version | tail -1 || echo "nvcc not found: tests/gpu will skip"

if [ -d "$WHEELS" ]; then
    echo "== $(date -u +%H:%M:%S) installing the wheels in $WHEELS"
    timeout 120 python -m pip install -q --no-index --find-links "$WHEELS" "$WHEELS"/*.whl \
        || echo "(some wheels did not install; going on)"
fi
python - <<'PY'
import importlib.util as u
for m in ("numpy", "cffi", "jinja2", "pycuda", "cuda.bindings", "cupy"):
    try:
        found = u.find_spec(m) is not None
    except ImportError:
        found = False
    print(f"   {m:14s} {'yes' if found else 'no'}")
PY

echo "== $(date -u +%H:%M:%S) pytest tests/gpu"
timeout 300 python -m pytest -q -p no:cacheprovider -rs --junitxml="$RESULTS/pytest.xml" tests/gpu
rc=$?; [ "$status" = 0 ] && status=$rc

echo "== $(date -u +%H:%M:%S) benchmarks/bench_gpu.py"
timeout 150 python benchmarks/bench_gpu.py --n 100000000 --reps 20 --json "$RESULTS/bench_gpu.json"
rc=$?; [ "$status" = 0 ] && status=$rc
echo "== $(date -u +%H:%M:%S) done (status $status); the record is in $RESULTS"
exit "$status"
