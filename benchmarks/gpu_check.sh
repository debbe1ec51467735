#!/usr/bin/env bash
# GPU check (<= 8 minutes on one GPU): the tiny config end to end on CUDA, training (K = 1 and ensembles)
# and analysis throughput CPU vs GPU at quick and paper sizes, and the paper config's estimated wall time on
# one GPU.
#
#   benchmarks/gpu_check.sh              on a machine with a CUDA GPU
#   benchmarks/gpu_check.sh --cpu-only   dry mode without a GPU: smoke-test sizes on the CPU, the tiny config
#                                        planned (snakemake -n) with device=cuda; its numbers mean nothing
#
# TSVs (gpu_e2e, gpu_training, gpu_analysis, gpu_estimate; see benchmarks/gpu_check.py) go to $OUT if set,
# else results/benchmarks/. PYTHON (default: python) is the project's interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
if [[ $# -gt 1 || ( $# -eq 1 && $1 != --cpu-only ) ]]; then
    echo "usage: $0 [--cpu-only]" >&2
    exit 2
fi
if [[ ${1:-} != --cpu-only ]]; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || echo "nvidia-smi not available"
fi
"$PYTHON" -c 'import torch; print("torch", torch.__version__, "cuda available:", torch.cuda.is_available())'
# 8 minutes at most for everything; each TSV is written as soon as it is measured (the e2e run comes last)
exec timeout 470 "$PYTHON" -m benchmarks.gpu_check "$@"
