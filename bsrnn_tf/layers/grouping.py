"""Index tables that let per-band weights run as one matmul per group of
bands of similar width (see :func:`bsrnn_tf.bands.group_bands`).

Every table is a numpy constant computed once from the bin ranges; padded
positions point at an extra all-zero row appended to the gathered tensor.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from bsrnn_tf.bands import group_bands


@dataclasses.dataclass(frozen=True)
class BandGroup:
    """One group of ``len(bands)`` bands padded to ``width`` bins.

    Attributes:
      bands: band indices, ``(g,)``.
      bins: bin index for each (band, position), ``(g, width)``; ``num_bins``
        where the band is narrower than ``width`` (the zero row).
      valid: 1.0 where ``bins`` is a real bin, ``(g, width)``.
    """

    bands: np.ndarray
    bins: np.ndarray
    valid: np.ndarray

    @property
    def width(self) -> int:
        return self.bins.shape[1]


def band_groups(ranges, tolerance: float = 1.25) -> list:
    """:class:`BandGroup` list for contiguous bin ``ranges``."""
    num_bins = ranges[-1][1]
    groups = []
    for members, width in group_bands(ranges, tolerance):
        bins = np.full((len(members), width), num_bins, dtype=np.int32)
        for row, k in enumerate(members):
            start, stop = ranges[k]
            bins[row, :stop - start] = np.arange(start, stop)
        groups.append(BandGroup(np.asarray(members, np.int32), bins,
                                (bins < num_bins).astype(np.float32)))
    return groups


def feature_index(bins: np.ndarray, features_per_bin: int, num_bins: int) -> np.ndarray:
    """Row indices into a flat ``(num_bins * features_per_bin (+1 zero row), ...)``
    table for each ``(band, position, feature)`` of a group, flattened to
    ``(g, width * features_per_bin)``; padded bins map to the zero row."""
    rows = bins[..., None] * features_per_bin + np.arange(features_per_bin)
    rows = np.where(bins[..., None] == num_bins, num_bins * features_per_bin, rows)
    return rows.reshape(bins.shape[0], -1).astype(np.int32)


def band_order(groups) -> np.ndarray:
    """Position of each band in the group-major concatenation, so that
    ``tf.gather(concat, band_order(groups), axis)`` restores band order."""
    concat = np.concatenate([g.bands for g in groups])
    order = np.empty_like(concat)
    order[concat] = np.arange(len(concat))
    return order.astype(np.int32)


def bin_order(groups, num_bins: int) -> np.ndarray:
    """Position of each real bin in the group-major concatenation of padded
    bins, ``(num_bins,)``."""
    concat = np.concatenate([g.bins.reshape(-1) for g in groups])
    order = np.empty(num_bins, dtype=np.int32)
    real = concat < num_bins
    order[concat[real]] = np.nonzero(real)[0]
    return order
