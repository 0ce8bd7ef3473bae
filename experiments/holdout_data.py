"""The new-instrument experiments' data: songs with per-instrument stems, and
the same songs with some instruments taken out.

Experiment 3 (``new_instrument.py``) needs a backbone that never heard the
new instrument, then songs that have it. Both come from one dataset rendered
by the built-in sampled generator with ``--instrument-stems`` (``other.wav``
is the exact integer sum of per-family stems such as ``piano.wav``):

* the **full** dataset: every song as rendered; ``piano.wav`` etc. are the
  new targets (a track without the family has no such file: silent);
* the **holdout** dataset, derived from it: in every track (train and test)
  ``other = other - piano - guitar`` (exactly, in integers), the removed
  stems are not copied, and ``mixture = drums + bass + other + vocals``. So
  no piano or guitar is anywhere in a holdout mixture. Experiments 1 and 2
  train on it too, so that their models are experiment 3's backbones;
* the **no-vocals** dataset, derived from the holdout one: ``vocals.wav``
  silent and the mixture without it, for a backbone that never heard a
  voice (vocals as a new instrument that the ``cpu`` scale can learn).

Both are made once and kept (``$BSRNN_TF_EXPERIMENT_DATA``, default
``~/.cache/bsrnn_tf/experiments``); a complete dataset has its marker file,
written last, and a derivation writes into a temporary folder renamed at the
end, so an interrupted one is redone.

    python -m experiments.holdout_data            # make all three (about 3 min on 2 cores)
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Sequence

import numpy as np
import soundfile as sf

from bsrnn_tf.data.track import SOURCES

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

NEW_INSTRUMENTS = ("piano", "guitar")
# The dataset: 100 train songs (86 train / 14 validation) and 24 test songs
# (about 10 with piano, 9 with guitar), 30 s each, the generator's default
# soundfonts (train FluidR3_GM, test TimGM6mb) and seed.
TRACKS_TRAIN, TRACKS_TEST, SECONDS = 100, 24, 30.0
FULL, HOLDOUT = "instruments-v1", "holdout-piano-guitar-v1"
# The holdout songs with vocals silenced too: a backbone on drums, bass and
# other that never heard a voice, for vocals as a new instrument.
NO_VOCALS = "holdout-no-vocals-v1"
MARKER = "bsrnn_tf_holdout.json"


def data_dir() -> str:
    return os.path.expanduser(os.environ.get("BSRNN_TF_EXPERIMENT_DATA",
                                             "~/.cache/bsrnn_tf/experiments"))


def full_root(make: bool = True) -> str:
    """The full dataset (rendered on first use)."""
    from bsrnn_tf.datasets.sampled import MARKER_FILE, make_sampled_dataset
    root = os.path.join(data_dir(), FULL)
    if make and not os.path.exists(os.path.join(root, MARKER_FILE)):
        print(f"rendering the experiments' dataset into {root} (about 3 min on 2 cores)",
              flush=True)
        make_sampled_dataset(root, TRACKS_TRAIN, TRACKS_TEST, SECONDS,
                             workers=min(4, os.cpu_count() or 1), instrument_stems=True)
    return root


def holdout_root(make: bool = True) -> str:
    """The holdout dataset (derived from the full one on first use)."""
    root = os.path.join(data_dir(), HOLDOUT)
    if make and not os.path.exists(os.path.join(root, MARKER)):
        derive_without(full_root(), root, NEW_INSTRUMENTS)
    return root


def no_vocals_root(make: bool = True) -> str:
    """The holdout songs with vocals silenced (derived on first use)."""
    return no_vocals_of(holdout_root(make), make)


def no_vocals_of(source: str, make: bool = True) -> str:
    """``source`` (a folder of wav stems: train/<track>/<stem>.wav, as
    MUSDB18-HQ) with vocals silenced and taken out of every mixture, made
    once: :data:`NO_VOCALS` for the holdout songs, else a folder named after
    ``source`` beside them."""
    source = os.path.abspath(source)
    name = (NO_VOCALS if source == os.path.join(data_dir(), HOLDOUT)
            else f"{os.path.basename(source.rstrip(os.sep))}-no-vocals")
    root = os.path.join(data_dir(), name)
    if make and not os.path.exists(os.path.join(root, MARKER)):
        train = os.path.join(source, "train")
        if not any(os.path.exists(os.path.join(train, t, "other.wav"))
                   for t in (os.listdir(train) if os.path.isdir(train) else [])):
            raise FileNotFoundError(f"{source}: no train/<track>/<stem>.wav stems (MUSDB18-HQ "
                                    "layout) to take the vocals out of")
        derive_without(source, root, ("vocals",))
    return root


def _read_int16(path: str) -> np.ndarray:
    audio, _ = sf.read(path, dtype="int16", always_2d=True)
    return audio


def derive_without(source: str, dest: str, remove: Sequence[str]) -> str:
    """Writes ``dest``: every track of ``source`` with the stems ``remove``
    taken out of the mixture: an instrument stem (``piano``) out of ``other``
    too (see the module docstring), one of the four stems (``vocals``)
    written as silence. The other stems are hard links (copies where links
    cannot be made). Returns ``dest``."""
    tmp = dest + ".partial"
    shutil.rmtree(tmp, ignore_errors=True)
    removed = {}
    for subset in ("train", "test"):
        folder = os.path.join(source, subset)
        for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
            src, out = os.path.join(folder, name), os.path.join(tmp, subset, name)
            os.makedirs(out)
            info = sf.info(os.path.join(src, "other.wav"))
            stems = {}
            for s in SOURCES:
                if s != "other" and s not in remove:
                    try:
                        os.link(os.path.join(src, f"{s}.wav"), os.path.join(out, f"{s}.wav"))
                    except OSError:
                        shutil.copy2(os.path.join(src, f"{s}.wav"), out)
                stems[s] = _read_int16(os.path.join(src, f"{s}.wav")).astype(np.int32)
            present = [r for r in remove if os.path.exists(os.path.join(src, f"{r}.wav"))]
            for r in present:
                if r in SOURCES:  # a stem of its own: silence
                    stems[r] = np.zeros_like(stems[r])
                else:
                    stems["other"] -= _read_int16(os.path.join(src, f"{r}.wav"))
            removed[f"{subset}/{name}"] = present
            mixture = sum(stems.values())
            written = {"other": stems["other"], **{r: stems[r] for r in present if r in SOURCES},
                       "mixture": mixture}
            for label, audio in written.items():
                if np.max(np.abs(audio)) > 32767:
                    raise ValueError(f"{src}: {label} without {present} leaves the int16 range")
                sf.write(os.path.join(out, f"{label}.wav"), audio.astype(np.int16),
                         info.samplerate, subtype="PCM_16")
    with open(os.path.join(tmp, MARKER), "w") as f:
        json.dump({"source": os.path.abspath(source), "removed_stems": list(remove),
                   "tracks": removed}, f, indent=1)
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)
    return dest


if __name__ == "__main__":
    print(full_root())
    print(holdout_root())
    print(no_vocals_root())
