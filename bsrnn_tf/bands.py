"""Band schemas as data.

A schema is a sorted list of interior band edges in Hz. For a given sample
rate and FFT size it becomes a list of contiguous integer bin ranges
``[(start, stop), ...]`` (``stop`` exclusive) covering bins ``0 .. n_fft/2``
exactly once. Layers only ever see those bin ranges, so a saved model never
recomputes anything from Hz.

Built-in schemas (band counts at 44.1 kHz, n_fft 2048):

- ``v7`` (vocals, other; Luo & Yu 2023): K = 41
- ``bass``: K = 30
- ``drums``: K = 55
- ``universal`` (refined BSRNN, 24-TET quarter tones between 12-TET notes):
  K = 87 with all 120 edges; ``num_edges=41`` picks 41 of them as the
  refined paper's code does (``edges[int(i * 120 / 41)]``): K = 36.
- ``v7-authors``: v7 as the BSRNN authors' code builds it, in bins rather
  than Hz: every band of a region has ``floor(width_hz / (sr / 2) *
  (n_fft / 2 + 1))`` bins (4, 11, 23, 46 and 92 at 44.1 kHz / 2048) and the
  last band takes the rest (117 bins): K = 41. ``v7`` places its edges at
  the Hz boundaries instead (widths 5, 5, 4, 5, ... and a 96-bin last band).
"""

from __future__ import annotations

import math
import os
from typing import List, Optional, Sequence, Tuple

from bsrnn_tf import spectral
from bsrnn_tf.fileio import JsonFileError, read_json

# A band split as STFT bins: one (start_bin, stop_bin) pair per band, stop
# exclusive, contiguous from bin 0 to the last bin.
BandRanges = List[Tuple[int, int]]


class BandSchemaError(ValueError):
    """A band schema is invalid; the message says which schema and why."""


def _steps(start: float, stop: float, step: float) -> list:
    """Edges start, start+step, ..., stop (inclusive), in Hz."""
    count = int(round((stop - start) / step))
    return [start + i * step for i in range(count + 1)]


def _piecewise(*segments) -> list:
    """Joins (start, stop, step) segments into one sorted list of edges."""
    edges = []
    for start, stop, step in segments:
        edges.extend(_steps(start, stop, step))
    return sorted(set(e for e in edges if e > 0))


def v7_edges() -> list:
    """v7: 100 Hz bands to 1 kHz, 250 Hz to 4 kHz, 500 Hz to 8 kHz,
    1 kHz to 16 kHz, 2 kHz to 20 kHz, then one band to Nyquist."""
    return _piecewise((0, 1000, 100), (1000, 4000, 250), (4000, 8000, 500),
                      (8000, 16000, 1000), (16000, 20000, 2000))


def bass_edges() -> list:
    """Bass: 50 Hz bands to 500 Hz, 100 Hz to 1 kHz, 500 Hz to 4 kHz,
    1 kHz to 8 kHz, 2 kHz to 16 kHz, then the rest."""
    return _piecewise((0, 500, 50), (500, 1000, 100), (1000, 4000, 500),
                      (4000, 8000, 1000), (8000, 16000, 2000))


def drums_edges() -> list:
    """Drums: 50 Hz bands to 1 kHz, 100 Hz to 2 kHz, 250 Hz to 4 kHz,
    500 Hz to 8 kHz, 1 kHz to 16 kHz, then the rest."""
    return _piecewise((0, 1000, 50), (1000, 2000, 100), (2000, 4000, 250),
                      (4000, 8000, 500), (8000, 16000, 1000))


def microtonal_notes(divisions: int = 24, min_freq: float = 20.0,
                     max_freq: float = 20000.0, a4: float = 440.0) -> list:
    """Frequencies (Hz) of the ``divisions``-TET notes between ``min_freq`` and
    ``max_freq`` that are not 12-TET notes (refined BSRNN, section III.A).

    With 24 divisions these are the quarter tones halfway between semitones,
    so used as band edges they put every 12-TET note in the middle of a band.
    """
    if divisions < 12 or divisions % 12:
        raise BandSchemaError(f"divisions must be a positive multiple of 12, got {divisions}")
    per_semitone = divisions // 12
    lowest = math.ceil(divisions * math.log2(min_freq / a4) - 1e-9)
    highest = math.floor(divisions * math.log2(max_freq / a4) + 1e-9)
    return [a4 * 2.0 ** (step / divisions) for step in range(lowest, highest + 1)
            if step % per_semitone != 0]


def universal_edges(num_edges: Optional[int] = None, divisions: int = 24) -> list:
    """The universal schema's edges: all microtonal notes, or ``num_edges`` of
    them.

    The selection is the one of the refined paper's code (sahandevs/BandSplit-RNN),
    which picks edge ``floor(i * len(notes) / num_edges)`` for ``i = 0 ..
    num_edges - 1``: it starts at the first edge and leaves out the tail (with
    120 notes and 41 edges the last pick is note 117). Before bsrnn_tf 0.2 this
    function used ``linspace(0, len - 1, num_edges).round()``, which shares one
    of 41 edges with this selection.
    """
    notes = microtonal_notes(divisions)
    if num_edges is None or num_edges >= len(notes):
        return notes
    if num_edges < 1:
        raise BandSchemaError(f"universal: num_edges must be positive, got {num_edges}")
    return [notes[i * len(notes) // num_edges] for i in range(num_edges)]


BUILTIN_SCHEMAS: dict = {
    "v7": lambda num_edges=None: v7_edges(),
    "bass": lambda num_edges=None: bass_edges(),
    "drums": lambda num_edges=None: drums_edges(),
    "universal": universal_edges,
}


# Schemas defined by constant bin widths per region, as in the BSRNN authors'
# code: (band width in Hz, number of bands) per region, then one band with
# the remaining bins.
BIN_WIDTH_SCHEMAS: dict = {
    "v7-authors": ((100, 10), (250, 12), (500, 8), (1000, 8), (2000, 2)),
}


def bin_width_ranges(regions, sample_rate: int = 44100, n_fft: int = 2048,
                     name: str = "schema") -> BandRanges:
    """Contiguous bin ranges of a :data:`BIN_WIDTH_SCHEMAS` entry: each band
    of a region is ``floor(width_hz / (sample_rate / 2) * bins)`` bins wide
    (``bins = n_fft // 2 + 1``); bands of zero width (a coarse STFT) are
    dropped; the last band takes the bins left over."""
    num_bins = spectral.num_bins(n_fft)
    widths = [w for hz, count in regions
              for w in [int(math.floor(hz / (sample_rate / 2) * num_bins))] * count if w > 0]
    ranges, start = [], 0
    for w in widths:
        if start + w >= num_bins:
            break
        ranges.append((start, start + w))
        start += w
    ranges.append((start, num_bins))
    if len(ranges) < 2:
        raise BandSchemaError(f"{name}: gives {len(ranges)} band(s) at {sample_rate} Hz / "
                              f"n_fft {n_fft}; a band split needs at least 2")
    return ranges


def schema_edges(name: str, num_edges: Optional[int] = None) -> list:
    """Interior edges (Hz) of a built-in schema or of a JSON file.

    The JSON file holds either a list of edges or ``{"edges": [...]}``.
    """
    if name in BUILTIN_SCHEMAS:
        return list(BUILTIN_SCHEMAS[name](num_edges))
    if name.endswith(".json") or os.path.exists(name):
        return _edges_from_json(name)
    if name in BIN_WIDTH_SCHEMAS:
        raise BandSchemaError(f"{name} is defined in STFT bins, not Hz edges: use band_ranges")
    raise BandSchemaError(
        f"unknown band schema {name!r}: use one of "
        f"{sorted([*BUILTIN_SCHEMAS, *BIN_WIDTH_SCHEMAS])} "
        "or the path of a JSON file of band edges in Hz")


def _edges_from_json(path: str) -> list:
    absent = object()
    try:
        data = read_json(path, missing=absent)
    except JsonFileError as e:
        raise BandSchemaError(f"{path}: cannot read band schema JSON ({e.reason})") from None
    if data is absent:
        raise BandSchemaError(f"{path}: band schema file not found")
    if isinstance(data, dict):
        data = data.get("edges")
    if not isinstance(data, list) or not all(
            isinstance(x, (int, float)) and not isinstance(x, bool) for x in data):
        raise BandSchemaError(
            f"{path}: expected a list of band edges in Hz or {{\"edges\": [...]}}")
    return [float(x) for x in data]


def edges_to_bins(edges: Sequence[float], sample_rate: int = 44100, n_fft: int = 2048,
                  name: str = "schema") -> BandRanges:
    """Turns interior band edges (Hz) into contiguous bin ranges.

    An edge at ``f`` Hz falls at the number of STFT bins whose centre
    frequency is below ``f``. Empty bands are dropped; the ranges cover bins
    ``0 .. n_fft // 2`` exactly once.

    Raises:
      BandSchemaError: edges unsorted, outside (0, Nyquist], non-finite, or
        giving fewer than two bands.
    """
    nyquist = sample_rate / 2
    edges = [float(e) for e in edges]
    if any(not math.isfinite(e) for e in edges):
        raise BandSchemaError(f"{name}: band edges must be finite numbers")
    if any(b <= a for a, b in zip(edges, edges[1:])):
        raise BandSchemaError(f"{name}: band edges must be strictly increasing, got {edges}")
    outside = [e for e in edges if not 0 < e <= nyquist]
    if outside:
        raise BandSchemaError(
            f"{name}: band edges must lie in (0, {nyquist:g}] Hz (Nyquist at "
            f"{sample_rate} Hz); outside: {outside}")
    num_bins = spectral.num_bins(n_fft)
    bin_hz = sample_rate / n_fft
    # Number of bin centres k * bin_hz strictly below f.
    cuts = [min(num_bins, max(0, math.ceil(e / bin_hz - 1e-9))) for e in edges]
    bounds = sorted(set([0] + cuts + [num_bins]))
    ranges = [(a, b) for a, b in zip(bounds, bounds[1:])]
    if len(ranges) < 2:
        raise BandSchemaError(
            f"{name}: gives {len(ranges)} band(s) at {sample_rate} Hz / n_fft {n_fft}; "
            "a band split needs at least 2")
    return ranges


def band_ranges(name: str, sample_rate: int = 44100, n_fft: int = 2048,
                num_edges: Optional[int] = None) -> BandRanges:
    """Bin ranges of a schema (built-in name or JSON path).

    Built-in schemas are defined up to 20 kHz; at lower sample rates their
    edges at or above Nyquist are dropped. A user's JSON edges must all lie
    below Nyquist.
    """
    if name in BIN_WIDTH_SCHEMAS:
        return bin_width_ranges(BIN_WIDTH_SCHEMAS[name], sample_rate, n_fft, name)
    edges = schema_edges(name, num_edges)
    if name in BUILTIN_SCHEMAS:
        edges = [e for e in edges if e < sample_rate / 2]
    return edges_to_bins(edges, sample_rate, n_fft, name=name)


def check_ranges(ranges: Sequence[Sequence[int]], num_bins: int) -> BandRanges:
    """Validates serialised bin ranges: contiguous, non-empty, covering all bins."""
    ranges = [(int(a), int(b)) for a, b in ranges]
    if len(ranges) < 1 or ranges[0][0] != 0 or ranges[-1][1] != num_bins:
        raise BandSchemaError(f"band ranges must start at bin 0 and end at {num_bins}: {ranges}")
    for (a, b), (c, _) in zip(ranges, ranges[1:]):
        if b != c:
            raise BandSchemaError(f"band ranges must be contiguous: ({a}, {b}) then ({c}, ...)")
    if any(b <= a for a, b in ranges):
        raise BandSchemaError(f"band ranges must be non-empty: {ranges}")
    return ranges


def describe(sample_rate: int = 44100, n_fft: int = 2048) -> list:
    """(name, band count) of every built-in schema, with the 41-edge universal."""
    rows = [(name, len(band_ranges(name, sample_rate, n_fft)))
            for name in ("v7", "v7-authors", "bass", "drums", "universal")]
    rows.append(("universal --num-edges 41",
                 len(band_ranges("universal", sample_rate, n_fft, num_edges=41))))
    return rows


NOTE_NAMES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]


def plot_bands(ranges: BandRanges, path: str, sample_rate: int = 44100, n_fft: int = 2048,
               title: str = "") -> None:
    """Draws the bands against musical notes on a log-frequency axis (as the
    refined paper's figures 4 and 5) and writes a PNG to ``path``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bsrnn_tf.fileio import atomic_save

    bin_hz = sample_rate / n_fft
    fig, ax = plt.subplots(figsize=(14, 4.5))
    colours = ["#4c72b0", "#dd8452"]
    for k, (a, b) in enumerate(ranges):
        lo = max(a - 0.5, 0.25) * bin_hz
        hi = (b - 0.5) * bin_hz
        ax.axvspan(lo, hi, ymin=0.1, ymax=0.9, color=colours[k % 2], alpha=0.55, lw=0)
    # Every C (labelled) and every other note (thin lines), MIDI 12..127.
    for midi in range(12, 128):
        f = 440.0 * 2 ** ((midi - 69) / 12)
        if f > sample_rate / 2:
            break
        is_c = midi % 12 == 0
        ax.axvline(f, color="black", lw=0.8 if is_c else 0.25, alpha=0.8 if is_c else 0.4)
        if is_c:
            ax.text(f, 0.95, f"C{midi // 12 - 1}", ha="center", va="bottom", fontsize=8,
                    transform=ax.get_xaxis_transform())
    ax.set_xscale("log")
    ax.set_xlim(bin_hz / 2, sample_rate / 2)
    ax.set_yticks([])
    ax.set_xlabel("frequency (Hz, log scale); vertical lines: 12-TET notes, labelled at C")
    ax.set_title(title or f"{len(ranges)} bands at {sample_rate} Hz, n_fft {n_fft}")
    fig.tight_layout()
    atomic_save(path, lambda tmp: fig.savefig(tmp, dpi=120))
    plt.close(fig)


def group_bands(ranges: BandRanges, tolerance: float = 1.25) -> list:
    """Groups bands of similar width so per-band weights can be applied with
    one batched matmul per group instead of one per band.

    Bands are sorted by width and a new group starts when a band is more than
    ``tolerance`` times wider than the narrowest band of the current group,
    so zero padding wastes at most ``tolerance - 1`` of each group's compute.

    Returns:
      list of ``(band_indices, width)``: indices into ``ranges`` (ascending)
      and the group's padded width in bins.
    """
    widths = [b - a for a, b in ranges]
    order = sorted(range(len(ranges)), key=lambda k: (widths[k], k))
    groups, current = [], []
    for k in order:
        if current and widths[k] > tolerance * widths[current[0]]:
            groups.append(current)
            current = []
        current.append(k)
    groups.append(current)
    return [(sorted(g), max(widths[k] for k in g)) for g in groups]


