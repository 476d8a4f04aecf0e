#!/usr/bin/env bash
# Create .venv (if needed) and install xasml with its dependencies into it.
# The CPU wheel of PyTorch goes in first so that nothing pulls the CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet torch==2.13.0
.venv/bin/python -m pip install --quiet -e '.[test,umap,simulate]'
