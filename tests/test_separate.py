"""``separate()`` and ``bsrnn-tf separate`` on generated files: formats, rates,
channels, bad inputs, atomic writes, no-overwrite, two stems, filename
layouts, and an identity model that must give its input back."""

import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from bsrnn_tf.audio import load_audio
from bsrnn_tf.cli import main
from bsrnn_tf.inference.separate import separate, separate_waveform
from bsrnn_tf.models import build_separator, preset, save_separator

TARGETS = ["drums", "vocals"]


def _tiny(targets=TARGETS):
    config = preset("tiny")
    config.segment_seconds = 1.0  # short chunks: several per test file
    return build_separator(config, targets=targets)


def _all_ones_mask(head):
    """Zero output kernel, value bias 1 (real) / 0 (imaginary), saturated
    gate: the head's mask is 1 + 0j for every bin and channel."""
    per_bin = head.features_per_bin
    head.output_kernel.assign(np.zeros(head.output_kernel.shape, np.float32))
    bias = np.zeros((head.num_bins, 2 * per_bin), np.float32)
    bias[:, 0:per_bin:2] = 1.0
    bias[:, per_bin:] = 40.0
    head.output_bias.assign(bias.reshape(-1))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("models") / "tiny")
    save_separator(_tiny(), path)
    return path


@pytest.fixture(scope="module")
def identity_model():
    model = _tiny()
    for head in model.heads.values():
        _all_ones_mask(head)
    return model


def _music(seconds, rate, channels, seed=0):
    """Tones plus noise, peak about 0.5: ``(samples, channels)`` float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    tone = np.sin(2 * np.pi * 220 * t) + 0.5 * np.sin(2 * np.pi * 1375 * t)
    out = np.stack([0.25 * tone * (1 - 0.3 * c) + 0.05 * rng.standard_normal(t.size)
                    for c in range(channels)], axis=1)
    return out.astype(np.float32)


def _write(path, seconds, rate, channels, subtype=None, seed=0):
    sf.write(str(path), _music(seconds, rate, channels, seed), rate, subtype=subtype)
    return str(path)


def _error_lines(err):
    return [line for line in err.splitlines() if "error:" in line]


# ------------------------------------------------------------------- the API

@pytest.mark.parametrize("channels", [1, 2])
def test_identity_model_gives_the_input_back(identity_model, channels):
    audio = _music(3.3, 44100, channels) * 3.0  # loud: peak normalisation applies
    out = separate(audio, identity_model, overlap=0.25)
    assert sorted(out) == TARGETS
    for estimate in out.values():
        assert estimate.shape == audio.shape and estimate.dtype == np.float32
        np.testing.assert_allclose(estimate, audio, atol=1e-4 * np.abs(audio).max())


def test_identity_two_stems_offset_duration_and_progress(identity_model, tmp_path):
    path = _write(tmp_path / "song.wav", 4.0, 44100, 2, subtype="FLOAT")
    calls = []
    out = separate(path, identity_model, two_stems="vocals", offset=0.5, duration=2.0,
                   progress=lambda done, total: calls.append((done, total)))
    assert sorted(out) == ["no_vocals", "vocals"]
    expected = load_audio(path, offset=0.5, duration=2.0)[0]
    assert out["vocals"].shape == expected.shape == (88200, 2)
    np.testing.assert_allclose(out["vocals"], expected, atol=1e-4)
    np.testing.assert_allclose(out["no_vocals"], 0.0, atol=1e-4)
    assert calls and calls[-1][0] == pytest.approx(calls[-1][1])


class _Spy:
    """A backend that halves its input and keeps what it was given."""

    sample_rate, segment_samples, channels, targets, max_batch = 44100, 44100, 2, ["half"], 2

    class info:  # noqa: N801  (mimics Backend.info)
        n_fft = 512

    def __init__(self):
        self.batches = []

    def __call__(self, batch):
        self.batches.append(batch.copy())
        return {"half": 0.5 * batch}


def test_normalisation_before_the_model_undone_after():
    quiet = _music(0.9, 44100, 2) * 1e-3  # one chunk, zero padded
    spy = _Spy()
    out = separate_waveform(quiet, 44100, spy, ["half"])
    seen = spy.batches[0][0, :quiet.shape[0]].astype(np.float64)
    assert 10 * np.log10(np.mean(seen ** 2)) == pytest.approx(-20.0, abs=0.05)  # RMS -20 dBFS
    np.testing.assert_allclose(out["half"], 0.5 * quiet, rtol=1e-5, atol=1e-9)


def test_resampling_and_channels(identity_model):
    audio = _music(1.5, 22050, 1)
    out = separate(audio, identity_model, sample_rate=22050, targets=["vocals"])
    assert list(out) == ["vocals"] and out["vocals"].shape == audio.shape
    # Band-limited content survives 22.05 -> 44.1 -> 22.05 kHz.
    assert np.corrcoef(out["vocals"][:, 0], audio[:, 0])[0, 1] > 0.999


# ------------------------------------------------------------------- the CLI

def test_formats_rates_and_channels(model_dir, tmp_path, capsys):
    inputs = {
        "a": _write(tmp_path / "a.wav", 1.3, 44100, 2, "PCM_16"),
        "b": _write(tmp_path / "b.wav", 1.1, 48000, 1, "FLOAT"),
        "c": _write(tmp_path / "c.flac", 2.2, 22050, 2, "PCM_24"),
        "d": _write(tmp_path / "d.ogg", 1.0, 44100, 1),
        "e": _write(tmp_path / "e.flac", 0.7, 48000, 1),
    }
    out = tmp_path / "out"
    assert main(["separate", *inputs.values(), "-m", model_dir, "-o", str(out)]) == 0
    assert _error_lines(capsys.readouterr().err) == []
    for name, path in inputs.items():
        audio, rate = load_audio(path)
        for target in TARGETS:
            info = sf.info(str(out / name / f"{target}.wav"))
            assert (info.frames, info.samplerate, info.channels) == (
                audio.shape[0], rate, audio.shape[1]), (name, target)
            assert info.subtype == "PCM_16"


@pytest.mark.parametrize("args,ext,subtype", [
    (["--format", "flac", "--wav-subtype", "int24"], "flac", "PCM_24"),
    (["--format", "ogg"], "ogg", "VORBIS"),
    (["--wav-subtype", "float32", "--clip-mode", "none"], "wav", "FLOAT"),
    (["--format", "mp3"], "mp3", "MPEG_LAYER_III"),
])
def test_output_formats(model_dir, tmp_path, args, ext, subtype):
    if ext == "mp3" and "MP3" not in sf.available_formats():
        pytest.skip("this libsndfile cannot write mp3")
    song = _write(tmp_path / "song.wav", 1.2, 44100, 2)
    assert main(["separate", song, "-m", model_dir, "-o", str(tmp_path / "o"),
                 "--targets", "vocals", *args]) == 0
    written = sorted(os.listdir(tmp_path / "o" / "song"))
    assert written == [f"vocals.{ext}"]
    info = sf.info(str(tmp_path / "o" / "song" / f"vocals.{ext}"))
    assert info.subtype == subtype and info.samplerate == 44100 and info.channels == 2


def test_bad_inputs_one_line_each_others_still_done(model_dir, tmp_path, capsys):
    good = _write(tmp_path / "good.wav", 1.0, 44100, 2)
    (tmp_path / "garbage.wav").write_bytes(os.urandom(3000))
    (tmp_path / "empty.wav").write_bytes(b"")
    sf.write(str(tmp_path / "zero.wav"), np.zeros((0, 2)), 44100)
    (tmp_path / "notes.txt").write_text("not audio")
    (tmp_path / "nothing").mkdir()
    (tmp_path / "nothing" / "readme.md").write_text("no audio here")
    bad = ["missing.wav", "garbage.wav", "empty.wav", "zero.wav", "notes.txt", "nothing"]
    out = tmp_path / "out"
    status = main(["separate", str(tmp_path / "missing.wav"), str(tmp_path / "garbage.wav"),
                   good, str(tmp_path / "empty.wav"), str(tmp_path / "zero.wav"),
                   str(tmp_path / "notes.txt"), str(tmp_path / "nothing"),
                   "-m", model_dir, "-o", str(out)])
    assert status != 0
    captured = capsys.readouterr()
    errors = _error_lines(captured.err)
    assert len(errors) == len(bad), captured.err
    for name in bad:
        assert sum(name in line for line in errors) == 1, (name, errors)
    assert sorted(os.listdir(out)) == ["good"]
    assert sorted(os.listdir(out / "good")) == ["drums.wav", "vocals.wav"]
    assert "1 separated" in captured.out and f"{len(bad)} failed" in captured.out


def test_unwritable_output_folder(model_dir, tmp_path, capsys):
    song = _write(tmp_path / "song.wav", 0.5, 44100, 2)
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    assert main(["separate", song, "-m", model_dir, "-o", str(blocker / "out")]) == 1
    errors = _error_lines(capsys.readouterr().err)
    assert len(errors) == 1 and "out" in errors[0] and "folder" in errors[0], errors


def test_no_overwrite_then_overwrite_atomically(model_dir, tmp_path, capsys, monkeypatch):
    song = _write(tmp_path / "song.wav", 1.0, 44100, 2)
    out = tmp_path / "out"
    cli = ["separate", song, "-m", model_dir, "-o", str(out), "--targets", "vocals"]
    assert main(cli + ["--duration", "0.5"]) == 0
    target = out / "song" / "vocals.wav"
    before = target.read_bytes()
    capsys.readouterr()
    assert main(cli) == 0  # exists: skipped with one line, not an error
    captured = capsys.readouterr()
    skipped = [line for line in captured.err.splitlines() if "skipped" in line]
    assert len(skipped) == 1 and "vocals.wav" in skipped[0] and "--overwrite" in skipped[0]
    assert "1 skipped" in captured.out and target.read_bytes() == before
    # A write that dies half way (after its first block) leaves the old file
    # and no temporary file.
    import bsrnn_tf.audio
    blocks = []
    real_write = sf.SoundFile.write

    def dying_write(self, data):
        if blocks:
            raise RuntimeError("disk full")
        blocks.append(len(data))
        return real_write(self, data)

    monkeypatch.setattr(bsrnn_tf.audio, "WRITE_BLOCK", 1000)
    monkeypatch.setattr(bsrnn_tf.audio.sf.SoundFile, "write", dying_write)
    assert main(cli + ["--overwrite"]) == 1 and blocks == [1000]
    assert len(_error_lines(capsys.readouterr().err)) == 1
    assert target.read_bytes() == before and os.listdir(out / "song") == ["vocals.wav"]
    monkeypatch.undo()
    assert main(cli + ["--overwrite"]) == 0
    assert sf.info(str(target)).frames == 44100 and os.listdir(out / "song") == ["vocals.wav"]


def test_two_stems_sum_to_the_input(model_dir, tmp_path):
    song = _write(tmp_path / "song.wav", 1.5, 48000, 2, "FLOAT")
    out = tmp_path / "out"
    assert main(["separate", song, "-m", model_dir, "-o", str(out), "--two-stems", "drums",
                 "--wav-subtype", "float32", "--clip-mode", "none"]) == 0
    assert sorted(os.listdir(out / "song")) == ["drums.wav", "no_drums.wav"]
    drums, rate = load_audio(str(out / "song" / "drums.wav"))
    rest, _ = load_audio(str(out / "song" / "no_drums.wav"))
    assert rate == 48000
    np.testing.assert_allclose(drums + rest, load_audio(song)[0], atol=1e-6)


def test_filename_layouts_and_folders(model_dir, tmp_path, capsys):
    (tmp_path / "album" / "cd2").mkdir(parents=True)
    _write(tmp_path / "album" / "one.wav", 0.5, 44100, 2)
    _write(tmp_path / "album" / "cd2" / "two.flac", 0.5, 22050, 1)
    out = tmp_path / "out"
    assert main(["separate", str(tmp_path / "album"), "-m", model_dir, "-o", str(out),
                 "--filename", "{target}/{track}.{trackext}.{ext}"]) == 0
    found = sorted(os.path.relpath(os.path.join(d, f), out) for d, _, files in os.walk(out)
                   for f in files)
    assert found == ["drums/cd2/two.flac.wav", "drums/one.wav.wav",
                     "vocals/cd2/two.flac.wav", "vocals/one.wav.wav"]
    flat = tmp_path / "flat"
    assert main(["separate", str(tmp_path / "album" / "one.wav"), "-m", model_dir, "-o",
                 str(flat), "--filename", "{track}_{stem}.{ext}", "--format", "flac"]) == 0
    assert sorted(os.listdir(flat)) == ["one_drums.flac", "one_vocals.flac"]
    capsys.readouterr()
    for bad in ["{track}/{foo}.{ext}", "{track}.{ext}", "{track}/{target"]:
        assert main(["separate", str(tmp_path / "album"), "-m", model_dir, "-o",
                     str(tmp_path / "bad"), "--filename", bad]) == 2
        assert len(_error_lines(capsys.readouterr().err)) == 1
    assert not (tmp_path / "bad").exists()


def test_same_track_name_twice_is_not_overwritten(model_dir, tmp_path, capsys):
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    a = _write(tmp_path / "x" / "song.wav", 0.5, 44100, 2)
    b = _write(tmp_path / "y" / "song.wav", 0.5, 44100, 2, seed=1)
    assert main(["separate", a, b, "-m", model_dir, "-o", str(tmp_path / "out"),
                 "--overwrite"]) == 1
    errors = _error_lines(capsys.readouterr().err)
    assert len(errors) == 1 and "already written" in errors[0]


@pytest.mark.parametrize("args,words", [
    (["--targets", "bass"], "no target 'bass'"),
    (["--two-stems", "piano"], "no target 'piano'"),
    (["--overlap", "1.5"], "--overlap"),
    (["--format", "flac", "--wav-subtype", "float32"], "float32"),
    (["--segment", "0.001"], "shorter than"),
    (["--threads", "0"], "--threads"),
    (["--filename", "../../x_{target}.{ext}"], "leads outside the output folder"),
    (["--filename", "/tmp/x_{target}.{ext}"], "leads outside the output folder"),
    (["--filename", "{track}/../../{target}.{ext}"], "leads outside the output folder"),
])
def test_bad_options_one_line(model_dir, tmp_path, capsys, args, words):
    song = _write(tmp_path / "song.wav", 0.5, 44100, 2)
    assert main(["separate", song, "-m", model_dir, "-o", str(tmp_path / "o"), *args]) == 2
    errors = _error_lines(capsys.readouterr().err)
    assert len(errors) == 1 and words in errors[0], errors
    assert not (tmp_path / "o").exists()


def test_bad_model_path_one_line(tmp_path, capsys):
    song = _write(tmp_path / "song.wav", 0.5, 44100, 2)
    assert main(["separate", song, "-m", str(tmp_path / "nope"), "-o", str(tmp_path)]) == 2
    errors = _error_lines(capsys.readouterr().err)
    assert len(errors) == 1 and "nope" in errors[0]


def test_without_m_the_default_model_is_used_or_named(model_dir, tmp_path, capsys,
                                                     monkeypatch):
    from bsrnn_tf.inference import pretrained
    song = _write(tmp_path / "song.wav", 0.5, 44100, 2)
    monkeypatch.setenv("BSRNN_TF_MODEL", model_dir)
    assert main(["separate", song, "-o", str(tmp_path / "out")]) == 0
    assert sorted(os.listdir(tmp_path / "out" / "song")) == sorted(f"{t}.wav" for t in TARGETS)
    monkeypatch.delenv("BSRNN_TF_MODEL")
    monkeypatch.setattr(pretrained, "SHIPPED_DIR", str(tmp_path / "no-model-here"))
    assert main(["separate", song, "-o", str(tmp_path / "out2")]) == 2
    errors = _error_lines(capsys.readouterr().err)
    assert len(errors) == 1 and "no-model-here" in errors[0] and "-m MODEL" in errors[0]
    assert not os.path.exists(tmp_path / "out2")


def test_segment_option_changes_chunking_not_shapes(model_dir, tmp_path):
    song = _write(tmp_path / "song.wav", 2.0, 44100, 1)
    assert main(["separate", song, "-m", model_dir, "-o", str(tmp_path / "o"), "--segment",
                 "0.5", "--overlap", "0.5", "--offset", "0.25", "--duration", "1.0"]) == 0
    info = sf.info(str(tmp_path / "o" / "song" / "vocals.wav"))
    assert (info.frames, info.channels) == (44100, 1)


def test_package_exposes_separate_as_a_callable_module():
    import bsrnn_tf.inference.separate as module
    assert callable(module) and module.separate is separate


def test_separate_is_reachable_from_the_package_alone():
    code = ("import bsrnn_tf, numpy as np\n"
            "print(callable(bsrnn_tf.separate), bsrnn_tf.separate.__name__)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "True bsrnn_tf.inference.separate" in done.stdout


def test_xla_backend_matches_and_pads_the_last_call(model_dir, tmp_path):
    from bsrnn_tf.inference.backends import load_backend

    plain = load_backend(model_dir, max_batch=2, segment_samples=8192)
    xla = load_backend(model_dir, max_batch=2, segment_samples=8192, jit_compile=True)
    chunks = (0.2 * np.random.default_rng(3).standard_normal((3, 8192, 2))).astype(np.float32)
    compiled, seen = xla._fn, []
    xla._fn = lambda x: seen.append(len(x)) or compiled(x)
    want, got = plain(chunks), xla(chunks)  # 3 chunks: calls of 2 and of 1 padded to 2
    assert seen == [2, 2]  # one compiled shape for the whole input
    for target in want:
        assert got[target].shape == chunks.shape
        np.testing.assert_allclose(got[target], want[target], atol=1e-5)
    song = _write(tmp_path / "song.wav", 0.5, 44100, 2)
    assert main(["separate", song, "-m", model_dir, "-o", str(tmp_path / "o"), "--xla",
                 "--quiet", "--segment", str(8192 / 44100), "--batch-size", "2"]) == 0
    assert os.path.exists(tmp_path / "o" / "song" / "vocals.wav")


# -- issue 18: numbers, MUSDB names, damaged files, channels, interruptions ----------

@pytest.mark.parametrize("args,words", [
    (["--segment", "inf"], "--segment must be a number, got inf"),
    (["--duration", "inf"], "--duration must be a number, got inf"),
    (["--offset", "nan"], "--offset must be a number, got nan"),
    (["--overlap", "nan"], "--overlap"),
])
def test_non_finite_numbers_one_line(model_dir, tmp_path, capsys, args, words):
    song = _write(tmp_path / "song.wav", 0.5, 44100, 2)
    assert main(["separate", song, "-m", model_dir, "-o", str(tmp_path / "o"), *args]) == 2
    errors = _error_lines(capsys.readouterr().err)
    assert len(errors) == 1 and words in errors[0], errors
    assert not (tmp_path / "o").exists()


def test_api_rejects_non_finite_offset_and_duration(identity_model):
    from bsrnn_tf.inference.separate import SeparationError
    for kwargs in ({"offset": float("nan")}, {"duration": float("inf")}):
        with pytest.raises(SeparationError, match="finite"):
            separate(_music(0.5, 44100, 2), identity_model, **kwargs)


def test_musdb_mixture_files_are_named_after_their_folder(model_dir, tmp_path, capsys):
    songs = tmp_path / "test"
    for name in ("Song A", "Song B"):
        (songs / name).mkdir(parents=True)
        _write(songs / name / "mixture.wav", 0.5, 44100, 2)
    out = tmp_path / "o"
    assert main(["separate", str(songs), "-m", model_dir, "-o", str(out), "--quiet"]) == 0
    assert sorted(os.listdir(out)) == ["Song A", "Song B"]
    out2 = tmp_path / "o2"
    files = [str(songs / n / "mixture.wav") for n in ("Song A", "Song B")]
    assert main(["separate", *files, "-m", model_dir, "-o", str(out2), "--quiet"]) == 0
    assert sorted(os.listdir(out2)) == ["Song A", "Song B"]
    assert not _error_lines(capsys.readouterr().err)


def test_truncated_wav_is_an_error_naming_it(model_dir, tmp_path, capsys):
    song = _write(tmp_path / "cut.wav", 1.0, 44100, 2)
    data = open(song, "rb").read()
    open(song, "wb").write(data[:len(data) // 2])
    assert main(["separate", song, "-m", model_dir, "-o", str(tmp_path / "o"), "--quiet"]) == 1
    errors = _error_lines(capsys.readouterr().err)
    assert len(errors) == 1 and "cut.wav: truncated WAV" in errors[0], errors
    assert not (tmp_path / "o" / "cut").exists()


def test_more_than_two_channels_warns_and_gives_stereo(model_dir, tmp_path, capsys):
    song = _write(tmp_path / "six.wav", 0.5, 44100, 6)
    assert main(["separate", song, "-m", model_dir, "-o", str(tmp_path / "o"), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "six.wav has 6 channels; the model separates the first two" in err
    assert sf.info(str(tmp_path / "o" / "six" / "drums.wav")).channels == 2


def test_corrupt_tflite_and_truncated_keras_one_line(model_dir, tmp_path, capsys):
    song = _write(tmp_path / "song.wav", 0.5, 44100, 2)
    broken = tmp_path / "t.tflite"
    broken.write_bytes(b"\x18\x00\x00\x00TFL3" + b"\x00" * 8)  # root table past the end
    truncated = tmp_path / "m.keras"
    data = open(os.path.join(model_dir, "model.keras"), "rb").read()
    truncated.write_bytes(data[:len(data) // 2])
    for model, words in [(broken, "t.tflite: truncated or corrupt TFLite file"),
                         (truncated, "m.keras: truncated or corrupt .keras file")]:
        assert main(["separate", song, "-m", str(model), "-o", str(tmp_path / "o")]) == 2
        errors = _error_lines(capsys.readouterr().err)
        assert len(errors) == 1 and words in errors[0], errors


def test_ctrl_c_names_what_was_finished(model_dir, tmp_path, capsys, monkeypatch):
    from bsrnn_tf.inference import separate_cli as module
    songs = [_write(tmp_path / f"s{i}.wav", 0.5, 44100, 2) for i in range(3)]
    real = module.SeparateJob.run_one

    def run_one(self, path, track):
        if path == songs[1]:
            raise KeyboardInterrupt
        return real(self, path, track)

    monkeypatch.setattr(module.SeparateJob, "run_one", run_one)
    assert main(["separate", *songs, "-m", model_dir, "-o", str(tmp_path / "o"), "--quiet"]) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "interrupted: 1 of 3 inputs separated" in err
    assert "s0.wav" in err and "Traceback" not in err


# ------------------------------------------------------- streaming (issue 26)

def _whole_song_reference(audio, rate, backend, targets, overlap=0.25):
    """The whole-song path before streaming: resample the song, one scale,
    overlap-add over the whole array, resample back, fit the length."""
    from bsrnn_tf.audio import resample, to_stereo
    from bsrnn_tf.inference.overlap_add import overlap_add
    from bsrnn_tf.preprocess import song_scale

    model_input = resample(to_stereo(audio), rate, backend.sample_rate)
    scale = np.float32(song_scale(model_input))
    out = overlap_add(model_input, lambda b: {t: np.asarray(v) / scale for t, v in
                                              backend(b * scale).items() if t in targets},
                      backend.segment_samples, overlap, chunks_per_call=backend.max_batch)
    result = {}
    for t in targets:
        x = resample(out[t], backend.sample_rate, rate)[:audio.shape[0]]
        x = np.pad(x, ((0, audio.shape[0] - len(x)), (0, 0)))
        result[t] = x.mean(axis=1, keepdims=True) if audio.shape[1] == 1 else x
    return result


@pytest.mark.parametrize("rate,channels", [(44100, 2), (48000, 1), (22050, 2)])
def test_streamed_stems_equal_the_whole_song_path(model_dir, tmp_path, rate, channels):
    from bsrnn_tf.inference.separate import open_model
    song = _write(tmp_path / "song.wav", 7.3, rate, channels, "FLOAT")
    out = tmp_path / "out"
    assert main(["separate", song, "-m", model_dir, "-o", str(out), "--wav-subtype", "float32",
                 "--clip-mode", "none", "--quiet"]) == 0
    audio, _ = load_audio(song)
    reference = _whole_song_reference(audio, rate, open_model(model_dir), TARGETS)
    for target in TARGETS:
        written, written_rate = load_audio(str(out / "song" / f"{target}.wav"))
        assert written_rate == rate and written.shape == audio.shape
        np.testing.assert_allclose(written, reference[target], atol=2e-6, rtol=0)


def test_separate_reads_and_writes_in_blocks_not_the_whole_song(model_dir, tmp_path,
                                                                monkeypatch):
    import bsrnn_tf.audio as audio_module
    import bsrnn_tf.inference.separate as separate_module
    song = _write(tmp_path / "long.wav", 12.0, 48000, 2)
    monkeypatch.setattr(separate_module, "READ_BLOCK", 8192)
    reads, writes = [], []
    real_read, real_write = audio_module.AudioReader.read, audio_module.StemWriter.write
    monkeypatch.setattr(audio_module.AudioReader, "read",
                        lambda self, a, b: reads.append(b - a) or real_read(self, a, b))
    monkeypatch.setattr(audio_module.StemWriter, "write",
                        lambda self, block: writes.append(len(block)) or real_write(self, block))
    assert main(["separate", song, "-m", model_dir, "-o", str(tmp_path / "o"), "--quiet",
                 "--two-stems", "vocals"]) == 0
    # The model's segment is 1 s, 4 chunks per call: no block near the song's 12 s.
    assert max(reads) <= 48000 * 4 and max(writes) <= 48000 * 4, (max(reads), max(writes))
    assert sum(writes) == 2 * 12 * 48000
    assert sorted(os.listdir(tmp_path / "o" / "long")) == ["no_vocals.wav", "vocals.wav"]


@pytest.mark.parametrize("segment", ["1e6", "1000"])
def test_a_segment_beyond_memory_is_one_line_naming_one_that_fits(model_dir, tmp_path, capsys,
                                                                   monkeypatch, segment):
    import bsrnn_tf.inference.separate as separate_module
    monkeypatch.setattr(separate_module, "available_memory_bytes", lambda: 2 * 10 ** 9)
    song = _write(tmp_path / "song.wav", 0.5, 44100, 2)
    assert main(["separate", song, "-m", model_dir, "-o", str(tmp_path / "o"),
                 "--segment", segment]) == 2
    err = capsys.readouterr().err
    errors = _error_lines(err)
    assert len(errors) == 1 and "Traceback" not in err and "use --segment" in errors[0], err
    largest = float(errors[0].split("use --segment ")[1].split()[0])
    assert main(["separate", song, "-m", model_dir, "-o", str(tmp_path / "o"), "--quiet",
                 "--segment", str(largest)]) == 0


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_an_input_file_is_never_written_over(model_dir, tmp_path, capsys, overwrite):
    """``separate DIR -o DIR`` on a MUSDB-like folder: mixture.wav's outputs
    would be the ground-truth stems beside it."""
    song = tmp_path / "musdb" / "Song A"
    song.mkdir(parents=True)
    _write(song / "mixture.wav", 0.5, 44100, 2)
    truth = _write(song / "vocals.wav", 0.5, 44100, 2, seed=1)
    before = open(truth, "rb").read()
    root = str(tmp_path / "musdb")
    code = main(["separate", root, "-o", root, "-m", model_dir, "--quiet", "--targets", "vocals",
                 *overwrite])
    assert code == 1 and open(truth, "rb").read() == before
    errors = _error_lines(capsys.readouterr().err)
    assert len(errors) == 1 and "mixture.wav: not separated" in errors[0], errors
    assert "is the input" in errors[0] and "vocals.wav" in errors[0]
    # The input itself, named through a symbolic link to its folder.
    link = tmp_path / "link"
    link.symlink_to(song)
    assert main(["separate", truth, "-o", str(tmp_path), "--filename",
                 "link/{target}.{ext}", "-m", model_dir, "--quiet", "--targets", "vocals",
                 "--overwrite"]) == 1
    assert open(truth, "rb").read() == before
    assert len(_error_lines(capsys.readouterr().err)) == 1


# ------------------------------------------------ crafted inputs (issue 26)

def _wav_claiming_rate(path, rate, frames=1000):
    import struct
    data = np.zeros((frames, 2), "<i2").tobytes()
    fmt = struct.pack("<HHIIHH", 1, 2, rate, (rate * 4) & 0xFFFFFFFF, 4, 16)
    body = (b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data"
            + struct.pack("<I", len(data)) + data)
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return str(path)


def test_a_crafted_sample_rate_is_one_line_and_the_batch_goes_on(model_dir, tmp_path, capsys):
    crafted = _wav_claiming_rate(tmp_path / "a_crafted.wav", 2147483647)
    good = _write(tmp_path / "b_good.wav", 0.5, 44100, 2)
    assert main(["separate", crafted, good, "-m", model_dir, "-o", str(tmp_path / "o"),
                 "--quiet"]) == 1
    captured = capsys.readouterr()
    errors = _error_lines(captured.err)
    assert len(errors) == 1 and "a_crafted.wav" in errors[0] and "2147483647 Hz" in errors[0]
    assert "Traceback" not in captured.err and "1 separated" in captured.out
    assert sorted(os.listdir(tmp_path / "o" / "b_good")) == ["drums.wav", "vocals.wav"]


def test_an_odd_rate_ratio_too_large_to_resample_is_an_error_not_a_memory_error():
    from bsrnn_tf.audio import AudioError, StreamResampler, resample
    with pytest.raises(AudioError, match="cannot resample 700001 Hz to 44100 Hz"):
        resample(np.zeros((10, 2), np.float32), 700001, 44100)
    with pytest.raises(AudioError, match="filter of"):
        StreamResampler(700001, 44100, 10)


def test_tflite_with_a_valid_header_and_a_garbage_body_is_one_line(model_dir, tmp_path,
                                                                    capsys):
    song = _write(tmp_path / "song.wav", 0.5, 44100, 2)
    garbage = tmp_path / "g.tflite"  # this body makes flatbuffers raise TypeError
    body = np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8).tobytes()
    garbage.write_bytes(b"\x1c\x00\x00\x00TFL3" + body)
    assert main(["separate", song, "-m", str(garbage), "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    errors = _error_lines(err)
    assert len(errors) == 1 and "g.tflite: truncated or corrupt TFLite file" in errors[0], err
    assert "Traceback" not in err


@pytest.mark.parametrize("field,value", [("sample_rate", "44100"), ("targets", "vocals"),
                                         ("segment_samples", -1)])
def test_export_json_with_a_wrong_type_is_one_line(tmp_path, capsys, field, value):
    import json
    version = tmp_path / "served" / "1"
    version.mkdir(parents=True)
    (version / "saved_model.pb").write_bytes(b"")
    model = {"sample_rate": 44100, "segment_samples": 4096, "channels": 2,
             "targets": ["vocals"], "n_fft": 512, "hop_length": 128, field: value}
    (version / "export.json").write_text(json.dumps({"format": "savedmodel", "model": model}))
    song = _write(tmp_path / "song.wav", 0.5, 44100, 2)
    assert main(["separate", song, "-m", str(tmp_path / "served"), "-o",
                 str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    errors = _error_lines(err)
    assert len(errors) == 1 and "export.json" in errors[0] and field in errors[0], err


def test_ctrl_c_while_stems_are_written_names_those_written(model_dir, tmp_path, capsys,
                                                           monkeypatch):
    import bsrnn_tf.audio as audio_module
    song = _write(tmp_path / "song.wav", 1.0, 44100, 2)
    real_finish, calls = audio_module.StemWriter.finish, []

    def finish(self):
        calls.append(self.path)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_finish(self)

    monkeypatch.setattr(audio_module.StemWriter, "finish", finish)
    out = tmp_path / "o"
    assert main(["separate", song, "-m", model_dir, "-o", str(out), "--quiet"]) == 130
    err = capsys.readouterr().err
    drums, vocals = out / "song" / "drums.wav", out / "song" / "vocals.wav"
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert f"of {song}, {drums} written, {vocals} not" in err, err
    assert os.listdir(out / "song") == ["drums.wav"]  # no temporary left


def test_a_file_size_limit_is_named(model_dir, tmp_path):
    import resource
    song = _write(tmp_path / "song.wav", 2.0, 44100, 2)

    def limit_file_size():
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))

    out = subprocess.run([sys.executable, "-m", "bsrnn_tf.cli", "separate", song, "-m", model_dir,
                          "-o", str(tmp_path / "o"), "--quiet"], capture_output=True, text=True,
                         timeout=300, preexec_fn=limit_file_size,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    errors = _error_lines(out.stderr)
    assert out.returncode == 1 and len(errors) == 1, out.stderr[-2000:]
    assert "file too large" in errors[0] and "ulimit -f" in errors[0] and "0.1 MB" in errors[0]
    assert "Traceback" not in out.stderr
