"""Band schemas: widths against an independent computation from the Hz
definitions, the universal schema against the paper's algorithm, and
coverage properties for random schemas."""

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bsrnn_tf import bands

SR, NFFT = 44100, 2048


def _widths_by_bin_centres(edges, sr=SR, n_fft=NFFT):
    """Assigns each bin to the band whose edges bracket its centre frequency
    (a bin belongs to the band after every edge at or below its centre)."""
    centres = np.arange(n_fft // 2 + 1) * sr / n_fft
    band_of_bin = np.searchsorted(np.asarray(edges, float), centres, side="right")
    counts = np.bincount(band_of_bin, minlength=len(edges) + 1)
    return [int(c) for c in counts if c > 0]


def _edges(*segments):
    out = []
    for start, stop, step in segments:
        out.extend(np.arange(start + step, stop + step / 2, step).tolist())
    return out


V7 = _edges((0, 1000, 100), (1000, 4000, 250), (4000, 8000, 500), (8000, 16000, 1000),
            (16000, 20000, 2000))
BASS = _edges((0, 500, 50), (500, 1000, 100), (1000, 4000, 500), (4000, 8000, 1000),
              (8000, 16000, 2000))
DRUMS = _edges((0, 1000, 50), (1000, 2000, 100), (2000, 4000, 250), (4000, 8000, 500),
               (8000, 16000, 1000))


@pytest.mark.parametrize("name,edges,count", [("v7", V7, 41), ("bass", BASS, 30),
                                              ("drums", DRUMS, 55)])
def test_builtin_widths_match_hz_definition(name, edges, count):
    ranges = bands.band_ranges(name, SR, NFFT)
    widths = [b - a for a, b in ranges]
    assert widths == _widths_by_bin_centres(edges)
    assert len(ranges) == count
    assert sum(widths) == NFFT // 2 + 1


def test_v7_first_bands_are_100_hz():
    ranges = bands.band_ranges("v7")
    # bins 0..4 have centres 0, 21.5, 43.1, 64.6, 86.1 Hz: all below 100 Hz.
    assert ranges[0] == (0, 5)
    assert ranges[-1][1] == 1025


def test_v7_authors_has_the_authors_constant_bin_widths():
    # Luo & Yu's code: floor(100 / 22050 * 1025) = floor(4.65) = 4 bins per
    # 100 Hz band, floor(11.62) = 11 per 250 Hz, 23 per 500 Hz, 46 per 1 kHz,
    # 92 per 2 kHz; 10 + 12 + 8 + 8 + 2 bands take 908 bins, the last 117.
    widths = [b - a for a, b in bands.band_ranges("v7-authors", SR, NFFT)]
    assert widths == [4] * 10 + [11] * 12 + [23] * 8 + [46] * 8 + [92] * 2 + [117]
    # n_fft 512: 257 bins; floor(100 / 22050 * 257) = 1, then 2, 5, 11, 23; last 49.
    widths = [b - a for a, b in bands.band_ranges("v7-authors", SR, 512)]
    assert widths == [1] * 10 + [2] * 12 + [5] * 8 + [11] * 8 + [23] * 2 + [49]
    with pytest.raises(bands.BandSchemaError, match="defined in STFT bins"):
        bands.schema_edges("v7-authors")


def _paper_microtonal_notes(divisions=24):
    """The refined paper's loop, restated: walk up from 20 Hz, snapping to
    the nearest microtone, keeping those that are not 12-TET notes."""
    a4, low, high = 440.0, 20.0, 20000.0
    found, freq = [], low
    while freq <= high:
        step = round(12 * math.log2(freq / a4) * divisions / 12)
        if step % (divisions // 12):
            found.append(a4 * 2 ** (step / divisions))
        freq = a4 * 2 ** ((step + 1) / divisions)
    return found


def test_universal_edges_equal_papers_algorithm():
    ours = bands.microtonal_notes(24)
    theirs = _paper_microtonal_notes(24)
    assert len(ours) == len(theirs) == 120
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    # Every 12-TET note lies halfway (in log frequency) between two edges.
    ratios = np.asarray(ours[1:]) / np.asarray(ours[:-1])
    assert np.all((np.isclose(ratios, 2 ** (1 / 12))) | (ratios > 2 ** (1 / 12)))


def test_universal_band_counts_and_subset():
    assert len(bands.band_ranges("universal")) == 87
    picked = bands.universal_edges(num_edges=41)
    assert len(picked) == 41
    assert set(picked) <= set(bands.microtonal_notes())
    notes = bands.microtonal_notes()
    # The refined paper's code: edge floor(i * 120 / 41), i = 0..40, written
    # out by hand so that a change of the formula fails here.
    expected = [0, 2, 5, 8, 11, 14, 17, 20, 23, 26, 29, 32, 35, 38, 40, 43, 46, 49, 52, 55,
                58, 61, 64, 67, 70, 73, 76, 79, 81, 84, 87, 90, 93, 96, 99, 102, 105, 108,
                111, 114, 117]
    assert picked == [notes[i] for i in expected]
    assert bands.band_ranges("universal", num_edges=41) == bands.edges_to_bins(picked)
    assert len(bands.band_ranges("universal", num_edges=41)) == 36


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=1.0, max_value=22050.0), min_size=1, max_size=60,
                unique=True),
       st.sampled_from([(44100, 2048), (44100, 512), (22050, 1024), (48000, 4096)]))
def test_random_schemas_cover_every_bin_once(edges, stft):
    sr, n_fft = stft
    edges = sorted(e for e in edges if e <= sr / 2)
    try:
        ranges = bands.edges_to_bins(edges, sr, n_fft)
    except bands.BandSchemaError as e:
        assert "at least 2" in str(e)
        assert len(_widths_by_bin_centres(edges, sr, n_fft)) < 2
        return
    assert ranges[0][0] == 0 and ranges[-1][1] == n_fft // 2 + 1
    assert all(b > a for a, b in ranges)
    assert all(ranges[i][1] == ranges[i + 1][0] for i in range(len(ranges) - 1))
    assert [b - a for a, b in ranges] == _widths_by_bin_centres(edges, sr, n_fft)


@pytest.mark.parametrize("edges,message", [
    ([500, 300], "strictly increasing"),
    ([100, 100], "strictly increasing"),
    ([-5, 100], "must lie in"),
    ([100, 30000], "must lie in"),
    ([float("nan")], "finite"),
    ([], "at least 2"),
])
def test_invalid_schemas_raise_clear_errors(edges, message):
    with pytest.raises(bands.BandSchemaError, match=message):
        bands.edges_to_bins(edges, 44100, 2048, name="mine")


def test_json_schema_file(tmp_path):
    path = tmp_path / "edges.json"
    path.write_text(json.dumps({"edges": [250, 1000, 4000]}))
    assert len(bands.band_ranges(str(path))) == 4
    path.write_text(json.dumps([250, 1000, 4000]))
    assert len(bands.band_ranges(str(path))) == 4
    path.write_text("{not json")
    with pytest.raises(bands.BandSchemaError, match="edges.json"):
        bands.band_ranges(str(path))
    with pytest.raises(bands.BandSchemaError, match="not found"):
        bands.band_ranges(str(tmp_path / "missing.json"))
    with pytest.raises(bands.BandSchemaError, match="unknown band schema"):
        bands.band_ranges("v8")


@pytest.mark.parametrize("name", ["v7", "universal", "drums"])
def test_groups_partition_bands_with_bounded_padding(name):
    ranges = bands.band_ranges(name)
    groups = bands.group_bands(ranges, tolerance=1.25)
    members = sorted(k for g, _ in groups for k in g)
    assert members == list(range(len(ranges)))
    for g, width in groups:
        narrowest = min(ranges[k][1] - ranges[k][0] for k in g)
        assert width <= 1.25 * narrowest
