"""One configuration object for training, tuning, evaluation and export.

An experiment is ``model + data + train``; each section is a dataclass whose
fields are plain JSON values, so the whole thing round-trips through
``to_json``/``from_json`` and is saved beside every checkpoint and export.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any, Optional

from bsrnn_tf.bands import BandSchemaError, band_ranges
from bsrnn_tf.data.track import SOURCES
from bsrnn_tf.fileio import JsonFileError, atomic_write_text, read_json
from bsrnn_tf.spectral import num_bins, num_frames

DEFAULT_TARGETS = SOURCES  # the MUSDB stems, bsrnn_tf.data.track
# model.norm: the BSRNN authors' normalisation over the chunk, per frame, or
# over the frames so far (bsrnn_tf.layers.norm); train.loss: the authors', or
# plus an SDR term (bsrnn_tf.training.losses).
NORMS = ("chunk", "frame", "cumulative")
# The norms that never look at later frames: those a causal model may use.
CAUSAL_NORMS = ("frame", "cumulative")
# The one default for a model built now, and the norm of a model (config or
# saved Keras layer) saved before the field existed.
DEFAULT_NORM = "chunk"
LEGACY_NORM = "frame"
LOSSES = ("bsrnn", "bsrnn+sdr")
# model.channels: stereo in each band's features, or each channel a mono
# example in the batch (the BSRNN authors'); bsrnn_tf.models.Separator.
CHANNEL_MODES = ("features", "batch")


def parse_use_cudnn(value):
    """``"auto"``, ``True`` or ``False`` (Keras' ``LSTM(use_cudnn=...)``)
    from those or from the strings ``"true"`` / ``"false"`` that configs
    saved before 0.2 hold; ``ValueError`` otherwise."""
    if value is True or value is False or value == "auto":
        return value
    parsed = {"auto": "auto", "true": True, "false": False}.get(str(value).strip().lower())
    if parsed is None:
        raise ValueError(f"use_cudnn must be auto, true or false, got {value!r}")
    return parsed


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the field."""


def check_number(name: str, value, minimum: float = None, maximum: float = None,
                 integer: bool = False, min_inclusive: bool = True) -> None:
    """Raises :class:`ConfigError` unless ``value`` is a finite number (an
    int when ``integer``) in ``[minimum, maximum]`` (``(minimum, ...`` when
    not ``min_inclusive``); the message names ``name``."""
    kind = "an integer" if integer else "a number"
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok or not math.isfinite(value):
        raise ConfigError(f"{name} must be {kind}, got {value!r}")
    low = minimum is not None and (value < minimum if min_inclusive else value <= minimum)
    if low or (maximum is not None and value > maximum):
        bounds = (f"{'>=' if min_inclusive else '>'} {minimum:g}" if maximum is None else
                  f"in {'[' if min_inclusive else '('}{minimum:g}, {maximum:g}]")
        raise ConfigError(f"{name} must be {bounds}, got {value!r}")


@dataclasses.dataclass
class StftConfig:
    """Short-time Fourier transform settings (Hz and samples)."""

    sample_rate: int = 44100
    n_fft: int = 2048
    hop_length: int = 512

    @property
    def num_bins(self) -> int:
        return num_bins(self.n_fft)

    def num_frames(self, num_samples: int) -> int:
        """Frames of a centred STFT of ``num_samples`` samples."""
        return num_frames(num_samples, self.n_fft, self.hop_length)

    def validate(self) -> None:
        if self.sample_rate <= 0:
            raise ConfigError(f"stft.sample_rate must be positive, got {self.sample_rate}")
        if self.n_fft < 4 or self.n_fft % 2:
            raise ConfigError(f"stft.n_fft must be an even number >= 4, got {self.n_fft}")
        if not 0 < self.hop_length <= self.n_fft // 2:
            raise ConfigError(
                f"stft.hop_length must be in 1..n_fft/2 ({self.n_fft // 2}) for an invertible "
                f"STFT with a Hann window, got {self.hop_length}")


@dataclasses.dataclass
class ModelConfig:
    """BSRNN architecture.

    ``bands`` is a built-in schema name (``v7``, ``bass``, ``drums``,
    ``universal``) or the path of a JSON file of band edges in Hz;
    ``num_edges`` picks that many of the universal schema's edges.

    ``norm``: ``"chunk"`` (the BSRNN authors' normalisation, statistics over
    the features and the chunk's frames), ``"frame"`` (per-frame layer norm,
    bsrnn_tf before 0.2) or ``"cumulative"`` (the chunk norm's statistics
    over the frames so far, causal); see :mod:`bsrnn_tf.layers.norm`. A saved
    config without the field (``from_json(..., saved=True)``) means ``"frame"``.

    ``causal``: a streaming model (:mod:`bsrnn_tf.inference.streaming`): forward time
    LSTMs and the causal STFT framing; needs a norm of :data:`CAUSAL_NORMS`
    (``"frame"`` or ``"cumulative"``) and ``standardize=False`` (the chunk
    norm and the standardisation use the whole chunk). Absent: False.

    ``channels``: ``"features"`` (stereo packed into each band's features,
    the default) or ``"batch"`` (each channel a separate example, as the
    BSRNN authors' code); see :class:`bsrnn_tf.models.Separator`. Absent:
    ``"features"``.
    """

    bands: str = "v7"
    num_edges: Optional[int] = None
    feature_dim: int = 128
    num_layers: int = 12
    mlp_ratio: int = 4
    targets: list = dataclasses.field(default_factory=lambda: ["vocals"])
    audio_channels: int = 2
    segment_seconds: float = 3.0
    standardize: bool = True
    norm: str = DEFAULT_NORM
    causal: bool = False
    channels: str = "features"
    use_cudnn: Any = "auto"  # "auto", True or False
    stft: StftConfig = dataclasses.field(default_factory=StftConfig)

    @property
    def segment_samples(self) -> int:
        return int(round(self.segment_seconds * self.stft.sample_rate))

    def validate(self) -> None:
        self.stft.validate()
        for name in ("feature_dim", "num_layers", "mlp_ratio", "audio_channels"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"model.{name} must be a positive integer, got {value!r}")
        if not self.targets:
            raise ConfigError("model.targets must name at least one target")
        if len(set(self.targets)) != len(self.targets):
            raise ConfigError(f"model.targets has duplicates: {self.targets}")
        if self.segment_seconds <= 0:
            raise ConfigError(f"model.segment_seconds must be positive, got {self.segment_seconds}")
        if self.norm not in NORMS:
            raise ConfigError(f"model.norm must be one of {NORMS}, got {self.norm!r}")
        if not isinstance(self.causal, bool):
            raise ConfigError(f"model.causal must be true or false, got {self.causal!r}")
        if self.causal and (self.norm not in CAUSAL_NORMS or self.standardize):
            raise ConfigError(f"model.causal needs norm {' or '.join(map(repr, CAUSAL_NORMS))} "
                              f"and standardize false (got norm {self.norm!r}, standardize "
                              f"{self.standardize}): norm 'chunk' and the standardisation "
                              f"take statistics over all the chunk's frames, later ones "
                              f"included")
        if self.channels not in CHANNEL_MODES:
            raise ConfigError(f"model.channels must be one of {CHANNEL_MODES}, got "
                              f"{self.channels!r}")
        if self.channels == "batch" and self.causal:
            raise ConfigError("model.channels 'batch' is not available for a causal model")
        if self.num_edges is not None and self.num_edges < 1:
            raise ConfigError(f"model.num_edges must be positive, got {self.num_edges}")
        try:
            self.use_cudnn = parse_use_cudnn(self.use_cudnn)
        except ValueError as e:
            raise ConfigError(f"model.{e}") from None
        try:
            band_ranges(self.bands, self.stft.sample_rate, self.stft.n_fft, self.num_edges)
        except BandSchemaError as e:
            raise ConfigError(f"model.bands: {e}") from None


@dataclasses.dataclass
class DataConfig:
    """Where examples come from and how they are augmented."""

    musdb_root: Optional[str] = None
    # Without musdb_root / $MUSDB_PATH: which built-in dataset ("sampled":
    # rendered from soundfonts, "synth": synthesized).
    builtin_dataset: str = "sampled"
    is_wav: Optional[bool] = None
    segment_seconds: float = 3.0
    # Validation chunk length; None: segment_seconds (bsrnn_tf.data.pipeline
    # valid_segment_samples). tune.py gives every trial the same one.
    valid_segment_seconds: Optional[float] = None
    examples_per_epoch: int = 1000
    valid_examples: int = 32
    valid_seed: int = 1234
    # Source-activity detection: a chunk is kept when enough of its
    # sub-chunks have an RMS above max(track RMS + relative_db, floor_db).
    source_activity: bool = True
    activity_subchunks: int = 10
    activity_relative_db: float = -20.0
    activity_floor_db: float = -60.0
    activity_min_active: float = 0.5
    # Augmentations.
    remix: bool = True
    gain_db: float = 10.0
    channel_swap: bool = True
    silence_target_prob: float = 0.1
    cache_budget_mb: int = 4096

    def validate(self) -> None:
        check_number("data.segment_seconds", self.segment_seconds, 0, min_inclusive=False)
        if self.valid_segment_seconds is not None:
            check_number("data.valid_segment_seconds", self.valid_segment_seconds, 0,
                         min_inclusive=False)
        check_number("data.examples_per_epoch", self.examples_per_epoch, 1, integer=True)
        check_number("data.valid_examples", self.valid_examples, 1, integer=True)
        check_number("data.gain_db", self.gain_db, 0)
        check_number("data.silence_target_prob", self.silence_target_prob, 0, 1)
        check_number("data.activity_min_active", self.activity_min_active, 0, 1)
        check_number("data.activity_subchunks", self.activity_subchunks, 1, integer=True)


@dataclasses.dataclass
class TrainConfig:
    """Optimisation, checkpoints and logs."""

    epochs: int = 100
    batch_size: int = 2
    learning_rate: float = 1e-3
    lr_decay: float = 0.98
    lr_decay_epochs: int = 2
    clip_norm: float = 5.0
    # "bsrnn" (the authors') or "bsrnn+sdr" (plus sdr_weight x negative uSDR
    # in dB; see bsrnn_tf.training.losses).
    loss: str = "bsrnn"
    sdr_weight: float = 0.1
    patience: int = 10
    # A time budget: stop after the epoch in which the run's epochs (their
    # seconds as the epoch lines report them, validation included; resumed
    # runs count their earlier epochs) reach this many minutes. 0: none.
    max_minutes: float = 0.0
    mixed_precision: bool = False
    # Recompute each band-sequence block in the backward pass instead of
    # keeping its activations (Backbone.recompute_blocks): less memory.
    recompute_blocks: bool = False
    target_weights: dict = dataclasses.field(default_factory=dict)
    checkpoint_every_steps: int = 0
    seed: int = 0
    summary_every_epochs: int = 5
    # Transfer learning: start from this run's backbone, optionally frozen;
    # or fine-tuning: from every weight of this run, its heads included.
    init_backbone: Optional[str] = None
    init_model: Optional[str] = None
    freeze_backbone: bool = False

    def validate(self) -> None:
        check_number("train.epochs", self.epochs, 1, integer=True)
        check_number("train.batch_size", self.batch_size, 1, integer=True)
        check_number("train.learning_rate", self.learning_rate, 0, min_inclusive=False)
        check_number("train.lr_decay", self.lr_decay, 0, 1, min_inclusive=False)
        check_number("train.lr_decay_epochs", self.lr_decay_epochs, 1, integer=True)
        check_number("train.clip_norm", self.clip_norm, 0)
        if self.loss not in LOSSES:
            raise ConfigError(f"train.loss must be one of {LOSSES}, got {self.loss!r}")
        check_number("train.sdr_weight", self.sdr_weight, 0)
        check_number("train.patience", self.patience, 0, integer=True)
        check_number("train.max_minutes", self.max_minutes, 0)
        check_number("train.checkpoint_every_steps", self.checkpoint_every_steps, 0, integer=True)
        for target, weight in self.target_weights.items():
            check_number(f"train.target_weights[{target}]", weight, 0)


@dataclasses.dataclass
class ExperimentConfig:
    """Everything that defines a run."""

    name: str = "bsrnn"
    preset: str = "small"
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)

    def validate(self) -> None:
        self.model.validate()
        self.data.validate()
        self.train.validate()
        if self.data.examples_per_epoch < self.train.batch_size:
            raise ConfigError(f"data.examples_per_epoch ({self.data.examples_per_epoch}) is "
                              f"smaller than train.batch_size ({self.train.batch_size}): not "
                              f"one batch per epoch")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self, path: Optional[str] = None) -> str:
        text = json.dumps(self.to_dict(), indent=2, sort_keys=True)
        if path is not None:
            atomic_write_text(path, text + "\n")
        return text

    @classmethod
    def from_dict(cls, data: dict, saved: bool = False) -> "ExperimentConfig":
        """``saved``: ``data`` was written with a model (a run's or an
        export's ``config.json``), so missing fields mean what they meant
        before they existed."""
        if saved and isinstance(data, dict) and isinstance(data.get("model"), dict):
            data = {**data, "model": _with_legacy_defaults(data["model"])}
        return _from_dict(cls, data, "")

    @classmethod
    def from_json(cls, path: str, saved: bool = False) -> "ExperimentConfig":
        return cls.from_dict(_read_json(path), saved)


def _read_json(path: str) -> Any:
    try:
        return read_json(path)
    except JsonFileError as e:
        raise ConfigError(str(e)) from None


def _from_dict(cls, data: dict, where: str):
    """Builds dataclass ``cls`` from ``data``; unknown keys are an error."""
    if not isinstance(data, dict):
        raise ConfigError(f"config section {where or '<root>'} must be an object, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown config key(s) {unknown} in section {where or '<root>'}; "
            f"known: {sorted(fields)}")
    kwargs = {}
    for name, value in data.items():
        field_type = fields[name].type
        sub = _SECTIONS.get(field_type if isinstance(field_type, str) else field_type.__name__)
        if sub is not None:
            value = _from_dict(sub, value, f"{where}.{name}".lstrip("."))
        kwargs[name] = value
    return cls(**kwargs)


_SECTIONS = {
    "StftConfig": StftConfig,
    "ModelConfig": ModelConfig,
    "DataConfig": DataConfig,
    "TrainConfig": TrainConfig,
}


# Fields added after models were saved without them, and the value those
# models behave with.
_LEGACY_MODEL_DEFAULTS = {"norm": LEGACY_NORM}


def _with_legacy_defaults(model: dict) -> dict:
    return {**_LEGACY_MODEL_DEFAULTS, **model}


def model_config_from_dict(data: dict) -> ModelConfig:
    """The :class:`ModelConfig` saved with a model (missing fields take the
    value the model was trained with)."""
    return _from_dict(ModelConfig, _with_legacy_defaults(data), "model")
