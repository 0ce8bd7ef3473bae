"""The sampled dataset: songs rendered from soundfonts by FluidSynth."""

import argparse
import hashlib
import json
import os
import shutil

import numpy as np
import pytest
import soundfile as sf

from bsrnn_tf.datasets.cache import GenerationError
from bsrnn_tf.datasets.cli import register_cli
from bsrnn_tf.datasets import compose, fluidsynth, sampled

mido = pytest.importorskip("mido", reason="mido is not installed (pip install mido)")

FONTS = [os.path.join(sampled.SOUNDFONT_DIR, f)
         for f in sampled.TRAIN_SOUNDFONTS + sampled.TEST_SOUNDFONTS]
needs_fluidsynth = pytest.mark.skipif(
    shutil.which("fluidsynth") is None or not all(os.path.isfile(f) for f in FONTS),
    reason="needs the Debian packages fluidsynth, fluid-soundfont-gm and timgm6mb-soundfont")
SOURCES = ("drums", "bass", "other", "vocals")


def _make(out, seed=0, **kw):
    return sampled.make_sampled_dataset(str(out), tracks_train=1, tracks_test=1, seconds=3.0,
                                        seed=seed, workers=1, progress=False, **kw)


def _digests(root):
    out = {}
    for folder, _, files in sorted(os.walk(root)):
        for name in sorted(files):
            if name.endswith(".wav"):
                with open(os.path.join(folder, name), "rb") as f:
                    out[os.path.relpath(os.path.join(folder, name), root)] = \
                        hashlib.sha256(f.read()).hexdigest()
    return out


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return _make(tmp_path_factory.mktemp("sampled") / "ds", instrument_stems=True)


@needs_fluidsynth
def test_layout_exact_mixture_and_audible_stems(tiny):
    for subset in ("train", "test"):
        tracks = os.listdir(os.path.join(tiny, subset))
        assert len(tracks) == 1
        folder = os.path.join(tiny, subset, tracks[0])
        audio = {}
        for name in ("mixture",) + SOURCES:
            info = sf.info(os.path.join(folder, f"{name}.wav"))
            assert (info.samplerate, info.channels, info.subtype) == (44100, 2, "PCM_16")
            audio[name], _ = sf.read(os.path.join(folder, f"{name}.wav"), dtype="int16")
            assert audio[name].shape == (3 * 44100, 2)
        total = sum(audio[s].astype(np.int32) for s in SOURCES)
        np.testing.assert_array_equal(audio["mixture"].astype(np.int32), total)
        for s in SOURCES:  # every stem plays: RMS above -50 dBFS over the song
            rms = np.sqrt(np.mean((audio[s] / 32768.0) ** 2))
            assert rms > 10 ** (-50 / 20), (subset, s, rms)


@needs_fluidsynth
def test_instrument_stems_sum_to_other(tiny):
    meta = json.load(open(os.path.join(tiny, sampled.MARKER_FILE)))
    for info in meta["tracks"]:
        folder = os.path.join(tiny, info["subset"], info["name"])
        families = sorted({i["family"] for i in info["instruments"]["other"]})
        assert set(info["stems"]) == set(SOURCES) | set(families)
        parts = [sf.read(os.path.join(folder, f"{f}.wav"), dtype="int16")[0].astype(np.int32)
                 for f in families]
        other = sf.read(os.path.join(folder, "other.wav"), dtype="int16")[0]
        np.testing.assert_array_equal(sum(parts), other.astype(np.int32))


@needs_fluidsynth
def test_marker_records_the_split_soundfonts(tiny):
    meta = json.load(open(os.path.join(tiny, sampled.MARKER_FILE)))
    assert meta["soundfonts"] == {"train": ["FluidR3_GM.sf2"], "test": ["TimGM6mb.sf2"]}
    fonts = {info["subset"]: info["soundfont"] for info in meta["tracks"]}
    assert fonts == {"train": "FluidR3_GM.sf2", "test": "TimGM6mb.sf2"}
    for info in meta["tracks"]:
        assert info["instruments"]["drums"][0]["bank"] == 128
        assert all(i["preset"] for s in SOURCES for i in info["instruments"][s])


@needs_fluidsynth
def test_deterministic_in_the_seed(tiny, tmp_path):
    again = _make(tmp_path / "again", instrument_stems=True)
    assert _digests(again) == _digests(tiny)
    other = _make(tmp_path / "other", seed=1)
    mixtures = lambda d: {k.split(os.sep)[0]: v for k, v in _digests(d).items()  # noqa: E731
                          if k.endswith("mixture.wav")}
    assert all(a != b for a, b in zip(mixtures(tiny).values(), mixtures(other).values()))


def _read_parts(song, tmp_path):
    """Writes every part of ``song`` as MIDI and reads it back with mido:
    ``{source: [(mido file, channel)]}``."""
    out = {}
    for source in SOURCES:
        out[source] = []
        for i, part in enumerate(song.parts[source]):
            path = str(tmp_path / f"{source}_{i}.mid")
            compose.write_midi(path, song.tempo, [part], [(0, 0)], [{}])
            out[source].append((mido.MidiFile(path), part.channel))
    return out


def _note_beats(midi):
    """Onset times (beats) of the note-ons of a MIDI file."""
    beats = []
    for track in midi.tracks:
        now = 0
        for msg in track:
            now += msg.time
            if msg.type == "note_on" and msg.velocity > 0:
                beats.append(now / midi.ticks_per_beat)
    return np.array(beats)


def test_midi_tempo_drum_channel_and_silent_sections(tmp_path):
    found_silent = False
    for seed in range(6):
        song = compose.compose_song(np.random.default_rng(seed), 60.0, silent_prob=0.4)
        parts = _read_parts(song, tmp_path)
        tempos = [m.tempo for midi, _ in parts["drums"] for t in midi.tracks for m in t
                  if m.type == "set_tempo"]
        assert len(tempos) == 1
        assert 60 <= mido.tempo2bpm(tempos[0]) <= 180
        drums, _ = parts["drums"][0]
        channels = {m.channel for t in drums.tracks for m in t if not m.is_meta}
        assert channels == {9}
        for source in SOURCES:
            onsets = np.concatenate([_note_beats(m) for m, _ in parts[source]])
            edges = lambda bar: 4 * bar - 0.05  # noqa: E731  (downbeats may come early)
            playing = [np.any((onsets >= edges(a)) & (onsets < edges(a + n)))
                       for a, n in song.sections]
            assert sum(playing) >= (len(song.sections) + 1) // 2, (seed, source)
            assert playing == [bool(x) for x in song.active[source]], (seed, source)
            found_silent |= not all(playing)
        assert all(any(song.active[s][i] for s in SOURCES) for i in range(len(song.sections)))
    assert found_silent


def test_no_silent_sections_when_not_asked():
    for seed in range(4):
        song = compose.compose_song(np.random.default_rng(seed), 40.0, silent_prob=0.0)
        assert all(all(song.active[s]) for s in SOURCES)


def test_midi_never_cuts_a_repeated_pitch():
    notes = [compose.Note(0.0, 2.0, 60, 90), compose.Note(1.0, 1.0, 60, 80),
             compose.Note(1.0, 0.5, 60, 70), compose.Note(3.0, 0.5, 62, 70)]
    events = compose._note_events(notes)
    held = {}
    for tick, is_on, pitch, _ in events:
        if is_on:
            assert pitch not in held, "a note-on before the previous note-off"
            held[pitch] = tick
        else:
            del held[pitch]
    assert not held


def test_missing_fluidsynth_is_one_clear_error(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(fluidsynth, "FLUIDSYNTH", "fluidsynth-not-installed-here")
    with pytest.raises(GenerationError, match="install the Debian package `fluidsynth`"):
        _make(tmp_path / "a")
    parser = argparse.ArgumentParser()
    register_cli(parser.add_subparsers())
    args = parser.parse_args(["make-dataset", str(tmp_path / "b"), "--kind", "sampled"])
    assert args.func(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "fluidsynth not found" in err[0]


def test_missing_soundfont_names_the_package(monkeypatch, tmp_path):
    monkeypatch.setattr(fluidsynth, "SOUNDFONT_DIR", str(tmp_path))
    with pytest.raises(GenerationError, match="fluid-soundfont-gm"):
        sampled.resolve_soundfont("FluidR3_GM.sf2")
    with pytest.raises(GenerationError, match="timgm6mb-soundfont"):
        sampled.resolve_soundfont("TimGM6mb.sf2")


def test_root_uses_a_complete_dataset_and_refuses_a_partial_one(monkeypatch, tmp_path):
    done = tmp_path / "done"
    done.mkdir()
    (done / sampled.MARKER_FILE).write_text("{}")
    monkeypatch.setenv("BSRNN_TF_SAMPLED_DATA", str(done))
    assert sampled.sampled_dataset_root() == str(done)
    partial = tmp_path / "partial"
    (partial / "train").mkdir(parents=True)
    monkeypatch.setenv("BSRNN_TF_SAMPLED_DATA", str(partial))
    with pytest.raises(GenerationError, match="not a complete built-in sampled dataset"):
        sampled.sampled_dataset_root()


def test_bad_arguments_are_generation_errors(tmp_path):
    with pytest.raises(GenerationError, match="at least one track"):
        sampled.make_sampled_dataset(str(tmp_path), tracks_train=0, tracks_test=0)
    with pytest.raises(GenerationError, match="silent_prob"):
        sampled.make_sampled_dataset(str(tmp_path), silent_prob=1.0)


@needs_fluidsynth
def test_a_soundfont_shared_by_train_and_test_warns(tmp_path):
    with pytest.warns(UserWarning, match="share soundfonts"):
        sampled.make_sampled_dataset(str(tmp_path), tracks_train=1, tracks_test=1, seconds=1.0,
                                     test_soundfonts=["FluidR3_GM.sf2"], progress=False)
