#!/usr/bin/env bash
# One command on a fresh machine: install (if needed), then run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
.venv/bin/python -m pytest "$@"
