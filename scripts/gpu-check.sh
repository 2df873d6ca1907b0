#!/usr/bin/env bash
# gpu-check.sh — a real NCCL DDP job on this machine's NVIDIA GPUs through the whole platform
# (local Redis, FerretDB, sshd node n1, the five services), with GPU detection and telemetry;
# prints what the platform recorded and exits 0 only if the job SUCCEEDED over NCCL on every GPU
# with non-zero utilisation sampled. docs/gpu.md says what it proves and what it needs.
#
#   GPU_CHECK_PYTHON    a Python whose torch has CUDA and NCCL (default: python3 on PATH)
#   GPU_CHECK_SECONDS   training time in seconds (default 60)
#   GPU_CHECK_SKIP_BOOTSTRAP=1  skip scripts/bootstrap.sh (already run on this machine)
set -euo pipefail
cd "$(dirname "$0")/.."
die() { printf '[gpu-check] %s\n' "$*" >&2; exit 2; }

command -v nvidia-smi >/dev/null || die "nvidia-smi not found: this check needs a machine with NVIDIA GPUs"
nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv,noheader
py=$(command -v "${GPU_CHECK_PYTHON:-python3}") || die "no Python '${GPU_CHECK_PYTHON:-python3}'"
"$py" - <<'PY' || die "$py: torch without CUDA or NCCL (set GPU_CHECK_PYTHON to a Python with a CUDA build of torch)"
import torch, torch.distributed as dist
assert torch.cuda.is_available() and dist.is_nccl_available()
print(f"[gpu-check] torch {torch.__version__}, CUDA {torch.version.cuda}, NCCL {'.'.join(map(str, torch.cuda.nccl.version()))}, {torch.cuda.device_count()} GPU(s)")
PY
[[ -x $(dirname "$py")/torchrun ]] || die "$(dirname "$py")/torchrun missing: the job runs torchrun from the same Python"

# Redis, FerretDB and the sshd nodes; only PyTorch-side frameworks (the job brings its own torch).
[[ ${GPU_CHECK_SKIP_BOOTSTRAP:-} == 1 ]] || TRAINYARD_FRAMEWORKS=pytorch bash scripts/bootstrap.sh
GPU_CHECK_PYTHON_BIN=$(dirname "$py") exec pnpm exec tsx scripts/gpu-check/gpu-check.ts
