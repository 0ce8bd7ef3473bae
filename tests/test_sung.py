"""Sung vocals with words (bsrnn_tf/datasets/sung.py): espeak-ng syllables
resynthesised by WORLD at the melody's pitches."""

import shutil

import numpy as np
import pytest

from bsrnn_tf.datasets import sung
from bsrnn_tf.datasets.score import Note, Part

SR = 44100


def test_frame_map_keeps_consonants_and_stretches_the_vowel():
    voiced = np.array([False] * 10 + [True] * 20 + [False] * 6)
    out = sung.frame_map(voiced, 200)
    assert len(out) == 200
    np.testing.assert_allclose(out[:10], np.arange(10))         # onset at its own pace
    np.testing.assert_allclose(out[-6:], np.arange(30, 36))     # coda too
    middle = out[10:194]
    assert middle[0] == 10 and middle[-1] == 29 and np.all(np.diff(middle) > 0)
    short = sung.frame_map(voiced, 20)                          # short note: consonants
    assert len(short) == 20 and short[0] == 0 and short[-1] == 35  # capped at 40 % each


def test_pitch_curve_sits_on_the_note_with_vibrato_and_glide():
    rng = np.random.default_rng(0)
    frames = 400                                                # 2 s
    curve = sung.pitch_curve(rng, 69, frames, previous=64.0)
    cents = 1200 * np.log2(curve / 440.0)
    assert cents[0] == pytest.approx(-500, abs=30)              # starts at the previous note
    steady = cents[100:]
    assert abs(np.median(steady)) < 15 and 10 < np.ptp(steady) < 200   # vibrato, no drift off


def test_warp_envelope_moves_a_formant():
    sp = np.tile(np.exp(-0.5 * ((np.arange(513) - 100) / 5.0) ** 2), (3, 1))
    assert np.argmax(sung.warp_envelope(sp, 1.2)[0]) == 120
    assert np.argmax(sung.warp_envelope(sp, 0.8)[0]) == 80


def test_lyrics_give_each_note_a_word_from_a_small_vocabulary():
    notes = [Note(float(i), 0.9, 60, 90) for i in range(40)]
    words = sung.lyrics(np.random.default_rng(0), notes)
    assert set(words) == {float(i) for i in range(40)}
    assert set(words.values()) <= set(sung.WORDS) and len(set(words.values())) <= 16


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs the Debian package espeak-ng")
def test_sung_notes_have_the_melody_pitch():
    pw = pytest.importorskip("pyworld", reason="needs the PyPI package pyworld")
    part = Part("vocals", "lead", 0, [Note(0.0, 1.8, 57, 100), Note(2.0, 1.8, 64, 100)])
    words = {0.0: "love", 2.0: "night"}
    audio = sung.render_sung(part, 60.0, np.random.default_rng(0), 4 * SR, SR, "en-us+f3",
                             words)
    assert audio.shape == (4 * SR, 2) and np.all(np.isfinite(audio))
    np.testing.assert_array_equal(audio[:, 0], audio[:, 1])
    for start, pitch in ((0.5, 57), (2.5, 64)):                  # the middle of each note
        x = audio[int(start * SR): int((start + 1.0) * SR), 0].astype(np.float64)
        f0, _ = pw.dio(x, SR, f0_floor=80.0, f0_ceil=800.0)
        voiced = f0[f0 > 0]
        assert voiced.size > 50
        cents = 1200 * np.log2(np.median(voiced) / (440 * 2 ** ((pitch - 69) / 12)))
        assert abs(cents) < 50
    assert np.sqrt(np.mean(audio[int(3.9 * SR):] ** 2)) < 1e-3  # silent after the last note
