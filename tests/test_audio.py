"""Audio I/O round trips, bad files, atomic writes, channels and resampling."""

import os

import numpy as np
import pytest
import soundfile as sf

from bsrnn_tf.audio import (AudioError, from_stereo, list_audio_files, load_audio, resample,
                            save_audio, to_stereo)


def _tone(seconds=1.0, rate=44100, channels=2, freq=440.0):
    t = np.arange(int(seconds * rate)) / rate
    mono = 0.5 * np.sin(2 * np.pi * freq * t)
    return np.stack([mono * (1 - 0.2 * c) for c in range(channels)], axis=1).astype(np.float32)


def _sdr(a, b):
    return 10 * np.log10(np.sum(a ** 2) / np.sum((a - b) ** 2))


@pytest.mark.parametrize("name,subtype,tol", [("a.wav", "int16", 1 / 32767),
                                              ("a.wav", "int24", 1e-6),
                                              ("a.wav", "float32", 0.0),
                                              ("a.flac", None, 1 / 32767)])
def test_lossless_round_trips(tmp_path, name, subtype, tol):
    audio = _tone()
    path = save_audio(str(tmp_path / name), audio, 44100, subtype=subtype)
    back, rate = load_audio(path)
    assert rate == 44100 and back.shape == audio.shape
    np.testing.assert_allclose(back, audio, atol=tol + 1e-7)


@pytest.mark.parametrize("name", ["a.ogg", "a.mp3"])
def test_lossy_round_trips(tmp_path, name):
    if name.endswith(".mp3") and "MP3" not in sf.available_formats():
        pytest.skip("this libsndfile has no mp3")
    audio = _tone(2.0)
    back, rate = load_audio(save_audio(str(tmp_path / name), audio, 44100))
    assert rate == 44100
    n = min(len(back), len(audio))
    # Codecs delay the signal a little: best SDR over small shifts.
    best = max(_sdr(audio[2000:n - 4000], back[2000 + d:n - 4000 + d]) for d in range(0, 3000, 1))
    assert best > 15


def test_offset_and_duration(tmp_path):
    audio = np.arange(44100 * 2, dtype=np.float32)[:, None].repeat(2, 1) / 1e5
    path = save_audio(str(tmp_path / "r.wav"), audio, 44100, subtype="float32")
    part, _ = load_audio(path, offset=0.5, duration=0.25)
    np.testing.assert_array_equal(part, audio[22050:22050 + 11025])


def test_bad_inputs_name_the_file(tmp_path):
    cases = {}
    cases["missing"] = str(tmp_path / "missing.wav")
    (tmp_path / "dir.wav").mkdir()
    cases["is a directory"] = str(tmp_path / "dir.wav")
    (tmp_path / "empty.wav").write_bytes(b"")
    cases["empty"] = str(tmp_path / "empty.wav")
    (tmp_path / "garbage.wav").write_bytes(os.urandom(2000))
    cases["cannot read"] = str(tmp_path / "garbage.wav")
    (tmp_path / "notes.txt").write_text("hello")
    cases["unsupported"] = str(tmp_path / "notes.txt")
    sf.write(str(tmp_path / "zero.wav"), np.zeros((0, 2)), 44100)
    cases["zero-length"] = str(tmp_path / "zero.wav")
    for message, path in cases.items():
        with pytest.raises(AudioError) as info:
            load_audio(path)
        text = str(info.value)
        assert os.path.basename(path) in text and len(text.splitlines()) == 1, text
        if message != "missing":
            assert message.split()[0] in text or message in text, text


def test_atomic_write_and_no_overwrite(tmp_path):
    path = str(tmp_path / "out" / "x.wav")
    save_audio(path, _tone(0.1), 44100)
    assert os.listdir(tmp_path / "out") == ["x.wav"]  # no temporary file left
    with pytest.raises(AudioError, match="already exists"):
        save_audio(path, _tone(0.1) * 0.5, 44100)
    assert np.abs(load_audio(path)[0]).max() > 0.45  # untouched
    save_audio(path, _tone(0.1) * 0.5, 44100, overwrite=True)
    assert np.abs(load_audio(path)[0]).max() < 0.3


def test_unwritable_output(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(AudioError, match="x.wav"):
        save_audio(str(tmp_path / "file" / "x.wav"), _tone(0.1), 44100)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(str(locked), os.W_OK):
            pytest.skip("running as a user who can write anywhere (root)")
        with pytest.raises(AudioError, match="not writable"):
            save_audio(str(locked / "x.wav"), _tone(0.1), 44100)
    finally:
        locked.chmod(0o700)


def test_clip_modes(tmp_path):
    loud = _tone(0.1) * 4
    out = load_audio(save_audio(str(tmp_path / "r.wav"), loud, 44100, subtype="float32"))[0]
    assert np.abs(out).max() == pytest.approx(1.0, abs=1e-6)
    out = load_audio(save_audio(str(tmp_path / "c.wav"), loud, 44100, subtype="float32",
                                clip_mode="clamp"))[0]
    assert np.abs(out).max() == 1.0 and np.mean(np.abs(out) == 1.0) > 0.1
    out = load_audio(save_audio(str(tmp_path / "n.wav"), loud, 44100, subtype="float32",
                                clip_mode="none"))[0]
    assert np.abs(out).max() > 1.9


@pytest.mark.parametrize("fmt", ["wav", "flac"])
def test_written_in_blocks_round_trip(tmp_path, monkeypatch, rng, fmt):
    """Files are written a block at a time; the rescale peak is the whole
    song's, wherever it lies, and every block lands in order."""
    import bsrnn_tf.audio as audio_module
    monkeypatch.setattr(audio_module, "WRITE_BLOCK", 1000)
    song = (rng.uniform(-0.5, 0.5, (4567, 2))).astype(np.float32)
    song[4000, 1] = -2.5  # the peak, in the fifth block
    subtype = "float32" if fmt == "wav" else "int24"
    out, rate = load_audio(save_audio(str(tmp_path / f"s.{fmt}"), song, 44100, subtype=subtype))
    assert rate == 44100 and out.shape == song.shape
    np.testing.assert_allclose(out, song / 2.5, atol=1e-6 if fmt == "wav" else 1e-6 + 2 ** -23)


def test_channels_and_resampling():
    mono = _tone(channels=1)
    stereo = to_stereo(mono)
    assert stereo.shape == (44100, 2) and np.array_equal(stereo[:, 0], stereo[:, 1])
    np.testing.assert_allclose(from_stereo(stereo, 1), mono)
    assert to_stereo(np.zeros((10, 6), np.float32)).shape == (10, 2)
    down = resample(_tone(freq=1000.0), 44100, 22050)
    assert down.shape == (22050, 2)
    spectrum = np.abs(np.fft.rfft(down[:, 0]))
    assert np.argmax(spectrum) * 22050 / len(down) == pytest.approx(1000.0, abs=2)
    up = resample(_tone(freq=1000.0), 44100, 48000)
    assert up.shape == (48000, 2)


def test_list_audio_files(tmp_path):
    for rel in ["b/x.wav", "a.flac", "c/d/e.ogg", "notes.txt", ".hidden.wav"]:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    found = [os.path.relpath(p, tmp_path) for p in list_audio_files(str(tmp_path))]
    assert found == ["a.flac", "b/x.wav", "c/d/e.ogg"]


def test_stale_temporary_files_of_dead_processes_are_removed(tmp_path):
    import subprocess
    from bsrnn_tf.audio import save_audio
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f".tmp{dead.pid}_out.wav"
    stale.write_bytes(b"half a file")
    alive = tmp_path / f".tmp{os.getppid()}_out.wav"  # another process still writing
    alive.write_bytes(b"in progress")
    save_audio(str(tmp_path / "out.wav"), np.zeros((100, 2), np.float32), 44100)
    assert not stale.exists() and alive.exists()
    assert (tmp_path / "out.wav").exists()


def test_full_disk_is_named(tmp_path):
    import subprocess
    from bsrnn_tf.audio import AudioError, save_audio
    disk = tmp_path / "small"
    disk.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs",
                                            str(disk)], capture_output=True).returncode:
        pytest.skip("needs root to mount a small tmpfs")
    try:
        with pytest.raises(AudioError, match="no space left on the device"):
            save_audio(str(disk / "big.wav"), np.zeros((441000, 2), np.float32), 44100)
        assert os.listdir(disk) == []
    finally:
        subprocess.run(["umount", str(disk)])


def test_write_failure_with_too_little_free_space_names_it(tmp_path, monkeypatch):
    """libsndfile reports a full disk as 'System error.' only."""
    import collections
    from bsrnn_tf import audio
    from bsrnn_tf.audio import AudioError, save_audio

    def fail(path, write):
        raise RuntimeError("System error.")

    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(audio, "atomic_save", fail)
    monkeypatch.setattr(audio.shutil, "disk_usage", lambda _: usage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(AudioError, match=r"out.wav: cannot write audio: no space left on the "
                                         r"device \(0.0 MB free"):
        save_audio(str(tmp_path / "out.wav"), np.zeros((44100, 2), np.float32), 44100)
