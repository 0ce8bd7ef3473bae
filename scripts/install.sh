#!/usr/bin/env bash
# Installs everything bsrnn_tf needs on a fresh Debian/Ubuntu machine:
# ffmpeg (musdb needs it on PATH) through apt where missing, then the
# package itself with its test extras, editable.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v ffmpeg >/dev/null 2>&1 || ! command -v ffprobe >/dev/null 2>&1; then
  echo "installing ffmpeg (apt)"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq ffmpeg >/dev/null
fi

python3 -m pip install --quiet --disable-pip-version-check -e ".[dev]"
echo "bsrnn_tf installed: $(python3 -c 'import bsrnn_tf; print(bsrnn_tf.__version__)')"
