"""Separator: a backbone plus one mask head per target."""

from __future__ import annotations

import contextlib
from typing import Iterable, Optional

import keras

from bsrnn_tf.config import (CHANNEL_MODES, ModelConfig, model_config_from_dict,
                             parse_use_cudnn)
from bsrnn_tf.layers.mask_head import MaskHead, apply_mask
from bsrnn_tf.layers.norm import DEFAULT_NORM, with_legacy_norm
from bsrnn_tf.layers.stft import istft, num_bins, stft
from bsrnn_tf.models.backbone import Backbone


@keras.saving.register_keras_serializable(package="bsrnn_tf")
class Separator(keras.Model):
    """BSRNN separator: STFT -> backbone -> ``{target: MaskHead}`` -> iSTFT.

    Calling it on a waveform ``(batch, samples, channels)`` returns
    ``{target: waveform (batch, samples, channels)}``. The spectral path is
    exposed for training and export: :meth:`spectrum`, :meth:`masks`,
    :meth:`estimate_spectra`, :meth:`waveform`.

    ``causal=True``: a streaming model (forward time LSTMs, per-frame or
    cumulative norms, no chunk standardisation, the causal STFT framing), whose output on a
    whole song equals that of :mod:`bsrnn_tf.inference.streaming` fed hop by hop.

    ``channels``: where the audio channels go. ``"features"`` (the default,
    bsrnn_tf's deviation from the BSRNN authors' code): a band's features
    are its bins x real/imag x channels, so the band split, its norms and the
    heads see the stereo image together. ``"batch"`` (the authors'): each
    channel is a separate example of a mono model (the packed spectrum is
    folded to ``(batch * channels, frames, bins, 2)`` before the backbone and
    the masks unfolded after the heads), so norms and projections never mix
    channels; the sequence models do twice the work. Not for causal models.

    ``model_config`` (a :class:`ModelConfig` as a dict) is kept only for
    provenance; the layers are built from the explicit arguments, band ranges
    included, so a saved model never recomputes them.
    """

    def __init__(self, band_ranges, targets: Iterable[str], feature_dim: int = 128,
                 num_layers: int = 12, mlp_ratio: int = 4, audio_channels: int = 2,
                 sample_rate: int = 44100, n_fft: int = 2048, hop_length: int = 512,
                 segment_samples: int = 132300, standardize: bool = True, use_cudnn="auto",
                 model_config: Optional[dict] = None, norm: str = DEFAULT_NORM,
                 causal: bool = False, channels: str = "features", **kwargs):
        super().__init__(**kwargs)
        self.causal = bool(causal)
        if channels not in CHANNEL_MODES:
            raise ValueError(f"Separator: channels must be one of {CHANNEL_MODES}, got "
                             f"{channels!r}")
        if channels == "batch" and self.causal:
            raise ValueError("Separator: channels='batch' is not available for a causal "
                             "(streaming) model")
        self.channels = channels
        if self.causal and standardize:
            raise ValueError("Separator: a causal model cannot standardize each chunk (its "
                             "statistics cover the chunk's frames); use standardize=False")
        self.band_ranges = [tuple(int(v) for v in r) for r in band_ranges]
        self.feature_dim = feature_dim
        self.num_layers = num_layers
        self.mlp_ratio = mlp_ratio
        self.audio_channels = audio_channels
        self.sample_rate = sample_rate
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.segment_samples = segment_samples
        self.standardize = standardize
        self.use_cudnn = use_cudnn = parse_use_cudnn(use_cudnn)
        self.norm = norm  # from_config: LEGACY_NORM when absent (saved before the field)
        self.model_config = dict(model_config or {})
        if self.band_ranges[-1][1] != num_bins(n_fft):
            raise ValueError(f"band ranges cover {self.band_ranges[-1][1]} bins, "
                             f"n_fft {n_fft} has {num_bins(n_fft)}")
        self.backbone = Backbone(self.band_ranges, feature_dim, num_layers, self.model_channels,
                                 standardize, use_cudnn, norm=norm, causal=self.causal,
                                 name="backbone",
                                 dtype=self.dtype_policy)
        self.heads = {}
        for target in targets:
            self._new_head(target)

    # -- structure -----------------------------------------------------------------
    @property
    def model_channels(self) -> int:
        """Channels per example that the backbone and heads see: 1 when the
        channels are folded into the batch."""
        return 1 if self.channels == "batch" else self.audio_channels

    @property
    def targets(self) -> list:
        return list(self.heads)

    def _new_head(self, target: str) -> MaskHead:
        if not target or not isinstance(target, str):
            raise ValueError(f"target names must be non-empty strings, got {target!r}")
        if target in self.heads:
            raise ValueError(f"the separator already has a head for {target!r}")
        head = MaskHead(self.band_ranges, self.feature_dim, self.model_channels, self.mlp_ratio,
                        norm=self.norm, name=f"head_{target}", dtype=self.dtype_policy)
        self.heads[target] = head
        return head

    def add_head(self, target: str) -> MaskHead:
        """Adds (and builds) a new, untrained mask head for ``target``."""
        with self._unlocked():
            head = self._new_head(target)
        head.build((None, None, self.backbone.num_bands, self.feature_dim))
        self._sync_targets()
        return head

    def remove_head(self, target: str) -> None:
        """Detaches the head of ``target`` (e.g. before transfer learning)."""
        if target not in self.heads:
            raise KeyError(f"no head for {target!r}; heads: {self.targets}")
        with self._unlocked():
            self.heads.pop(target)
        self._sync_targets()

    @contextlib.contextmanager
    def _unlocked(self):
        """Keras locks a built layer's state; heads are added and removed
        after building on purpose (transfer learning). The lock is Keras'
        private ``Layer._tracker`` (no public API unlocks it;
        tests/test_private_apis.py fails if Keras moves it): without it there
        is nothing to unlock, and a Keras that locks some other way says so
        itself when the head is added."""
        tracker = getattr(self, "_tracker", None)
        if not all(hasattr(tracker, a) for a in ("locked", "lock", "unlock")):
            yield
            return
        locked = tracker.locked
        tracker.unlock()
        try:
            yield
        finally:
            if locked:
                tracker.lock()

    def _sync_targets(self) -> None:
        if self.model_config:
            self.model_config["targets"] = self.targets

    def freeze_backbone(self, frozen: bool = True) -> None:
        """Makes the backbone (band split + band-sequence blocks) non-trainable."""
        self.backbone.trainable = not frozen

    def build(self, input_shape=None):
        self.backbone.build()
        for head in self.heads.values():
            head.build((None, None, self.backbone.num_bands, self.feature_dim))
        self.built = True

    # -- computation ---------------------------------------------------------------
    @property
    def framing(self) -> str:
        """The STFT framing (:mod:`bsrnn_tf.layers.stft`): ``"causal"`` for
        a causal model, so that a stream computes the same frames."""
        return "causal" if self.causal else "centre"

    def stft(self, waveform):
        """``(batch, samples, channels)`` -> packed ``(batch, frames, bins, C*2)``."""
        return stft(waveform, self.n_fft, self.hop_length, self.framing)

    def istft(self, spectrum, length: int, method: str = "irfft"):
        """Packed spectrum -> ``(batch, length, channels)``; ``method``: see
        :func:`bsrnn_tf.layers.stft.istft`."""
        return istft(spectrum, self.n_fft, self.hop_length, length, method, self.framing)

    def masks(self, spectrum, training=None, targets=None) -> dict:
        """``{target: packed complex mask}``, each like ``spectrum``."""
        if self.channels == "batch":
            spectrum = fold_channels(spectrum, self.audio_channels)
        features = self.backbone(spectrum, training=training)
        masks = {t: self.heads[t](features) for t in (targets or self.targets)}
        if self.channels == "batch":
            masks = {t: unfold_channels(m, self.audio_channels) for t, m in masks.items()}
        return masks

    def estimate_spectra(self, spectrum, training=None, targets=None) -> dict:
        """``{target: masked mixture spectrum}``."""
        masks = self.masks(spectrum, training=training, targets=targets)
        return {t: apply_mask(m, spectrum) for t, m in masks.items()}

    def call(self, waveform, training=None):
        return self.separate(waveform, training=training)

    def separate(self, waveform, training=None, istft_method: str = "irfft") -> dict:
        """``(batch, samples, channels)`` -> ``{target: estimate}`` of the same
        shape (``call``; the TFLite export picks another iSTFT method)."""
        length = waveform.shape[1]
        if length is None:
            raise ValueError("Separator: the number of samples must be static (the iSTFT "
                             "window envelope depends on it); use fixed-length segments")
        estimates = self.estimate_spectra(self.stft(waveform), training=training)
        return {t: self.istft(s, length, istft_method) for t, s in estimates.items()}

    # -- serialisation -------------------------------------------------------------
    @classmethod
    def from_config(cls, config, custom_objects=None):
        return super().from_config(with_legacy_norm(config), custom_objects=custom_objects)

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable,
                "dtype": keras.saving.serialize_keras_object(self.dtype_policy),
                "band_ranges": [list(r) for r in self.band_ranges], "targets": self.targets,
                "feature_dim": self.feature_dim, "num_layers": self.num_layers,
                "mlp_ratio": self.mlp_ratio, "audio_channels": self.audio_channels,
                "sample_rate": self.sample_rate, "n_fft": self.n_fft,
                "hop_length": self.hop_length, "segment_samples": self.segment_samples,
                "standardize": self.standardize, "use_cudnn": self.use_cudnn, "norm": self.norm,
                **({"causal": True} if self.causal else {}),
                **({"channels": self.channels} if self.channels != "features" else {}),
                "model_config": self.model_config}

    def config_object(self) -> ModelConfig:
        """The :class:`ModelConfig` this separator was built from."""
        return model_config_from_dict(self.model_config)


def fold_channels(spectrum, channels: int):
    """Packed ``(batch, frames, bins, channels * 2)`` -> ``(batch * channels,
    frames, bins, 2)``, example ``b * channels + c`` holding channel ``c``."""
    from keras import ops
    shape = ops.shape(spectrum)
    x = ops.reshape(spectrum, (shape[0], shape[1], shape[2], channels, 2))
    x = ops.transpose(x, (0, 3, 1, 2, 4))
    return ops.reshape(x, (shape[0] * channels, shape[1], shape[2], 2))


def unfold_channels(packed, channels: int):
    """The inverse of :func:`fold_channels`."""
    from keras import ops
    shape = ops.shape(packed)
    x = ops.reshape(packed, (shape[0] // channels, channels, shape[1], shape[2], 2))
    x = ops.transpose(x, (0, 2, 3, 1, 4))
    return ops.reshape(x, (shape[0] // channels, shape[1], shape[2], channels * 2))
