#!/usr/bin/env bash
# One command on a fresh machine: install, then run the main job (the topology indicator on the
# bundled default dataset). Extra arguments go to `xasml topology run`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
# the run folder is the quick start's own: a rerun replaces it
.venv/bin/xasml topology run --out runs/topology --overwrite "$@"
