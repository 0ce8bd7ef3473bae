"""The levers of the sampled dataset (bsrnn_tf/datasets/produced.py):
production, recorded kits, sung vocals, more timbres, and the held-out
produced split."""

import argparse
import json
import os
import shutil
import struct

import numpy as np
import pytest
import soundfile as sf

from bsrnn_tf.datasets import fluidsynth, hydrogen, instruments, produced, sampled, sung
from bsrnn_tf.datasets.cache import GenerationError
from bsrnn_tf.datasets.cli import register_cli

SOURCES = ("drums", "bass", "other", "vocals")
FONTS = [os.path.join(sampled.SOUNDFONT_DIR, f)
         for f in sampled.TRAIN_SOUNDFONTS + sampled.TEST_SOUNDFONTS]
needs_everything = pytest.mark.skipif(
    shutil.which("fluidsynth") is None or shutil.which("espeak-ng") is None
    or not all(os.path.isfile(f) for f in FONTS) or not os.path.isdir(hydrogen.KIT_DIR),
    reason="needs fluidsynth, espeak-ng, fluid-soundfont-gm, timgm6mb-soundfont, "
           "hydrogen-drumkits (scripts/install.sh)")


def _song(subset, recipe, index=0, seconds=3.0):
    font = fluidsynth.resolve_soundfont(FONTS[0] if subset == "train" else FONTS[1])
    r = produced.for_subset(recipe, subset) if recipe else None
    return sampled.render_song(0, subset, index, seconds, [font], recipe=r)


@needs_everything
@pytest.mark.parametrize("recipe, changed", [
    (produced.Recipe(recorded_kits=1.0), {"drums"}),
    (produced.Recipe(sung_vocals=1.0), {"vocals"}),
])
def test_a_lever_changes_its_stem_only(recipe, changed):
    _, plain, _ = _song("train", None)
    _, lever, info = _song("train", recipe)
    # Unchanged stems are the same audio; the song's one peak scaling before
    # int16 (quantise_stems) may differ, by one factor for all of them.
    gains = []
    for source in SOURCES:
        a, b = plain[source].astype(np.float64), lever[source].astype(np.float64)
        gain = float(np.sum(a * b) / np.sum(a * a))
        same = np.max(np.abs(b - gain * a)) <= 0.5 + 0.5 * gain + 1e-6  # int16 rounding
        assert same == (source not in changed), source
        if same:
            gains.append(gain)
    assert max(gains) - min(gains) < 1e-3
    levers = info["levers"]
    assert (levers["kit"] in produced.TRAIN_KITS) == ("drums" in changed)
    assert (levers["voice"] in sung.TRAIN_VOICES) == ("vocals" in changed)


@needs_everything
def test_produced_dataset_mixture_is_the_exact_sum_and_test_kits_are_held_out(tmp_path):
    pytest.importorskip("pedalboard")
    out = sampled.make_sampled_dataset(
        str(tmp_path / "ds"), tracks_train=1, tracks_test=1, seconds=3.0, workers=1,
        progress=False, recipe=produced.Recipe(production=1.0, recorded_kits=1.0),
        test_recipe=produced.PRODUCED_TEST_RECIPE)
    meta = json.load(open(os.path.join(out, sampled.MARKER_FILE)))
    assert meta["recipe"]["train"]["kits"] == list(produced.TRAIN_KITS)
    assert meta["recipe"]["test"]["kits"] == list(hydrogen.TEST_KITS)
    for track in meta["tracks"]:
        levers = track["levers"]
        assert levers["produced"] and levers["chains"]
        kits = hydrogen.TEST_KITS if track["subset"] == "test" else produced.TRAIN_KITS
        assert levers["kit"] in kits
        folder = os.path.join(out, track["subset"], track["name"])
        audio = {n: sf.read(os.path.join(folder, f"{n}.wav"), dtype="int16")[0]
                 for n in ("mixture",) + SOURCES}
        total = sum(audio[s].astype(np.int32) for s in SOURCES)
        np.testing.assert_array_equal(total, audio["mixture"])
        for s in SOURCES:
            assert np.abs(audio[s]).max() > 100, s


def test_reserved_soundfonts_are_refused(tmp_path):
    with pytest.raises(GenerationError, match="reserved"):
        fluidsynth.resolve_soundfont("MuseScore_General.sf3")
    link = tmp_path / "some-font.sf2"
    target = tmp_path / "MuseScore_General_Lossless.sf2"
    target.write_bytes(b"RIFF")
    link.symlink_to(target)
    with pytest.raises(GenerationError, match="reserved"):
        fluidsynth.resolve_soundfont(str(link))


def _chunk(cid, data):
    return struct.pack("<4sI", cid, len(data)) + data


def test_preset_headers_of_an_sf3_with_an_unpadded_odd_chunk(tmp_path):
    phdr = b"".join(struct.pack("<20sHH14x", name, program, bank)
                    for name, program, bank in ((b"Piano", 0, 0), (b"Kit", 0, 128),
                                                (b"EOP", 0, 0)))
    pdta = _chunk(b"LIST", b"pdta" + _chunk(b"phdr", phdr))
    sdta = struct.pack("<4sI", b"LIST", 4 + 8 + 5) + b"sdta" + struct.pack("<4sI", b"smpl", 5) \
        + b"\x01" * 5  # odd length, no pad byte (as FluidR3Mono_GM.sf3)
    body = b"sfbk" + _chunk(b"LIST", b"INFO") + sdta + pdta
    path = tmp_path / "odd.sf3"
    path.write_bytes(struct.pack("<4sI", b"RIFF", len(body)) + body)
    assert instruments.soundfont_presets(str(path)) == {(0, 0): "Piano", (128, 0): "Kit"}


def test_wide_roles_add_every_family():
    narrow = instruments.role_weights("pad")
    wide = instruments.role_weights("pad", wide=True)
    assert set(wide) == set(instruments.FAMILIES)
    assert all(wide[f] == narrow[f] for f in narrow)


def test_cli_levers_and_recipe_checks():
    parser = argparse.ArgumentParser()
    register_cli(parser.add_subparsers())
    args = parser.parse_args(["make-dataset", "out", "--kind", "sampled", "--production", "0.8",
                              "--sung-vocals", "0.5", "--test-production", "1",
                              "--more-timbres"])
    train, test, fonts = sampled.recipes_from_args(args)
    assert (train.production, train.sung_vocals, train.recorded_kits) == (0.8, 0.5, 0.0)
    assert (test.production, test.sung_vocals) == (1.0, 0.5) and train.more_timbres
    assert list(fonts) == list(produced.MORE_TRAIN_SOUNDFONTS)
    assert "TimGM6mb.sf2" not in fonts
    with pytest.raises(GenerationError, match="probability"):
        produced.Recipe(production=1.5)
