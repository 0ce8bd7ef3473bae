#!/usr/bin/env bash
# Installs everything bsrnn_tf needs on a fresh Debian/Ubuntu machine:
# ffmpeg (musdb needs it on PATH), fluidsynth and the FluidR3_GM and TimGM6mb
# soundfonts (the sampled dataset, bsrnn_tf.datasets.sampled) through apt
# where missing, then the package itself with its test extras, editable.
set -euo pipefail
cd "$(dirname "$0")/.."

APT=()
if ! command -v ffmpeg >/dev/null 2>&1 || ! command -v ffprobe >/dev/null 2>&1; then
  APT+=(ffmpeg)
fi
command -v fluidsynth >/dev/null 2>&1 || APT+=(fluidsynth)
[ -f /usr/share/sounds/sf2/FluidR3_GM.sf2 ] || APT+=(fluid-soundfont-gm)
[ -f /usr/share/sounds/sf2/TimGM6mb.sf2 ] || APT+=(timgm6mb-soundfont)
if [ ${#APT[@]} -gt 0 ]; then
  echo "installing ${APT[*]} (apt)"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${APT[@]}" >/dev/null
fi

python3 -m pip install --quiet --disable-pip-version-check -e ".[dev]"
echo "bsrnn_tf installed: $(python3 -c 'import bsrnn_tf; print(bsrnn_tf.__version__)')"
