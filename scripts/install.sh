#!/usr/bin/env bash
# Create .venv (if needed) and install xasml with its dependencies into it.
#
# PyTorch goes in first, as its CPU build: on Linux pip's default torch wheel is the CUDA build
# (several GB), so the CPU wheel is asked for explicitly (torch==2.13.0+cpu from PyTorch's CPU
# wheel index; a local wheel of that name is found the same way). Nothing is reinstalled when
# pyproject.toml and this script are unchanged since the last successful install (the editable
# install picks up code changes by itself); XASML_REINSTALL=1 forces it.
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH_VERSION=2.13.0
EXTRAS='test,umap,simulate,serve'
# The browser test of `xasml serve` drives Debian's chromium through chromedriver (no browser
# download at test time): install them when missing and we may (root with apt); elsewhere the
# test skips and says why.
if ! command -v chromedriver >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) \
      >/dev/null 2>&1 || echo "install.sh: chromium/chromium-driver not installed; the browser test will skip" >&2
  fi
fi
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
PY=.venv/bin/python
STAMP=.venv/.xasml-install
want=$(cat pyproject.toml scripts/install.sh | sha256sum | cut -d' ' -f1)
if [ "${XASML_REINSTALL:-0}" != 1 ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] \
   && "$PY" -c "import torch, xasml" 2>/dev/null; then
  exit 0
fi
"$PY" -m pip install --quiet --upgrade pip
if ! "$PY" -c "import torch" 2>/dev/null; then
  if [ "$(uname -s)" = Linux ]; then
    "$PY" -m pip install --quiet --retries 1 --timeout 15 "torch==${TORCH_VERSION}+cpu" \
        --extra-index-url https://download.pytorch.org/whl/cpu \
      || "$PY" -m pip install --quiet "torch==${TORCH_VERSION}"
  else  # macOS and Windows wheels on PyPI are CPU builds
    "$PY" -m pip install --quiet "torch==${TORCH_VERSION}"
  fi
fi
"$PY" -m pip install --quiet -e ".[${EXTRAS}]"
echo "$want" > "$STAMP"
