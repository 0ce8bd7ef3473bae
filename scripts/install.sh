#!/usr/bin/env bash
# Installs everything bsrnn_tf needs on a fresh Debian/Ubuntu machine:
#  - with apt, where missing: ffmpeg (musdb needs it on PATH), python3-venv
#    (Debian's python3 has no ensurepip without it), and fluidsynth with the
#    fluid-soundfont-gm and timgm6mb-soundfont sound fonts (the sampled
#    dataset generator renders MIDI with them), hydrogen-drumkits (recorded
#    drum kits) and espeak-ng (sung vocals) for the produced dataset, and
#    fluidr3mono-gm-soundfont, csound-soundfont and opl3-soundfont (the
#    produced dataset's --more-timbres fonts; never the fonts reserved for
#    the independent evaluation, see README);
#  - a virtual environment .venv in the checkout (Debian 12 / Ubuntu 23.04+
#    refuse pip installs into the system python3, PEP 668), and this package
#    with its test extras into it, editable.
# Afterwards run everything with .venv/bin/python.
#
# Environment: PYTHON (default python3) creates the venv; BSRNN_TF_VENV
# (default .venv) is where it goes; BSRNN_TF_SKIP_APT=1 installs no system
# packages (they must then be there already).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV="${BSRNN_TF_VENV:-.venv}"

missing=()
if ! command -v ffmpeg >/dev/null 2>&1 || ! command -v ffprobe >/dev/null 2>&1; then
  missing+=(ffmpeg)
fi
if [ ! -x "$VENV/bin/python" ] && ! "$PYTHON" -c "import ensurepip, venv" >/dev/null 2>&1; then
  missing+=(python3-venv)
fi
command -v fluidsynth >/dev/null 2>&1 || missing+=(fluidsynth)
[ -e /usr/share/sounds/sf2/FluidR3_GM.sf2 ] || missing+=(fluid-soundfont-gm)
[ -e /usr/share/sounds/sf2/TimGM6mb.sf2 ] || missing+=(timgm6mb-soundfont)
[ -e /usr/share/hydrogen/data/drumkits/ForzeeStereo/drumkit.xml ] || missing+=(hydrogen-drumkits)
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
[ -e /usr/share/sounds/sf3/FluidR3Mono_GM.sf3 ] || missing+=(fluidr3mono-gm-soundfont)
[ -e /usr/share/sounds/sf2/sf_GMbank.sf2 ] || missing+=(csound-soundfont)
[ -e /usr/share/sounds/sf2/OPL-3_FM_128M.sf2 ] || missing+=(opl3-soundfont)

if [ "${#missing[@]}" -gt 0 ]; then
  if [ "${BSRNN_TF_SKIP_APT:-0}" = 1 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "install.sh: error: missing system packages: ${missing[*]} (install them, then rerun)" >&2
    exit 1
  fi
  echo "installing ${missing[*]} (apt)"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  # Sound fonts named explicitly and no recommends: fluidsynth's library
  # would otherwise be free to pull in another (large) GM sound font.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "creating the virtual environment $VENV ($("$PYTHON" --version 2>&1))"
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[dev]"
echo "bsrnn_tf $("$VENV/bin/python" -c 'import bsrnn_tf; print(bsrnn_tf.__version__)') installed in $VENV; run it with $VENV/bin/python"
