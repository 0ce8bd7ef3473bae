"""Recorded drum kits in Hydrogen's format, played from the composer's drum parts.

A Hydrogen kit is a folder with a ``drumkit.xml`` and its samples (FLAC,
WAV, AIFF). Debian's ``hydrogen-drumkits`` and ``hydrogen-drumkits-effects``
install kits under ``/usr/share/hydrogen/data/drumkits``.

* :func:`parse_drumkit` reads a ``drumkit.xml``: instruments with their
  gain, pan and velocity layers (``<layer>``: ``min``/``max`` velocity in
  0..1, ``gain``, ``pitch`` in semitones, a sample file). Both layouts are
  read: layers directly under ``<instrument>`` (and inside
  ``<instrumentComponent>``), and the old one with a single ``<filename>``
  per instrument (one layer over all velocities).
* :func:`map_general_midi` maps the General MIDI drum keys the composer
  writes (:mod:`bsrnn_tf.datasets.compose_parts`) onto kit pieces by their
  names, with fallbacks (clap -> snare, ride -> crash, ...); one candidate
  is drawn per key and song where a kit has several (e.g. twelve kicks).
* :func:`render_drums` plays a :class:`~bsrnn_tf.datasets.score.Part`:
  the layer is chosen by velocity as Hydrogen does (the first layer with
  ``min <= velocity / 127 <= max``), scaled by velocity, with humanised
  timing (Gaussian, a few ms) and velocity, an open hi-hat choked by the
  next closed or pedal hi-hat, and the pieces panned as overheads place
  them (:func:`piece_pans`).
"""

from __future__ import annotations

import functools
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

import numpy as np

from bsrnn_tf.datasets.cache import GenerationError

KIT_DIR = "/usr/share/hydrogen/data/drumkits"
KIT_PACKAGE = "hydrogen-drumkits"
# Kits that hold no drum kit (guitar strums, hand percussion only, djembes).
NOT_DRUM_KITS = ("belofilms_GuitarStrums", "Gimme A Hand 1.0", "circAfrique v4")
# Held out of training: the produced test split plays these.
TEST_KITS = ("The Black Pearl 1.0", "ElectricEmpireKit")

# General MIDI key -> (name patterns in order of preference, fallback keys).
_KEYS = {
    36: ([r"kick", r"bass ?drum", r"\bbd\b"], []),
    38: ([r"snare(?!.*(rim|roll))", r"snare"], []),
    37: ([r"stick|rim ?click"], [38]),
    39: ([r"clap"], [38]),
    42: ([r"(hat|hh).*(clos|\bcl\b)|clos.*(hat|hh)"], [44, 46]),
    44: ([r"(hat|hh).*(pedal|\bpd\b)|pedal.*(hat|hh)"], [42]),
    46: ([r"(hat|hh).*(open|\bop\b)|open.*(hat|hh)"], [42]),
    41: ([r"floor|tom.*low|low.*tom"], [45, 47, 50, 38]),
    45: ([r"tom.*low|low.*tom|floor"], [47, 41, 50, 38]),
    47: ([r"tom.*mid|mid.*tom|tom 2", r"tom(?!.*floor)"], [45, 50, 41, 38]),
    50: ([r"tom.*(hi|high)|(hi|high).*tom|tom 1", r"tom(?!.*floor)"], [47, 45, 41, 38]),
    49: ([r"crash(?!.*ride)", r"splash|china", r"crash"], [51, 46]),
    51: ([r"ride(?!.*bell)", r"ride"], [49, 42]),
}
REQUIRED_KEYS = (36, 38, 42)


@dataclass
class Layer:
    """One sample of an instrument: velocity range in 0..1, gain, pitch
    (semitones) and the sample's path."""

    min: float
    max: float
    gain: float
    pitch: float
    path: str


@dataclass
class Instrument:
    name: str
    gain: float = 1.0
    pan: tuple = (1.0, 1.0)    # Hydrogen's pan_L, pan_R channel gains
    layers: list = field(default_factory=list)


@dataclass
class Drumkit:
    name: str
    folder: str
    instruments: list


def _text(node, tag: str, default: str = "") -> str:
    child = node.find(tag)
    return child.text.strip() if child is not None and child.text else default


def _float(node, tag: str, default: float) -> float:
    try:
        return float(_text(node, tag, str(default)))
    except ValueError:
        return default


def parse_drumkit(xml_path: str) -> Drumkit:
    """Reads a Hydrogen ``drumkit.xml``; instruments without a sample file
    that exists are left out."""
    try:
        root = ET.parse(xml_path).getroot()
    except (ET.ParseError, OSError) as e:
        raise GenerationError(f"cannot read the Hydrogen kit {xml_path}: {e}") from e
    for node in root.iter():  # drop XML namespaces: tags are matched by name
        node.tag = node.tag.rsplit("}", 1)[-1]
    folder = os.path.dirname(os.path.abspath(xml_path))
    instruments = []
    for node in root.iter("instrument"):
        inst = Instrument(_text(node, "name"), _float(node, "gain", 1.0) *
                          _float(node, "volume", 1.0),
                          (_float(node, "pan_L", 1.0), _float(node, "pan_R", 1.0)))
        layers = list(node.iter("layer"))
        if layers:
            for layer in layers:
                inst.layers.append(Layer(_float(layer, "min", 0.0), _float(layer, "max", 1.0),
                                         _float(layer, "gain", 1.0), _float(layer, "pitch", 0.0),
                                         os.path.join(folder, _text(layer, "filename"))))
        elif _text(node, "filename"):
            inst.layers.append(Layer(0.0, 1.0, 1.0, 0.0,
                                     os.path.join(folder, _text(node, "filename"))))
        inst.layers = [la for la in inst.layers if os.path.isfile(la.path)]
        if inst.layers:
            instruments.append(inst)
    return Drumkit(_text(root, "name") or os.path.basename(folder), folder, instruments)


def choose_layer(instrument: Instrument, velocity: int) -> Layer:
    """Hydrogen's rule: the first layer whose ``[min, max]`` holds
    ``velocity / 127``; else the layer nearest to it."""
    v = velocity / 127.0
    for layer in instrument.layers:
        if layer.min <= v <= layer.max:
            return layer
    return min(instrument.layers, key=lambda la: min(abs(v - la.min), abs(v - la.max)))


def _matching(kit: Drumkit, key: int) -> list:
    for pattern in _KEYS[key][0]:
        found = [i for i in kit.instruments if re.search(pattern, i.name.lower())]
        if found:
            return found
    return []


def candidates(kit: Drumkit, key: int) -> list:
    """The kit's instruments that can play General MIDI drum ``key``: by
    its name patterns (in order of preference), else those of its
    fallbacks, nearest first (breadth-first: crash -> ride, open hat)."""
    queue, seen = [key], {key}
    while queue:
        current = queue.pop(0)
        found = _matching(kit, current)
        if found:
            return found
        for other in _KEYS[current][1]:
            if other not in seen:
                seen.add(other)
                queue.append(other)
    return []


def map_general_midi(kit: Drumkit, rng: np.random.Generator) -> dict:
    """``{GM key: Instrument}`` for every key the composer uses; raises
    :class:`GenerationError` if the kit lacks a kick, snare or hi-hat."""
    mapping = {}
    for key in _KEYS:
        found = candidates(kit, key)
        if found:
            mapping[key] = found[int(rng.integers(len(found)))]
    missing = [k for k in REQUIRED_KEYS if k not in mapping]
    if missing:
        raise GenerationError(f"Hydrogen kit {kit.name!r} has no instrument for GM keys "
                              f"{missing} (kick 36, snare 38, closed hi-hat 42)")
    return mapping


def list_kits(kit_dir: str = KIT_DIR) -> list:
    """Names of the installed drum kits (folders with a ``drumkit.xml``)."""
    if not os.path.isdir(kit_dir):
        return []
    return sorted(k for k in os.listdir(kit_dir) if k not in NOT_DRUM_KITS and
                  os.path.isfile(os.path.join(kit_dir, k, "drumkit.xml")))


def resolve_kit(name: str, kit_dir: str = KIT_DIR) -> str:
    """Path of a kit's ``drumkit.xml`` given a kit name or folder."""
    folder = name if os.sep in name else os.path.join(kit_dir, name)
    xml = os.path.join(folder, "drumkit.xml")
    if not os.path.isfile(xml):
        raise GenerationError(f"Hydrogen drum kit {folder} not found: install the Debian "
                              f"package `{KIT_PACKAGE}` (scripts/install.sh does)")
    return xml


@functools.lru_cache(maxsize=512)
def load_sample(path: str, pitch: float, sample_rate: int) -> np.ndarray:
    """A sample as ``(samples, 2)`` float32 at ``sample_rate``, shifted by
    ``pitch`` semitones (by resampling, as a sampler does)."""
    import soundfile as sf
    from scipy.signal import resample_poly

    audio, rate = sf.read(path, dtype="float32", always_2d=True)
    audio = audio[:, :2] if audio.shape[1] >= 2 else np.repeat(audio, 2, axis=1)
    ratio = rate / sample_rate * 2 ** (pitch / 12)
    if abs(ratio - 1) > 1e-6:
        from fractions import Fraction
        frac = Fraction(1 / ratio).limit_denominator(1000)
        audio = resample_poly(audio, frac.numerator, frac.denominator, axis=0)
    return np.ascontiguousarray(audio, dtype=np.float32)


_HATS_CLOSING = (42, 44)
_OPEN_HAT = 46
# Where the pieces sit from the drummer's seat (-1 left, +1 right), as
# overhead microphones place them; scaled by a spread drawn per song.
_LAYOUT = {36: 0.0, 38: 0.05, 37: 0.05, 39: 0.0, 42: -0.45, 44: -0.45, 46: -0.45,
           50: -0.2, 47: 0.1, 45: 0.3, 41: 0.45, 49: -0.55, 51: 0.55}


def piece_pans(rng: np.random.Generator, spread: float) -> dict:
    """Per GM key a pan in [-1, 1]: ``_LAYOUT`` times ``spread``, a little
    jitter, mirrored (the audience's view) half of the time."""
    side = 1.0 if rng.random() < 0.5 else -1.0
    return {k: float(np.clip(side * spread * (v + rng.normal(0, 0.05)), -1, 1))
            for k, v in _LAYOUT.items()}


def render_drums(part, tempo: float, kit: Drumkit, rng: np.random.Generator, num_samples: int,
                 sample_rate: int, timing_ms: float = 4.0, velocity_sd: float = 6.0,
                 spread: float | None = None) -> np.ndarray:
    """Plays the notes of a drum ``part`` (beats, GM keys, velocities) on
    ``kit``; ``(num_samples, 2)`` float32. Each hit moves by a Gaussian of
    ``timing_ms`` and its velocity by one of ``velocity_sd``; the pieces are
    panned by :func:`piece_pans` with ``spread`` (default drawn in
    0.3..1; 0 leaves the kit's own pans alone)."""
    mapping = map_general_midi(kit, rng)
    pans = piece_pans(rng, rng.uniform(0.3, 1.0) if spread is None else spread)
    out = np.zeros((num_samples, 2), dtype=np.float32)
    seconds_per_beat = 60.0 / tempo
    notes = sorted(part.notes, key=lambda n: n.start)
    closes = np.array([n.start for n in notes if n.pitch in _HATS_CLOSING])
    for note in notes:
        inst = mapping.get(note.pitch)
        if inst is None:
            continue
        velocity = int(np.clip(round(note.velocity + rng.normal(0, velocity_sd)), 1, 127))
        layer = choose_layer(inst, velocity)
        sample = load_sample(layer.path, layer.pitch, sample_rate)
        start = int(round((note.start * seconds_per_beat + rng.normal(0, timing_ms / 1e3))
                          * sample_rate))
        start = max(0, start)
        length = min(len(sample), num_samples - start)
        if note.pitch == _OPEN_HAT and closes.size:  # choke by the next closing hat
            later = closes[closes > note.start + 1e-6]
            if later.size:
                length = min(length, int((later[0] - note.start) * seconds_per_beat
                                         * sample_rate) + 1)
        if length <= 0:
            continue
        gain = velocity / 127.0 * layer.gain * inst.gain
        angle = (pans.get(note.pitch, 0.0) + 1.0) * np.pi / 4.0  # constant power, 1 at centre
        lr = np.sqrt(2.0) * np.array([np.cos(angle), np.sin(angle)]) * np.asarray(inst.pan)
        hit = sample[:length] * (gain * lr).astype(np.float32)
        fade = min(length, int(0.01 * sample_rate))
        if length < len(sample) and fade > 0:
            hit[-fade:] *= np.linspace(1, 0, fade, dtype=np.float32)[:, None]
        out[start:start + length] += hit
    return out
