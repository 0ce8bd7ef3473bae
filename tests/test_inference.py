"""Overlap-add: exact reconstruction with identity, linearity, batching,
bounded memory, bad arguments."""

import numpy as np
import pytest

from bsrnn_tf.inference.overlap_add import chunk_starts, crossfade_window, overlap_add

SEGMENT = 1000


@pytest.mark.parametrize("length", [1, 7, 999, 1000, 1001, 2500, 10007])
@pytest.mark.parametrize("overlap", [0.0, 0.25, 0.5, 0.75])
@pytest.mark.parametrize("window", ["triangular", "hann", "rectangular"])
def test_identity_reconstructs_exactly(rng, length, overlap, window):
    audio = rng.standard_normal((length, 2)).astype(np.float32)
    out = overlap_add(audio, lambda batch: {"x": batch}, SEGMENT, overlap, window)["x"]
    assert out.shape == audio.shape and out.dtype == np.float32
    np.testing.assert_allclose(out, audio, rtol=1e-6, atol=1e-6)


def test_linear_fn_and_several_targets(rng):
    audio = rng.standard_normal((5432, 1)).astype(np.float32)
    out = overlap_add(audio, lambda b: {"half": 0.5 * b, "neg": -b}, SEGMENT, 0.25)
    np.testing.assert_allclose(out["half"], 0.5 * audio, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(out["neg"], -audio, rtol=1e-6, atol=1e-7)


def test_chunks_per_call_gives_same_result(rng):
    audio = rng.standard_normal((12345, 2)).astype(np.float32)

    def fn(batch):  # depends on the position inside the chunk: crossfade matters
        return {"y": batch * np.linspace(0.5, 1.5, SEGMENT, dtype=np.float32)[None, :, None]}

    one = overlap_add(audio, fn, SEGMENT, 0.25, chunks_per_call=1)["y"]
    many = overlap_add(audio, fn, SEGMENT, 0.25, chunks_per_call=4)["y"]
    np.testing.assert_allclose(one, many, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("overlap", [0.0, 0.5, 0.75, 0.9])
@pytest.mark.parametrize("chunks_per_call", [1, 2, 5])
@pytest.mark.parametrize("length", [999, 4321])
def test_matches_explicit_weighted_mean(rng, overlap, chunks_per_call, length):
    """Every sample is the crossfade-weighted mean of the chunk estimates
    covering it, computed here with whole-song sums (overlap_add divides a
    stretch at a time)."""
    audio = rng.standard_normal((length, 2)).astype(np.float32)
    calls = []

    def fn(batch):  # differs per chunk and per position in the chunk
        calls.append(batch.shape[0])
        offset = np.arange(sum(calls) - batch.shape[0], sum(calls), dtype=np.float32)
        return {"y": np.sin(batch) + offset[:, None, None]
                + np.linspace(0, 1, SEGMENT, dtype=np.float32)[None, :, None]}

    out = overlap_add(audio, fn, SEGMENT, overlap, chunks_per_call=chunks_per_call)["y"]
    hop = max(1, int(round(SEGMENT * (1 - overlap))))
    # The triangular window from its formula: 1 - |2 (n + 1/2) / SEGMENT - 1|.
    weights = 1.0 - np.abs(2.0 * (np.arange(SEGMENT) + 0.5) / SEGMENT - 1.0)
    numerator = np.zeros((length, 2))
    denominator = np.zeros(length)
    for index, start in enumerate(range(0, max(1, length - SEGMENT + hop), hop)):
        stop = min(start + SEGMENT, length)
        chunk = np.zeros((SEGMENT, 2))
        chunk[:stop - start] = audio[start:stop]
        estimate = np.sin(chunk) + index + np.linspace(0, 1, SEGMENT)[:, None]
        numerator[start:stop] += (estimate * weights[:, None])[:stop - start]
        denominator[start:stop] += weights[:stop - start]
    np.testing.assert_allclose(out, numerator / denominator[:, None], rtol=1e-5, atol=1e-5)


def test_crossfade_blends_neighbouring_chunks():
    """With a fn that returns the chunk index, the output between two chunks
    is a weighted mean that moves monotonically from one to the next."""
    audio = np.zeros((3000, 1), np.float32)
    calls = []

    def fn(batch):
        calls.append(len(calls))
        return {"i": np.full_like(batch, float(len(calls) - 1))}

    out = overlap_add(audio, fn, SEGMENT, 0.5)["i"][:, 0]
    assert out[0] == 0 and out[-1] == len(calls) - 1
    assert np.all(np.diff(out) >= -1e-6)


def test_memory_is_bounded_by_chunks_per_call(rng):
    audio = rng.standard_normal((200_000, 2)).astype(np.float32)
    seen = []

    def fn(batch):
        seen.append(batch.shape[0])
        return {"x": batch}

    overlap_add(audio, fn, 4096, 0.25, chunks_per_call=3)
    assert max(seen) <= 3
    assert sum(seen) == len(chunk_starts(200_000, 4096, 3072))


def test_progress_reports_seconds():
    reports = []
    overlap_add(np.zeros((44100 * 2, 2), np.float32), lambda b: {"x": b}, 44100, 0.5,
                progress=lambda done, total: reports.append((done, total)))
    assert reports[-1] == (2.0, 2.0)
    assert all(a[0] <= b[0] for a, b in zip(reports, reports[1:]))


def test_window_values_by_hand():
    # Centres of 4 samples at 1/8, 3/8, 5/8, 7/8 of the chunk.
    np.testing.assert_allclose(crossfade_window(4, "triangular"), [0.25, 0.75, 0.75, 0.25])
    c = np.cos(np.pi / 4)  # hann: 0.5 - 0.5 cos(2 pi x)
    np.testing.assert_allclose(crossfade_window(4, "hann"),
                               [0.5 - 0.5 * c, 0.5 + 0.5 * c, 0.5 + 0.5 * c, 0.5 - 0.5 * c])
    np.testing.assert_array_equal(crossfade_window(3, "rectangular"), [1, 1, 1])


def test_windows_are_strictly_positive():
    for kind in ("triangular", "hann", "rectangular"):
        w = crossfade_window(17, kind)
        assert np.all(w > 0) and w.shape == (17,)


@pytest.mark.parametrize("kwargs,message", [
    ({"overlap": 1.0}, "overlap"),
    ({"overlap": -0.1}, "overlap"),
    ({"window": "boxcar"}, "unknown window"),
    ({"chunks_per_call": 0}, "chunks_per_call"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        overlap_add(np.zeros((10, 2), np.float32), lambda b: {"x": b}, 4, **kwargs)


def test_wrong_output_shape_is_reported():
    with pytest.raises(ValueError, match="expected"):
        overlap_add(np.zeros((10, 2), np.float32), lambda b: {"x": b[:, :2]}, 4)
