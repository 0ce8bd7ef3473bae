"""Presets (plain data) and the one function that builds a separator from a
:class:`ModelConfig`."""

from __future__ import annotations

import copy
import dataclasses

from bsrnn_tf.bands import band_ranges
from bsrnn_tf.config import ConfigError, ModelConfig, StftConfig

PRESETS = {
    # Luo & Yu 2023: N = 128, L = 12, v7 bands.
    "paper": ModelConfig(bands="v7", feature_dim=128, num_layers=12, mlp_ratio=4),
    # About 4 M parameters with one target, the size the refined paper used.
    "small": ModelConfig(bands="v7", feature_dim=64, num_layers=3, mlp_ratio=4),
    # Training on a CPU in minutes to hours: the refined paper's universal split
    # (41 of its 24-TET edges, as its code picks them: 36 bands), N = 32, L = 3
    # (half the step time of N = 64 for the same validation score after 100
    # steps: experiments/CPU_RECIPE.md). Training settings: PRESET_TRAINING.
    "cpu": ModelConfig(bands="universal", num_edges=41, feature_dim=32, num_layers=3,
                       mlp_ratio=4),
    # Real-time streaming (bsrnn_tf.inference.streaming): the cpu preset made causal:
    # forward time LSTMs (3N units), the chunk norm's statistics over the frames so
    # far (cumulative; held-out mean +1.85 dB against +0.98 with per-frame norms at
    # the cpu budget, README "Real-time streaming"), no chunk standardisation.
    "cpu-stream": ModelConfig(bands="universal", num_edges=41, feature_dim=32, num_layers=3,
                              mlp_ratio=4, causal=True, norm="cumulative",
                              standardize=False),
    # Tests and smoke runs: a smaller STFT and model, well under 100 k parameters.
    "tiny": ModelConfig(bands="v7", feature_dim=8, num_layers=1, mlp_ratio=2,
                        stft=StftConfig(n_fft=512, hop_length=128)),
}


# Training settings that come with a preset (flags override them):
# ``{section: {field: value}}`` for the data and train sections.
PRESET_TRAINING = {
    "cpu": {"data": {"segment_seconds": 2.0, "examples_per_epoch": 400, "valid_examples": 32},
            "train": {"batch_size": 4, "epochs": 10, "patience": 0, "loss": "bsrnn+sdr"}},
}
PRESET_TRAINING["cpu-stream"] = PRESET_TRAINING["cpu"]  # the same budget, for comparison


def apply_preset_training(name: str, config) -> None:
    """Sets the data and train fields of :data:`PRESET_TRAINING` ``[name]``
    on an ``ExperimentConfig`` (nothing for presets without any)."""
    for section, values in PRESET_TRAINING.get(name, {}).items():
        for field, value in values.items():
            setattr(getattr(config, section), field, value)


def preset(name: str) -> ModelConfig:
    """A fresh copy of a preset's :class:`ModelConfig`."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return copy.deepcopy(PRESETS[name])


def build_separator(config: ModelConfig, targets=None, **overrides):
    """Builds (and builds the weights of) a :class:`Separator`.

    Args:
      config: the architecture; ``config.targets`` unless ``targets`` is given.
      overrides: keyword arguments passed to the constructor (e.g. ``dtype``).
    """
    from bsrnn_tf.models.separator import Separator

    config = copy.deepcopy(config)
    if targets is not None:
        config.targets = list(targets)
    config.validate()
    stft = config.stft
    ranges = band_ranges(config.bands, stft.sample_rate, stft.n_fft, config.num_edges)
    model = Separator(ranges, config.targets, feature_dim=config.feature_dim,
                      num_layers=config.num_layers, mlp_ratio=config.mlp_ratio,
                      audio_channels=config.audio_channels, sample_rate=stft.sample_rate,
                      n_fft=stft.n_fft, hop_length=stft.hop_length,
                      segment_samples=config.segment_samples, standardize=config.standardize,
                      use_cudnn=config.use_cudnn, norm=config.norm, causal=config.causal,
                      channels=config.channels,
                      model_config=dataclasses.asdict(config),
                      **overrides)
    model.build()
    return model


def count_parameters(model) -> int:
    """Number of scalar weights (trainable and not)."""
    return int(sum(int(w.shape.num_elements() if hasattr(w.shape, "num_elements")
                       else _prod(w.shape)) for w in model.weights))


def _prod(shape) -> int:
    out = 1
    for d in shape:
        out *= int(d)
    return out
