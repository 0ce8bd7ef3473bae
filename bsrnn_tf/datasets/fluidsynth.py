"""FluidSynth and the soundfont files of the sampled dataset.

:func:`find_fluidsynth` and :func:`resolve_soundfont` find the executable
and a soundfont, or raise a :class:`~bsrnn_tf.datasets.synth.GenerationError`
naming the Debian package to install; :func:`render_midi` renders one MIDI
file with FluidSynth to a ``(samples, 2)`` float32 array of a given length.
"""

from __future__ import annotations

import os
import subprocess

import numpy as np
import soundfile as sf

from bsrnn_tf.datasets.cache import GenerationError, require_program

FLUIDSYNTH = "fluidsynth"
SOUNDFONT_DIR = "/usr/share/sounds/sf2"
SOUNDFONT_PACKAGES = {"FluidR3_GM.sf2": "fluid-soundfont-gm",
                      "TimGM6mb.sf2": "timgm6mb-soundfont",
                      "FluidR3_GS.sf2": "fluid-soundfont-gs",
                      "FluidR3Mono_GM.sf3": "fluidr3mono-gm-soundfont",
                      "sf_GMbank.sf2": "csound-soundfont",
                      "OPL-3_FM_128M.sf2": "opl3-soundfont"}
# Kept for an independent evaluation: never rendered here (a file of that
# name that is only Debian's alternatives link to another font is refused too).
RESERVED_SOUNDFONTS = ("MuseScore_General",)


def find_fluidsynth() -> str:
    """Path of the FluidSynth executable; :class:`GenerationError` if absent."""
    return require_program(FLUIDSYNTH, "fluidsynth")


def resolve_soundfont(name: str) -> str:
    """Absolute path of a soundfont given a path or a file name in
    ``/usr/share/sounds/sf2``; :class:`GenerationError` naming the Debian
    package if it is missing."""
    path = name if os.sep in name else os.path.join(SOUNDFONT_DIR, name)
    if any(r.lower() in os.path.basename(p).lower() for r in RESERVED_SOUNDFONTS
           for p in (path, os.path.realpath(path))):
        raise GenerationError(f"soundfont {path} is reserved for an independent evaluation "
                              f"and is never used to make data here")
    if not os.path.isfile(path):
        package = SOUNDFONT_PACKAGES.get(os.path.basename(path))
        hint = f"install the Debian package `{package}`" if package else "check the path"
        raise GenerationError(f"soundfont {path} not found: {hint} (scripts/install.sh does)")
    return os.path.abspath(path)



def render_midi(midi_path: str, soundfont: str, settings: list, num_samples: int,
                sample_rate: int, work_dir: str, gain: float = 0.5) -> np.ndarray:
    """Renders a MIDI file with FluidSynth; ``(num_samples, 2)`` float32,
    cut (release and reverb tails past the song end) or zero-padded."""
    out = os.path.join(work_dir, os.path.basename(midi_path) + ".wav")
    cmd = [find_fluidsynth(), "-ni", "-q", "-g", f"{gain}", "-r", str(sample_rate),
           "-O", "float", "-T", "wav", "-F", out, "-o", "synth.cpu-cores=1"]
    if soundfont.lower().endswith(".sf3"):
        # Ogg-compressed samples: decode only the presets the file plays
        # (same output; loading all of FluidR3Mono_GM.sf3 takes 4 s).
        cmd += ["-o", "synth.dynamic-sample-loading=1"]
    for setting in settings:
        cmd += ["-o", setting]
    cmd += [soundfont, midi_path]
    done = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    if done.returncode != 0 or not os.path.isfile(out):
        raise GenerationError(f"fluidsynth failed on {midi_path} (exit {done.returncode}): "
                              f"{done.stdout.strip()[-500:]}")
    audio, rate = sf.read(out, dtype="float32", always_2d=True)
    if rate != sample_rate or audio.shape[1] != 2:
        raise GenerationError(f"fluidsynth wrote {audio.shape[1]} channels at {rate} Hz")
    fitted = np.zeros((num_samples, 2), dtype=np.float32)
    fitted[: min(num_samples, len(audio))] = audio[:num_samples]
    return fitted
